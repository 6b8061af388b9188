//! Each semantic rule, on a valid configuration changed in one place; and the password file.

use super::*;
use crate::config::Key;
use std::path::PathBuf;

/// Defaults plus a manager address and a name: valid.
fn valid() -> Config {
    let mut config = Config::default();
    config.manager.addresses = vec!["manager.example".into()];
    config.agent.name = Some("gw-1".into());
    config
}

/// The keys `validate` complains about after `change` is applied to a valid configuration.
fn keys_refused_after(change: impl FnOnce(&mut Config)) -> Vec<String> {
    let mut config = valid();
    change(&mut config);
    match validate(&config) {
        Ok(()) => Vec::new(),
        Err(e) => e
            .problems()
            .iter()
            .map(|p| match &p.key {
                Some(Key::File(key)) => key.clone(),
                other => panic!("problem without a file key: {other:?}"),
            })
            .collect(),
    }
}

/// The single reason `validate` gives after `change`.
fn reason_after(change: impl FnOnce(&mut Config)) -> String {
    let mut config = valid();
    change(&mut config);
    match validate(&config) {
        Ok(()) => panic!("expected a problem"),
        Err(e) => {
            assert_eq!(e.problems().len(), 1, "{e}");
            e.problems()[0].reason.clone()
        }
    }
}

#[test]
fn defaults_with_a_manager_address_are_valid() {
    assert_eq!(validate(&valid()), Ok(()));
}

#[test]
fn unset_agent_name_is_accepted_because_load_fills_it() {
    assert_eq!(
        keys_refused_after(|c| c.agent.name = None),
        Vec::<String>::new()
    );
}

#[test]
fn no_manager_address_says_how_to_set_one() {
    let reason = reason_after(|c| c.manager.addresses.clear());
    assert_eq!(
        reason,
        "no manager address; set WAZUH_MANAGER or `[manager] addresses`"
    );
}

#[test]
fn empty_manager_address_is_refused() {
    let keys = keys_refused_after(|c| c.manager.addresses.push(String::new()));
    assert_eq!(keys, ["manager.addresses[1]"]);
}

#[test]
fn manager_address_with_a_space_is_refused() {
    let keys = keys_refused_after(|c| c.manager.addresses = vec!["a b".into()]);
    assert_eq!(keys, ["manager.addresses[0]"]);
}

#[test]
fn manager_address_with_a_comma_is_refused() {
    let keys = keys_refused_after(|c| c.manager.addresses = vec!["a,b".into()]);
    assert_eq!(keys, ["manager.addresses[0]"]);
}

#[test]
fn port_zero_is_refused_for_manager_and_enrollment() {
    let keys = keys_refused_after(|c| {
        c.manager.port = 0;
        c.enrollment.port = 0;
    });
    assert_eq!(keys, ["manager.port", "enrollment.port"]);
}

#[test]
fn udp_is_refused_as_not_available_in_this_version() {
    let reason = reason_after(|c| c.manager.protocol = Protocol::Udp);
    assert_eq!(reason, "`udp` is not available in this version; use `tcp`");
}

#[test]
fn keepalive_of_zero_is_refused() {
    assert_eq!(
        keys_refused_after(|c| c.manager.keepalive_secs = 0),
        ["manager.keepalive_secs"]
    );
}

#[test]
fn max_frame_bytes_must_be_from_1_kib_to_1_mib() {
    for bad in [1023, 1024 * 1024 + 1] {
        let keys = keys_refused_after(|c| c.manager.max_frame_bytes = bad);
        assert_eq!(keys, ["manager.max_frame_bytes"], "{bad}");
    }
    for good in [1024, 1024 * 1024] {
        assert!(keys_refused_after(|c| c.manager.max_frame_bytes = good).is_empty());
    }
}

