//! Memory budgets: every module has an account with a byte budget.
//!
//! The budget is *measured* by the counting allocator ([`super::alloc`]) while the module's task
//! is polled, *enforced* where a module grows a buffer ([`MemoryAccount::try_reserve`] refuses
//! growth past the budget), and *watched* by the supervisor, which tells a module near its budget
//! to shed work and reports it as an `agent.budget_pressure` event.

use super::alloc::{self, AccountId, MAX_ACCOUNTS};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::{Context, Poll};

/// Share of the budget at which a module is told to shed work (per mille).
pub const PRESSURE_PER_MILLE: usize = 900;
/// Share of the budget under which pressure is considered over (per mille).
pub const RELIEF_PER_MILLE: usize = 700;

static NAMES: Mutex<[Option<&'static str>; MAX_ACCOUNTS]> = Mutex::new([None; MAX_ACCOUNTS]);

/// Returns the account for `name`, registering it on first use. The same name always gets the
/// same account, so a restarted module keeps its numbers. `None` when every account is taken.
pub fn account_for(name: &'static str) -> Option<AccountId> {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names[0] = Some("core");
    if let Some(i) = names.iter().position(|n| *n == Some(name)) {
        return Some(AccountId(i as u8));
    }
    let free = names.iter().position(|n| n.is_none())?;
    names[free] = Some(name);
    Some(AccountId(free as u8))
}

/// The refusal of [`MemoryAccount::try_reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// Bytes the growth would have needed.
    pub wanted: usize,
    /// Bytes still free in the budget.
    pub available: usize,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes wanted, {} left in the memory budget",
            self.wanted, self.available
        )
    }
}

impl std::error::Error for OverBudget {}

/// A module's view of its memory account.
#[derive(Clone, Debug)]
pub struct MemoryAccount {
    id: AccountId,
    budget: usize,
    refusals: Rc<Cell<u64>>,
    shed: Rc<Cell<bool>>,
}

impl MemoryAccount {
    /// An account with a budget in bytes.
    pub fn new(id: AccountId, budget: usize) -> Self {
        MemoryAccount {
            id,
            budget,
            refusals: Rc::default(),
            shed: Rc::default(),
        }
    }

    /// The allocator account behind it.
    pub fn id(&self) -> AccountId {
        self.id
    }

    /// The budget in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes allocated now.
    pub fn current(&self) -> usize {
        alloc::current_bytes(self.id)
    }

    /// Highest allocation so far.
    pub fn peak(&self) -> usize {
        alloc::peak_bytes(self.id)
    }

    /// Bytes left before the budget.
    pub fn available(&self) -> usize {
        self.budget.saturating_sub(self.current())
    }

    /// Whether `bytes` more would stay within the budget.
    pub fn fits(&self, bytes: usize) -> bool {
        bytes <= self.available()
    }

    /// Bytes that buffers may still take: buffers stop at the pressure line (90 % of the budget),
    /// leaving the rest for the module's short-lived allocations (events on their way, parsing).
    pub fn buffer_room(&self) -> usize {
        (self.budget / 1000 * PRESSURE_PER_MILLE).saturating_sub(self.current())
    }

    /// Grows `buf` by `additional` elements only if the new allocation stays under the pressure
    /// line. The check counts the whole new block, since growth allocates it before freeing the
    /// old one.
    pub fn try_reserve<T>(&self, buf: &mut Vec<T>, additional: usize) -> Result<(), OverBudget> {
        let needed = buf.len().saturating_add(additional);
        if needed <= buf.capacity() {
            return Ok(());
        }
        let wanted = needed.saturating_mul(std::mem::size_of::<T>().max(1));
        if wanted > self.buffer_room() {
            self.refusals.set(self.refusals.get() + 1);
            self.shed.set(true);
            return Err(OverBudget {
                wanted,
                available: self.available(),
            });
        }
        buf.try_reserve_exact(additional).map_err(|_| OverBudget {
            wanted,
            available: self.available(),
        })
    }

    /// Whether the module should shed work now: near its budget, or a growth was refused.
    pub fn should_shed(&self) -> bool {
        self.shed.get()
            || self.current().saturating_mul(1000) >= self.budget.saturating_mul(PRESSURE_PER_MILLE)
    }

    /// Growths refused so far.
    pub fn refusals(&self) -> u64 {
        self.refusals.get()
    }

    /// Called by the supervisor: updates the shed flag from the current usage and returns whether
    /// the account is under pressure.
    pub(crate) fn refresh_pressure(&self) -> bool {
        let per_mille = self.current().saturating_mul(1000) / self.budget.max(1);
        if per_mille >= PRESSURE_PER_MILLE {
            self.shed.set(true);
        } else if per_mille < RELIEF_PER_MILLE {
            self.shed.set(false);
        }
        self.shed.get()
    }
}

/// A future whose polls (and so whose allocations) are charged to one account.
pub struct Budgeted<'a, T> {
    id: AccountId,
    inner: Pin<Box<dyn Future<Output = T> + 'a>>,
}

impl<'a, T> Budgeted<'a, T> {
    /// Wraps `inner` so that it runs under `id`.
    pub fn new(id: AccountId, inner: Pin<Box<dyn Future<Output = T> + 'a>>) -> Self {
        Budgeted { id, inner }
    }
}

impl<T> Future for Budgeted<'_, T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let previous = alloc::set_active(self.id);
        let result = self.inner.as_mut().poll(cx);
        alloc::set_active(previous);
        result
    }
}

/// Runs `f` with `id` as the active account (for work done outside a task, e.g. building a module).
pub fn charged_to<R>(id: AccountId, f: impl FnOnce() -> R) -> R {
    let previous = alloc::set_active(id);
    let result = f();
    alloc::set_active(previous);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_inside_a_budgeted_future_are_charged_to_its_account() {
        let id = account_for("test-charged").unwrap();
        let before = alloc::current_bytes(id);
        let held = smol::block_on(Budgeted::new(id, Box::pin(async { vec![0u8; 10_000] })));
        assert!(alloc::current_bytes(id) >= before + 10_000);
        drop(held);
        assert_eq!(
            alloc::current_bytes(id),
            before,
            "freed outside the future, credited back"
        );
        assert!(alloc::peak_bytes(id) >= 10_000);
    }

    #[test]
    fn try_reserve_stops_buffers_at_the_pressure_line() {
        let id = account_for("test-reserve").unwrap();
        let account = MemoryAccount::new(id, 100_000);
        let mut buf: Vec<u8> = Vec::new();
        charged_to(id, || {
            assert!(account.try_reserve(&mut buf, 50_000).is_ok());
            let refused = account.try_reserve(&mut buf, 60_000).unwrap_err();
            assert!(refused.wanted > refused.available);
        });
        assert!(account.should_shed(), "a refusal tells the module to shed");
        assert_eq!(account.refusals(), 1);
        assert!(account.peak() <= account.budget());
    }

    #[test]
    fn the_same_name_gets_the_same_account() {
        assert_eq!(account_for("test-same"), account_for("test-same"));
        assert_ne!(account_for("test-same"), account_for("test-other"));
    }
}
