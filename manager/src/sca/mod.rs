//! Each agent's SCA results, kept from its `sca.*` events and served in the Wazuh API's shape
//! (`GET /sca/{agent_id}` policies, `GET /sca/{agent_id}/checks/{policy_id}` checks).
//!
//! A check event upserts that check; a summary records the policy's counts and, after a full
//! scan (every result resent), drops checks the scan did not mention. The manager recomputes the
//! summary's `hash` from the results it holds and records whether it agrees with the agent's.
//! A `policies` event drops the policies the agent no longer runs.

mod handle;

use crate::inventory::iso_time;
use gatewatch_proto::sca::{CheckResult, ScaCheck, ScaEvent, ScaSummary};
use gatewatch_proto::Payload;
use rusqlite::{params, Connection, Transaction};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Tables of `manager.db` this module owns.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sca_policies (
    agent_id INTEGER NOT NULL,
    policy_id TEXT NOT NULL,
    item TEXT NOT NULL,
    hash TEXT NOT NULL,
    in_sync INTEGER NOT NULL,
    PRIMARY KEY (agent_id, policy_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sca_checks (
    agent_id INTEGER NOT NULL,
    policy_id TEXT NOT NULL,
    check_id INTEGER NOT NULL,
    result TEXT NOT NULL,
    scan_id INTEGER NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (agent_id, policy_id, check_id)
) WITHOUT ROWID;
";

/// Whether the manager's results of a policy agree with the agent's last summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaSyncState {
    pub in_sync: bool,
}

fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Applies a stored event to the SCA tables (inside the store's transaction).
pub(crate) fn apply(
    tx: &Transaction<'_>,
    agent_id: u32,
    kind: &str,
    payload_json: &str,
    _time_ms: u64,
) -> Result<(), String> {
    if !kind.starts_with("sca.") {
        return Ok(());
    }
    let event = match serde_json::from_str::<Payload>(payload_json) {
        Ok(Payload::Sca(event)) => *event,
        Ok(_) => return Ok(()),
        Err(e) => return Err(format!("undecodable SCA payload: {e}")),
    };
    match event {
        ScaEvent::Check(check) => {
            let label = label(&check.result);
            tx.execute(
                "INSERT OR REPLACE INTO sca_checks (agent_id, policy_id, check_id, result, scan_id, item)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    agent_id,
                    check.policy_id,
                    check.id,
                    label,
                    sql_int(check.scan_id),
                    check_item(&check).to_string()
                ],
            )
            .map(|_| ())
            .map_err(|e| format!("storing an SCA check: {e}"))
        }
        ScaEvent::Summary(summary) => apply_summary(tx, agent_id, &summary),
        ScaEvent::Policies { ids } => {
            let held: Vec<String> = {
                let mut stmt = tx
                    .prepare_cached("SELECT policy_id FROM sca_policies WHERE agent_id = ?1")
                    .map_err(|e| e.to_string())?;
                let rows = stmt
                    .query_map([agent_id], |r| r.get(0))
                    .map_err(|e| e.to_string())?;
                rows.collect::<Result<_, _>>().map_err(|e| e.to_string())?
            };
            for gone in held.into_iter().filter(|p| !ids.contains(p)) {
                for sql in [
                    "DELETE FROM sca_policies WHERE agent_id = ?1 AND policy_id = ?2",
                    "DELETE FROM sca_checks WHERE agent_id = ?1 AND policy_id = ?2",
                ] {
                    tx.execute(sql, params![agent_id, gone])
                        .map_err(|e| format!("forgetting a policy: {e}"))?;
                }
            }
            Ok(())
        }
    }
}

fn apply_summary(tx: &Transaction<'_>, agent_id: u32, s: &ScaSummary) -> Result<(), String> {
    if s.full {
        tx.execute(
            "DELETE FROM sca_checks WHERE agent_id = ?1 AND policy_id = ?2 AND scan_id <> ?3",
            params![agent_id, s.policy_id, sql_int(s.scan_id)],
        )
        .map_err(|e| format!("dropping old checks: {e}"))?;
    }
    let own = own_hash(tx, agent_id, &s.policy_id)?;
    let in_sync = own == s.hash;
    if !in_sync {
        log::warn!(
            "agent {}: SCA results of {} differ from the agent's; they converge at its next full scan",
            gatewatch_proto::format_agent_id(agent_id),
            s.policy_id
        );
    }
    let item = json!({
        "policy_id": s.policy_id,
        "name": s.name,
        "description": s.description,
        "references": s.references.join(","),
        "pass": s.passed,
        "fail": s.failed,
        "invalid": s.invalid,
        "total_checks": s.total_checks,
        "score": s.score,
        "start_scan": iso_time(s.start_time),
        "end_scan": iso_time(s.end_time),
        "hash_file": s.hash_file,
    });
    tx.execute(
        "INSERT OR REPLACE INTO sca_policies (agent_id, policy_id, item, hash, in_sync)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![agent_id, s.policy_id, item.to_string(), s.hash, in_sync],
    )
    .map(|_| ())
    .map_err(|e| format!("storing an SCA summary: {e}"))
}

/// SHA-256 over the held results in check-id order, joined with `:` (as the agent computes it).
fn own_hash(conn: &Connection, agent_id: u32, policy_id: &str) -> Result<String, String> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT result FROM sca_checks WHERE agent_id = ?1 AND policy_id = ?2 ORDER BY check_id",
        )
        .map_err(|e| e.to_string())?;
    let mut rows = stmt
        .query(params![agent_id, policy_id])
        .map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut first = true;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let result: String = row.get(0).map_err(|e| e.to_string())?;
        if !first {
            hasher.update(b":");
        }
        first = false;
        if result == "passed" || result == "failed" {
            hasher.update(result.as_bytes());
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn label(result: &CheckResult) -> &'static str {
    match result {
        CheckResult::Passed => "passed",
        CheckResult::Failed => "failed",
        CheckResult::NotApplicable { .. } => "not applicable",
    }
}

