//! Running the command of a `c:` rule: no shell, a timeout, and a bounded output.
//!
//! The command line is split into arguments as Wazuh does (spaces separate, `"…"` groups, `\`
//! escapes the next character) and executed directly: a rule that needs a shell names one
//! (`sh -c "…"`), so nothing is ever interpreted that the policy did not ask for. The child runs
//! in its own process group with stdin closed and stdout and stderr on one pipe; on timeout the
//! whole group is killed (so `sh -c` pipelines go too) and the rule is not applicable.
//!
//! The child is reaped through its pidfd on the agent's executor: this module drives
//! `async_process::driver()` while a child runs, so async-process never starts its own thread.
//! (A shared `runtime` helper for children may replace this file later.)

use crate::runtime::MemoryAccount;
use futures_lite::{AsyncReadExt, FutureExt};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

/// Most output kept from one command; the rest is read and dropped.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Search path for commands: policies name tools in `/sbin` and `/usr/sbin` without a path.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What running a command gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutput {
    /// It ran (whatever its exit status): stdout and stderr interleaved, at most [`MAX_OUTPUT`].
    Ran(Vec<u8>),
    /// It could not run or did not finish; the reason, in Wazuh's words.
    Failed(String),
}

/// Splits a command line into arguments (spaces separate, `"` groups, `\` escapes).
pub fn split_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut started = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                started = true;
            }
            '"' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    args.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        args.push(current);
    }
    args
}

/// Runs `line` with a timeout; output is charged to `memory` and refused past its budget.
pub async fn run(line: &str, timeout: Duration, memory: &MemoryAccount) -> CommandOutput {
    // Drive the reaper ourselves while the child lives (see the module comment). The driver is
    // polled first, so it is registered before the child is spawned.
    let driver = async { match async_process::driver().await {} };
    driver.or(run_child(line, timeout, memory)).await
}

async fn run_child(line: &str, timeout: Duration, memory: &MemoryAccount) -> CommandOutput {
    let args = split_args(line);
    let Some((program, rest)) = args.split_first() else {
        return CommandOutput::Failed(format!(
            "Invalid path or wrong permissions to run command '{line}'"
        ));
    };
    let mut std_cmd = std::process::Command::new(program);
    std_cmd.args(rest).env("PATH", PATH).process_group(0);
    let pipe = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC);
    let (reader, writer) = match pipe {
        Ok((r, w)) => (std::fs::File::from(r), std::fs::File::from(w)),
        Err(e) => return CommandOutput::Failed(format!("cannot create a pipe for '{line}': {e}")),
    };
    let stderr = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return CommandOutput::Failed(format!("cannot create a pipe for '{line}': {e}")),
    };
    // Stdio is set on the async command: converting a std command resets it to inherit.
    let mut cmd = async_process::Command::from(std_cmd);
    cmd.stdin(Stdio::null()).stdout(writer).stderr(stderr);
    let spawned = cmd.spawn();
    // The write ends must close in this process, or the read end never sees the end.
    drop(cmd);
    let mut child = match spawned {
        Ok(child) => child,
        Err(_) => {
            return CommandOutput::Failed(format!(
                "Invalid path or wrong permissions to run command '{line}'"
            ))
        }
    };
    let pgid = child.id();
    let collected = async {
        let output = read_all(reader, memory).await;
        let status = child.status().await;
        (output, status)
    };
    let timed_out = async {
        async_io::Timer::after(timeout).await;
        None
    };
    match async { Some(collected.await) }.or(timed_out).await {
        Some((Ok(output), Ok(_))) => CommandOutput::Ran(output),
        Some((Err(e), _)) | Some((_, Err(e))) => {
            kill_group(pgid);
            let _ = child.status().await;
            CommandOutput::Failed(format!("Failed to run command '{line}': {e}"))
        }
        None => {
            kill_group(pgid);
            let _ = child.status().await;
            CommandOutput::Failed(format!("Timeout overtaken running command '{line}'"))
        }
    }
}

/// Reads the pipe to its end, keeping at most [`MAX_OUTPUT`] bytes within the budget.
async fn read_all(reader: std::fs::File, memory: &MemoryAccount) -> std::io::Result<Vec<u8>> {
    let mut pipe = async_io::Async::new(reader)?;
    let mut output = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(output);
        }
        let keep = n.min(MAX_OUTPUT - output.len());
        if keep > 0 && memory.try_reserve(&mut output, keep).is_ok() {
            output.extend_from_slice(&chunk[..keep]);
        }
    }
}

fn kill_group(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::budget::account_for;

    fn memory() -> MemoryAccount {
        MemoryAccount::new(account_for("test-sca-command").unwrap(), 8 * 1024 * 1024)
    }

    #[test]
    fn arguments_split_like_wazuh() {
        assert_eq!(split_args("sshd  -T"), ["sshd", "-T"]);
        assert_eq!(
            split_args(r#"sh -c "cut -f1 -d\":\" /etc/group | sort""#),
            ["sh", "-c", r#"cut -f1 -d":" /etc/group | sort"#]
        );
        assert_eq!(split_args(r#"a "" b"#), ["a", "", "b"]);
    }

    #[test]
    fn output_of_stdout_and_stderr_is_captured() {
        let out = smol::block_on(run(
            r#"sh -c "echo out; echo err >&2""#,
            Duration::from_secs(10),
            &memory(),
        ));
        assert_eq!(out, CommandOutput::Ran(b"out\nerr\n".to_vec()));
    }

    #[test]
    fn no_shell_is_used_unless_asked_for() {
        let out = smol::block_on(run("echo a | b; $HOME", Duration::from_secs(10), &memory()));
        assert_eq!(out, CommandOutput::Ran(b"a | b; $HOME\n".to_vec()));
    }

    #[test]
    fn missing_program_is_a_failure() {
        let out = smol::block_on(run("/nonexistent/x", Duration::from_secs(10), &memory()));
        assert!(matches!(out, CommandOutput::Failed(ref why) if why.contains("Invalid path")));
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild-ran");
        let line = format!(
            r#"sh -c "sleep 30 & sleep 2; touch {}; wait""#,
            marker.display()
        );
        let started = std::time::Instant::now();
        let out = smol::block_on(run(&line, Duration::from_millis(300), &memory()));
        assert!(matches!(out, CommandOutput::Failed(ref why) if why.contains("Timeout")));
        assert!(started.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the shell was killed with its group");
    }
}
