//! Scanning one validated policy: requirements, then each check in turn, sending a check event
//! when its result changed (or on a full resend) and a summary at the end.

use super::db::StateDb;
use super::eval::{Evaluator, Inspected};
use super::policy::{CheckDef, CheckStream, Condition, PolicyInfo};
use super::rule::Rule;
use super::Tri;
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::sca::{CheckResult, ScaCheck, ScaEvent, ScaSummary};
use gatewatch_proto::Payload;
use sha2::{Digest, Sha256};

/// Checks evaluated between two writes of their results.
const STORE_EVERY: usize = 32;

/// How a policy scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Scanned; the summary that was sent.
    Scanned(ScaSummary),
    /// The requirements are not met: the policy does not apply to this system.
    NotApplicable(String),
}

/// Where check results go: the module's event queue (or a test's collector).
pub trait Sink {
    /// Sends one event.
    fn send(
        &mut self,
        event: ScaEvent,
    ) -> impl std::future::Future<Output = Result<(), ModuleError>>;
}

impl Sink for &ModuleContext {
    async fn send(&mut self, event: ScaEvent) -> Result<(), ModuleError> {
        ModuleContext::send(self, Payload::Sca(Box::new(event))).await
    }
}

/// Evaluates the rules of a check (or of the requirements) under `condition`.
pub async fn evaluate(
    eval: &mut Evaluator,
    rules: &[Rule],
    condition: Condition,
    seen: &mut Inspected,
) -> Tri {
    let mut acc = match condition {
        Condition::All => Tri::Found,
        Condition::Any | Condition::None => Tri::NotFound,
    };
    for rule in rules {
        let result = eval.rule(rule, seen).await;
        let decisive = match condition {
            Condition::All => result == Tri::NotFound,
            Condition::Any | Condition::None => result == Tri::Found,
        };
        if decisive {
            acc = result;
            break;
        }
        if let Tri::Invalid(why) = result {
            // The first reason is kept: it is the one that made the check undecidable.
            if !matches!(acc, Tri::Invalid(_)) {
                acc = Tri::Invalid(why);
            }
        }
    }
    match (condition, acc) {
        (Condition::None, Tri::Found) => Tri::NotFound,
        (Condition::None, Tri::NotFound) => Tri::Found,
        (_, acc) => acc,
    }
}

