//! The command-line interface: parses arguments and runs one command.
//!
//! Exit statuses: 0 success, 1 failure (the message says why), 2 bad usage, and
//! [`crate::config::RESTART_EXIT_CODE`] when a restart was ordered with `restart_mode = "exit"`.

pub mod args;
#[cfg(feature = "demo")]
mod demo;
mod health;

use crate::config::{self, Config, RestartMode, DEFAULT_CONFIG_PATH};
use args::{Args, Command};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs the command line (without the program name) and returns the exit status.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    crate::runtime::logger::init();
    let args = match args::parse(argv) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("gatewatch: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("gatewatch: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    match args.command {
        Command::Help => {
            print!("{}", args::USAGE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("gatewatch {}", crate::VERSION);
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig => check_config(&config_path),
        Command::Health { within_secs } => health::check(&config_path, within_secs),
        Command::Status => {
            let config = load(&config_path)?;
            let report = crate::runtime::status::fetch(&config.agent.state_dir)?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Enroll { key, ca } => {
            let config = load(&config_path)?;
            enroll(&config, key, ca)
        }
        Command::Run => run_agent(&config_path),
        Command::Demo => demo(),
        Command::Restore { id } => restore(&config_path, &id),
        Command::Rootcheck => rootcheck(&config_path, args.config.is_some()),
    }
}

/// `response restore ID`: puts a quarantined file back (the agent need not be running).
fn restore(path: &Path, id: &str) -> Result<ExitCode, String> {
    let config = load(path)?;
    let module_dir = config.agent.state_dir.join("modules").join("response");
    let dir = crate::modules::response::quarantine_dir(&config.modules.response, &module_dir);
    #[cfg(feature = "response")]
    {
        let sidecar = crate::modules::response::restore(&dir, id)?;
        println!(
            "restored {} (sha256 {})",
            sidecar.original.display(),
            sidecar.sha256
        );
        Ok(ExitCode::SUCCESS)
    }
    #[cfg(not(feature = "response"))]
    {
        Err(format!(
            "cannot restore {id} from {}: this build has no response module",
            dir.display()
        ))
    }
}

/// One rootcheck scan with the configuration's `[modules.rootcheck]` (its defaults when no
/// configuration file was named and the default one does not exist), printed one finding a line.
fn rootcheck(path: &Path, named: bool) -> Result<ExitCode, String> {
    #[cfg(feature = "rootcheck")]
    {
        let settings = if named || path.exists() {
            load(path)?.modules.rootcheck
        } else {
            crate::modules::rootcheck::RootcheckConfig::default()
        };
        let account = crate::runtime::budget::account_for("rootcheck")
            .ok_or("no free memory account for rootcheck")?;
        let memory = crate::runtime::MemoryAccount::new(account, settings.budget_bytes);
        let report = smol::block_on(crate::modules::rootcheck::run_scan(&settings, &memory));
        for finding in &report.findings {
            println!("{}: {} ({})", finding.kind, finding.title, finding.details);
        }
        for skipped in &report.skipped {
            println!("skipped: {skipped}");
        }
        let checked: Vec<String> = report
            .checked
            .iter()
            .map(|(check, n)| format!("{check}={n}"))
            .collect();
        println!(
            "rootcheck: {} findings in {} ms ({} ms paused); examined {}",
            report.findings.len(),
            report.duration.as_millis(),
            report.paused.as_millis(),
            checked.join(" ")
        );
        Ok(ExitCode::SUCCESS)
    }
    #[cfg(not(feature = "rootcheck"))]
    {
        let _ = (path, named);
        Err("this build has no rootcheck module (cargo feature `rootcheck`)".into())
    }
}

fn load(path: &Path) -> Result<Config, String> {
    config::load(path).map_err(|e| e.to_string())
}

fn check_config(path: &Path) -> Result<ExitCode, String> {
    let config = load(path)?;
    let problems = crate::config::module_problems(&config);
    if !problems.is_empty() {
        let lines: Vec<String> = problems
            .iter()
            .map(|(key, reason)| format!("  {key}: {reason}"))
            .collect();
        return Err(format!(
            "{}: module settings are not usable:\n{}",
            path.display(),
            lines.join("\n")
        ));
    }
    println!("{}: configuration is valid", path.display());
    println!(
        "  agent {} (groups: {}), state in {}",
        config.agent.name.as_deref().unwrap_or("-"),
        config.agent.groups.join(","),
        config.agent.state_dir.display()
    );
    println!(
        "  managers {} port {} (keep-alive {} s, reconnect after {} s of silence)",
        config.manager.addresses.join(","),
        config.manager.port,
        config.manager.keepalive_secs,
        config.manager.effective_reconnect_secs()
    );
    Ok(ExitCode::SUCCESS)
}

fn enroll(config: &Config, key: Option<String>, ca: Option<PathBuf>) -> Result<ExitCode, String> {
    let credentials = match (key, ca) {
        (Some(key), Some(ca)) => crate::enroll::import_key(&config.agent.state_dir, &key, &ca)
            .map_err(|e| e.to_string())?,
        _ => smol::block_on(crate::enroll::enroll_and_save(config)).map_err(|e| e.to_string())?,
    };
    println!(
        "enrolled as agent {:03} ({}); credentials in {}",
        credentials.agent_id,
        credentials.name,
        config.agent.state_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_agent(path: &Path) -> Result<ExitCode, String> {
    let config = load(path)?;
    match crate::agent::run(config).map_err(|e| e.to_string())? {
        crate::agent::Exit::Stopped => Ok(ExitCode::SUCCESS),
        crate::agent::Exit::Restart(RestartMode::Exit) => {
            Ok(ExitCode::from(config::RESTART_EXIT_CODE as u8))
        }
        crate::agent::Exit::Restart(RestartMode::Reexec) => Err(reexec()),
    }
}

/// Replaces this process with a fresh copy of the agent, same arguments and environment.
fn reexec() -> String {
    use std::os::unix::process::CommandExt;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let error = std::process::Command::new("/proc/self/exe")
        .args(args)
        .exec();
    format!("restart failed: cannot re-execute the agent: {error}")
}

#[cfg(feature = "demo")]
fn demo() -> Result<ExitCode, String> {
    demo::run()
}

#[cfg(not(feature = "demo"))]
fn demo() -> Result<ExitCode, String> {
    Err("this build has no demo (the gateway build leaves the manager out); build with the `demo` feature".into())
}
