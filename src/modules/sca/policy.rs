//! The Wazuh SCA policy format: header, requirements, variables and checks.
//!
//! A policy is read twice, each time streaming one check at a time ([`super::yaml`]):
//! [`validate`] reads it whole and refuses it for the same faults Wazuh refuses it for (missing
//! header fields, duplicate or invalid check ids, a check without rules, a rule of unknown type,
//! a bad variable name), keeping only the header and the check ids; [`CheckStream`] then hands
//! out the checks for evaluation. Nothing is evaluated before the whole file is known to be good.

use super::pattern::Engine;
use super::rule::Rule;
use super::yaml::{Node, YamlReader};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Most rules in one check (Wazuh's limit).
pub const MAX_RULES: usize = 255;

/// How a check combines its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    All,
    Any,
    None,
}

impl Condition {
    /// Parses Wazuh's spellings (`all required` and `any required` are deprecated aliases).
    pub fn parse(text: &str) -> Option<Condition> {
        match text {
            "all" | "all required" => Some(Condition::All),
            "any" | "any required" => Some(Condition::Any),
            "none" => Some(Condition::None),
            _ => None,
        }
    }

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::All => "all",
            Condition::Any => "any",
            Condition::None => "none",
        }
    }
}

/// The `policy:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub id: String,
    pub file: String,
    pub name: String,
    pub description: String,
    pub references: Vec<String>,
    pub pcre2: bool,
}

/// The `requirements:` section: a check without an id that decides whether the policy applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    pub title: String,
    pub condition: Condition,
    pub rules: Vec<String>,
}

/// One check, as written in the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDef {
    pub id: u32,
    pub title: String,
    pub description: String,
    pub rationale: String,
    pub remediation: String,
    pub references: Vec<String>,
    pub compliance: Vec<(String, String)>,
    /// `Err` with the text when the condition is missing or unknown (the check is then not
    /// applicable, with that reason).
    pub condition: Result<Condition, String>,
    pub pcre2: Option<bool>,
    pub rules: Vec<String>,
}

impl CheckDef {
    /// The regex engine of this check (its own `regex_type`, else the policy's).
    pub fn engine(&self, header: &Header) -> Engine {
        if self.pcre2.unwrap_or(header.pcre2) {
            Engine::Pcre2
        } else {
            Engine::OsRegex
        }
    }
}

/// A validated policy: everything but the checks themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub path: PathBuf,
    pub header: Header,
    pub requirements: Option<Requirements>,
    /// `($name, value)`, longest name first (the order substitution needs).
    pub variables: Vec<(String, String)>,
    /// Check ids in file order.
    pub check_ids: Vec<u32>,
    /// SHA-256 (hex) of the file.
    pub hash_file: String,
}

/// Reads and validates the policy at `path`. `taken_ids` are check ids of policies already
/// loaded (ids must be unique across policies). Calls `pause` after each check, so the caller
/// can yield.
pub async fn validate<F, Fut>(
    path: &Path,
    taken_ids: &[u32],
    mut pause: F,
) -> Result<PolicyInfo, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let hash_file = hash_file(path)?;
    let mut reader = YamlReader::open(path).map_err(|e| e.to_string())?;
    let mut header = None;
    let mut requirements = None;
    let mut variables = Vec::new();
    let mut check_ids: Vec<u32> = Vec::new();
    let mut saw_checks = false;
    while let Some(key) = reader.next_key().map_err(|e| e.to_string())? {
        match key.as_str() {
            "policy" => header = Some(parse_header(&reader.read_node().map_err(|e| e.0)?)?),
            "requirements" => {
                requirements = Some(parse_requirements(&reader.read_node().map_err(|e| e.0)?)?)
            }
            "variables" => variables = parse_variables(&reader.read_node().map_err(|e| e.0)?)?,
            "checks" => {
                saw_checks = true;
                reader.enter_seq().map_err(|e| format!("'checks': {e}"))?;
                while let Some(node) = reader.next_item().map_err(|e| e.to_string())? {
                    let check = parse_check(&node)?;
                    if check_ids.contains(&check.id) {
                        return Err(format!("Found duplicated check ID: {}", check.id));
                    }
                    if taken_ids.contains(&check.id) {
                        return Err(format!(
                            "Found duplicated check ID: {} (used by another policy)",
                            check.id
                        ));
                    }
                    for rule in &check.rules {
                        Rule::check_syntax(rule)
                            .map_err(|e| format!("Invalid check {}: {}", check.id, e.0))?;
                    }
                    check_ids.push(check.id);
                    pause().await;
                }
            }
            _ => reader.skip_node().map_err(|e| e.to_string())?,
        }
    }
    let header = header.ok_or("Section 'policy' not found.")?;
    if !saw_checks {
        return Err("Section 'checks' not found.".into());
    }
    if let Some(req) = &requirements {
        for rule in &req.rules {
            Rule::check_syntax(rule).map_err(|e| format!("Invalid requirement: {}", e.0))?;
        }
    }
    variables.sort_by_key(|(name, _): &(String, String)| std::cmp::Reverse(name.len()));
    Ok(PolicyInfo {
        path: path.to_path_buf(),
        header,
        requirements,
        variables,
        check_ids,
        hash_file,
    })
}

