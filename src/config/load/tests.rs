//! Reading files and text: unknown keys, wrong types and syntax errors name the key and line;
//! semantic problems point at the value in the file; missing files.

use crate::config::test_env::vars;
use crate::config::{host_name, load, load_str, load_str_with_env, Config, DEFAULT_CONFIG_PATH};
use std::path::Path;

fn error_of(text: &str) -> String {
    match load_str(text, "/etc/gatewatch/agent.toml") {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

fn loaded(text: &str) -> Config {
    match load_str(text, "agent.toml") {
        Ok(config) => config,
        Err(e) => panic!("unexpected error:\n{e}"),
    }
}

#[test]
fn unknown_key_names_the_dotted_key_its_line_and_the_likely_key() {
    let shown = error_of("[manager]\naddresses = [\"m\"]\nadress = \"m\"\n");
    assert!(
        shown.starts_with(
            "/etc/gatewatch/agent.toml:3:1: key `manager.adress`: unknown key; did you mean \
             `addresses`?"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("known keys here: `addresses`, `port`"),
        "{shown}"
    );
}

#[test]
fn unknown_table_names_the_table_and_its_line() {
    let shown = error_of("\n[managr]\naddresses = [\"m\"]\n");
    assert!(
        shown.starts_with(
            "/etc/gatewatch/agent.toml:2:2: key `managr`: unknown key; did you mean `manager`?"
        ),
        "{shown}"
    );
}

#[test]
fn unknown_dotted_key_names_the_full_path() {
    let shown = error_of("buffer.queue_capacty = 5\n");
    assert!(
        shown.contains(
            ":1:8: key `buffer.queue_capacty`: unknown key; did you mean `queue_capacity`?"
        ),
        "{shown}"
    );
}

#[test]
fn unknown_key_in_an_inline_table_names_the_full_path() {
    let shown = error_of("modules = { generator = { enabled = true, colour = 1 } }\n");
    assert!(
        shown.contains(":1:43: key `modules.generator.colour`: unknown key"),
        "{shown}"
    );
}

#[test]
fn wrong_type_names_the_key_its_value_position_and_the_expected_type() {
    let shown = error_of("[manager]\nport = \"1514\"\n");
    assert_eq!(
        shown,
        "/etc/gatewatch/agent.toml:2:8: key `manager.port`: invalid type: string \"1514\", \
         expected an integer from 0 to 65535"
    );
}

#[test]
fn out_of_range_integer_names_the_key() {
    let shown = error_of("[manager]\nport = 70000\n");
    assert!(shown.contains(":2:8: key `manager.port`: "), "{shown}");
}

#[test]
fn wrong_type_in_an_array_element_names_the_element() {
    let shown = error_of("[manager]\naddresses = [\"m\", 7]\n");
    assert!(
        shown.contains(":2:19: key `manager.addresses[1]`: invalid type"),
        "{shown}"
    );
}

#[test]
fn unknown_choice_names_the_key_and_the_choices() {
    let shown = error_of("[buffer]\nwhen_full = \"drop_newest\"\n");
    assert!(
        shown.contains("key `buffer.when_full`: unknown variant `drop_newest`"),
        "{shown}"
    );
    assert!(shown.contains("`drop_oldest`"), "{shown}");
}

#[test]
fn syntax_error_gives_file_line_and_column() {
    let shown = error_of("[manager]\naddresses = [\"m\"\n");
    assert!(shown.starts_with("/etc/gatewatch/agent.toml:2:"), "{shown}");
    assert_eq!(shown.lines().count(), 1, "{shown}");
}

#[test]
fn semantic_problem_points_at_the_value_in_the_file() {
    let shown = error_of("[manager]\naddresses = [\"m\"]\n\n[buffer]\nqueue_capacity = 0\n");
    assert_eq!(
        shown,
        "/etc/gatewatch/agent.toml:5:18: key `buffer.queue_capacity`: 0 is out of range; must \
         be from 1 to 100000"
    );
}

#[test]
fn semantic_problem_in_a_list_entry_points_at_the_entry() {
    let shown = error_of("[manager]\naddresses = [\"m\", \"a b\"]\n");
    assert!(
        shown.starts_with("/etc/gatewatch/agent.toml:2:19: key `manager.addresses[1]`: "),
        "{shown}"
    );
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let text = "[agent]\nstate_dir = \"rel\"\n[buffer]\nfsync_interval_ms = 0\n";
    let err = load_str(text, "agent.toml").map_err(|e| e.problems().len());
    // No manager address, relative state_dir, fsync interval 0.
    assert_eq!(err.map(|_| ()), Err(3));
}

#[test]
fn missing_manager_says_how_to_set_one() {
    let shown = error_of("");
    assert_eq!(
        shown,
        "/etc/gatewatch/agent.toml: key `manager.addresses`: no manager address; set \
         WAZUH_MANAGER or `[manager] addresses`"
    );
}

#[test]
fn agent_name_defaults_to_the_host_name() {
    let config = loaded("[manager]\naddresses = [\"m\"]\n");
    assert!(config.agent.name.is_some());
    assert_eq!(config.agent.name, host_name());
}

#[test]
fn agent_name_from_the_file_is_kept() {
    let config = loaded("[agent]\nname = \"gw-1\"\n[manager]\naddresses = [\"m\"]\n");
    assert_eq!(config.agent.name.as_deref(), Some("gw-1"));
}

#[test]
fn environment_overrides_the_file() {
    let text = "[manager]\naddresses = [\"file\"]\n";
    let config = load_str_with_env(text, "agent.toml", &vars(&[("WAZUH_MANAGER", "env")]));
    assert_eq!(
        config.map(|c| c.manager.addresses),
        Ok(vec!["env".to_owned()])
    );
}

#[test]
fn load_reads_a_real_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "[manager]\naddresses = [\"m\"]\nport = 1600\n").expect("write");
    let config = load(&path);
    // Only a WAZUH_MANAGER_PORT in the test runner's environment could change the port.
    if std::env::var_os("WAZUH_MANAGER_PORT").is_none() {
        assert_eq!(config.map(|c| c.manager.port), Ok(1600));
    }
}

#[test]
fn errors_from_a_real_file_name_its_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "[manager]\nport = true\n").expect("write");
    let shown = load(&path).map_err(|e| e.to_string());
    let expected = format!("{}:2:8: key `manager.port`: ", path.display());
    assert!(
        matches!(&shown, Err(s) if s.starts_with(&expected)),
        "{shown:?}"
    );
}

#[test]
fn missing_file_given_explicitly_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("absent.toml");
    let err = load(&path).map_err(|e| e.to_string());
    let expected = format!("{}: cannot read the configuration file: ", path.display());
    assert!(
        matches!(&err, Err(s) if s.starts_with(&expected)),
        "{err:?}"
    );
}

#[test]
fn missing_file_at_the_default_path_means_defaults() {
    if Path::new(DEFAULT_CONFIG_PATH).exists() {
        return; // This machine has a real configuration; nothing to show here.
    }
    // Defaults alone lack a manager address, unless the runner's environment gives one; either
    // way the file's absence itself is not the problem.
    if let Err(e) = load(Path::new(DEFAULT_CONFIG_PATH)) {
        let problems: Vec<_> = e.problems().iter().map(|p| p.key.clone()).collect();
        assert!(problems.iter().all(Option::is_some), "{e}");
    }
}
