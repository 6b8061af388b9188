//! The read-only collection endpoints over per-agent state (syscollector, SCA, …): each is
//! described by a [`Spec`] (its filters, the fields `select` and `sort` accept, its messages);
//! this file reads the request's parameters into the store's item [`ItemQuery`], looks the agent
//! up, and answers in Wazuh's collection envelope.
//!
//! Adding such an endpoint takes a `Spec`, a store read returning [`Found`], and a route.

use super::http::Response;
use super::query::Query;
use super::reply::{ok_json, ApiError, Messages, Outcome};
use super::Call;
use crate::inventory::query::{Items, Query as ItemQuery, DEFAULT_LIMIT};
use crate::store::Db;
use crate::ManagerError;
use gatewatch_proto::format_agent_id;

/// Largest `limit` (as `GET /agents`).
const MAX_LIMIT: u64 = 100_000;
/// Parameters of paged endpoints, besides the filters.
const PAGING: [&str; 4] = ["offset", "limit", "sort", "search"];
/// Fields every item carries (the agent and the scan it came from), when `with_scan`.
const SCAN_FIELDS: [&str; 4] = ["agent_id", "scan", "scan.id", "scan.time"];

/// How one collection endpoint reads its parameters.
#[derive(Debug)]
pub(super) struct Spec {
    /// Whether `offset`, `limit`, `sort` and `search` are accepted (Wazuh's `os` and `hardware`
    /// take only `select`).
    pub paged: bool,
    /// Parameters that keep items whose field (same dotted name) equals the value, as text.
    pub filters: &'static [&'static str],
    /// Fields `select` and `sort` accept (dotted; a parent selects its whole object).
    pub fields: &'static [&'static str],
    /// Whether items also carry `agent_id` and `scan{id,time}` (syscollector items do).
    pub with_scan: bool,
    /// The envelope's messages.
    pub messages: Messages,
}

/// What a store read found for one agent.
#[derive(Debug)]
pub(super) enum Found {
    /// The agent's items (one page, and the count before paging).
    Items(Items),
    /// No agent has this id.
    UnknownAgent,
    /// The agent is registered but never connected, so it has no state to read (Wazuh's 2007).
    NeverConnected,
}

impl Spec {
    fn knows(&self, field: &str) -> bool {
        self.fields.contains(&field) || (self.with_scan && SCAN_FIELDS.contains(&field))
    }

    fn allowed_fields(&self) -> String {
        let mut all: Vec<&str> = self.fields.to_vec();
        if self.with_scan {
            all.extend(SCAN_FIELDS);
        }
        all.join(", ")
    }

    /// Reads the request's parameters (any other is a 400): paging, `sort` (1403 for an unknown
    /// field), `search`, `select` (1724) and the field filters.
    pub(super) fn read(&self, q: &Query) -> Result<ItemQuery, ApiError> {
        let mut allowed = vec!["select"];
        if self.paged {
            allowed.extend(PAGING);
        }
        allowed.extend(self.filters);
        q.only(&allowed)?;
        let mut out = ItemQuery::default();
        if self.paged {
            out.offset = q.integer("offset", 0, 0, u64::from(u32::MAX))? as usize;
            out.limit = q.integer("limit", DEFAULT_LIMIT as u64, 1, MAX_LIMIT)? as usize;
            out.sort = self.sort(q.get("sort").unwrap_or(""))?;
            out.search = q
                .get("search")
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
        for name in self.filters {
            if let Some(value) = q.get(name) {
                out.filters.push((name.to_string(), value.to_string()));
            }
        }
        if let Some(fields) = q.list("select")? {
            if let Some(bad) = fields.iter().find(|f| !self.knows(f)) {
                return Err(ApiError::wazuh(
                    1724,
                    Some(format!(
                        "{bad}. Allowed select fields: {}",
                        self.allowed_fields()
                    )),
                ));
            }
            out.select = fields;
        }
        Ok(out)
    }

    /// `+a,-b` (a `+` may arrive decoded as a space) into (field, descending).
    fn sort(&self, text: &str) -> Result<Vec<(String, bool)>, ApiError> {
        let mut keys = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, descending) = match item.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (item.trim_start_matches('+'), false),
            };
            if !self.knows(name) {
                return Err(ApiError::wazuh(
                    1403,
                    Some(format!(
                        "{name}. Allowed sort fields: {}",
                        self.allowed_fields()
                    )),
                ));
            }
            keys.push((name.to_string(), descending));
        }
        Ok(keys)
    }

    /// The answer: the page, or the agent as a failed item (1701, HTTP 200 as Wazuh's
    /// collection endpoints do), or a 400 with 2007 for a never-connected agent.
    pub(super) fn answer(&self, call: &Call<'_>, id: u32, found: Found) -> Response {
        let mut outcome = Outcome::default();
        match found {
            Found::Items(page) => {
                outcome.total = Some(usize::try_from(page.total).unwrap_or(usize::MAX));
                outcome.affected = page.items;
            }
            Found::UnknownAgent => outcome.fail(1701, format_agent_id(id)),
            Found::NeverConnected => {
                return ApiError::wazuh(2007, Some(format!("agent {}", format_agent_id(id))))
                    .response(call.pretty)
            }
        }
        ok_json(&outcome.envelope(self.messages), call.pretty)
    }
}

