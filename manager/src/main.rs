//! `gatewatch-manager`: runs the manager until SIGTERM or SIGINT.
//!
//! Prints `listening events=<addr> enroll=<addr> api=<addr>` on stdout once the ports listen
//! (and, at the first start, the generated API password), and writes the ports to
//! `DIR/manager.ports` (`events=`, `enroll=`, `api=`) for scripts that started it with port 0.

mod logger;

use std::io::Write;
use std::process::ExitCode;

use futures_lite::StreamExt;
use gatewatch_manager::{parse_args, start, Cli, ManagerError, PASSWORD_ENV, USAGE};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (opts, level) = match parse_args(&args, std::env::var(PASSWORD_ENV).ok()) {
        Ok(Cli::Run(opts, level)) => (opts, level),
        Ok(Cli::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gatewatch-manager: {e}");
            return ExitCode::from(2);
        }
    };
    logger::init(level);
    match run(*opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("gatewatch-manager: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: gatewatch_manager::ManagerOptions) -> Result<(), ManagerError> {
    // Signals are registered before the ports open, so an early SIGTERM still shuts down cleanly.
    let mut signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .map_err(|e| ManagerError::Config(format!("cannot watch SIGTERM/SIGINT: {e}")))?;
    let ports_file = opts.data_dir.join("manager.ports");
    let manager = start(opts)?;
    let mut ports = format!(
        "events={}\nenroll={}\n",
        manager.events_addr().port(),
        manager.enroll_addr().port()
    );
    if let Some(api) = manager.api_addr() {
        ports.push_str(&format!("api={}\n", api.port()));
    }
    std::fs::write(&ports_file, ports).map_err(|source| ManagerError::File {
        path: ports_file.clone(),
        what: "cannot write",
        source,
    })?;
    let mut stdout = std::io::stdout().lock();
    let mut line = format!(
        "listening events={} enroll={}",
        manager.events_addr(),
        manager.enroll_addr()
    );
    if let Some(api) = manager.api_addr() {
        line.push_str(&format!(" api={api}"));
    }
    // Shown once, when it is made: afterwards only the 0600 file holds the password.
    if let Some(first) = manager.api_credentials() {
        line.push_str(&format!(
            "\nAPI user {:?} has the password {:?} (also in {})",
            first.user,
            first.password,
            first.file.display()
        ));
    }
    let announced = writeln!(stdout, "{line}").and_then(|_| stdout.flush());
    if let Err(e) = announced {
        log::warn!("cannot write to stdout: {e}");
    }
    drop(stdout);
    match smol::block_on(signals.next()) {
        Some(Ok(signal)) => log::info!("{signal:?}: shutting down"),
        other => log::warn!("signal watch ended ({other:?}): shutting down"),
    }
    manager.shutdown();
    Ok(())
}
