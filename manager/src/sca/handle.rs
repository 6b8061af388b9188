//! Query functions on [`ManagerHandle`] for the SCA endpoints. They block on the store thread:
//! call them from a plain thread (or wrap them), not from inside an executor task.

use super::ScaSyncState;
use crate::inventory::query::{Items, Query, QueryError};
use crate::{ManagerError, ManagerHandle};

impl ManagerHandle {
    /// The SCA policies of an agent with their last scan's counts and score, in the shape of
    /// Wazuh's `GET /sca/{agent_id}`.
    pub fn sca_policies(&self, agent_id: u32) -> Result<Items, QueryError> {
        self.sca_policies_query(agent_id, &Query::default())
    }

    /// [`Self::sca_policies`] with paging, sorting, search and filters.
    pub fn sca_policies_query(&self, agent_id: u32, query: &Query) -> Result<Items, QueryError> {
        let query = query.clone();
        self.ctx
            .store
            .call_blocking(move |db| {
                if db.agent_credentials(agent_id)?.is_none() {
                    return Ok(Err(QueryError::UnknownAgent(agent_id)));
                }
                let items = super::policies(db.conn(), agent_id)
                    .map_err(|e| ManagerError::store("cannot read SCA policies", e))?;
                Ok(Ok(query.apply(items, &["policy_id"])))
            })
            .map_err(QueryError::Store)?
    }

    /// The checks of one policy of an agent, in the shape of Wazuh's
    /// `GET /sca/{agent_id}/checks/{policy_id}`.
    pub fn sca_checks(
        &self,
        agent_id: u32,
        policy_id: &str,
        query: &Query,
    ) -> Result<Items, QueryError> {
        let query = query.clone();
        let policy = policy_id.to_string();
        self.ctx
            .store
            .call_blocking(move |db| {
                if db.agent_credentials(agent_id)?.is_none() {
                    return Ok(Err(QueryError::UnknownAgent(agent_id)));
                }
                let checks = super::checks(db.conn(), agent_id, &policy)
                    .map_err(|e| ManagerError::store("cannot read SCA checks", e))?;
                Ok(match checks {
                    Some(items) => Ok(query.apply(items, &["id"])),
                    None => Err(QueryError::UnknownCollection(format!(
                        "SCA policy {policy}"
                    ))),
                })
            })
            .map_err(QueryError::Store)?
    }

    /// Whether the manager's results of a policy agree with the agent's last summary.
    pub fn sca_sync(
        &self,
        agent_id: u32,
        policy_id: &str,
    ) -> Result<Option<ScaSyncState>, QueryError> {
        let policy = policy_id.to_string();
        self.ctx
            .store
            .call_blocking(move |db| {
                super::sync_state(db.conn(), agent_id, &policy)
                    .map_err(|e| ManagerError::store("cannot read SCA state", e))
            })
            .map_err(QueryError::Store)
    }
}