/// Whether agent `id` is registered (`None` if not) and whether it ever connected. Agent 000 is
/// the manager: always there, always "connected". Runs on the store thread.
pub(super) fn agent_state(db: &mut Db, id: u32) -> Result<Option<bool>, ManagerError> {
    if id == 0 {
        return Ok(Some(true));
    }
    Ok(db
        .agents()?
        .into_iter()
        .find(|r| r.id == id)
        .map(|r| r.last_keepalive_ms.is_some()))
}

/// Runs `read` (the agent's items, on the store thread) after the agent checks, so that the
/// executor never blocks on SQLite: the same store round trip the other handlers use.
pub(super) async fn load<F>(
    call: &Call<'_>,
    id: u32,
    need_connected: bool,
    read: F,
) -> Result<Found, ApiError>
where
    F: FnOnce(&mut Db) -> Result<Items, ManagerError> + Send + 'static,
{
    call.api
        .ctx
        .store
        .call(move |db| {
            Ok(match agent_state(db, id)? {
                None => Found::UnknownAgent,
                Some(false) if need_connected => Found::NeverConnected,
                Some(_) => Found::Items(read(db)?),
            })
        })
        .await
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        paged: true,
        filters: &["name", "local.port"],
        fields: &["name", "local", "local.port"],
        with_scan: true,
        messages: Messages {
            all: "all",
            some: "some",
            none: "none",
        },
    };

    fn read(spec: &Spec, q: &str) -> Result<ItemQuery, ApiError> {
        spec.read(&Query::parse(q).unwrap())
    }

    #[test]
    fn parameters_become_the_item_query() {
        let q = read(
            &SPEC,
            "offset=2&limit=3&sort=-local.port,+name&search=ssh&local.port=22&select=name,scan.id",
        )
        .unwrap();
        assert_eq!((q.offset, q.limit), (2, 3));
        assert_eq!(
            q.sort,
            vec![("local.port".into(), true), ("name".into(), false)]
        );
        assert_eq!(q.search.as_deref(), Some("ssh"));
        assert_eq!(q.filters, vec![("local.port".into(), "22".into())]);
        assert_eq!(q.select, vec!["name", "scan.id"]);
    }

    #[test]
    fn unknown_sort_and_select_fields_carry_wazuh_codes() {
        assert_eq!(read(&SPEC, "sort=-nope").unwrap_err().code, Some(1403));
        assert_eq!(read(&SPEC, "select=nope").unwrap_err().code, Some(1724));
    }

    #[test]
    fn unpaged_endpoints_refuse_paging_parameters() {
        let unpaged = Spec {
            paged: false,
            filters: &[],
            ..SPEC
        };
        assert!(read(&unpaged, "select=name").is_ok());
        let err = read(&unpaged, "limit=1").unwrap_err();
        assert_eq!((err.status, err.code), (400, None));
        assert_eq!(read(&SPEC, "limit=0").unwrap_err().status, 400);
    }
}
