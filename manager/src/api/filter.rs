//! Choosing and ordering agents for the list and delete endpoints: the field filters (`status`,
//! `name`, `group`, …, `older_than`), `search`, `q`, `sort` and `select` validation.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::qlang::{self, order_values, version_numbers, Expr};
use super::query::{timeframe_secs, Query};
use super::reply::ApiError;
use super::view::{field, FIELDS};
use crate::model::parse_time_secs;

/// Parameters that keep agents whose field equals the value.
pub(crate) const FIELD_FILTERS: [&str; 11] = [
    "os.platform",
    "os.version",
    "os.name",
    "manager",
    "version",
    "group",
    "node_name",
    "name",
    "ip",
    "registerIP",
    "group_config_status",
];

/// The statuses an agent can have.
const STATUSES: [&str; 4] = ["active", "pending", "never_connected", "disconnected"];

/// The filters of one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    statuses: Option<Vec<String>>,
    exact: Vec<(&'static str, String)>,
    older_than: Option<(u64, String)>,
    q: Option<Expr>,
    search: Option<(String, bool)>,
}

impl Filters {
    /// Reads the filters from `query`. `status=all` is accepted when `allow_all`; `older_than`
    /// falls back to `default_older_than`.
    pub(crate) fn from_query(
        query: &Query,
        allow_all: bool,
        default_older_than: Option<&str>,
    ) -> Result<Filters, ApiError> {
        let mut f = Filters::default();
        if let Some(statuses) = query.list("status")? {
            for s in &statuses {
                let known = STATUSES.contains(&s.as_str()) || (allow_all && s == "all");
                if !known {
                    return Err(ApiError::bad_request(format!(
                        "'{s}' is not one of {}{} (parameter status)",
                        STATUSES.join(", "),
                        if allow_all { ", all" } else { "" }
                    )));
                }
            }
            if !statuses.iter().any(|s| s == "all") && !statuses.is_empty() {
                f.statuses = Some(statuses);
            }
        }
        for name in FIELD_FILTERS {
            if let Some(value) = query.get(name) {
                if name == "group_config_status" && !["synced", "not synced"].contains(&value) {
                    return Err(ApiError::bad_request(format!(
                        "'{value}' is not one of synced, not synced (parameter group_config_status)"
                    )));
                }
                f.exact.push((name, value.to_string()));
            }
        }
        if let Some(text) = query.get("older_than").or(default_older_than) {
            let secs = timeframe_secs(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "'{text}' does not match '^\\d+[dhmsw]?$' (parameter older_than)"
                ))
            })?;
            f.older_than = Some((secs, text.to_string()));
        }
        // An empty `q` filters nothing, like an absent one.
        if let Some(q) = query.get("q").filter(|q| !q.is_empty()) {
            f.q = Some(qlang::parse(q)?);
        }
        if let Some(search) = query.get("search") {
            f.search = Some(match search.strip_prefix('-') {
                Some(rest) => (rest.to_lowercase(), true),
                None => (search.to_lowercase(), false),
            });
        }
        Ok(f)
    }

    /// Whether `object` passes every filter at `now_secs`.
    pub(crate) fn matches(&self, object: &Map<String, Value>, now_secs: i64) -> bool {
        let text = |name: &str| field(object, name).map(text_of);
        if let Some(statuses) = &self.statuses {
            if !text("status").is_some_and(|s| statuses.contains(&s)) {
                return false;
            }
        }
        for (name, wanted) in &self.exact {
            let ok = match (*name, field(object, name)) {
                (_, None) => false,
                ("group", Some(Value::Array(groups))) => {
                    groups.iter().any(|g| g == wanted.as_str())
                }
                ("version", Some(v)) => version_numbers(&text_of(v)) == version_numbers(wanted),
                (_, Some(v)) => text_of(v) == *wanted,
            };
            if !ok {
                return false;
            }
        }
        if let Some((secs, _)) = self.older_than {
            let seen = text("lastKeepAlive").or_else(|| text("dateAdd"));
            let age = seen
                .and_then(|t| parse_time_secs(&t))
                .map(|t| now_secs.saturating_sub(t));
            if age.is_none_or(|age| age < i64::try_from(secs).unwrap_or(i64::MAX)) {
                return false;
            }
        }
        if let Some(q) = &self.q {
            if !qlang::eval(q, object, now_secs) {
                return false;
            }
        }
        if let Some((term, negate)) = &self.search {
            if contains_text(&Value::Object(object.clone()), term) == *negate {
                return false;
            }
        }
        true
    }

    /// The requirements, for the 1731 failure of an agent that does not meet them.
    pub(crate) fn describe(&self) -> String {
        let statuses = self
            .statuses
            .as_ref()
            .map_or("all".to_string(), |s| s.join(", "));
        let older = self
            .older_than
            .as_ref()
            .map_or("0s".to_string(), |(_, text)| text.clone());
        format!("some of the requirements are not met -> status: {statuses}, older_than: {older}")
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether any text or number inside `value` contains `term` (already lower case).
fn contains_text(value: &Value, term: &str) -> bool {
    match value {
        Value::Object(map) => map.values().any(|v| contains_text(v, term)),
        Value::Array(items) => items.iter().any(|v| contains_text(v, term)),
        Value::String(s) => s.to_lowercase().contains(term),
        Value::Number(n) => n.to_string().contains(term),
        _ => false,
    }
}

/// Checks `select` fields (error 1724 names the first unknown one).
pub(crate) fn check_select(fields: &[String]) -> Result<(), ApiError> {
    match fields.iter().find(|f| !FIELDS.contains(&f.as_str())) {
        None => Ok(()),
        Some(bad) => Err(ApiError::wazuh(
            1724,
            Some(format!(
                "{bad}. Allowed select fields: {}",
                FIELDS.join(", ")
            )),
        )),
    }
}

/// Parses `sort` (`+name,-id`; a `+` may arrive decoded as a space) into (field, descending).
pub(crate) fn parse_sort(text: &str) -> Result<Vec<(String, bool)>, ApiError> {
    let mut keys = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, descending) = match item.strip_prefix('-') {
            Some(rest) => (rest, true),
            None => (item.trim_start_matches('+'), false),
        };
        if !FIELDS.contains(&name) || name == "os" {
            return Err(ApiError::wazuh(
                1403,
                Some(format!(
                    "{name}. Allowed sort fields: {}",
                    FIELDS.join(", ")
                )),
            ));
        }
        keys.push((name.to_string(), descending));
    }
    Ok(keys)
}

