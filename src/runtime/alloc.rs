//! The counting global allocator: every heap byte is charged to a memory account.
//!
//! The executor sets the *active account* while it polls a module's task (see
//! [`super::budget::Budgeted`]); each allocation records that account in a small header in front of
//! the block, so the bytes are credited back to the same account when freed, whoever frees them.
//! Account 0 (`core`) holds everything outside modules: the pipeline, the link, other threads.
//!
//! This file must never allocate, lock or panic inside the allocator paths.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Number of accounts (account 0 is `core`). An agent uses one per module; the unit tests, which
/// share one process, use one per scenario, and need the room.
pub const MAX_ACCOUNTS: usize = 64;

/// Bytes in front of each block; also the minimum alignment of the underlying block.
const HEADER: usize = 16;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicUsize = AtomicUsize::new(0);
static CURRENT: [AtomicUsize; MAX_ACCOUNTS] = [ZERO; MAX_ACCOUNTS];
static PEAK: [AtomicUsize; MAX_ACCOUNTS] = [ZERO; MAX_ACCOUNTS];
static ALLOCATIONS: [AtomicUsize; MAX_ACCOUNTS] = [ZERO; MAX_ACCOUNTS];

thread_local! {
    static ACTIVE: Cell<u8> = const { Cell::new(0) };
}

/// The allocator. Installed as `#[global_allocator]` by the agent binary and its tests.
pub struct CountingAllocator;

/// Identifies a memory account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountId(pub(crate) u8);

impl AccountId {
    /// The `core` account: everything not attributed to a module.
    pub const CORE: AccountId = AccountId(0);

    /// Index of the account (0..MAX_ACCOUNTS).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Bytes currently allocated by an account.
pub fn current_bytes(id: AccountId) -> usize {
    CURRENT[id.index()].load(Ordering::Relaxed)
}

/// Highest `current_bytes` the account ever reached.
pub fn peak_bytes(id: AccountId) -> usize {
    PEAK[id.index()].load(Ordering::Relaxed)
}

/// Allocations made by an account (a count, not bytes).
pub fn allocation_count(id: AccountId) -> usize {
    ALLOCATIONS[id.index()].load(Ordering::Relaxed)
}

/// Resets the peak of an account to its current value (when an account is reused).
pub fn reset_peak(id: AccountId) {
    PEAK[id.index()].store(current_bytes(id), Ordering::Relaxed);
}

/// Makes `id` the active account on this thread; returns the previous one.
pub fn set_active(id: AccountId) -> AccountId {
    AccountId(ACTIVE.with(|a| a.replace(id.0)))
}

/// Whether this process uses the counting allocator (false in binaries that do not install it).
pub fn is_installed() -> bool {
    let before = allocation_count(active());
    let probe = std::hint::black_box(Box::new(0u64));
    drop(probe);
    allocation_count(active()) != before
}

fn active() -> AccountId {
    AccountId(ACTIVE.with(|a| a.get()))
}

fn charge(slot: u8, bytes: usize) {
    let i = slot as usize % MAX_ACCOUNTS;
    let now = CURRENT[i].fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK[i].fetch_max(now, Ordering::Relaxed);
    ALLOCATIONS[i].fetch_add(1, Ordering::Relaxed);
}

fn credit(slot: u8, bytes: usize) {
    CURRENT[slot as usize % MAX_ACCOUNTS].fetch_sub(bytes, Ordering::Relaxed);
}

/// Layout of the real block: a header of `max(align, HEADER)` bytes, then the caller's bytes.
fn outer(layout: Layout) -> Option<(Layout, usize)> {
    let offset = layout.align().max(HEADER);
    let size = layout.size().checked_add(offset)?;
    Layout::from_size_align(size, offset)
        .ok()
        .map(|l| (l, offset))
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.alloc_with(layout, |l| unsafe { System.alloc(l) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.alloc_with(layout, |l| unsafe { System.alloc_zeroed(l) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((outer_layout, offset)) = outer(layout) else {
            return;
        };
        // SAFETY: `ptr` came from `alloc_with`, which placed the account byte just before it.
        unsafe {
            let slot = *ptr.sub(1);
            credit(slot, layout.size());
            System.dealloc(ptr.sub(offset), outer_layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some((outer_layout, offset)) = outer(layout) else {
            return std::ptr::null_mut();
        };
        let Some(new_outer) = new_size.checked_add(offset) else {
            return std::ptr::null_mut();
        };
        // SAFETY: same block as allocated by `alloc_with`; the header keeps its offset and the
        // account byte moves with the block.
        unsafe {
            let slot = *ptr.sub(1);
            let base = System.realloc(ptr.sub(offset), outer_layout, new_outer);
            if base.is_null() {
                return base;
            }
            credit(slot, layout.size());
            charge(slot, new_size);
            base.add(offset)
        }
    }
}

impl CountingAllocator {
    fn alloc_with(&self, layout: Layout, raw: impl FnOnce(Layout) -> *mut u8) -> *mut u8 {
        let Some((outer_layout, offset)) = outer(layout) else {
            return std::ptr::null_mut();
        };
        let base = raw(outer_layout);
        if base.is_null() {
            return base;
        }
        let slot = active().0;
        charge(slot, layout.size());
        // SAFETY: the block is `offset + size` bytes; the user part starts at `offset` and the
        // account byte is the last header byte.
        unsafe {
            let user = base.add(offset);
            *user.sub(1) = slot;
            user
        }
    }
}
