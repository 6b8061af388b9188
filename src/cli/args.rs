//! Command-line parsing (hand-written: the gateway binary stays small).

use std::ffi::OsString;
use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the agent (the default).
    Run,
    /// Enroll with the manager (port 1515), or import a key from the manager's API.
    Enroll {
        key: Option<String>,
        ca: Option<PathBuf>,
    },
    /// Print the running agent's status.
    Status,
    /// Validate the configuration and print it in short.
    CheckConfig,
    /// The health gate for update bundles: configured, enrolled, connected within `within_secs`.
    Health { within_secs: u64 },
    /// Start a local manager and agent on loopback and print live events.
    Demo,
    /// Put a quarantined file back (`response restore <id>`).
    Restore { id: String },
    /// Run one rootcheck scan now and print its findings.
    Rootcheck,
    /// Print the version.
    Version,
    /// Print usage.
    Help,
}

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    /// `--config PATH`; `None` = the default path.
    pub config: Option<PathBuf>,
}

/// Seconds `check --health` waits for the agent to be connected, by default.
pub const DEFAULT_HEALTH_WITHIN_SECS: u64 = 60;

/// Usage text.
pub const USAGE: &str = "\
usage: gatewatch [COMMAND] [--config PATH]

commands:
  run            run the agent (default)
  enroll         register with the manager on port 1515 and store the credentials
  enroll --key KEY --ca MANAGER_CA.pem
                 import a key made by the manager's API (POST /agents)
  status         show the running agent's link, modules, memory, queue and spool
  check-config   validate the configuration file and the WAZUH_* variables
  check --health [--within SECONDS]
                 exit 0 when the configuration is valid, the agent is enrolled and the running
                 agent is connected to its manager within SECONDS (default 60); else exit 1
  demo           run a local manager and agent on loopback, printing live events
  response restore ID
                 put the file the active response quarantined as ID back where it was
  rootcheck      run one rootkit/anomaly scan with [modules.rootcheck] and print the findings
  version        print the version

options:
  --config PATH  configuration file (default /etc/gatewatch/agent.toml)

environment: WAZUH_MANAGER, WAZUH_MANAGER_PORT, WAZUH_PROTOCOL, WAZUH_REGISTRATION_SERVER,
  WAZUH_REGISTRATION_PORT, WAZUH_REGISTRATION_PASSWORD, WAZUH_KEEP_ALIVE_INTERVAL,
  WAZUH_TIME_RECONNECT, WAZUH_REGISTRATION_CA, WAZUH_REGISTRATION_CERTIFICATE,
  WAZUH_REGISTRATION_KEY, WAZUH_AGENT_NAME, WAZUH_AGENT_GROUP override the file;
  GATEWATCH_LOG sets the log level (error, warn, info, debug).
";