#[test]
fn agent_name_must_use_the_wazuh_charset() {
    for bad in ["", "gw 1", "gw/1", "gw,1", "é"] {
        let keys = keys_refused_after(|c| c.agent.name = Some(bad.into()));
        assert_eq!(keys, ["agent.name"], "{bad:?}");
    }
    let good = "Gw-1.site_2";
    assert!(keys_refused_after(|c| c.agent.name = Some(good.into())).is_empty());
}

#[test]
fn agent_name_longer_than_128_is_refused() {
    assert!(keys_refused_after(|c| c.agent.name = Some("a".repeat(128))).is_empty());
    let keys = keys_refused_after(|c| c.agent.name = Some("a".repeat(129)));
    assert_eq!(keys, ["agent.name"]);
}

#[test]
fn groups_must_use_the_same_charset_and_not_be_dot_names() {
    let keys = keys_refused_after(|c| {
        c.agent.groups = vec!["ok".into(), "not ok".into(), "..".into(), String::new()];
    });
    assert_eq!(
        keys,
        ["agent.groups[1]", "agent.groups[2]", "agent.groups[3]"]
    );
}

#[test]
fn relative_state_dir_is_refused() {
    let keys = keys_refused_after(|c| c.agent.state_dir = PathBuf::from("var/lib/gatewatch"));
    assert_eq!(keys, ["agent.state_dir"]);
}

#[test]
fn queue_capacity_must_be_from_1_to_100000() {
    for bad in [0, 100_001] {
        let keys = keys_refused_after(|c| c.buffer.queue_capacity = bad);
        assert_eq!(keys, ["buffer.queue_capacity"], "{bad}");
    }
    assert!(keys_refused_after(|c| c.buffer.queue_capacity = 100_000).is_empty());
}

#[test]
fn spool_segment_below_4096_is_refused() {
    let keys = keys_refused_after(|c| c.buffer.spool_segment_bytes = 4095);
    assert_eq!(keys, ["buffer.spool_segment_bytes"]);
}

#[test]
fn spool_segment_above_half_the_spool_is_refused() {
    let keys = keys_refused_after(|c| {
        c.buffer.spool_max_bytes = 64 * 1024;
        c.buffer.spool_segment_bytes = 32 * 1024 + 1;
    });
    assert_eq!(keys, ["buffer.spool_segment_bytes"]);
    assert!(keys_refused_after(|c| {
        c.buffer.spool_max_bytes = 64 * 1024;
        c.buffer.spool_segment_bytes = 32 * 1024;
    })
    .is_empty());
}

#[test]
fn fsync_interval_of_zero_is_refused() {
    assert_eq!(
        keys_refused_after(|c| c.buffer.fsync_interval_ms = 0),
        ["buffer.fsync_interval_ms"]
    );
}

#[test]
fn password_and_password_file_together_are_refused() {
    let keys = keys_refused_after(|c| {
        c.enrollment.password = Some("p".into());
        c.enrollment.password_file = Some("/etc/gatewatch/authd.pass".into());
    });
    assert_eq!(keys, ["enrollment.password"]);
}

#[test]
fn certificate_without_key_is_refused() {
    let keys = keys_refused_after(|c| c.enrollment.certificate = Some("/c.pem".into()));
    assert_eq!(keys, ["enrollment.key"]);
}

#[test]
fn key_without_certificate_is_refused() {
    let keys = keys_refused_after(|c| c.enrollment.key = Some("/k.pem".into()));
    assert_eq!(keys, ["enrollment.certificate"]);
}

#[test]
fn certificate_with_key_is_accepted() {
    assert!(keys_refused_after(|c| {
        c.enrollment.certificate = Some("/c.pem".into());
        c.enrollment.key = Some("/k.pem".into());
    })
    .is_empty());
}

#[cfg(feature = "generator")]
#[test]
fn module_budget_below_4096_is_refused() {
    assert!(keys_refused_after(|c| c.modules.generator.budget_bytes = 4096).is_empty());
    let keys = keys_refused_after(|c| c.modules.generator.budget_bytes = 4095);
    assert_eq!(keys, ["modules.generator.budget_bytes"]);
}

