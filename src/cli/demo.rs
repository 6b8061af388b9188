//! `gatewatch demo`: a manager and an enrolled agent on loopback, in a temporary directory,
//! printing every event as the manager stores it. Ctrl-C stops both.

use crate::config::Config;
use gatewatch_manager::{ManagerOptions, StoredEvent};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs the demo until Ctrl-C.
pub fn run() -> Result<ExitCode, String> {
    let dir = std::env::temp_dir().join(format!("gatewatch-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = run_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(dir: &std::path::Path) -> Result<ExitCode, String> {
    let password = random_password()?;
    let mut options = ManagerOptions::new(dir.join("manager"));
    options.listen_addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    options.events_port = 0;
    options.enroll_port = 0;
    options.names = vec!["127.0.0.1".into()];
    options.password = Some(password.clone());
    options.api = Some(gatewatch_manager::ApiOptions {
        port: 0,
        ..Default::default()
    });
    let manager = gatewatch_manager::start(options).map_err(|e| format!("demo manager: {e}"))?;
    println!("gatewatch demo in {}", dir.display());
    println!(
        "manager: events on {}, enrollment on {}",
        manager.events_addr(),
        manager.enroll_addr()
    );
    if let (Some(api), Some(credentials)) = (manager.api_addr(), manager.api_credentials()) {
        println!(
            "api:     https://{api}/ (user {}, password in {}; CA {})",
            credentials.user,
            credentials.file.display(),
            manager.ca_pem_path().display()
        );
        println!(
            "         curl --cacert {} -u {}:$(cut -d: -f2- {}) -X POST 'https://{api}/security/user/authenticate?raw=true'",
            manager.ca_pem_path().display(),
            credentials.user,
            credentials.file.display()
        );
    }
    println!("agent:   enrolls with a password, then streams its events; Ctrl-C stops both\n");

    let events = manager.subscribe();
    // The printer is part of the demo's manager side, not of the agent.
    std::thread::spawn(move || {
        while let Ok(event) = smol::block_on(events.recv()) {
            print_event(&event);
        }
    });

    let config = agent_config(dir.join("agent"), &manager, password);
    let exit = crate::agent::run(config).map_err(|e| format!("demo agent: {e}"));
    manager.shutdown();
    exit.map(|_| ExitCode::SUCCESS)
}

fn agent_config(
    state_dir: PathBuf,
    manager: &gatewatch_manager::ManagerHandle,
    password: String,
) -> Config {
    let mut config = Config::default();
    config.agent.name = Some("demo-gateway".into());
    config.agent.state_dir = state_dir;
    config.manager.addresses = vec!["127.0.0.1".into()];
    config.manager.port = manager.events_addr().port();
    config.manager.keepalive_secs = 5;
    config.enrollment.port = manager.enroll_addr().port();
    config.enrollment.password = Some(password);
    config.enrollment.ca = Some(manager.ca_pem_path());
    #[cfg(feature = "generator")]
    {
        config.modules.generator.enabled = true;
        config.modules.generator.rate = 2;
        config.modules.generator.body_bytes = 24;
    }
    config
}

fn print_event(event: &StoredEvent) {
    println!(
        "agent {:03} {:<14} seq {:>5}  {:<22} {}",
        event.agent_id, event.agent_name, event.seq, event.kind, event.payload_json
    );
}

fn random_password() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut bytes)
        .map_err(|e| format!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}
