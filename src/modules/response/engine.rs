//! The response engine: turns a trigger into an action after the safety checks, records its
//! reversal in the ledger before acting, acts (or pretends, in dry-run mode), reports the result
//! as an event, and runs reversals when their time comes.

use super::action::{self, Action};
use super::builtin::Builtins;
use super::config::ResponseConfig;
use super::custom;
use super::ledger::{self, Ledger, Pending};
use super::safety::{self, Guard};
use crate::pipeline::queue::now_ms;
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::event::{ResponseEvent, ResponseOutcome, ResponsePhase};
use gatewatch_proto::Payload;
use std::path::PathBuf;
use std::time::Duration;

/// Something asking for a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Response name (a built-in, Wazuh's `<name><timeout>`, or `!script`).
    pub command: String,
    /// Extra arguments (the first one is the target when given).
    pub arguments: Vec<String>,
    /// The alert, as JSON text (or plain text for local rules' matches).
    pub alert: String,
    /// `manager` or `rule:<name>`.
    pub origin: String,
    /// Seconds before the reversal; `None`: the name's suffix, else the configured default.
    pub timeout_secs: Option<u64>,
}

/// The engine and its state.
pub struct Engine {
    config: ResponseConfig,
    guard: Guard,
    builtins: Builtins,
    ledger: Ledger,
    ledger_path: PathBuf,
}

/// An action to report.
struct Report<'a> {
    id: &'a str,
    action: Option<&'a Action>,
    command: &'a str,
    phase: ResponsePhase,
    trigger: &'a str,
    timeout_secs: u64,
}

impl Engine {
    /// Opens the ledger in `state_dir`.
    pub fn open(
        config: &ResponseConfig,
        guard: Guard,
        state_dir: &std::path::Path,
    ) -> Result<Engine, String> {
        let ledger_path = ledger::path_in(state_dir);
        Ok(Engine {
            config: config.clone(),
            guard,
            builtins: Builtins::new(config, state_dir),
            ledger: Ledger::load(&ledger_path)?,
            ledger_path,
        })
    }

    /// When the next reversal is due (ms since the epoch).
    pub fn next_due_ms(&self) -> Option<u64> {
        self.ledger.next_due()
    }