#[cfg(feature = "generator")]
#[test]
fn generator_body_above_16_kib_is_refused() {
    assert!(keys_refused_after(|c| c.modules.generator.body_bytes = 16384).is_empty());
    let keys = keys_refused_after(|c| c.modules.generator.body_bytes = 16385);
    assert_eq!(keys, ["modules.generator.body_bytes"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let keys = keys_refused_after(|c| {
        c.manager.addresses.clear();
        c.buffer.fsync_interval_ms = 0;
        c.agent.state_dir = PathBuf::from("rel");
    });
    assert_eq!(keys.len(), 3, "{keys:?}");
}

#[test]
fn password_in_the_config_is_the_effective_password() {
    let enrollment = EnrollmentConfig {
        password: Some("topsecret".into()),
        ..EnrollmentConfig::default()
    };
    assert_eq!(
        effective_password(&enrollment),
        Ok(Some("topsecret".into()))
    );
}

#[test]
fn no_password_and_no_file_means_no_password() {
    assert_eq!(effective_password(&EnrollmentConfig::default()), Ok(None));
}

#[test]
fn password_file_gives_its_first_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("authd.pass");
    std::fs::write(&path, "first-line\r\nsecond-line\n").expect("write");
    let enrollment = EnrollmentConfig {
        password_file: Some(path),
        ..EnrollmentConfig::default()
    };
    assert_eq!(
        effective_password(&enrollment),
        Ok(Some("first-line".into()))
    );
}

#[test]
fn password_file_without_newline_is_read_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("authd.pass");
    std::fs::write(&path, "only").expect("write");
    let enrollment = EnrollmentConfig {
        password_file: Some(path),
        ..EnrollmentConfig::default()
    };
    assert_eq!(effective_password(&enrollment), Ok(Some("only".into())));
}

#[test]
fn missing_password_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("absent.pass");
    let enrollment = EnrollmentConfig {
        password_file: Some(path.clone()),
        ..EnrollmentConfig::default()
    };
    let shown = effective_password(&enrollment).map_err(|e| e.to_string());
    let expected = format!(
        "{}: key `enrollment.password_file`: cannot open: ",
        path.display()
    );
    assert!(
        matches!(&shown, Err(s) if s.starts_with(&expected)),
        "{shown:?}"
    );
}

#[test]
fn empty_first_line_of_the_password_file_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("authd.pass");
    std::fs::write(&path, "\nsecret-on-line-two\n").expect("write");
    let enrollment = EnrollmentConfig {
        password_file: Some(path),
        ..EnrollmentConfig::default()
    };
    let shown = effective_password(&enrollment).map_err(|e| e.to_string());
    assert!(
        matches!(&shown, Err(s) if s.contains("first line is empty")),
        "{shown:?}"
    );
    assert!(!format!("{shown:?}").contains("secret-on-line-two"));
}

#[test]
fn overlong_password_line_is_an_error_not_a_truncated_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("authd.pass");
    std::fs::write(&path, "x".repeat(5000)).expect("write");
    let enrollment = EnrollmentConfig {
        password_file: Some(path),
        ..EnrollmentConfig::default()
    };
    let shown = effective_password(&enrollment).map_err(|e| e.to_string());
    assert!(
        matches!(&shown, Err(s) if s.contains("longer than 4096 bytes")),
        "{shown:?}"
    );
}

#[test]
fn module_problems_name_the_keys_of_enabled_modules_only() {
    let mut config = valid();
    config.modules.logcollector.max_line_bytes = 1;
    assert!(
        module_problems(&config).is_empty(),
        "a disabled module's settings are not checked"
    );
    config.modules.logcollector.enabled = true;
    let keys: Vec<String> = module_problems(&config)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert!(
        keys.contains(&"modules.logcollector.max_line_bytes".to_string()),
        "{keys:?}"
    );
}