/// Sorts agent objects by `keys`, then by id. A missing value sorts first, as SQL's NULL.
pub(crate) fn sort(objects: &mut [Map<String, Value>], keys: &[(String, bool)]) {
    let sort_text = |v: &Value| match v {
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(","),
        other => text_of(other),
    };
    objects.sort_by(|a, b| {
        for (name, descending) in keys {
            let ordering = match (field(a, name), field(b, name)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => order_values(name, &sort_text(x), &sort_text(y)),
            };
            let ordering = if *descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        let id = |o: &Map<String, Value>| o.get("id").map(text_of).unwrap_or_default();
        order_values("id", &id(a), &id(b))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn filters(q: &str) -> Filters {
        Filters::from_query(&Query::parse(q).unwrap(), true, None).unwrap()
    }

    #[test]
    fn statuses_are_ored_and_all_means_any() {
        let a = obj(json!({"id": "001", "status": "active"}));
        let d = obj(json!({"id": "002", "status": "disconnected"}));
        let f = filters("status=active,never_connected");
        assert!(f.matches(&a, 0) && !f.matches(&d, 0));
        assert!(filters("status=all").matches(&d, 0));
        assert!(Filters::from_query(&Query::parse("status=all").unwrap(), false, None).is_err());
        assert!(Filters::from_query(&Query::parse("status=zombie").unwrap(), true, None).is_err());
    }

    #[test]
    fn search_looks_in_every_field_and_minus_negates() {
        let a = obj(json!({"id": "001", "name": "Edge-7", "group": ["lab"]}));
        assert!(filters("search=edge").matches(&a, 0));
        assert!(filters("search=LAB").matches(&a, 0));
        assert!(!filters("search=-lab").matches(&a, 0));
        assert!(filters("search=-core").matches(&a, 0));
    }

    #[test]
    fn older_than_uses_the_keepalive_or_else_the_registration() {
        let now = 1_700_000_000;
        let never = obj(json!({"id": "001", "dateAdd": "2023-11-01T00:00:00+00:00"}));
        let fresh = obj(
            json!({"id": "002", "dateAdd": "2023-11-01T00:00:00+00:00", "lastKeepAlive": "2023-11-14T22:13:00+00:00"}),
        );
        let f = filters("older_than=1d");
        assert!(f.matches(&never, now));
        assert!(!f.matches(&fresh, now));
        assert!(filters("older_than=0s").matches(&fresh, now));
    }

    #[test]
    fn sort_is_numeric_for_ids_and_missing_values_come_first() {
        let mut list = vec![
            obj(json!({"id": "1000", "name": "b"})),
            obj(json!({"id": "002"})),
            obj(json!({"id": "010", "name": "a"})),
        ];
        sort(&mut list, &[]);
        let ids: Vec<&str> = list.iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["002", "010", "1000"]);
        sort(&mut list, &parse_sort("-name").unwrap());
        let ids: Vec<&str> = list.iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["1000", "010", "002"]);
    }

    #[test]
    fn unknown_sort_and_select_fields_carry_their_codes() {
        assert_eq!(parse_sort("+nope").unwrap_err().code, Some(1403));
        assert_eq!(
            parse_sort(" name,-id").unwrap(),
            vec![("name".into(), false), ("id".into(), true)]
        );
        assert_eq!(
            check_select(&["internal_key".into()]).unwrap_err().code,
            Some(1724)
        );
        assert!(check_select(&["os.name".into(), "group".into()]).is_ok());
    }
}
