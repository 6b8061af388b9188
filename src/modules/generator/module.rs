//! The generator's task: numbered events with their cursor, and the budget-exercising cache.

use super::GeneratorConfig;
use crate::runtime::{Module, ModuleContext, ModuleError, ModuleFuture};
use gatewatch_proto::{AgentEvent, GeneratorEvent, Payload};
use std::time::{Duration, Instant};

/// Events sent between two yields when running unpaced.
const YIELD_EVERY: u64 = 64;

/// The generator module.
pub struct Generator {
    config: GeneratorConfig,
    hoard: Vec<u8>,
}

impl Generator {
    /// A generator with the given settings.
    pub fn new(config: GeneratorConfig) -> Self {
        Generator {
            config,
            hoard: Vec::new(),
        }
    }

    async fn run_inner(&mut self, ctx: &ModuleContext) -> Result<(), ModuleError> {
        let stream = self.config.stream.clone();
        let mut n = ctx
            .cursor(&stream)
            .map(|c| decode_position(&c))
            .transpose()?
            .unwrap_or(0);
        let filler = "x".repeat(self.config.body_bytes);
        let period = match self.config.rate {
            0 => None,
            rate => Some(Duration::from_secs(1) / rate),
        };
        let mut next_due = Instant::now();
        while !ctx.stopping() {
            if self.config.count > 0 && n >= self.config.count {
                return Ok(());
            }
            if let Some(period) = period {
                let now = Instant::now();
                if next_due > now && !ctx.sleep(next_due - now).await {
                    break;
                }
                next_due = next_due.max(now - period) + period;
            } else if n % YIELD_EVERY == 0 {
                futures_lite::future::yield_now().await;
            }
            self.hoard_body(ctx, &filler).await?;
            let event = GeneratorEvent {
                stream: stream.clone(),
                n,
                body: filler.clone(),
            };
            ctx.send_with_cursor(
                Payload::Generator(event),
                &stream,
                (n + 1).to_le_bytes().to_vec(),
            )
            .await?;
            n += 1;
        }
        Ok(())
    }

    /// Keeps a copy of the body in the cache, within the budget; sheds the cache when refused.
    async fn hoard_body(&mut self, ctx: &ModuleContext, body: &str) -> Result<(), ModuleError> {
        if self.config.hoard_bytes == 0 || self.hoard.len() >= self.config.hoard_bytes {
            return Ok(());
        }
        let memory = ctx.memory();
        // Grow by doubling, but never past what the budget allows.
        let wanted = body.len().max(self.hoard.len());
        let grown = memory
            .try_reserve(&mut self.hoard, wanted)
            .or_else(|_| memory.try_reserve(&mut self.hoard, body.len()));
        if grown.is_err() || memory.should_shed() {
            let bytes = self.hoard.capacity() as u64;
            self.hoard = Vec::new();
            let shed = AgentEvent::Shed {
                module: ctx.name().to_string(),
                what: "cache of recent bodies".into(),
                bytes,
            };
            ctx.send(Payload::Agent(shed)).await?;
            return Ok(());
        }
        self.hoard.extend_from_slice(body.as_bytes());
        Ok(())
    }
}

fn decode_position(bytes: &[u8]) -> Result<u64, ModuleError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| ModuleError::from("generator cursor is not 8 bytes"))?;
    Ok(u64::from_le_bytes(array))
}

impl Module for Generator {
    fn name(&self) -> &'static str {
        "generator"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(self.run_inner(ctx))
    }
}
