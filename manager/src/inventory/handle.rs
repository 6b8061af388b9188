//! Query functions on [`ManagerHandle`] for the syscollector endpoints. They block on the store
//! thread: call them from a plain thread (or wrap them), not from inside an executor task.

use super::query::{Items, Query, QueryError};
use super::SyncState;
use crate::{ManagerError, ManagerHandle};
use gatewatch_proto::inventory::Table;

/// Fields every selection keeps.
const ALWAYS: &[&str] = &["agent_id"];

impl ManagerHandle {
    /// Items of `kind` (`os`, `hardware`, `packages`, `processes`, `ports`, `netiface`,
    /// `netaddr`, `users`, `groups`) for an agent, in the shape of Wazuh's
    /// `GET /syscollector/{agent_id}/{kind}`. An agent that never sent its inventory has none.
    pub fn syscollector(
        &self,
        agent_id: u32,
        kind: &str,
        query: &Query,
    ) -> Result<Items, QueryError> {
        let table =
            Table::from_name(kind).ok_or_else(|| QueryError::UnknownCollection(kind.into()))?;
        let query = query.clone();
        self.ctx
            .store
            .call_blocking(move |db| {
                if db.agent_credentials(agent_id)?.is_none() {
                    return Ok(Err(QueryError::UnknownAgent(agent_id)));
                }
                let items = super::items(db.conn(), agent_id, table)
                    .map_err(|e| ManagerError::store("cannot read inventory", e))?;
                Ok(Ok(query.apply(items, ALWAYS)))
            })
            .map_err(QueryError::Store)?
    }

    /// Whether the manager's copy of an agent's table agrees with the agent's last checksum
    /// (`None` before the agent reported one).
    pub fn syscollector_sync(
        &self,
        agent_id: u32,
        kind: &str,
    ) -> Result<Option<SyncState>, QueryError> {
        let table =
            Table::from_name(kind).ok_or_else(|| QueryError::UnknownCollection(kind.into()))?;
        self.ctx
            .store
            .call_blocking(move |db| {
                super::sync_state(db.conn(), agent_id, table)
                    .map_err(|e| ManagerError::store("cannot read inventory state", e))
            })
            .map_err(QueryError::Store)
    }
}