    /// Handles one trigger to its end (action and event).
    pub async fn handle(&mut self, t: Trigger, ctx: &ModuleContext) -> Result<(), ModuleError> {
        let (name, suffix) = match t.command.starts_with('!') {
            true => (t.command.as_str(), None),
            false => action::split_timeout(&t.command),
        };
        let mut report = Report {
            id: "",
            action: None,
            command: name,
            phase: ResponsePhase::Add,
            trigger: &t.origin,
            timeout_secs: 0,
        };
        let act = match action::resolve(name, &t.arguments, &t.alert) {
            Ok(act) => act,
            Err(reason) => {
                return self
                    .send(ctx, &report, ResponseOutcome::Refused { reason })
                    .await
            }
        };
        report.action = Some(&act);
        if let Err(reason) = self.check(&act) {
            return self
                .send(ctx, &report, ResponseOutcome::Refused { reason })
                .await;
        }
        let now = now_ms();
        let id = self.ledger.new_id(now);
        report.id = &id;
        let key = act.key();
        let mut timeout = 0;
        if act.reversible() {
            let base = t
                .timeout_secs
                .or(suffix)
                .unwrap_or(self.config.default_timeout_secs);
            timeout = base.saturating_mul(u64::from(self.multiplier(&key, now)));
        }
        report.timeout_secs = timeout;
        if timeout > 0 && !matches!(act, Action::Custom { .. }) {
            if let Some(p) = self.ledger.pending_mut(&key) {
                p.due_ms = p.due_ms.max(now + timeout * 1000);
                let (existing, dry) = (p.id.clone(), p.dry_run);
                self.save()?;
                if !dry && matches!(act, Action::FirewallDrop { .. }) {
                    // The kernel's own timeout on the element is renewed too.
                    let _ = self.builtins.apply(&existing, &act, timeout).await;
                }
                let report = Report {
                    id: &existing,
                    ..report
                };
                return self.send(ctx, &report, ResponseOutcome::Extended).await;
            }
        }
        let dry_run = self.config.dry_run;
        if timeout > 0 {
            if self.ledger.pending.len() >= ledger::MAX_PENDING {
                let reason = format!("{} reversals already pending", ledger::MAX_PENDING);
                return self
                    .send(ctx, &report, ResponseOutcome::Refused { reason })
                    .await;
            }
            // Recorded before acting: a crash right after the action still finds its reversal.
            self.ledger.pending.push(Pending {
                id: id.clone(),
                action: act.clone(),
                due_ms: now + timeout * 1000,
                timeout_secs: timeout,
                dry_run,
                keys: Vec::new(),
            });
            if let Err(e) = self.ledger.save(&self.ledger_path) {
                self.ledger.forget(&id);
                let error = format!("not acted on: cannot record its reversal: {e}");
                return self
                    .send(ctx, &report, ResponseOutcome::Failed { error })
                    .await;
            }
        }
        let outcome = if dry_run {
            ResponseOutcome::DryRun
        } else {
            match &act {
                Action::Custom {
                    name,
                    arguments,
                    alert,
                } => self.custom_add(&id, name, arguments, alert).await,
                builtin => match self.builtins.apply(&id, builtin, timeout).await {
                    Ok(()) => ResponseOutcome::Done,
                    Err(e) => match e.strip_prefix("refused: ") {
                        Some(reason) => ResponseOutcome::Refused {
                            reason: reason.into(),
                        },
                        None => ResponseOutcome::Failed { error: e },
                    },
                },
            }
        };
        if !matches!(outcome, ResponseOutcome::Done | ResponseOutcome::DryRun) {
            self.ledger.forget(&id);
            self.save()?;
        }
        self.send(ctx, &report, outcome).await
    }

    /// Safety checks that do not need the action to run.
    fn check(&self, act: &Action) -> Result<(), String> {
        match act {
            Action::FirewallDrop { ip } | Action::HostDeny { ip } | Action::NullRoute { ip } => {
                self.guard.check_ip(*ip)
            }
            Action::Kill { target } => match target.parse::<i32>() {
                Ok(pid) => safety::check_kill(pid),
                Err(_) => Ok(()),
            },
            Action::DisableAccount { user } => safety::check_account(user),
            Action::Custom { name, .. } => {
                custom::locate(self.config.custom_dir.as_deref(), name).map(drop)
            }
            Action::Quarantine { .. } | Action::Restore { .. } => Ok(()),
        }
    }

    /// The timeout multiplier for the `earlier`-th repeated action on `key`.
    fn multiplier(&mut self, key: &str, now: u64) -> u32 {
        let memory = self.config.offender_memory_secs.saturating_mul(1000);
        let earlier = self.ledger.offence(key, now, memory) as usize;
        let list = &self.config.repeated_offenders;
        match (earlier, list.last()) {
            (0, _) | (_, None) => 1,
            (n, Some(last)) => *list.get(n - 1).unwrap_or(last),
        }
    }

