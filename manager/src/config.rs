//! Manager options: the [`ManagerOptions`] the library starts from, and the command line that
//! fills them. Every error names the option (or file) at fault and says what would be accepted.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ManagerError;

/// Environment variable holding the enrollment password when no `--password-file` is given.
pub const PASSWORD_ENV: &str = "GATEWATCH_ENROLL_PASSWORD";
/// Default event port (Wazuh's `1514`).
pub const DEFAULT_EVENTS_PORT: u16 = 1514;
/// Default enrollment port (Wazuh's `1515`).
pub const DEFAULT_ENROLL_PORT: u16 = 1515;
/// Default REST API port (Wazuh's `55000`).
pub const DEFAULT_API_PORT: u16 = 55000;
/// The agent's TLS verifier copies names into 64-byte buffers; a longer name could never match.
pub const MAX_SERVER_NAME_LEN: usize = 64;

/// Everything [`crate::start`] needs. `ManagerOptions::new(dir)` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Directory for the CA, server certificate, `manager.db` and `events.jsonl` (created if missing).
    pub data_dir: PathBuf,
    /// Address both services listen on. Default `0.0.0.0`; tests use `127.0.0.1`.
    pub listen_addr: IpAddr,
    /// Event port; default 1514, 0 picks a free port.
    pub events_port: u16,
    /// Enrollment port; default 1515, 0 picks a free port.
    pub enroll_port: u16,
    /// Names (DNS names or IP literals) the server certificate is valid for; the first is its CN.
    /// Empty means: the hostname, `localhost`, `127.0.0.1`, `::1`.
    pub names: Vec<String>,
    /// Enrollment password; `None` lets any agent enroll.
    pub password: Option<String>,
    /// When set, enrollment requires a client certificate signed by this CA (PEM file).
    pub agent_ca: Option<PathBuf>,
    /// Operator-provided server certificate (PEM); needs `server_key` and `ca_cert` too.
    pub server_cert: Option<PathBuf>,
    /// Private key of `server_cert` (PEM).
    pub server_key: Option<PathBuf>,
    /// The CA that signed `server_cert`, given to agents at enrollment (PEM).
    pub ca_cert: Option<PathBuf>,
    /// Executor threads serving connections. Default 2.
    pub worker_threads: usize,
    /// Limit for the TLS handshake and for each request or handshake message. Default 10 s.
    pub io_timeout: Duration,
    /// A session with no frame from the agent for this long is closed. Default 10 min.
    pub session_idle_timeout: Duration,
    /// Simultaneous enrollment connections; more are closed at once. Default 64.
    pub max_enroll_connections: usize,
    /// Simultaneous event connections (sessions and handshakes). Default 4096.
    pub max_sessions: usize,
    /// The REST API. `None` (the library's default) serves none; the command line serves it on
    /// [`DEFAULT_API_PORT`] unless told otherwise.
    pub api: Option<ApiOptions>,
}

/// Settings of the REST API (HTTPS, with the manager's server certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiOptions {
    /// Port; 0 picks a free one. Default 55000.
    pub port: u16,
    /// Lifetime of a token (Wazuh's `auth_token_exp_timeout`). Default 900 s.
    pub token_timeout: Duration,
    /// Failed logins from one address within `block_time` before it is blocked. Default 50.
    pub max_login_attempts: u32,
    /// The window for counting failed logins, and how long a block lasts. Default 300 s.
    pub block_time: Duration,
    /// Simultaneous API connections; more are closed at once. Default 128 (each may buffer a
    /// request of up to 1 MiB).
    pub max_connections: usize,
    /// Give the `wazuh` user a new random password at start (for a lost one). Default false.
    pub reset_admin_password: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            port: DEFAULT_API_PORT,
            token_timeout: Duration::from_secs(900),
            max_login_attempts: 50,
            block_time: Duration::from_secs(300),
            max_connections: 128,
            reset_admin_password: false,
        }
    }
}

