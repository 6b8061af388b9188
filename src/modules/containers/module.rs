//! The containers task: connect to the engine, negotiate the API version, read the event stream,
//! take inventories on the interval, and reconnect with back-off when the engine goes away.

use super::api;
use super::framer::{Fed, Framer};
use super::http::Stream;
use super::watch::{Watch, CURSOR};
use super::ContainersConfig;
use crate::link::Backoff;
use crate::runtime::{Module, ModuleContext, ModuleError, ModuleFuture};
use futures_lite::FutureExt;
use gatewatch_proto::containers::ContainerEvent;
use gatewatch_proto::Payload;
use std::time::{Duration, Instant};

/// Only the object types the module reports (`{"type":["container","image","network","volume"]}`).
const TYPE_FILTER: &str =
    "%7B%22type%22%3A%5B%22container%22%2C%22image%22%2C%22network%22%2C%22volume%22%5D%7D";

/// The containers module.
pub struct Containers {
    config: ContainersConfig,
}

impl Containers {
    /// A containers module with the given settings.
    pub fn new(config: ContainersConfig) -> Self {
        Containers { config }
    }
}

impl Module for Containers {
    fn name(&self) -> &'static str {
        "containers"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(run(self.config.clone(), ctx))
    }
}

/// How a session with the engine ended.
enum Ended {
    /// The agent is stopping.
    Stopped,
    /// The engine went away (or never answered): why, and whether a session had been set up.
    Lost { error: String, connected: bool },
}

/// What woke the session up.
enum Wake {
    Data(Result<bool, String>),
    Inventory,
    Stop,
}

async fn run(config: ContainersConfig, ctx: &ModuleContext) -> Result<(), ModuleError> {
    if let Some((key, reason)) = config.problems().into_iter().next() {
        return Err(ModuleError(format!("{key}: {reason}")));
    }
    let mut framer = Framer::new(config.max_event_bytes, ctx.memory())
        .map_err(|e| ModuleError(format!("containers: event buffer: {e}")))?;
    let mut backoff = Backoff::new(
        Duration::from_millis(config.reconnect_min_ms),
        Duration::from_millis(config.reconnect_max_ms),
    );
    let mut watch = Watch::new(config, ctx.cursor(CURSOR));
    // Reported once per outage, not once per attempt.
    let mut outage_reported = false;
    loop {
        match session(&mut watch, &mut framer, ctx).await? {
            Ended::Stopped => return Ok(()),
            Ended::Lost { error, connected } => {
                if connected {
                    backoff.reset();
                    outage_reported = false;
                }
                let delay = backoff.next_delay();
                if !outage_reported {
                    log::warn!("containers: {error}; retrying");
                    let lost = ContainerEvent::EngineLost {
                        error,
                        retry_in_ms: delay.as_millis() as u64,
                    };
                    ctx.send(Payload::Container(lost)).await?;
                    outage_reported = true;
                }
                if !ctx.sleep(delay).await {
                    return Ok(());
                }
            }
        }
    }
}

/// One connection to the engine: version, event stream, inventories, until it ends.
async fn session(
    watch: &mut Watch,
    framer: &mut Framer,
    ctx: &ModuleContext,
) -> Result<Ended, ModuleError> {
    let lost = |error: String| Ended::Lost {
        error,
        connected: false,
    };
    let version: api::Version = match watch.get("/version", ctx).await {
        Ok(body) => match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return Ok(lost(format!("GET /version: {e}"))),
        },
        Err(error) => return Ok(lost(error)),
    };
    let (major, minor) = match api::negotiate(&version.api_version) {
        Ok(v) => v,
        Err(error) => return Ok(lost(error)),
    };
    watch.prefix = format!("/v{major}.{minor}");
    let mut target = format!("{}/events?filters={TYPE_FILTER}", watch.prefix);
    if let Some(since) = watch.dedupe.since() {
        target.push_str("&since=");
        target.push_str(&since);
    }
    let mut stream = match Stream::open(&watch.config.socket, &target).await {
        Ok((200, stream)) => stream,
        Ok((status, _)) => return Ok(lost(format!("GET {target}: status {status}"))),
        Err(error) => return Ok(lost(error.to_string())),
    };
    let connected = ContainerEvent::EngineConnected {
        engine_version: api::cut(version.version, 64),
        api_version: format!("{major}.{minor}"),
    };
    ctx.send(Payload::Container(connected)).await?;
    framer.reset();
    let interval = Duration::from_secs(watch.config.inventory_interval_secs);
    let mut next_inventory = Instant::now();
    loop {
        let data = async { Wake::Data(stream.fill().await.map_err(|e| e.to_string())) };
        let inventory = async {
            if interval.is_zero() {
                std::future::pending::<()>().await;
            }
            async_io::Timer::at(next_inventory).await;
            Wake::Inventory
        };
        let stop = async {
            ctx.shutdown().wait().await;
            Wake::Stop
        };
        match stop.or(data).or(inventory).await {
            Wake::Stop => return Ok(Ended::Stopped),
            Wake::Inventory => {
                inventory_round(watch, ctx).await?;
                next_inventory = Instant::now() + interval;
            }
            Wake::Data(Ok(true)) => {
                let stream_error = drain(&mut stream, watch, framer, ctx).await?;
                if let Some(error) = stream_error {
                    return Ok(Ended::Lost {
                        error,
                        connected: true,
                    });
                }
            }
            Wake::Data(Ok(false)) => {
                return Ok(Ended::Lost {
                    error: "the engine closed the event stream".into(),
                    connected: true,
                })
            }
            Wake::Data(Err(error)) => {
                return Ok(Ended::Lost {
                    error,
                    connected: true,
                })
            }
        }
    }
}

/// Handles every complete event among the bytes read; returns a stream error, if any.
async fn drain(
    stream: &mut Stream,
    watch: &mut Watch,
    framer: &mut Framer,
    ctx: &ModuleContext,
) -> Result<Option<String>, ModuleError> {
    loop {
        let data = match stream.decoded() {
            Ok(Some(data)) => data,
            Ok(None) => return Ok(None),
            Err(error) => return Ok(Some(error.to_string())),
        };
        let mut rest = data;
        while !rest.is_empty() {
            let (used, fed) = framer.feed(rest);
            rest = &rest[used..];
            match fed {
                Fed::NeedMore => {}
                Fed::Line => {
                    watch.handle_line(framer.line(), ctx).await?;
                    framer.clear();
                }
                Fed::Oversized(bytes) => {
                    log::warn!(
                        "containers: skipped an event of {bytes} bytes (max_event_bytes {})",
                        framer.max()
                    );
                    let rejected = ContainerEvent::EventRejected {
                        bytes,
                        limit: framer.max() as u64,
                        rejected_total: framer.rejected(),
                    };
                    ctx.send(Payload::Container(rejected)).await?;
                }
            }
        }
    }
}

/// Lists the running containers and reports them.
async fn inventory_round(watch: &Watch, ctx: &ModuleContext) -> Result<(), ModuleError> {
    let target = format!("{}/containers/json", watch.prefix);
    let listed = watch
        .get(&target, ctx)
        .await
        .and_then(|body| api::parse_list(&body, watch.config.inventory_max));
    match listed {
        Ok((containers, omitted)) => {
            let event = ContainerEvent::Inventory {
                containers,
                omitted,
            };
            ctx.send(Payload::Container(event)).await
        }
        Err(error) => {
            // The stream will tell if the engine is gone; a failed list waits for the next round.
            log::warn!("containers: inventory: {error}");
            Ok(())
        }
    }
}