/// Scans one policy. `scan_id` identifies the scan round in the events.
pub async fn scan_policy(
    info: &PolicyInfo,
    eval: &mut Evaluator,
    db: &mut StateDb,
    sink: &mut impl Sink,
    scan_id: u64,
    sync_every: u32,
) -> Result<Outcome, ModuleError> {
    let start_time = unix_now();
    if let Some(req) = &info.requirements {
        let rules = parse_all(&req.rules, info, super::pattern::Engine::OsRegex)
            .map_err(ModuleError::from)?;
        let mut seen = Inspected::default();
        if evaluate(eval, &rules, req.condition, &mut seen).await != Tri::Found {
            return Ok(Outcome::NotApplicable(req.title.clone()));
        }
    }
    let policy_id = &info.header.id;
    let state = db.begin_policy(policy_id, &info.hash_file, sync_every)?;
    let mut stream = CheckStream::open(info)?;
    let mut results: Vec<(u32, &'static str)> = Vec::with_capacity(info.check_ids.len());
    let mut pending: Vec<(u32, &'static str)> = Vec::new();
    let (mut passed, mut failed, mut invalid) = (0u32, 0u32, 0u32);
    while let Some(check) = stream.next_check()? {
        let (result, seen) = run_check(eval, info, &check).await;
        let label = label(&result);
        match result {
            CheckResult::Passed => passed += 1,
            CheckResult::Failed => failed += 1,
            CheckResult::NotApplicable { .. } => invalid += 1,
        }
        results.push((check.id, label));
        let stored = db.result(policy_id, check.id)?;
        if state.full || stored.as_deref() != Some(label) {
            sink.send(ScaEvent::Check(check_event(
                info, check, seen, result, scan_id,
            )))
            .await?;
            pending.push((results[results.len() - 1].0, label));
        }
        if pending.len() >= STORE_EVERY {
            db.store_results(policy_id, &pending)?;
            pending.clear();
        }
        futures_lite::future::yield_now().await;
    }
    db.store_results(policy_id, &pending)?;
    let ids: Vec<u32> = results.iter().map(|(id, _)| *id).collect();
    db.keep_only_checks(policy_id, &ids)?;
    results.sort_unstable_by_key(|(id, _)| *id);
    let hash = results_hash(results.iter().map(|(_, label)| *label));
    let scored = passed + failed;
    let summary = ScaSummary {
        scan_id,
        policy_id: policy_id.clone(),
        name: info.header.name.clone(),
        file: info.header.file.clone(),
        description: info.header.description.clone(),
        references: info.header.references.clone(),
        passed,
        failed,
        invalid,
        total_checks: results.len() as u32,
        score: (passed * 100).checked_div(scored).unwrap_or(0),
        start_time,
        end_time: unix_now(),
        hash,
        hash_file: info.hash_file.clone(),
        full: state.full,
    };
    sink.send(ScaEvent::Summary(summary.clone())).await?;
    Ok(Outcome::Scanned(summary))
}

/// SHA-256 (hex) of the results (in check-id order) joined with `:`; not applicable is empty.
pub fn results_hash<'a>(labels: impl Iterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for (i, label) in labels.enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(hash_part(label).as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn hash_part(label: &str) -> &str {
    match label {
        "passed" | "failed" => label,
        _ => "",
    }
}

/// The result as stored and compared: `passed`, `failed`, `not applicable`.
fn label(result: &CheckResult) -> &'static str {
    match result {
        CheckResult::Passed => "passed",
        CheckResult::Failed => "failed",
        CheckResult::NotApplicable { .. } => "not applicable",
    }
}

fn parse_all(
    texts: &[String],
    info: &PolicyInfo,
    engine: super::pattern::Engine,
) -> Result<Vec<Rule>, String> {
    texts
        .iter()
        .map(|t| Rule::parse(t, engine, &info.variables).map_err(|e| e.0))
        .collect()
}

/// Evaluates one check; every check gets a result, or not applicable with the reason.
pub async fn run_check(
    eval: &mut Evaluator,
    info: &PolicyInfo,
    check: &CheckDef,
) -> (CheckResult, Inspected) {
    let mut seen = Inspected::default();
    let condition = match &check.condition {
        Ok(condition) => *condition,
        Err(why) => {
            return (
                CheckResult::NotApplicable {
                    reason: why.clone(),
                },
                seen,
            )
        }
    };
    let rules = match parse_all(&check.rules, info, check.engine(&info.header)) {
        Ok(rules) => rules,
        Err(why) => return (CheckResult::NotApplicable { reason: why }, seen),
    };
    let result = match evaluate(eval, &rules, condition, &mut seen).await {
        Tri::Found => CheckResult::Passed,
        Tri::NotFound => CheckResult::Failed,
        Tri::Invalid(reason) => CheckResult::NotApplicable { reason },
    };
    (result, seen)
}

fn check_event(
    info: &PolicyInfo,
    check: CheckDef,
    seen: Inspected,
    result: CheckResult,
    scan_id: u64,
) -> ScaCheck {
    let condition = match &check.condition {
        Ok(c) => c.as_str().to_string(),
        Err(_) => String::new(),
    };
    ScaCheck {
        scan_id,
        policy_id: info.header.id.clone(),
        policy: info.header.name.clone(),
        id: check.id,
        title: check.title,
        description: check.description,
        rationale: check.rationale,
        remediation: check.remediation,
        compliance: check.compliance,
        references: check.references,
        rules: check.rules,
        condition,
        file: seen.files.join(","),
        directory: seen.dirs.join(","),
        process: seen.processes.join(","),
        command: seen.commands.join(","),
        result,
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_hash_joins_labels_with_colons() {
        let expected = hex::encode(Sha256::digest(b"passed::failed"));
        assert_eq!(
            results_hash(["passed", "not applicable", "failed"].into_iter()),
            expected
        );
    }
}