impl ManagerOptions {
    /// Options with every default, storing in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ManagerOptions {
            data_dir: data_dir.into(),
            listen_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            events_port: DEFAULT_EVENTS_PORT,
            enroll_port: DEFAULT_ENROLL_PORT,
            names: Vec::new(),
            password: None,
            agent_ca: None,
            server_cert: None,
            server_key: None,
            ca_cert: None,
            worker_threads: 2,
            io_timeout: Duration::from_secs(10),
            session_idle_timeout: Duration::from_secs(600),
            max_enroll_connections: 64,
            max_sessions: 4096,
            api: None,
        }
    }

    /// The names the server certificate must carry: the given ones, or the defaults.
    pub fn effective_names(&self) -> Vec<String> {
        if !self.names.is_empty() {
            return self.names.clone();
        }
        let mut names = Vec::new();
        if let Some(host) = hostname() {
            names.push(host);
        }
        for n in ["localhost", "127.0.0.1", "::1"] {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        }
        names
    }

    /// Checks the options that do not need the file system.
    pub(crate) fn validate(&self) -> Result<(), ManagerError> {
        for name in &self.names {
            check_server_name(name)
                .map_err(|why| ManagerError::Config(format!("--name {name:?}: {why}")))?;
        }
        let given = [&self.server_cert, &self.server_key, &self.ca_cert]
            .iter()
            .filter(|o| o.is_some())
            .count();
        if given != 0 && given != 3 {
            return Err(ManagerError::Config(
                "--server-cert, --server-key and --ca-cert must be given together".into(),
            ));
        }
        if given == 3 && !self.names.is_empty() {
            log::warn!("--name is ignored with --server-cert: the operator's certificate decides the names");
        }
        if self.worker_threads == 0 || self.max_enroll_connections == 0 || self.max_sessions == 0 {
            return Err(ManagerError::Config(
                "worker threads and connection limits must be at least 1".into(),
            ));
        }
        if let Some(api) = &self.api {
            if api.token_timeout.as_secs() == 0 || api.block_time.as_secs() == 0 {
                return Err(ManagerError::Config(
                    "--api-token-timeout and --api-block-time must be at least 1 second".into(),
                ));
            }
            if api.max_login_attempts == 0 || api.max_connections == 0 {
                return Err(ManagerError::Config(
                    "--api-max-login-attempts and the API connection limit must be at least 1"
                        .into(),
                ));
            }
        }
        if self.password.as_deref() == Some("") {
            return Err(ManagerError::Config(
                "the enrollment password is empty".into(),
            ));
        }
        Ok(())
    }
}

/// Accepts a DNS name (letters, digits, `-`, `.`) or an IP literal, at most 64 bytes.
pub fn check_server_name(name: &str) -> Result<(), &'static str> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if name.is_empty() || name.len() > MAX_SERVER_NAME_LEN {
        return Err("a server name must have 1 to 64 characters");
    }
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let ok_labels = name
        .split('.')
        .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if ok_chars && ok_labels {
        Ok(())
    } else {
        Err("expected a DNS name (letters, digits, '-', '.') or an IP address")
    }
}

/// The machine's hostname, if the kernel tells it.
pub(crate) fn hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let host = raw.trim().to_string();
    check_server_name(&host).ok().map(|_| host)
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Cli {
    /// Run the manager with these options and this log level.
    Run(Box<ManagerOptions>, log::LevelFilter),
    /// Print the usage text.
    Help,
}

/// Usage text of the `gatewatch-manager` binary.
pub const USAGE: &str = "\
usage: gatewatch-manager --data-dir DIR [options]

  --data-dir DIR        where the CA, certificates, manager.db and events.jsonl live (required)
  --listen IP           address to listen on (default 0.0.0.0)
  --events-port N       event port (default 1514; 0 = any free port)
  --enroll-port N       enrollment port (default 1515; 0 = any free port)
  --name NAME           a name or IP agents use to reach this manager; repeatable; the first is
                        the certificate CN (default: hostname, localhost, 127.0.0.1, ::1)
  --password-file F     enrollment password: first line of F (else $GATEWATCH_ENROLL_PASSWORD)
  --api-port N          REST API port (default 55000; 0 = any free port)
  --no-api              do not serve the REST API
  --api-token-timeout S lifetime of API tokens in seconds (default 900)
  --api-max-login-attempts N
                        failed logins from one address before it is blocked (default 50)
  --api-block-time S    window for those failures and length of the block (default 300)
  --api-reset-password  give the API user `wazuh` a new random password (printed, and written
                        to DIR/api-admin.txt)
  --agent-ca F          require agents to enroll with a client certificate signed by this CA
  --server-cert F --server-key F --ca-cert F
                        use these PEM files instead of the manager's own CA
  --log-level LEVEL     error, warn, info (default), debug or trace
  -h, --help            this text