    /// Runs a custom response's `add`, with the `check_keys` exchange.
    async fn custom_add(
        &mut self,
        id: &str,
        name: &str,
        arguments: &[String],
        alert: &str,
    ) -> ResponseOutcome {
        let program = match custom::locate(self.config.custom_dir.as_deref(), name) {
            Ok(p) => p,
            Err(reason) => return ResponseOutcome::Refused { reason },
        };
        let first = custom::message("add", name, arguments, alert);
        let in_effect = |p: &Pending, keys: &[String]| {
            p.id != id
                && p.keys == keys
                && matches!(&p.action, Action::Custom { name: n, .. } if n == name)
        };
        let pending = self.ledger.pending.clone();
        let mut proceed = |keys: &[String]| !pending.iter().any(|p| in_effect(p, keys));
        let timeout = Duration::from_secs(self.config.run_timeout_secs.max(1));
        let exchange = match custom::run(&program, &first, &mut proceed, timeout).await {
            Ok(exchange) => exchange,
            Err(error) => return ResponseOutcome::Failed { error },
        };
        let keys = exchange.keys.unwrap_or_default();
        let due = self
            .ledger
            .pending
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.due_ms);
        if exchange.aborted {
            // Wazuh's rule: the earlier entry with the same keys stays, its timer refreshed.
            if let Some(earlier) = self.ledger.pending.iter_mut().find(|p| in_effect(p, &keys)) {
                earlier.due_ms = earlier.due_ms.max(due.unwrap_or(0));
            }
            self.ledger.forget(id);
            let _ = self.ledger.save(&self.ledger_path);
            return ResponseOutcome::Extended;
        }
        if let Some(p) = self.ledger.pending.iter_mut().find(|p| p.id == id) {
            p.keys = keys;
            let _ = self.ledger.save(&self.ledger_path);
        }
        ResponseOutcome::Done
    }

    /// Runs every reversal whose time has come (at start: every overdue one).
    pub async fn reverse_due(&mut self, ctx: &ModuleContext) -> Result<(), ModuleError> {
        let due = self.ledger.take_due(now_ms());
        if due.is_empty() {
            return Ok(());
        }
        for p in &due {
            let outcome = if p.dry_run {
                ResponseOutcome::DryRun
            } else {
                let result = match &p.action {
                    Action::Custom {
                        name,
                        arguments,
                        alert,
                    } => self.custom_delete(name, arguments, alert).await,
                    other => self.builtins.revert(other).await,
                };
                match result {
                    Ok(()) => ResponseOutcome::Done,
                    Err(error) => ResponseOutcome::Failed { error },
                }
            };
            let command = p.action.command();
            let report = Report {
                id: &p.id,
                action: Some(&p.action),
                command: &command,
                phase: ResponsePhase::Delete,
                trigger: "timeout",
                timeout_secs: p.timeout_secs,
            };
            // Saved after each one: a crash re-runs only the reversals not yet reported.
            self.save()?;
            self.send(ctx, &report, outcome).await?;
        }
        Ok(())
    }

    async fn custom_delete(
        &self,
        name: &str,
        arguments: &[String],
        alert: &str,
    ) -> Result<(), String> {
        let program = custom::locate(self.config.custom_dir.as_deref(), name)?;
        let first = custom::message("delete", name, arguments, alert);
        let timeout = Duration::from_secs(self.config.run_timeout_secs.max(1));
        custom::run(&program, &first, &mut |_| true, timeout)
            .await
            .map(drop)
    }

    fn save(&self) -> Result<(), ModuleError> {
        self.ledger.save(&self.ledger_path).map_err(ModuleError)
    }

    async fn send(
        &self,
        ctx: &ModuleContext,
        r: &Report<'_>,
        outcome: ResponseOutcome,
    ) -> Result<(), ModuleError> {
        let target = r.action.map(Action::target).unwrap_or_default();
        match &outcome {
            ResponseOutcome::Failed { error: why } | ResponseOutcome::Refused { reason: why } => {
                log::warn!(
                    "response {} {target} ({:?}, {}): {}: {why}",
                    r.command,
                    r.phase,
                    r.trigger,
                    outcome.kind()
                )
            }
            _ => log::info!(
                "response {} {target} ({:?}, {}): {}",
                r.command,
                r.phase,
                r.trigger,
                outcome.kind()
            ),
        }
        let event = ResponseEvent {
            id: r.id.to_string(),
            command: r.command.to_string(),
            target,
            phase: r.phase,
            trigger: r.trigger.to_string(),
            timeout_secs: r.timeout_secs,
            outcome,
        };
        ctx.send(Payload::Response(Box::new(event))).await
    }
}
