//! The command module's task: a schedule of entries, each run on its interval (and at start),
//! plus the runs the manager pushes; one run at a time, each bounded by its timeout and cap.

use super::config::{CommandConfig, CommandEntry, OutputMode};
use super::remote::{RemoteReceiver, RemoteRun};
use crate::runtime::child::{self, RunOutput};
use crate::runtime::hash::sha256_file;
use crate::runtime::{Module, ModuleContext, ModuleError, ModuleFuture};
use futures_lite::FutureExt;
use gatewatch_proto::{CommandEvent, LogText, Payload};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Output kept from a pushed command.
const REMOTE_OUTPUT_CAP: usize = 64 * 1024;

/// The command module.
pub struct CommandModule {
    config: CommandConfig,
    remote: Option<RemoteReceiver>,
}

impl CommandModule {
    /// A module running `config`'s entries, and the pushed commands arriving on `remote`.
    pub fn new(config: CommandConfig, remote: Option<RemoteReceiver>) -> Self {
        CommandModule { config, remote }
    }
}

impl Module for CommandModule {
    fn name(&self) -> &'static str {
        "command"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(run(&self.config, self.remote.as_ref(), ctx))
    }
}

/// What woke the schedule.
enum Wake {
    Due,
    Remote(RemoteRun),
    Stop,
}

async fn run(
    config: &CommandConfig,
    remote: Option<&RemoteReceiver>,
    ctx: &ModuleContext,
) -> Result<(), ModuleError> {
    if let Some((key, reason)) = config.problems().into_iter().next() {
        return Err(ModuleError(format!("{key}: {reason}")));
    }
    let start = Instant::now();
    let mut due: Vec<Instant> = config
        .entries
        .iter()
        .map(|e| {
            if e.run_on_start {
                start
            } else {
                start + Duration::from_secs(e.interval_secs)
            }
        })
        .collect();
    while !ctx.stopping() {
        let next = due.iter().min().copied();
        let timer = async {
            match next {
                Some(at) => {
                    async_io::Timer::at(at).await;
                }
                None => futures_lite::future::pending::<()>().await,
            }
            Wake::Due
        };
        let pushed = async {
            match remote {
                Some(rx) => match rx.recv().await {
                    Ok(run) => Wake::Remote(run),
                    Err(_) => futures_lite::future::pending().await,
                },
                None => futures_lite::future::pending().await,
            }
        };
        let stop = async {
            ctx.shutdown().wait().await;
            Wake::Stop
        };
        match timer.or(pushed).or(stop).await {
            Wake::Stop => break,
            Wake::Remote(run) => {
                let argv = run.argv.iter().map(OsString::from).collect::<Vec<_>>();
                let timeout = Duration::from_secs(u64::from(run.timeout_secs.max(1)));
                let result = execute(&argv, timeout, REMOTE_OUTPUT_CAP, ctx).await;
                report(ctx, &run.name, OutputMode::Lines, false, result).await?;
            }
            Wake::Due => {
                let now = Instant::now();
                for (i, entry) in config.entries.iter().enumerate() {
                    if due[i] > now || ctx.stopping() {
                        continue;
                    }
                    run_entry(entry, ctx).await?;
                    due[i] = Instant::now() + Duration::from_secs(entry.interval_secs);
                }
            }
        }
    }
    Ok(())
}

/// Why a command did not run.
struct Refusal(String);

async fn run_entry(entry: &CommandEntry, ctx: &ModuleContext) -> Result<(), ModuleError> {
    let argv: Vec<OsString> = entry.argv().into_iter().map(OsString::from).collect();
    let result = match verify(&argv, entry.sha256.as_deref()).await {
        Ok(()) => {
            let timeout = Duration::from_secs(entry.timeout_secs);
            execute(&argv, timeout, entry.max_output_bytes, ctx).await
        }
        Err(refusal) => Err(refusal),
    };
    report(ctx, &entry.name, entry.output, entry.ignore_output, result).await
}

async fn execute(
    argv: &[OsString],
    timeout: Duration,
    cap: usize,
    ctx: &ModuleContext,
) -> Result<RunOutput, Refusal> {
    let memory = ctx.memory();
    let reserve = |buf: &mut Vec<u8>, more: usize| memory.try_reserve(buf, more).is_ok();
    child::run(argv, timeout, cap, &reserve)
        .await
        .map_err(|e| Refusal(format!("cannot run {:?}: {e}", argv[0])))
}

/// Checks the executable's SHA-256 when one is configured.
async fn verify(argv: &[OsString], expected: Option<&str>) -> Result<(), Refusal> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let program = Path::new(&argv[0]);
    let path = resolve(program)
        .ok_or_else(|| Refusal(format!("executable {} not found", program.display())))?;
    let actual = sha256_file(&path)
        .await
        .map_err(|e| Refusal(format!("cannot read {} to hash it: {e}", path.display())))?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Refusal(format!(
            "sha256 of {} is {actual}, not the configured {expected}: not run",
            path.display()
        )))
    }
}

/// The file `program` names: as given when it has a `/`, else the first match in `PATH`.
fn resolve(program: &Path) -> Option<PathBuf> {
    if program.as_os_str().as_encoded_bytes().contains(&b'/') {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Sends the events of one run.
async fn report(
    ctx: &ModuleContext,
    name: &str,
    mode: OutputMode,
    ignore_output: bool,
    result: Result<RunOutput, Refusal>,
) -> Result<(), ModuleError> {
    let out = match result {
        Ok(out) => out,
        Err(Refusal(reason)) => {
            log::warn!("command {name}: {reason}");
            let refused = CommandEvent::Refused {
                name: name.to_string(),
                reason,
            };
            return ctx.send(Payload::Command(refused)).await;
        }
    };
    if !ignore_output {
        let output = |text: &[u8], truncated| {
            Payload::Command(CommandEvent::Output {
                name: name.to_string(),
                text: LogText::from_bytes(text.to_vec()),
                truncated,
            })
        };
        match mode {
            OutputMode::Whole if !out.output.is_empty() => {
                ctx.send(output(&out.output, out.truncated)).await?;
            }
            OutputMode::Whole => {}
            OutputMode::Lines => {
                let text = out.output.strip_suffix(b"\n").unwrap_or(&out.output);
                if !text.is_empty() {
                    let count = text.split(|&b| b == b'\n').count();
                    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                        // The cut, if any, is in the last kept line.
                        ctx.send(output(line, out.truncated && i + 1 == count))
                            .await?;
                    }
                }
            }
        }
    }
    let finished = CommandEvent::Finished {
        name: name.to_string(),
        exit_code: out.exit_code,
        signal: out.signal,
        timed_out: out.timed_out,
        output_bytes: out.output_bytes,
        truncated: out.truncated,
        millis: out.elapsed.as_millis() as u64,
    };
    ctx.send(Payload::Command(finished)).await
}
