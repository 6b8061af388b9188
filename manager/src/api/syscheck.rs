//! `GET /syscheck/{agent_id}`: the files an agent's FIM module reported, in Wazuh's item shape,
//! with Wazuh's parameters (`file`, `type`, `hash`, `md5`, `sha1`, `sha256`, paging, sort,
//! search, select).

use super::collection::{self, Spec};
use super::http::Response;
use super::query::agent_id;
use super::reply::{ApiError, Messages};
use super::Call;
use crate::fim::SyscheckQuery;
use crate::ManagerError;

const FILES: Spec = Spec {
    paged: true,
    filters: &["file", "type", "md5", "sha1", "sha256", "hash"],
    fields: &[
        "file", "type", "size", "perm", "uid", "gid", "uname", "gname", "inode", "mtime", "date",
        "changes", "md5", "sha1", "sha256",
    ],
    with_scan: false,
    messages: Messages {
        all: "FIM findings of the agent were returned",
        some: "Some FIM findings were not returned",
        none: "No FIM information was returned",
    },
};

/// `GET /syscheck/{agent_id}`. The store filters by type and hashes; paging, sort, search and
/// select then work as on the other collections. (`hash` matches any of the three hashes.)
pub(super) async fn files(call: &Call<'_>, id: &str) -> Result<Response, ApiError> {
    let mut query = FILES.read(call.query)?;
    let id = agent_id(id)?;
    let mut store_query = SyscheckQuery {
        limit: Some(usize::MAX >> 1),
        ..SyscheckQuery::default()
    };
    query.filters.retain(|(name, value)| {
        let slot = match name.as_str() {
            "type" => &mut store_query.file_type,
            "hash" => &mut store_query.hash,
            "md5" => &mut store_query.md5,
            "sha1" => &mut store_query.sha1,
            "sha256" => &mut store_query.sha256,
            _ => return true,
        };
        *slot = Some(value.clone());
        false
    });
    let found = collection::load(call, id, false, move |db| {
        let (entries, _) = db.syscheck(id, &store_query)?;
        let items = entries
            .into_iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ManagerError::Config(format!("cannot encode FIM items: {e}")))?;
        Ok(query.apply(items, &["file"]))
    })
    .await?;
    Ok(FILES.answer(call, id, found))
}
