//! `GET /sca/{agent_id}` (an agent's SCA policies with their last scan's counts) and
//! `GET /sca/{agent_id}/checks/{policy_id}` (the checks of one policy), with Wazuh's parameters.

use super::collection::{self, Spec};
use super::http::Response;
use super::query::agent_id;
use super::reply::{ApiError, Messages};
use super::Call;
use crate::ManagerError;

/// Longest policy id accepted.
const MAX_POLICY_ID: usize = 255;

const POLICIES: Spec = Spec {
    paged: true,
    filters: &["name", "description", "references"],
    fields: &[
        "policy_id",
        "name",
        "description",
        "references",
        "pass",
        "fail",
        "invalid",
        "total_checks",
        "score",
        "start_scan",
        "end_scan",
        "hash_file",
    ],
    with_scan: false,
    messages: Messages {
        all: "All selected SCA information was returned",
        some: "Some SCA information was not returned",
        none: "No SCA information was returned",
    },
};

const CHECKS: Spec = Spec {
    paged: true,
    filters: &[
        "title",
        "description",
        "rationale",
        "remediation",
        "command",
        "reason",
        "file",
        "process",
        "directory",
        "registry",
        "references",
        "result",
        "condition",
    ],
    fields: &[
        "id",
        "policy_id",
        "title",
        "description",
        "rationale",
        "remediation",
        "references",
        "condition",
        "file",
        "directory",
        "process",
        "command",
        "registry",
        "result",
        "reason",
        "compliance",
        "rules",
    ],
    with_scan: false,
    messages: Messages {
        all: "All selected sca/policy information was returned",
        some: "Some sca/policy information was not returned",
        none: "No sca/policy information was returned",
    },
};

/// A policy id as Wazuh's schema takes it: letters, digits, `_`, `-` and `.`.
fn policy_id(text: &str) -> Result<String, ApiError> {
    let ok = (1..=MAX_POLICY_ID).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(text.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "'{text}' does not match '^[A-Za-z0-9_.-]+$' (parameter policy_id)"
        )))
    }
}

/// `GET /sca/{agent_id}`.
pub(super) async fn policies(call: &Call<'_>, id: &str) -> Result<Response, ApiError> {
    let query = POLICIES.read(call.query)?;
    let id = agent_id(id)?;
    let found = collection::load(call, id, false, move |db| {
        let items = crate::sca::policies(db.conn(), id)
            .map_err(|e| ManagerError::store("cannot read SCA policies", e))?;
        Ok(query.apply(items, &["policy_id"]))
    })
    .await?;
    Ok(POLICIES.answer(call, id, found))
}

/// `GET /sca/{agent_id}/checks/{policy_id}`. A policy the agent does not have has no checks (an
/// empty list, as in Wazuh).
pub(super) async fn checks(call: &Call<'_>, id: &str, policy: &str) -> Result<Response, ApiError> {
    let query = CHECKS.read(call.query)?;
    let id = agent_id(id)?;
    let policy = policy_id(policy)?;
    let found = collection::load(call, id, false, move |db| {
        let items = crate::sca::checks(db.conn(), id, &policy)
            .map_err(|e| ManagerError::store("cannot read SCA checks", e))?;
        Ok(query.apply(items.unwrap_or_default(), &["id"]))
    })
    .await?;
    Ok(CHECKS.answer(call, id, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_ids_are_names_without_separators() {
        assert_eq!(policy_id("cis_debian-12.v1").unwrap(), "cis_debian-12.v1");
        for bad in ["", "a/b", "a b", "é"] {
            assert!(policy_id(bad).is_err(), "{bad:?}");
        }
    }
}