";

/// Parses the arguments (without the program name). `env_password` is the value of
/// [`PASSWORD_ENV`], passed in so that parsing stays a pure function.
pub fn parse_args(args: &[String], env_password: Option<String>) -> Result<Cli, ManagerError> {
    let mut data_dir = None;
    let mut opts = ManagerOptions::new(PathBuf::new());
    let mut password_file: Option<PathBuf> = None;
    let mut level = log::LevelFilter::Info;
    let mut api = Some(ApiOptions::default());
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "-h" || arg == "--help" {
            return Ok(Cli::Help);
        }
        if arg == "--no-api" {
            api = None;
            i += 1;
            continue;
        }
        if arg == "--api-reset-password" {
            let Some(api) = api.as_mut() else {
                return Err(bad(arg, "cannot be combined with --no-api"));
            };
            api.reset_admin_password = true;
            i += 1;
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg, None),
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                match args.get(i) {
                    Some(v) if flag.starts_with("--") => v.clone(),
                    _ => return Err(bad(flag, "needs a value (see --help)")),
                }
            }
        };
        match flag {
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            "--listen" => {
                opts.listen_addr = value
                    .parse()
                    .map_err(|_| bad(flag, &format!("{value:?} is not an IP address")))?
            }
            "--events-port" => opts.events_port = parse_port(flag, &value)?,
            "--enroll-port" => opts.enroll_port = parse_port(flag, &value)?,
            "--name" => opts.names.push(value),
            "--password-file" => password_file = Some(PathBuf::from(value)),
            "--api-port"
            | "--api-token-timeout"
            | "--api-max-login-attempts"
            | "--api-block-time" => {
                let Some(api) = api.as_mut() else {
                    return Err(bad(flag, "cannot be combined with --no-api"));
                };
                set_api_option(api, flag, &value)?;
            }
            "--agent-ca" => opts.agent_ca = Some(PathBuf::from(value)),
            "--server-cert" => opts.server_cert = Some(PathBuf::from(value)),
            "--server-key" => opts.server_key = Some(PathBuf::from(value)),
            "--ca-cert" => opts.ca_cert = Some(PathBuf::from(value)),
            "--log-level" => {
                level = value
                    .parse()
                    .map_err(|_| bad(flag, "expected error, warn, info, debug or trace"))?
            }
            _ => {
                return Err(ManagerError::Config(format!(
                    "unknown option {arg:?} (see --help)"
                )))
            }
        }
        i += 1;
    }
    opts.data_dir = data_dir.ok_or_else(|| bad("--data-dir", "is required"))?;
    opts.password = match password_file {
        Some(path) => Some(read_password_file(&path)?),
        None => env_password.filter(|p| !p.is_empty()),
    };
    opts.api = api;
    opts.validate()?;
    Ok(Cli::Run(Box::new(opts), level))
}

fn bad(flag: &str, why: &str) -> ManagerError {
    ManagerError::Config(format!("{flag} {why}"))
}

fn set_api_option(api: &mut ApiOptions, flag: &str, value: &str) -> Result<(), ManagerError> {
    let number = || -> Result<u32, ManagerError> {
        value
            .parse()
            .map_err(|_| bad(flag, &format!("{value:?} is not a whole number")))
    };
    match flag {
        "--api-port" => api.port = parse_port(flag, value)?,
        "--api-token-timeout" => api.token_timeout = Duration::from_secs(number()?.into()),
        "--api-max-login-attempts" => api.max_login_attempts = number()?,
        _ => api.block_time = Duration::from_secs(number()?.into()),
    }
    Ok(())
}

fn parse_port(flag: &str, value: &str) -> Result<u16, ManagerError> {
    value
        .parse()
        .map_err(|_| bad(flag, &format!("{value:?} is not a port number (0-65535)")))
}

