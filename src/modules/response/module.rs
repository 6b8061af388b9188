//! The response module's task: runs overdue reversals at start, then waits for an ordered
//! response, a tapped event for the local rules, the next reversal, or the stop — one at a time.

use super::config::ResponseConfig;
use super::engine::{Engine, Trigger};
use super::rules::Rules;
use super::safety::Guard;
use super::RequestReceiver;
use crate::pipeline::queue::now_ms;
use crate::pipeline::tap::TapReceiver;
use crate::runtime::{Module, ModuleContext, ModuleError, ModuleFuture};
use futures_lite::FutureExt;
use gatewatch_proto::EventBody;
use std::time::{Duration, Instant};

/// Longest sleep between two looks at the ledger (the wall clock may jump).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The response module.
pub struct ResponseModule {
    config: ResponseConfig,
    managers: Vec<String>,
    manager_port: u16,
    requests: Option<RequestReceiver>,
    tap: Option<TapReceiver>,
}

impl ResponseModule {
    /// A module with `config`, never acting on `managers`; ordered responses arrive on
    /// `requests`, the local rules' events on `tap`.
    pub fn new(
        config: ResponseConfig,
        managers: Vec<String>,
        manager_port: u16,
        requests: Option<RequestReceiver>,
        tap: Option<TapReceiver>,
    ) -> Self {
        ResponseModule {
            config,
            managers,
            manager_port,
            requests,
            tap,
        }
    }
}

impl Module for ResponseModule {
    fn name(&self) -> &'static str {
        "response"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(run(self, ctx))
    }
}

enum Wake {
    Request(super::ResponseRequest),
    Event(EventBody),
    Due,
    Stop,
}

async fn run(m: &ResponseModule, ctx: &ModuleContext) -> Result<(), ModuleError> {
    if let Some((key, reason)) = m.config.problems().into_iter().next() {
        return Err(ModuleError(format!("{key}: {reason}")));
    }
    let guard = Guard::new(&m.managers, m.manager_port, &m.config.allow_list);
    let mut engine = Engine::open(&m.config, guard, ctx.state_dir()).map_err(ModuleError)?;
    let mut rules = Rules::new(&m.config.rules).map_err(ModuleError)?;
    if m.config.dry_run {
        log::info!("response: dry run: actions are reported, not taken");
    }
    // Overdue reversals (the agent was down when they were due) run at once.
    engine.reverse_due(ctx).await?;
    while !ctx.stopping() {
        let sleep = engine.next_due_ms().map_or(MAX_SLEEP, |due| {
            Duration::from_millis(due.saturating_sub(now_ms())).min(MAX_SLEEP)
        });
        let timer = async {
            async_io::Timer::after(sleep).await;
            Wake::Due
        };
        let request = async {
            match m.requests.as_ref().map(|rx| rx.recv()) {
                Some(recv) => match recv.await {
                    Ok(r) => Wake::Request(r),
                    Err(_) => futures_lite::future::pending().await,
                },
                None => futures_lite::future::pending().await,
            }
        };
        let event = async {
            match m.tap.as_ref().map(|rx| rx.recv()) {
                Some(recv) => match recv.await {
                    Ok(e) => Wake::Event(e),
                    Err(_) => futures_lite::future::pending().await,
                },
                None => futures_lite::future::pending().await,
            }
        };
        let stop = async {
            ctx.shutdown().wait().await;
            Wake::Stop
        };
        match stop.or(timer).or(request).or(event).await {
            Wake::Stop => break,
            Wake::Due => engine.reverse_due(ctx).await?,
            Wake::Request(r) => {
                let trigger = Trigger {
                    command: r.command,
                    arguments: r.arguments,
                    alert: r.alert,
                    origin: "manager".into(),
                    timeout_secs: None,
                };
                engine.handle(trigger, ctx).await?;
            }
            Wake::Event(e) => {
                let mut firings = Vec::new();
                for entry in log_entries(e) {
                    firings.extend(rules.observe(&entry, Instant::now()));
                }
                for firing in firings {
                    let rule = rules.config(firing.rule);
                    let mut arguments = vec![firing.target.clone()];
                    arguments.extend(rule.arguments.iter().cloned());
                    let trigger = Trigger {
                        command: rule.response.clone(),
                        arguments,
                        alert: local_alert(&rule.name, &firing.target, &firing.text),
                        origin: format!("rule:{}", rule.name),
                        timeout_secs: rule.timeout_secs,
                    };
                    engine.handle(trigger, ctx).await?;
                }
            }
        }
    }
    Ok(())
}

/// The alert a local rule gives its response (what Wazuh's scripts read: `data.srcip`,
/// `full_log`, `rule.description`).
fn local_alert(rule: &str, target: &str, text: &str) -> String {
    use super::json::quoted;
    format!(
        "{{\"rule\":{{\"description\":{}}},\"data\":{{\"srcip\":{}}},\"full_log\":{}}}",
        quoted(rule),
        quoted(target),
        quoted(text)
    )
}

/// The events a rule looks at: a log batch as one `log.line` event per entry (rules count lines),
/// anything else as it is.
fn log_entries(event: gatewatch_proto::EventBody) -> Vec<gatewatch_proto::EventBody> {
    use gatewatch_proto::{EventBody, Payload};
    match event.payload {
        Payload::LogBatch(batch) => batch
            .into_events()
            .map(|log| EventBody {
                time_ms: event.time_ms,
                module: event.module.clone(),
                payload: Payload::Log(log),
            })
            .collect(),
        payload => vec![EventBody { payload, ..event }],
    }
}
