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
    println!("agent:   enrolls with a password, then streams its events; Ctrl-C stops both");
    println!(
        "         (FIM watches {}: change a file there;",
        dir.join("watched").display()
    );
    println!(
        "          the log collector tails {}: append a line;",
        dir.join("demo.log").display()
    );
    println!(
        "          three 'sshd[1]: Failed password for x from 203.0.113.9 port 22' lines there\n\
         \x20          make the active response block 203.0.113.9, in dry run)\n"
    );

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
        config.modules.generator.rate = 1;
        config.modules.generator.body_bytes = 24;
    }
    // Every other module, on this machine, at demo scale.
    config.modules.inventory.enabled = cfg!(feature = "inventory");
    config.modules.command.enabled = cfg!(feature = "command");
    config.modules.command.entries = demo_commands();
    config.modules.fim.enabled = cfg!(feature = "fim");
    config.modules.fim.directories = demo_fim_directories(&state_dir_parent(&config));
    config.modules.logcollector.enabled = cfg!(feature = "logcollector");
    config.modules.logcollector.sources = demo_log_sources(&state_dir_parent(&config));
    // The shipped IoT gateway policy, from the source tree the demo was built from.
    config.modules.sca.enabled = cfg!(feature = "sca");
    config.modules.sca.policies_dir =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/etc/sca"));
    // Active response in dry run: it reports the blocks it would make, and makes none.
    config.modules.response.enabled = cfg!(feature = "response");
    config.modules.response.dry_run = true;
    config.modules.response.rules = demo_response_rules();
    // Containers only where an engine runs: the first of the usual sockets that exists.
    let engine = [
        "/var/run/docker.sock",
        "/run/podman/podman.sock",
        "/var/run/balena-engine.sock",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    match engine {
        Some(socket) if cfg!(feature = "containers") => {
            println!(
                "         (containers: watching the engine at {})",
                socket.display()
            );
            config.modules.containers.enabled = true;
            config.modules.containers.socket = socket;
        }
        _ => println!("         (containers: skipped, no engine socket found)"),
    }
    // One rootkit scan at start with the shipped signatures, then every 12 h.
    config.modules.rootcheck.enabled = cfg!(feature = "rootcheck");
    config.modules.rootcheck.interval_secs = 43_200;
    let rootcheck_db = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/etc/rootcheck"));
    config.modules.rootcheck.rootkit_files = rootcheck_db.join("rootkit_files.txt");
    config.modules.rootcheck.rootkit_trojans = rootcheck_db.join("rootkit_trojans.txt");
    config
}

/// Three failed SSH logins from one address within a minute: a firewall drop for ten minutes.
fn demo_response_rules() -> Vec<crate::modules::response::RuleConfig> {
    let text = r#"name = "sshd-bruteforce"
module = "logcollector"
pattern = 'sshd\[\d+\]: Failed password for .* from (?P<target>[0-9a-fA-F.:]+)'
threshold = 3
window_secs = 60
response = "firewall-drop"
timeout_secs = 600
"#;
    toml::from_str(text)
        .map(|rule| vec![rule])
        .unwrap_or_default()
}

/// A log file of the demo's own: append lines to it to see log events.
fn demo_log_sources(base: &std::path::Path) -> Vec<crate::modules::logcollector::SourceConfig> {
    let log = base.join("demo.log");
    let _ = std::fs::write(&log, "");
    let text = format!("location = \"{}\"\nformat = \"syslog\"\n", log.display());
    toml::from_str(&text)
        .map(|source| vec![source])
        .unwrap_or_default()
}

fn state_dir_parent(config: &Config) -> PathBuf {
    config
        .agent
        .state_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// `uptime` every 30 s, as the seed's "run authorized commands periodically".
fn demo_commands() -> Vec<crate::modules::command::CommandEntry> {
    let text = "name = \"uptime\"\ncommand = [\"uptime\"]\ninterval_secs = 30\n";
    toml::from_str(text)
        .map(|entry| vec![entry])
        .unwrap_or_default()
}

/// A watched folder of the demo's own: touch a file in it to see FIM events.
fn demo_fim_directories(base: &std::path::Path) -> Vec<crate::modules::fim::DirectoryConfig> {
    let watched = base.join("watched");
    let _ = std::fs::create_dir_all(&watched);
    let _ = std::fs::write(watched.join("hello.txt"), "edit me\n");
    let text = format!(
        "path = \"{}\"\nrealtime = true\nreport_changes = true\n",
        watched.display()
    );
    toml::from_str(&text)
        .map(|dir| vec![dir])
        .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_response_rule_parses_and_is_valid() {
        let rules = super::demo_response_rules();
        assert_eq!(rules.len(), 1);
        let config = crate::modules::response::ResponseConfig {
            rules,
            ..Default::default()
        };
        assert_eq!(config.problems(), Vec::new());
    }
}