/// The first line of a password file, without its line ending.
pub fn read_password_file(path: &Path) -> Result<String, ManagerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ManagerError::file(path, "--password-file: cannot read", e))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(ManagerError::Config(format!(
            "--password-file {}: the first line is empty",
            path.display()
        )));
    }
    Ok(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn run(list: &[&str]) -> Result<ManagerOptions, ManagerError> {
        match parse_args(&args(list), None)? {
            Cli::Run(opts, _) => Ok(*opts),
            Cli::Help => panic!("unexpected help"),
        }
    }

    #[test]
    fn repeated_names_and_ports_are_parsed() {
        let o = run(&[
            "--data-dir",
            "/d",
            "--name",
            "gw.example",
            "--name=10.0.0.1",
            "--events-port",
            "0",
        ])
        .unwrap();
        assert_eq!(o.names, vec!["gw.example", "10.0.0.1"]);
        assert_eq!(o.events_port, 0);
        assert_eq!(o.enroll_port, DEFAULT_ENROLL_PORT);
        assert_eq!(o.data_dir, PathBuf::from("/d"));
    }

    #[test]
    fn missing_data_dir_names_the_option() {
        let err = run(&["--events-port", "1"]).unwrap_err().to_string();
        assert!(err.contains("--data-dir"), "{err}");
    }

    #[test]
    fn bad_port_names_the_option() {
        let err = run(&["--data-dir", "/d", "--enroll-port", "70000"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--enroll-port"), "{err}");
    }

    #[test]
    fn operator_certificate_options_must_come_together() {
        let err = run(&["--data-dir", "/d", "--server-cert", "a.pem"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--server-cert, --server-key and --ca-cert"),
            "{err}"
        );
    }

    #[test]
    fn name_with_bad_characters_is_refused() {
        let err = run(&["--data-dir", "/d", "--name", "gw_1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--name"), "{err}");
    }

    #[test]
    fn password_file_first_line_wins_over_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\nignored\n").unwrap();
        let cli = parse_args(
            &args(&[
                "--data-dir",
                "/d",
                "--password-file",
                file.to_str().unwrap(),
            ]),
            Some("from-env".into()),
        )
        .unwrap();
        let Cli::Run(o, _) = cli else {
            panic!("expected run")
        };
        assert_eq!(o.password.as_deref(), Some("s3cret"));
    }

    #[test]
    fn environment_password_is_used_without_a_file() {
        let Cli::Run(o, _) = parse_args(&args(&["--data-dir", "/d"]), Some("pw".into())).unwrap()
        else {
            panic!("expected run")
        };
        assert_eq!(o.password.as_deref(), Some("pw"));
    }

    #[test]
    fn api_is_on_by_default_and_its_options_are_parsed() {
        let o = run(&["--data-dir", "/d"]).unwrap();
        assert_eq!(o.api, Some(ApiOptions::default()));
        let o = run(&[
            "--data-dir",
            "/d",
            "--api-port",
            "0",
            "--api-token-timeout=60",
            "--api-max-login-attempts",
            "3",
            "--api-block-time",
            "10",
        ])
        .unwrap();
        let api = o.api.unwrap();
        assert_eq!(api.port, 0);
        assert!(!api.reset_admin_password);
        let reset = run(&["--data-dir", "/d", "--api-reset-password"]).unwrap();
        assert!(reset.api.unwrap().reset_admin_password);
        assert_eq!(api.token_timeout, Duration::from_secs(60));
        assert_eq!(
            (api.max_login_attempts, api.block_time),
            (3, Duration::from_secs(10))
        );
    }

    #[test]
    fn no_api_turns_it_off_and_refuses_api_options() {
        assert_eq!(run(&["--data-dir", "/d", "--no-api"]).unwrap().api, None);
        let err = run(&["--data-dir", "/d", "--no-api", "--api-port", "1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--api-port"), "{err}");
    }

    #[test]
    fn zero_token_timeout_is_refused() {
        let err = run(&["--data-dir", "/d", "--api-token-timeout", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--api-token-timeout"), "{err}");
    }

    #[test]
    fn default_names_include_loopback_literals() {
        let names = ManagerOptions::new("/d").effective_names();
        assert!(names.iter().any(|n| n == "localhost"));
        assert!(names.iter().any(|n| n == "127.0.0.1"));
        assert!(names.iter().any(|n| n == "::1"));
    }
}