/// Wazuh's name for the kind of a rule (`c:` → `command`, …).
fn rule_type(rule: &str) -> &'static str {
    let rule = rule
        .strip_prefix("not ")
        .or_else(|| rule.strip_prefix("NOT "))
        .unwrap_or(rule);
    match rule.trim_start_matches('!').split(':').next() {
        Some("f") => "file",
        Some("d") => "directory",
        Some("p") => "process",
        Some("c") => "command",
        Some("r") => "registry",
        _ => "unknown",
    }
}

/// A check in the shape of Wazuh's `GET /sca/{agent_id}/checks/{policy_id}` items.
fn check_item(c: &ScaCheck) -> Value {
    let mut item = json!({
        "id": c.id,
        "policy_id": c.policy_id,
        "title": c.title,
        "description": c.description,
        "rationale": c.rationale,
        "remediation": c.remediation,
        "references": c.references.join(","),
        "condition": c.condition,
        "file": c.file,
        "directory": c.directory,
        "process": c.process,
        "command": c.command,
        "result": label(&c.result),
        "compliance": c.compliance.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "rules": c.rules.iter().map(|r| json!({"type": rule_type(r), "rule": r})).collect::<Vec<_>>(),
    });
    if let (Value::Object(map), CheckResult::NotApplicable { reason }) = (&mut item, &c.result) {
        map.insert("reason".into(), reason.clone().into());
    }
    if let Value::Object(map) = &mut item {
        map.retain(|_, v| !matches!(v, Value::String(s) if s.is_empty()));
    }
    item
}

/// The policies of an agent (items of `GET /sca/{agent_id}`).
pub(crate) fn policies(conn: &Connection, agent_id: u32) -> Result<Vec<Value>, String> {
    let mut stmt = conn
        .prepare_cached("SELECT item FROM sca_policies WHERE agent_id = ?1 ORDER BY policy_id")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([agent_id], |r| r.get::<_, String>(0))
        .map_err(|e| e.to_string())?;
    rows.map(|r| {
        let text = r.map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("stored policy: {e}"))
    })
    .collect()
}

/// The checks of a policy (items of `GET /sca/{agent_id}/checks/{policy_id}`), by id; `None`
/// when the agent has no such policy.
pub(crate) fn checks(
    conn: &Connection,
    agent_id: u32,
    policy_id: &str,
) -> Result<Option<Vec<Value>>, String> {
    let known: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM sca_policies WHERE agent_id = ?1 AND policy_id = ?2",
            params![agent_id, policy_id],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| e.to_string())?
        > 0;
    if !known {
        return Ok(None);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT item FROM sca_checks WHERE agent_id = ?1 AND policy_id = ?2 ORDER BY check_id",
        )
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map(params![agent_id, policy_id], |r| r.get::<_, String>(0))
        .map_err(|e| e.to_string())?;
    rows.map(|r| {
        let text = r.map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("stored check: {e}"))
    })
    .collect::<Result<Vec<_>, _>>()
    .map(Some)
}

/// Whether the held results of a policy agree with the agent's last summary.
pub(crate) fn sync_state(
    conn: &Connection,
    agent_id: u32,
    policy_id: &str,
) -> Result<Option<ScaSyncState>, String> {
    conn.query_row(
        "SELECT in_sync FROM sca_policies WHERE agent_id = ?1 AND policy_id = ?2",
        params![agent_id, policy_id],
        |r| r.get::<_, i64>(0),
    )
    .map(|v| Some(ScaSyncState { in_sync: v != 0 }))
    .or_else(|e| match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(None),
        e => Err(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_types_follow_the_prefix() {
        assert_eq!(rule_type("not c:sshd -T -> r:x"), "command");
        assert_eq!(rule_type("f:/etc/passwd"), "file");
        assert_eq!(rule_type("d:/etc"), "directory");
        assert_eq!(rule_type("p:sshd"), "process");
    }
}
