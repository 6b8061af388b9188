//! Each installer variable overrides the file with its Wazuh meaning; defaults when unset;
//! deprecated aliases; bad values name the variable.

use crate::config::test_env::vars;
use crate::config::{host_name, load_str_with_env, Config, ConfigError, Protocol};
use std::path::PathBuf;

/// A file that sets every key a variable can override, to something else.
const FILE: &str = r#"
[agent]
name = "file-name"
groups = ["file-group"]

[manager]
addresses = ["file-manager"]
port = 1600
keepalive_secs = 30
reconnect_secs = 120

[enrollment]
server = "file-registration"
port = 1616
password_file = "/etc/gatewatch/file.pass"
ca = "/file/ca.pem"
certificate = "/file/agent.pem"
key = "/file/agent.key"
"#;

fn load_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_str_with_env(FILE, "agent.toml", &vars(pairs))
}

fn loaded_with(pairs: &[(&str, &str)]) -> Config {
    match load_with(pairs) {
        Ok(config) => config,
        Err(e) => panic!("unexpected error:\n{e}"),
    }
}

fn error_with(pairs: &[(&str, &str)]) -> String {
    match load_with(pairs) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wazuh_manager_replaces_the_addresses_trimmed_without_empties_or_duplicates() {
    let config = loaded_with(&[("WAZUH_MANAGER", " m1.example , 10.0.0.2,,m1.example ")]);
    assert_eq!(config.manager.addresses, ["m1.example", "10.0.0.2"]);
}

#[test]
fn wazuh_manager_port_replaces_the_event_port_only() {
    let config = loaded_with(&[("WAZUH_MANAGER_PORT", "2514")]);
    assert_eq!(config.manager.port, 2514);
    assert_eq!(config.enrollment.port, 1616);
}

#[test]
fn wazuh_protocol_replaces_the_protocol_case_insensitively() {
    let text = "[manager]\naddresses = [\"m\"]\nprotocol = \"udp\"\n";
    let config = load_str_with_env(text, "agent.toml", &vars(&[("WAZUH_PROTOCOL", "TCP")]));
    assert_eq!(config.map(|c| c.manager.protocol), Ok(Protocol::Tcp));
}

#[test]
fn wazuh_protocol_list_with_one_value_per_manager_is_accepted_when_all_agree() {
    let config = loaded_with(&[("WAZUH_MANAGER", "m1,m2"), ("WAZUH_PROTOCOL", "tcp, TCP")]);
    assert_eq!(config.manager.protocol, Protocol::Tcp);
}

#[test]
fn wazuh_protocol_list_with_different_values_is_an_error() {
    let shown = error_with(&[("WAZUH_MANAGER", "m1,m2"), ("WAZUH_PROTOCOL", "tcp,udp")]);
    assert!(shown.contains("variable `WAZUH_PROTOCOL`"), "{shown}");
    assert!(shown.contains("different protocols"), "{shown}");
}

#[test]
fn wazuh_protocol_udp_is_refused_naming_the_variable() {
    let shown = error_with(&[("WAZUH_PROTOCOL", "udp")]);
    assert_eq!(
        shown,
        "environment: variable `WAZUH_PROTOCOL`: `udp` is not available in this version; use `tcp`"
    );
}

#[test]
fn wazuh_protocol_that_is_no_protocol_is_an_error() {
    let shown = error_with(&[("WAZUH_PROTOCOL", "sctp")]);
    assert!(
        shown.contains("variable `WAZUH_PROTOCOL`: `sctp` is not a protocol"),
        "{shown}"
    );
}

#[test]
fn wazuh_registration_server_replaces_the_enrollment_server() {
    let config = loaded_with(&[("WAZUH_REGISTRATION_SERVER", "reg.example")]);
    assert_eq!(config.enrollment.server.as_deref(), Some("reg.example"));
}

#[test]
fn wazuh_registration_port_replaces_the_enrollment_port_only() {
    let config = loaded_with(&[("WAZUH_REGISTRATION_PORT", "2515")]);
    assert_eq!(config.enrollment.port, 2515);
    assert_eq!(config.manager.port, 1600);
}

#[test]
fn wazuh_registration_password_replaces_the_password_file() {
    let config = loaded_with(&[("WAZUH_REGISTRATION_PASSWORD", " pass word ")]);
    // Kept byte for byte: it is compared by the manager.
    assert_eq!(config.enrollment.password.as_deref(), Some(" pass word "));
    assert_eq!(config.enrollment.password_file, None);
}

#[test]
fn wazuh_keep_alive_interval_replaces_the_keepalive() {
    let config = loaded_with(&[("WAZUH_KEEP_ALIVE_INTERVAL", "15")]);
    assert_eq!(config.manager.keepalive_secs, 15);
}

#[test]
fn wazuh_time_reconnect_replaces_the_reconnect_time() {
    let config = loaded_with(&[("WAZUH_TIME_RECONNECT", "90")]);
    assert_eq!(config.manager.reconnect_secs, 90);
}

#[test]
fn wazuh_registration_ca_replaces_the_ca_path() {
    let config = loaded_with(&[("WAZUH_REGISTRATION_CA", "/env/ca.pem")]);
    assert_eq!(config.enrollment.ca, Some(PathBuf::from("/env/ca.pem")));
}

#[test]
fn wazuh_registration_certificate_replaces_the_agent_certificate_path() {
    let config = loaded_with(&[("WAZUH_REGISTRATION_CERTIFICATE", "/env/agent.pem")]);
    assert_eq!(
        config.enrollment.certificate,
        Some(PathBuf::from("/env/agent.pem"))
    );
}

#[test]
fn wazuh_registration_key_replaces_the_agent_key_path() {
    let config = loaded_with(&[("WAZUH_REGISTRATION_KEY", "/env/agent.key")]);
    assert_eq!(config.enrollment.key, Some(PathBuf::from("/env/agent.key")));
}

#[test]
fn wazuh_agent_name_replaces_the_name() {
    let config = loaded_with(&[("WAZUH_AGENT_NAME", "gw-17")]);
    assert_eq!(config.agent.name.as_deref(), Some("gw-17"));
}

#[test]
fn wazuh_agent_group_replaces_the_groups_as_a_comma_list() {
    let config = loaded_with(&[("WAZUH_AGENT_GROUP", "edge, linux,,edge")]);
    assert_eq!(config.agent.groups, ["edge", "linux"]);
}

#[test]
fn any_registration_variable_switches_enrollment_on() {
    let text = "[manager]\naddresses = [\"m\"]\n[enrollment]\nenabled = false\n";
    let config = load_str_with_env(text, "agent.toml", &vars(&[("WAZUH_AGENT_NAME", "gw")]));
    assert_eq!(config.map(|c| c.enrollment.enabled), Ok(true));
}

#[test]
fn defaults_apply_when_no_variable_and_no_key_is_set() {
    let config = load_str_with_env("", "agent.toml", &vars(&[("WAZUH_MANAGER", "m")]));
    let config = config.map_err(|e| e.to_string());
    let Ok(config) = config else {
        panic!("{config:?}")
    };
    assert_eq!(config.manager.port, 1514);
    assert_eq!(config.manager.protocol, Protocol::Tcp);
    assert_eq!(config.enrollment.port, 1515);
    assert_eq!(config.manager.keepalive_secs, 20);
    assert_eq!(config.manager.reconnect_secs, 60);
    assert_eq!(config.agent.name, host_name());
    assert_eq!(config.enrollment.server, None);
    assert!(config.agent.groups.is_empty());
}

#[test]
fn empty_or_blank_variables_count_as_unset() {
    let config = loaded_with(&[
        ("WAZUH_MANAGER", ""),
        ("WAZUH_MANAGER_PORT", "  "),
        ("WAZUH_REGISTRATION_PASSWORD", ""),
    ]);
    assert_eq!(config.manager.addresses, ["file-manager"]);
    assert_eq!(config.manager.port, 1600);
    assert_eq!(config.enrollment.password, None);
}

#[test]
fn each_deprecated_alias_sets_the_key_of_its_new_name() {
    /// Reads the key an alias sets, as text.
    type Read = fn(&Config) -> String;
    let cases: [(&str, &str, Read); 9] = [
        ("WAZUH_MANAGER_IP", "old-m", |c| {
            c.manager.addresses.join(",")
        }),
        ("WAZUH_NOTIFY_TIME", "11", |c| {
            c.manager.keepalive_secs.to_string()
        }),
        ("WAZUH_AUTHD_SERVER", "old-r", |c| {
            c.enrollment.server.clone().unwrap_or_default()
        }),
        ("WAZUH_AUTHD_PORT", "1717", |c| {
            c.enrollment.port.to_string()
        }),
        ("WAZUH_PASSWORD", "old-p", |c| {
            c.enrollment.password.clone().unwrap_or_default()
        }),
        ("WAZUH_GROUP", "old-g", |c| c.agent.groups.join(",")),
        ("WAZUH_CERTIFICATE", "/old/ca", |c| {
            format!("{:?}", c.enrollment.ca)
        }),
        ("WAZUH_PEM", "/old/cert", |c| {
            format!("{:?}", c.enrollment.certificate)
        }),
        ("WAZUH_KEY", "/old/key", |c| {
            format!("{:?}", c.enrollment.key)
        }),
    ];
    for (alias, value, read) in cases {
        let shown = read(&loaded_with(&[(alias, value)]));
        assert!(shown.contains(value), "{alias}: got {shown}");
    }
}

#[test]
fn new_name_wins_over_its_deprecated_alias() {
    let config = loaded_with(&[
        ("WAZUH_MANAGER", "new-m"),
        ("WAZUH_MANAGER_IP", "old-m"),
        ("WAZUH_KEEP_ALIVE_INTERVAL", "12"),
        ("WAZUH_NOTIFY_TIME", "99"),
    ]);
    assert_eq!(config.manager.addresses, ["new-m"]);
    assert_eq!(config.manager.keepalive_secs, 12);
}

#[test]
fn bad_value_in_a_deprecated_alias_names_the_alias() {
    let shown = error_with(&[("WAZUH_AUTHD_PORT", "x")]);
    assert!(shown.contains("variable `WAZUH_AUTHD_PORT`"), "{shown}");
}

#[test]
fn bad_manager_port_names_the_variable() {
    for bad in ["abc", "0", "65536", "-1"] {
        let shown = error_with(&[("WAZUH_MANAGER_PORT", bad)]);
        assert_eq!(
            shown,
            format!(
                "environment: variable `WAZUH_MANAGER_PORT`: must be a port number from 1 to \
                 65535, got `{bad}`"
            )
        );
    }
}

#[test]
fn bad_registration_port_names_the_variable() {
    for bad in ["1515x", "0", "99999"] {
        let shown = error_with(&[("WAZUH_REGISTRATION_PORT", bad)]);
        assert!(
            shown.starts_with("environment: variable `WAZUH_REGISTRATION_PORT`: "),
            "{shown}"
        );
    }
}

#[test]
fn bad_keep_alive_interval_names_the_variable() {
    for bad in ["0", "-5", "1.5", "ten"] {
        let shown = error_with(&[("WAZUH_KEEP_ALIVE_INTERVAL", bad)]);
        assert_eq!(
            shown,
            format!(
                "environment: variable `WAZUH_KEEP_ALIVE_INTERVAL`: must be a whole number of \
                 seconds, at least 1, got `{bad}`"
            )
        );
    }
}

#[test]
fn bad_time_reconnect_names_the_variable() {
    for bad in ["0", "1m"] {
        let shown = error_with(&[("WAZUH_TIME_RECONNECT", bad)]);
        assert!(
            shown.starts_with("environment: variable `WAZUH_TIME_RECONNECT`: "),
            "{shown}"
        );
    }
}

#[test]
fn wazuh_manager_with_no_address_in_the_list_is_an_error() {
    let shown = error_with(&[("WAZUH_MANAGER", " , ,")]);
    assert!(
        shown.contains("variable `WAZUH_MANAGER`: lists no address"),
        "{shown}"
    );
}

#[test]
fn every_bad_variable_is_reported_at_once() {
    let err = load_with(&[("WAZUH_MANAGER_PORT", "x"), ("WAZUH_TIME_RECONNECT", "0")]);
    assert_eq!(err.map_err(|e| e.problems().len()), Err(2));
}

#[test]
fn invalid_value_from_a_variable_is_reported_against_the_variable() {
    let shown = error_with(&[("WAZUH_AGENT_NAME", "bad name")]);
    assert!(
        shown.starts_with("environment: variable `WAZUH_AGENT_NAME`: "),
        "{shown}"
    );
}