/// Parses arguments (without the program name).
pub fn parse(args: Vec<OsString>) -> Result<Args, String> {
    let mut command = None;
    let mut config = None;
    let mut key = None;
    let mut ca = None;
    let mut health = false;
    let mut within = None;
    // Words after `response`: the subcommand and its id.
    let mut response: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| format!("argument {arg:?} is not valid UTF-8"))?;
        match text {
            "--config" | "-c" => config = Some(PathBuf::from(value(&mut it, text)?)),
            "--key" => key = Some(value(&mut it, text)?.to_string_lossy().into_owned()),
            "--ca" => ca = Some(PathBuf::from(value(&mut it, text)?)),
            "--health" => health = true,
            "--within" => {
                let raw = value(&mut it, text)?;
                let seconds = raw.to_str().and_then(|v| v.parse::<u64>().ok());
                within =
                    Some(seconds.ok_or_else(|| {
                        format!("`--within` takes a number of seconds, not {raw:?}")
                    })?);
            }
            "--help" | "-h" | "help" => command = Some(Command::Help),
            "--version" | "-V" | "version" => command = Some(Command::Version),
            _ if text.starts_with("--config=") => {
                config = Some(PathBuf::from(&text["--config=".len()..]))
            }
            _ if text.starts_with('-') => return Err(format!("unknown option `{text}`")),
            _ if matches!(command, Some(Command::Restore { .. })) && response.len() < 2 => {
                response.push(text.to_string())
            }
            _ if command.is_some() => return Err(format!("unexpected argument `{text}`")),
            "response" => command = Some(Command::Restore { id: String::new() }),
            "run" => command = Some(Command::Run),
            "enroll" => {
                command = Some(Command::Enroll {
                    key: None,
                    ca: None,
                })
            }
            "status" => command = Some(Command::Status),
            "check-config" => command = Some(Command::CheckConfig),
            "check" => {
                command = Some(Command::Health {
                    within_secs: DEFAULT_HEALTH_WITHIN_SECS,
                })
            }
            "demo" => command = Some(Command::Demo),
            "rootcheck" => command = Some(Command::Rootcheck),
            other => return Err(format!("unknown command `{other}`")),
        }
    }
    let command = match command.unwrap_or(Command::Run) {
        Command::Enroll { .. } => {
            if key.is_some() && ca.is_none() {
                return Err("`enroll --key` needs `--ca MANAGER_CA.pem` (the manager's CA certificate) to verify the manager".into());
            }
            Command::Enroll {
                key: key.take(),
                ca: ca.take(),
            }
        }
        Command::Health { .. } => {
            if !health {
                return Err("`check` needs `--health` (or use `check-config`)".into());
            }
            Command::Health {
                within_secs: within.take().unwrap_or(DEFAULT_HEALTH_WITHIN_SECS),
            }
        }
        Command::Restore { .. } => match &response[..] {
            [sub, id] if sub == "restore" => Command::Restore { id: id.clone() },
            _ => return Err("usage: `response restore ID`".into()),
        },
        other => other,
    };
    if !matches!(command, Command::Health { .. }) && (health || within.is_some()) {
        return Err("`--health` and `--within` belong to the `check` command".into());
    }
    if key.is_some() || ca.is_some() {
        return Err("`--key` and `--ca` belong to the `enroll` command".into());
    }
    Ok(Args { command, config })
}

fn value(it: &mut impl Iterator<Item = OsString>, option: &str) -> Result<OsString, String> {
    it.next()
        .ok_or_else(|| format!("option `{option}` needs a value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Args, String> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn no_arguments_means_run_with_the_default_config() {
        assert_eq!(
            parse_str(&[]).unwrap(),
            Args {
                command: Command::Run,
                config: None
            }
        );
    }

    #[test]
    fn response_restore_takes_an_id() {
        let args = parse_str(&["response", "restore", "18c-3", "--config", "/x.toml"]).unwrap();
        assert_eq!(args.command, Command::Restore { id: "18c-3".into() });
        assert!(parse_str(&["response", "restore"]).is_err());
        assert!(parse_str(&["response", "undo", "x"]).is_err());
        assert!(parse_str(&["response", "restore", "a", "b"]).is_err());
    }

    #[test]
    fn enroll_key_requires_the_manager_ca() {
        assert!(parse_str(&["enroll", "--key", "abc"])
            .unwrap_err()
            .contains("--ca"));
        let args = parse_str(&[
            "enroll",
            "--key",
            "abc",
            "--ca",
            "/tmp/ca.pem",
            "--config",
            "/x.toml",
        ])
        .unwrap();
        assert_eq!(
            args.command,
            Command::Enroll {
                key: Some("abc".into()),
                ca: Some("/tmp/ca.pem".into())
            }
        );
        assert_eq!(args.config, Some(PathBuf::from("/x.toml")));
    }

    #[test]
    fn health_check_takes_a_deadline() {
        assert_eq!(
            parse_str(&["check", "--health"]).unwrap().command,
            Command::Health { within_secs: 60 }
        );
        let args = parse_str(&["check", "--health", "--within", "5"]).unwrap();
        assert_eq!(args.command, Command::Health { within_secs: 5 });
        assert!(parse_str(&["check"]).unwrap_err().contains("--health"));
        assert!(parse_str(&["check", "--health", "--within", "soon"])
            .unwrap_err()
            .contains("--within"));
        assert!(parse_str(&["status", "--health"]).is_err());
    }

    #[test]
    fn unknown_command_and_option_are_named() {
        assert!(parse_str(&["frobnicate"])
            .unwrap_err()
            .contains("frobnicate"));
        assert!(parse_str(&["status", "--verbose"])
            .unwrap_err()
            .contains("--verbose"));
        assert!(parse_str(&["--config"])
            .unwrap_err()
            .contains("needs a value"));
    }
}