/// The checks of a validated policy, one at a time.
pub struct CheckStream {
    reader: YamlReader,
    done: bool,
}

impl CheckStream {
    /// Opens the policy and moves to its first check.
    pub fn open(info: &PolicyInfo) -> Result<CheckStream, String> {
        let mut reader = YamlReader::open(&info.path).map_err(|e| e.to_string())?;
        while let Some(key) = reader.next_key().map_err(|e| e.to_string())? {
            if key == "checks" {
                reader.enter_seq().map_err(|e| e.to_string())?;
                return Ok(CheckStream {
                    reader,
                    done: false,
                });
            }
            reader.skip_node().map_err(|e| e.to_string())?;
        }
        Err("Section 'checks' not found.".into())
    }

    /// The next check, or `None` after the last.
    pub fn next_check(&mut self) -> Result<Option<CheckDef>, String> {
        if self.done {
            return Ok(None);
        }
        match self.reader.next_item().map_err(|e| e.to_string())? {
            Some(node) => parse_check(&node).map(Some),
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }
}

/// SHA-256 (hex) of a file, read in small pieces.
pub fn hash_file(path: &Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn required<'a>(node: &'a Node, key: &str, section: &str) -> Result<&'a str, String> {
    node.str_at(key)
        .ok_or_else(|| format!("Field '{key}' not found in {section} (or not a string)."))
}

