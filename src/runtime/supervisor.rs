//! The supervisor: runs each module under its memory account, restarts failed modules with
//! back-off (reporting each failure as an event), and watches budgets.

use super::budget::{Budgeted, MemoryAccount};
use super::module::{Module, ModuleContext};
use super::Shutdown;
use crate::pipeline::EventSender;
use gatewatch_proto::{AgentEvent, Payload};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// First restart delay; doubled on each consecutive failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest restart delay.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A module that ran this long before failing starts its back-off again from the first delay.
const HEALTHY_RUN: Duration = Duration::from_secs(600);
/// How often budgets are checked.
const BUDGET_CHECK: Duration = Duration::from_secs(1);

/// What a module is doing, for `gatewatch status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleState {
    Running,
    /// Waiting to be restarted after a failure.
    Backoff,
    /// Returned without error: nothing more to do.
    Finished,
    Stopped,
}

impl ModuleState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleState::Running => "running",
            ModuleState::Backoff => "backoff",
            ModuleState::Finished => "finished",
            ModuleState::Stopped => "stopped",
        }
    }
}

/// Live status of one module.
pub struct ModuleStatus {
    /// Module name.
    pub name: &'static str,
    /// Its memory account.
    pub memory: MemoryAccount,
    state: Cell<ModuleState>,
    failures: Cell<u32>,
    pressured: Cell<bool>,
}

impl ModuleStatus {
    /// Status of a module that is about to run.
    pub fn new(name: &'static str, memory: MemoryAccount) -> Rc<Self> {
        Rc::new(ModuleStatus {
            name,
            memory,
            state: Cell::new(ModuleState::Running),
            failures: Cell::new(0),
            pressured: Cell::new(false),
        })
    }

    /// Current state.
    pub fn state(&self) -> ModuleState {
        self.state.get()
    }

    /// Failures so far.
    pub fn failures(&self) -> u32 {
        self.failures.get()
    }
}

/// The delay before restart number `failures` (1-based).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF)
}

/// Runs `module` until the agent stops or the module finishes, restarting it after failures.
pub async fn supervise(
    mut module: Box<dyn Module>,
    ctx: ModuleContext,
    status: Rc<ModuleStatus>,
    agent: EventSender,
) {
    let account = ctx.memory().id();
    let mut consecutive = 0u32;
    loop {
        if ctx.stopping() {
            break;
        }
        status.state.set(ModuleState::Running);
        let started = Instant::now();
        let result = Budgeted::new(account, module.run(&ctx)).await;
        if ctx.stopping() {
            break;
        }
        match result {
            Ok(()) => {
                status.state.set(ModuleState::Finished);
                return;
            }
            Err(error) => {
                if started.elapsed() >= HEALTHY_RUN {
                    consecutive = 0;
                }
                consecutive += 1;
                status.failures.set(status.failures.get() + 1);
                let delay = backoff(consecutive);
                log::warn!(
                    "module {} failed: {error}; restarting in {:?}",
                    status.name,
                    delay
                );
                let event = AgentEvent::ModuleFailed {
                    module: status.name.to_string(),
                    error: error.0,
                    failures: status.failures.get(),
                    restart_in_ms: delay.as_millis() as u64,
                };
                // The agent's own sender waits for room: a failure report is never lost.
                let _ = agent.send(Payload::Agent(event)).await;
                status.state.set(ModuleState::Backoff);
                if !ctx.sleep(delay).await {
                    break;
                }
            }
        }
    }
    status.state.set(ModuleState::Stopped);
}

/// Checks every module's usage once a second; a module that crosses its pressure threshold is
/// told to shed (see [`MemoryAccount::should_shed`]) and one `agent.budget_pressure` event is sent
/// per episode.
pub async fn watch_budgets(modules: Vec<Rc<ModuleStatus>>, agent: EventSender, shutdown: Shutdown) {
    while shutdown.sleep(BUDGET_CHECK).await {
        for m in &modules {
            let pressured = m.memory.refresh_pressure();
            if pressured && !m.pressured.get() {
                log::warn!(
                    "module {} is near its memory budget ({} of {} bytes); it sheds work",
                    m.name,
                    m.memory.current(),
                    m.memory.budget()
                );
                let event = AgentEvent::BudgetPressure {
                    module: m.name.to_string(),
                    current_bytes: m.memory.current() as u64,
                    peak_bytes: m.memory.peak() as u64,
                    budget_bytes: m.memory.budget() as u64,
                };
                let _ = agent.send(Payload::Agent(event)).await;
            }
            m.pressured.set(pressured);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::event_queue;
    use crate::runtime::budget::account_for;
    use crate::runtime::{ModuleError, ModuleFuture};

    /// Fails `failures` times, then finishes.
    struct Flaky {
        failures: u32,
    }

    impl Module for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn budget_bytes(&self) -> usize {
            64 * 1024
        }
        fn run<'a>(&'a mut self, _ctx: &'a ModuleContext) -> ModuleFuture<'a> {
            Box::pin(async move {
                if self.failures == 0 {
                    return Ok(());
                }
                self.failures -= 1;
                Err(ModuleError::from("disk on fire"))
            })
        }
    }

    #[test]
    fn failed_module_is_restarted_with_backoff_and_reported() {
        let (tx, rx) = event_queue(16);
        let account = account_for("flaky").unwrap();
        let memory = MemoryAccount::new(account, 64 * 1024);
        let shutdown = Shutdown::new();
        let ctx = ModuleContext::new(
            EventSender::new("flaky", tx.clone()),
            memory.clone(),
            std::env::temp_dir(),
            shutdown,
            Rc::new(|_: &str| None),
        );
        let status = ModuleStatus::new("flaky", memory);
        let started = Instant::now();
        smol::block_on(supervise(
            Box::new(Flaky { failures: 2 }),
            ctx,
            status.clone(),
            EventSender::new("agent", tx),
        ));
        assert_eq!(status.state(), ModuleState::Finished);
        assert_eq!(status.failures(), 2);
        assert!(
            started.elapsed() >= backoff(1) + backoff(2),
            "waited between restarts"
        );
        let reports: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(reports.len(), 2, "one event per failure");
        match &reports[1].body.payload {
            Payload::Agent(AgentEvent::ModuleFailed {
                module,
                error,
                failures,
                restart_in_ms,
            }) => {
                assert_eq!(
                    (module.as_str(), error.as_str(), *failures, *restart_in_ms),
                    ("flaky", "disk on fire", 2, 2000)
                );
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
