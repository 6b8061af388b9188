//! Paging, sorting, searching and filtering of Wazuh-shaped items, as the API's collection
//! endpoints take them (`offset`, `limit`, `sort`, `search`, `select`, field filters).
//!
//! Items of one agent and one table are few (hundreds to a few thousand), so they are filtered
//! in memory after one SQLite read.

use serde_json::Value;

/// Default page size (the Wazuh API's `limit` default).
pub const DEFAULT_LIMIT: usize = 500;

/// A request for items of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Items to skip. Default 0.
    pub offset: usize,
    /// Items to return at most. Default 500.
    pub limit: usize,
    /// Fields to sort by (dotted paths), each `(field, descending)`; default: storage order.
    pub sort: Vec<(String, bool)>,
    /// Substring that some field must contain (case-insensitive); a leading `-` negates it.
    pub search: Option<String>,
    /// `(dotted field, value)` pairs that must all match exactly (as text).
    pub filters: Vec<(String, String)>,
    /// Fields to keep (dotted paths); empty keeps everything.
    pub select: Vec<String>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            offset: 0,
            limit: DEFAULT_LIMIT,
            sort: Vec::new(),
            search: None,
            filters: Vec::new(),
            select: Vec::new(),
        }
    }
}

/// A page of items and the number of items matched before paging (`total_affected_items`).
#[derive(Debug, Clone, PartialEq)]
pub struct Items {
    pub items: Vec<Value>,
    pub total: u64,
}

/// Why a query could not be answered.
#[derive(Debug)]
pub enum QueryError {
    /// No agent has this id (Wazuh error 1701).
    UnknownAgent(u32),
    /// The collection does not exist (e.g. an unknown syscollector kind or SCA policy).
    UnknownCollection(String),
    /// The store failed.
    Store(crate::ManagerError),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::UnknownAgent(id) => {
                write!(
                    f,
                    "agent {} does not exist",
                    gatewatch_proto::format_agent_id(*id)
                )
            }
            QueryError::UnknownCollection(what) => write!(f, "unknown collection: {what}"),
            QueryError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for QueryError {}

impl From<crate::ManagerError> for QueryError {
    fn from(e: crate::ManagerError) -> Self {
        QueryError::Store(e)
    }
}

/// The value at a dotted path (`local.port`).
pub fn field<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |v, part| v.get(part))
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn contains_text(v: &Value, needle: &str) -> bool {
    match v {
        Value::Object(map) => map.values().any(|v| contains_text(v, needle)),
        Value::Array(items) => items.iter().any(|v| contains_text(v, needle)),
        other => as_text(other).to_lowercase().contains(needle),
    }
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Some(x), Some(y)) => as_text(x).cmp(&as_text(y)),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// Keeps only the selected dotted fields (plus `always`, e.g. the id).
fn project(item: &Value, select: &[String], always: &[&str]) -> Value {
    let mut out = Value::Object(serde_json::Map::new());
    for path in select
        .iter()
        .map(String::as_str)
        .chain(always.iter().copied())
    {
        let Some(v) = field(item, path) else { continue };
        let mut target = &mut out;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let Value::Object(map) = target else { break };
            if i + 1 == parts.len() {
                map.insert(part.to_string(), v.clone());
                break;
            }
            target = map
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
    }
    out
}

impl Query {
    /// Applies filters, search, sort, paging and selection. `always` names fields kept by any
    /// selection.
    pub fn apply(&self, items: Vec<Value>, always: &[&str]) -> Items {
        let needle = self.search.as_ref().map(|s| {
            let negated = s.starts_with('-');
            (negated, s.trim_start_matches('-').to_lowercase())
        });
        let mut matched: Vec<Value> = items
            .into_iter()
            .filter(|item| {
                self.filters
                    .iter()
                    .all(|(path, want)| field(item, path).is_some_and(|v| as_text(v) == *want))
            })
            .filter(|item| match &needle {
                None => true,
                Some((negated, n)) => contains_text(item, n) != *negated,
            })
            .collect();
        if !self.sort.is_empty() {
            matched.sort_by(|a, b| {
                self.sort
                    .iter()
                    .fold(std::cmp::Ordering::Equal, |acc, (path, desc)| {
                        acc.then_with(|| {
                            let o = compare(field(a, path), field(b, path));
                            if *desc {
                                o.reverse()
                            } else {
                                o
                            }
                        })
                    })
            });
        }
        let total = matched.len() as u64;
        let items = matched
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .map(|item| {
                if self.select.is_empty() {
                    item
                } else {
                    project(&item, &self.select, always)
                }
            })
            .collect();
        Items { items, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items() -> Vec<Value> {
        vec![
            json!({"name": "b", "size": 10, "local": {"port": 22}}),
            json!({"name": "a", "size": 2, "local": {"port": 80}}),
            json!({"name": "c", "size": 30, "local": {"port": 22}}),
        ]
    }

    #[test]
    fn total_counts_matches_before_paging() {
        let q = Query {
            offset: 1,
            limit: 1,
            sort: vec![("size".into(), false)],
            ..Query::default()
        };
        let page = q.apply(items(), &[]);
        assert_eq!(page.total, 3);
        assert_eq!(
            page.items,
            [json!({"name": "b", "size": 10, "local": {"port": 22}})]
        );
    }

    #[test]
    fn dotted_filters_search_and_select() {
        let q = Query {
            filters: vec![("local.port".into(), "22".into())],
            search: Some("-C".into()),
            select: vec!["local.port".into()],
            ..Query::default()
        };
        let page = q.apply(items(), &["name"]);
        assert_eq!(page.items, [json!({"local": {"port": 22}, "name": "b"})]);
    }
}