fn strings(node: Option<&Node>) -> Vec<String> {
    match node {
        Some(Node::Seq(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Node::Scalar(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn parse_header(node: &Node) -> Result<Header, String> {
    let regex_type = node.str_at("regex_type").unwrap_or("osregex");
    Ok(Header {
        id: required(node, "id", "policy header")?.to_string(),
        file: required(node, "file", "policy header")?.to_string(),
        name: required(node, "name", "policy header")?.to_string(),
        description: required(node, "description", "policy header")?.to_string(),
        references: strings(node.get("references")),
        pcre2: regex_type == "pcre2",
    })
}

fn parse_requirements(node: &Node) -> Result<Requirements, String> {
    let title = required(node, "title", "requirements")?.to_string();
    required(node, "description", "requirements")?;
    let condition = required(node, "condition", "requirements")?;
    let condition = Condition::parse(condition)
        .ok_or_else(|| format!("Invalid condition '{condition}' in requirements."))?;
    let rules = match node.get("rules") {
        Some(Node::Seq(_)) => rule_strings(node.get("rules"), "requirements")?,
        _ => return Err("Field 'rules' must be an array in requirements.".into()),
    };
    Ok(Requirements {
        title,
        condition,
        rules,
    })
}

fn parse_variables(node: &Node) -> Result<Vec<(String, String)>, String> {
    let Node::Map(entries) = node else {
        return Err("'variables' is not a mapping.".into());
    };
    entries
        .iter()
        .map(|(name, value)| {
            if !name.starts_with('$') {
                return Err(format!("Invalid variable: '{name}'"));
            }
            let value = value
                .as_str()
                .ok_or_else(|| format!("Variable '{name}' is not a string."))?;
            Ok((name.clone(), value.to_string()))
        })
        .collect()
}

fn rule_strings(node: Option<&Node>, what: &str) -> Result<Vec<String>, String> {
    let Some(Node::Seq(items)) = node else {
        return Err(format!("Invalid check {what}: no rules found."));
    };
    if items.is_empty() {
        return Err(format!("Invalid check {what}: no rules found."));
    }
    if items.len() > MAX_RULES {
        return Err(format!(
            "Invalid check {what}: Maximum number of rules is {MAX_RULES}."
        ));
    }
    items
        .iter()
        .map(|i| match i.as_str() {
            Some("") | None => Err(format!("Invalid check {what}: Empty rule.")),
            Some(s) => Ok(s.to_string()),
        })
        .collect()
}

/// Parses one check; faults that make Wazuh refuse the policy are errors.
pub fn parse_check(node: &Node) -> Result<CheckDef, String> {
    let id = node.str_at("id").ok_or("Check ID not found.")?;
    let id = id
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("Invalid check ID: {id}"))?;
    let what = id.to_string();
    let rules = rule_strings(node.get("rules"), &what)?;
    let text = |key: &str| node.str_at(key).unwrap_or_default().to_string();
    let condition = match node.str_at("condition") {
        Some(c) => Condition::parse(c).ok_or_else(|| format!("Check condition ({c}) is invalid.")),
        None => Err("Check condition not found.".to_string()),
    };
    let pcre2 = node.str_at("regex_type").map(|t| t == "pcre2");
    Ok(CheckDef {
        id,
        title: text("title"),
        description: text("description"),
        rationale: text("rationale"),
        remediation: text("remediation"),
        references: strings(node.get("references")),
        compliance: compliance(node.get("compliance")),
        condition,
        pcre2,
        rules,
    })
}

/// `compliance: [{cis: ["1.1", "1.2"]}, …]` → `[("cis", "1.1,1.2"), …]`.
fn compliance(node: Option<&Node>) -> Vec<(String, String)> {
    let Some(Node::Seq(items)) = node else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Node::Map(entries) => Some(entries),
            _ => None,
        })
        .flatten()
        .map(|(key, values)| (key.clone(), strings(Some(values)).join(",")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_text(text: &str) -> Result<PolicyInfo, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yml");
        std::fs::write(&path, text).unwrap();
        smol::block_on(validate(&path, &[], || async {}))
    }

    const HEADER: &str = "policy:\n  id: p\n  file: p.yml\n  name: P\n  description: d\n";

    #[test]
    fn variables_after_checks_are_still_applied() {
        let text = format!(
            "{HEADER}checks:\n  - id: 1\n    title: t\n    condition: all\n    rules: ['f:$f']\nvariables:\n  $f: /etc/passwd\n"
        );
        let info = validate_text(&text).unwrap();
        assert_eq!(
            info.variables,
            [("$f".to_string(), "/etc/passwd".to_string())]
        );
        assert_eq!(info.check_ids, [1]);
    }

    #[test]
    fn duplicate_check_ids_refuse_the_policy() {
        let check = "  - id: 7\n    title: t\n    condition: all\n    rules: ['f:/a']\n";
        let text = format!("{HEADER}checks:\n{check}{check}");
        assert!(validate_text(&text).unwrap_err().contains("duplicated"));
    }

    #[test]
    fn unknown_rule_type_refuses_the_policy() {
        let text = format!(
            "{HEADER}checks:\n  - id: 1\n    title: t\n    condition: all\n    rules: ['x:/a']\n"
        );
        assert!(validate_text(&text)
            .unwrap_err()
            .contains("unknown rule type"));
    }

    #[test]
    fn missing_header_field_is_named() {
        let text = "policy:\n  id: p\nchecks: []\n";
        assert!(validate_text(text).unwrap_err().contains("'file'"));
    }

    #[test]
    fn compliance_lists_are_joined_per_standard() {
        let node = Node::Seq(vec![Node::Map(vec![(
            "cis".into(),
            Node::Seq(vec![Node::Scalar("1.1".into()), Node::Scalar("1.2".into())]),
        )])]);
        assert_eq!(
            compliance(Some(&node)),
            [("cis".to_string(), "1.1,1.2".to_string())]
        );
    }
}
