//! One way to run a child process on the executor.
//!
//! The child gets its own process group, no standard input, and one pipe for both its standard
//! output and error, read asynchronously. [`GroupChild`] kills the whole group (the child and
//! whatever it started) when dropped or on [`GroupChild::kill_group`]; async-process reaps it
//! through pidfd, driven by [`driver`] on the agent's executor — no zombie, and no extra thread
//! as long as the agent runs that driver. [`run`] adds a timeout and a cap on kept output.
//!
//! Never blocks: reads wait on the reactor; nothing here uses a thread pool.

use async_io::Async;
use futures_lite::{AsyncReadExt, FutureExt};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use async_process::driver;

/// A running child in its own process group, with its merged output pipe.
pub struct GroupChild {
    child: async_process::Child,
    pgid: Option<rustix::process::Pid>,
    output: Async<File>,
    exited: Option<ExitStatus>,
}

/// Starts `argv` (no shell) in a new process group with stdout and stderr on one pipe.
pub fn spawn(argv: &[OsString]) -> std::io::Result<GroupChild> {
    let (program, args) = argv.split_first().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty argument vector")
    })?;
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let mut command = std::process::Command::new(program);
    command.args(args).process_group(0);
    let mut command = async_process::Command::from(command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(write.try_clone()?))
        .stderr(Stdio::from(write))
        .reap_on_drop(true);
    let child = command.spawn()?;
    // The command (and our copies of the pipe's write end) is dropped here, so the pipe reports
    // its end once every process of the group closed it.
    drop(command);
    let pgid = rustix::process::Pid::from_raw(child.id() as i32);
    Ok(GroupChild {
        child,
        pgid,
        output: Async::new(File::from(read))?,
        exited: None,
    })
}

impl GroupChild {
    /// The child's process id (also its process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Reads output; 0 when every process of the group closed the pipe.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.output.read(buf).await
    }

    /// Sends SIGKILL to the whole process group.
    pub fn kill_group(&self) {
        if let Some(pgid) = self.pgid {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }

    /// Waits for the child itself to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        let status = self.child.status().await?;
        self.exited = Some(status);
        Ok(status)
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        // Whatever is left of the group goes with it; async-process reaps the child.
        if self.exited.is_none() {
            self.kill_group();
        }
    }
}

/// What a bounded run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// The child's process id (it is reaped: the id may be reused).
    pub pid: u32,
    /// Exit code, when the child exited normally.
    pub exit_code: Option<i32>,
    /// The signal that ended the child, if one did.
    pub signal: Option<i32>,
    /// The timeout fired and the group was killed.
    pub timed_out: bool,
    /// The first `cap` bytes of output.
    pub output: Vec<u8>,
    /// All output bytes seen (kept or not).
    pub output_bytes: u64,
    /// More output than `cap` came; the rest was read and discarded.
    pub truncated: bool,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs `argv` to its end or `timeout` (then the whole group is killed), keeping at most `cap`
/// bytes of its output; the rest is read (so the child is never stuck on a full pipe) and counted.
/// `reserve` is asked before the kept output grows (a module's memory budget); a refusal stops
/// keeping output, as the cap does.
pub async fn run(
    argv: &[OsString],
    timeout: Duration,
    cap: usize,
    reserve: &dyn Fn(&mut Vec<u8>, usize) -> bool,
) -> std::io::Result<RunOutput> {
    let started = Instant::now();
    let mut child = spawn(argv)?;
    let pid = child.id();
    let mut output = Vec::new();
    let mut output_bytes = 0u64;
    let mut truncated = false;
    let mut chunk = [0u8; 4096];
    let deadline = started + timeout;
    let read_all = async {
        loop {
            let n = child.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            output_bytes += n as u64;
            let keep = n.min(cap.saturating_sub(output.len()));
            if keep > 0 && reserve(&mut output, keep) {
                output.extend_from_slice(&chunk[..keep]);
            }
            truncated |= keep < n || output.len() < (output_bytes as usize).min(cap);
        }
        child.wait().await.map(Some)
    };
    let timer = async {
        async_io::Timer::at(deadline).await;
        Ok(None)
    };
    let finished: std::io::Result<Option<ExitStatus>> = read_all.or(timer).await;
    let (status, timed_out) = match finished? {
        Some(status) => (status, false),
        None => {
            child.kill_group();
            (child.wait().await?, true)
        }
    };
    Ok(RunOutput {
        pid,
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        output,
        output_bytes,
        truncated,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn always(_: &mut Vec<u8>, _: usize) -> bool {
        true
    }

    /// Runs `f` on this thread with the reaper driven by the test, as the agent does.
    fn on_executor<T>(f: impl std::future::Future<Output = T>) -> T {
        smol::block_on(f.or(async {
            driver().await;
            unreachable!("the driver never ends")
        }))
    }

    #[test]
    fn output_over_the_cap_is_truncated_and_counted() {
        let out = on_executor(run(
            &argv(&["/bin/sh", "-c", "head -c 100000 /dev/zero; echo tail >&2"]),
            Duration::from_secs(10),
            1000,
            &always,
        ))
        .unwrap();
        assert_eq!(out.output.len(), 1000);
        assert!(out.truncated);
        assert_eq!(
            out.output_bytes, 100_005,
            "stdout and stderr on one pipe, all counted"
        );
        assert_eq!(out.exit_code, Some(0));
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let result = on_executor(run(
            &argv(&["/nonexistent/program"]),
            Duration::from_secs(1),
            64,
            &always,
        ));
        assert!(result.is_err());
    }
}
