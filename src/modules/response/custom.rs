//! Custom responses: an executable from the allow-listed directory, given Wazuh's active-response
//! JSON on its standard input (reference/wazuh-agent.md §5.9), one JSON document per line:
//!
//! ```text
//! agent → script   {"version":1,"origin":{…,"module":"wazuh-execd"},"command":"add","parameters":{"extra_args":[…],"alert":{…},"program":"…"}}
//! script → agent   {"version":1,"origin":{…},"command":"check_keys","parameters":{"keys":["<ip>"]}}   (stateful scripts)
//! agent → script   the same first document with "command":"continue" or "abort"
//! … at the timeout, the script runs again with "command":"delete".
//! ```
//!
//! The script runs in its own process group, with its standard error discarded, and is killed
//! with its group when it outlives `run_timeout_secs`. This is not [`crate::runtime::child::run`]
//! because the exchange needs the child's standard input.

use super::json;
use futures_lite::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, FutureExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Longest line read from a script.
const MAX_LINE: u64 = 64 * 1024;

/// Wazuh's message for `command` (`add`, `delete`, `continue`, `abort`).
pub fn message(command: &str, name: &str, arguments: &[String], alert: &str) -> String {
    let trimmed = alert.trim();
    let alert = if trimmed.starts_with('{') && trimmed.ends_with('}') {
        trimmed.to_string()
    } else {
        format!("{{\"full_log\":{}}}", json::quoted(alert))
    };
    format!(
        "{{\"version\":1,\"origin\":{{\"name\":\"gatewatch\",\"module\":\"wazuh-execd\"}},\"command\":{},\"parameters\":{{\"extra_args\":{},\"alert\":{alert},\"program\":{}}}}}",
        json::quoted(command),
        json::string_array(arguments),
        json::quoted(&format!("active-response/bin/{name}")),
    )
}

/// The executable `name` in `dir`: a plain file name, a regular executable file, not writable
/// by group or others (so only root could have put it there).
pub fn locate(dir: Option<&Path>, name: &str) -> Result<PathBuf, String> {
    let dir = dir.ok_or("custom responses are off (modules.response.custom_dir is not set)")?;
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(format!("{name:?} is not a file name"));
    }
    let path = dir.join(name);
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = meta.permissions().mode();
    if !meta.is_file() || mode & 0o111 == 0 {
        return Err(format!("{} is not an executable file", path.display()));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "{} is writable by group or others: not run",
            path.display()
        ));
    }
    Ok(path)
}

/// What a run of a script showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The keys of its `check_keys` request, if it made one.
    pub keys: Option<Vec<String>>,
    /// It was told to abort (the same keys are already in effect).
    pub aborted: bool,
}

/// Runs `program` with `first` on its standard input; answers a `check_keys` request with
/// `continue` when `proceed(keys)` says so, `abort` otherwise (the answer is `first` with its
/// command replaced). `Err` when it cannot start, times out or exits with a failure.
pub async fn run(
    program: &Path,
    first: &str,
    proceed: &mut dyn FnMut(&[String]) -> bool,
    timeout: Duration,
) -> Result<Exchange, String> {
    let mut command = std::process::Command::new(program);
    command.process_group(0);
    let mut command = async_process::Command::from(command);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .reap_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let pgid = rustix::process::Pid::from_raw(child.id() as i32);
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let talk = async {
        let mut exchange = Exchange {
            keys: None,
            aborted: false,
        };
        if let Some(stdin) = stdin.as_mut() {
            let line = format!("{first}\n");
            // A script that does not read its input may exit before we write: not an error.
            let _ = stdin.write_all(line.as_bytes()).await;
            let _ = stdin.flush().await;
        }
        let Some(stdout) = stdout else {
            return Ok(exchange);
        };
        let mut reader = futures_lite::io::BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE)
                .read_line(&mut line)
                .await
                .map_err(|e| format!("reading {}: {e}", program.display()))?;
            if n == 0 {
                break;
            }
            if json::find_text(&line, "command").as_deref() != Some("check_keys") {
                continue;
            }
            let keys = match json::find(&line, "keys") {
                Some(json::Value::Strings(keys)) => keys,
                _ => Vec::new(),
            };
            let go = proceed(&keys);
            exchange.keys = Some(keys);
            exchange.aborted = !go;
            let reply = replace_command(first, if go { "continue" } else { "abort" });
            if let Some(stdin) = stdin.as_mut() {
                let _ = stdin.write_all(format!("{reply}\n").as_bytes()).await;
                let _ = stdin.flush().await;
            }
            // Nothing more is asked of the script: its end of input tells it so.
            stdin = None;
        }
        drop(stdin);
        let status = child
            .status()
            .await
            .map_err(|e| format!("waiting for {}: {e}", program.display()))?;
        if status.success() {
            Ok(exchange)
        } else {
            Err(format!("{} failed: {status}", program.display()))
        }
    };
    let timer = async {
        async_io::Timer::after(timeout).await;
        if let Some(pgid) = pgid {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        Err(format!(
            "{} ran longer than {}s: killed",
            program.display(),
            timeout.as_secs()
        ))
    };
    talk.or(timer).await
}

/// `message` with its top-level `"command":"…"` replaced.
fn replace_command(message: &str, command: &str) -> String {
    for from in ["\"command\":\"add\"", "\"command\":\"delete\""] {
        if let Some(at) = message.find(from) {
            return format!(
                "{}\"command\":{}{}",
                &message[..at],
                json::quoted(command),
                &message[at + from.len()..]
            );
        }
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_has_wazuh_shape() {
        let m = message(
            "add",
            "block.sh",
            &["-x".into()],
            r#"{"data":{"srcip":"1.2.3.4"}}"#,
        );
        assert_eq!(
            m,
            r#"{"version":1,"origin":{"name":"gatewatch","module":"wazuh-execd"},"command":"add","parameters":{"extra_args":["-x"],"alert":{"data":{"srcip":"1.2.3.4"}},"program":"active-response/bin/block.sh"}}"#
        );
        assert!(replace_command(&m, "continue").contains("\"command\":\"continue\""));
        let text_alert = message("add", "s", &[], "not json");
        assert!(text_alert.contains(r#""alert":{"full_log":"not json"}"#));
    }

    #[test]
    fn only_safe_executables_of_the_directory_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("ok.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(locate(Some(dir.path()), "ok.sh").unwrap(), script);
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(locate(Some(dir.path()), "ok.sh")
            .unwrap_err()
            .contains("writable"));
        assert!(locate(Some(dir.path()), "../ok.sh").is_err());
        assert!(locate(None, "ok.sh").unwrap_err().contains("custom_dir"));
    }
}
