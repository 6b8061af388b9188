//! What the API answers: the `problem+json` errors with Wazuh's titles and codes, and the two
//! success envelopes (`{data, error}` and the collection of affected and failed items).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::http::Response;

/// Content type of every JSON success.
pub(crate) const JSON: &str = "application/json";
/// Content type of every error.
pub(crate) const PROBLEM: &str = "application/problem+json; charset=utf-8";

/// An error answered as `problem+json`: `title`, `detail`, then `remediation` and the Wazuh code
/// `error` when there are any (schema errors and 401s have neither, as in Wazuh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub title: &'static str,
    pub detail: String,
    pub remediation: Option<&'static str>,
    pub code: Option<u32>,
    /// Extra headers (`Allow` on a 405).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    fn new(status: u16, title: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            title,
            detail: detail.into(),
            remediation: None,
            code: None,
            headers: Vec::new(),
        }
    }

    /// A malformed request, as the schema validation reports it (400, no code).
    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "Bad Request", detail)
    }

    /// A 401 with one of Wazuh's three details.
    pub(crate) fn unauthorized(detail: &'static str) -> Self {
        Self::new(401, "Unauthorized", detail)
    }

    /// 404 for a path the API does not have.
    pub(crate) fn not_found() -> Self {
        Self::new(404, "Not Found", "404: Not Found")
    }

    /// 405 for a known path and another method; `allow` lists the methods it has.
    pub(crate) fn method_not_allowed(allow: &[&str]) -> Self {
        let mut e = Self::new(405, "Method Not Allowed", "405: Method Not Allowed");
        e.headers.push(("Allow", allow.join(", ")));
        e
    }

    /// A request the connection layer refused (oversized, too slow, chunked).
    pub(crate) fn transport(status: u16, detail: String) -> Self {
        Self::new(status, super::http::reason(status), detail)
    }

    /// The Wazuh error `code`, with `extra` appended to its message as `message: extra`. The
    /// status and title follow the code's class (most are 400 Bad Request).
    pub(crate) fn wazuh(code: u32, extra: Option<String>) -> Self {
        let (message, remediation) = describe(code);
        let detail = match extra {
            Some(extra) => format!("{message}: {extra}"),
            None => message.to_string(),
        };
        let (status, title) = match code {
            1000 | 1725 => (500, "Wazuh Internal Error"),
            6000 => (403, "Permission Denied"),
            6002 => (406, "Not Acceptable"),
            _ => (400, "Bad Request"),
        };
        ApiError {
            remediation,
            code: Some(code),
            ..Self::new(status, title, detail)
        }
    }

    /// An internal failure (the store): logged, answered as 500 without its details.
    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        log::error!("api: {what}");
        Self::wazuh(1000, None)
    }

    /// The `problem+json` response.
    pub(crate) fn response(&self, pretty: bool) -> Response {
        let mut body = Map::new();
        body.insert("title".into(), self.title.into());
        body.insert("detail".into(), self.detail.clone().into());
        if let Some(r) = self.remediation {
            body.insert("remediation".into(), r.into());
        }
        if let Some(code) = self.code {
            body.insert("error".into(), code.into());
        }
        Response {
            status: self.status,
            content_type: PROBLEM,
            headers: self.headers.clone(),
            body: render(&Value::Object(body), pretty),
        }
    }
}

/// Message and remediation of the Wazuh error codes this API uses.
pub(crate) fn describe(code: u32) -> (&'static str, Option<&'static str>) {
    const LIST_AGENTS: &str =
        "Please, use `GET /agents?select=id,name` to find all available agents";
    match code {
        1000 => ("Wazuh Internal Error", Some("See the manager's log for details")),
        1018 => ("Body request is not a valid JSON", None),
        1403 => ("Not a valid sort field", Some("Please, use only allowed sort fields")),
        1407 => ("Query does not match expected format", None),
        1408 => ("Field does not exist", None),
        1409 => ("Invalid query operator", None),
        1412 => (
            "Date filter not valid. Valid formats are YYYY-MM-DD, YYYY-MM-DD HH:MM:SS, YYYY-MM-DDTHH:MM:SSZ or a timeframe such as 7d",
            None,
        ),
        1701 => ("Agent does not exist", Some(LIST_AGENTS)),
        1703 => ("Action not available for Manager (agent 000)", None),
        1705 => ("There is an agent with the same name", Some("Please choose another name")),
        1706 => (
            "There is an agent with the same IP or the IP is invalid",
            Some("Please choose another IP"),
        ),
        1707 => (
            "Cannot send request, agent is not active",
            Some("Please, check non-active agents connection and try again"),
        ),
        1708 => ("There is an agent with the same ID", Some("Please choose another ID")),
        1709 => ("Too short key size (64 chars needed)", None),
        1724 => ("Not a valid select field", None),
        1725 => ("Error registering a new agent", None),
        1731 => ("Agent is not eligible for the action to be performed", None),
        1738 => ("Agent name is too long. Max length allowed for agent name is 128", None),
        2007 => (
            "Error retrieving data from Wazuh DB",
            Some("The agent has never connected, so it has not sent this information"),
        ),
        6000 => (
            "Limit of login attempts reached. The current IP has been blocked due to a high number of login attempts",
            None,
        ),
        6002 => ("The body type is not the one specified in the content-type", None),
        _ => ("Unknown error", None),
    }
}

/// JSON bytes, indented by 3 spaces (Wazuh's `pretty=true`) or compact.
pub(crate) fn render(value: &Value, pretty: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let written = if pretty {
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"   ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        value.serialize(&mut ser)
    } else {
        serde_json::to_writer(&mut out, value)
    };
    // Serializing a `Value` into memory cannot fail (its keys are strings).
    if written.is_err() {
        out.clear();
    }
    out
}

/// A 200 JSON response.
pub(crate) fn ok_json(value: &Value, pretty: bool) -> Response {
    Response {
        status: 200,
        content_type: JSON,
        headers: Vec::new(),
        body: render(value, pretty),
    }
}

/// The simple envelope `{"data": …, "error": 0}`.
pub(crate) fn simple(data: Value) -> Value {
    json!({ "data": data, "error": 0 })
}

/// The three messages of a collection endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Messages {
    /// Nothing failed.
    pub all: &'static str,
    /// Some failed.
    pub some: &'static str,
    /// Nothing was affected.
    pub none: &'static str,
}

/// Items affected and failed by one request, rendered as Wazuh's collection envelope.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub affected: Vec<Value>,
    /// Total of affected items before paging (defaults to `affected.len()`).
    pub total: Option<usize>,
    /// (Wazuh error code, detail appended to its message, item id).
    pub failed: Vec<(u32, Option<String>, String)>,
}

impl Outcome {
    /// Records a failed item.
    pub(crate) fn fail(&mut self, code: u32, id: impl Into<String>) {
        self.failed.push((code, None, id.into()));
    }

    /// Records a failed item whose error message gets `: extra` appended.
    pub(crate) fn fail_with(&mut self, code: u32, extra: String, id: impl Into<String>) {
        self.failed.push((code, Some(extra), id.into()));
    }

    /// The envelope: `data{affected_items, total_affected_items, total_failed_items,
    /// failed_items}`, `message`, and `error` 0 (complete), 1 (all failed) or 2 (partial).
    pub(crate) fn envelope(self, messages: Messages) -> Value {
        let total = self.total.unwrap_or(self.affected.len());
        let failed_total = self.failed.len();
        let mut groups: BTreeMap<(u32, Option<String>), Vec<String>> = BTreeMap::new();
        for (code, extra, id) in self.failed {
            groups.entry((code, extra)).or_default().push(id);
        }
        let failed_items: Vec<Value> = groups
            .into_iter()
            .map(|((code, extra), mut ids)| {
                ids.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.clone()));
                ids.dedup();
                let (message, remediation) = describe(code);
                let message = match extra {
                    Some(extra) => format!("{message}: {extra}"),
                    None => message.to_string(),
                };
                let mut error = Map::new();
                error.insert("code".into(), code.into());
                error.insert("message".into(), message.into());
                if let Some(r) = remediation {
                    error.insert("remediation".into(), r.into());
                }
                json!({ "error": error, "id": ids })
            })
            .collect();
        let (message, error) = match (total, failed_total) {
            (0, 0) => (messages.none, 0),
            (_, 0) => (messages.all, 0),
            (0, _) => (messages.none, 1),
            _ => (messages.some, 2),
        };
        json!({
            "data": {
                "affected_items": self.affected,
                "total_affected_items": total,
                "total_failed_items": failed_total,
                "failed_items": failed_items,
            },
            "message": message,
            "error": error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Messages = Messages {
        all: "all",
        some: "some",
        none: "none",
    };

    #[test]
    fn failed_items_are_grouped_by_code_with_ids_sorted_numerically() {
        let mut o = Outcome {
            affected: vec!["002".into()],
            ..Outcome::default()
        };
        o.fail(1707, "010");
        o.fail(1701, "999");
        o.fail(1707, "003");
        let v = o.envelope(M);
        assert_eq!(v["error"], 2);
        assert_eq!(v["message"], "some");
        assert_eq!(v["data"]["total_failed_items"], 3);
        let groups = v["data"]["failed_items"].as_array().unwrap();
        assert_eq!(groups[0]["error"]["code"], 1701);
        assert_eq!(groups[1]["id"], json!(["003", "010"]));
        assert!(groups[1]["error"]["remediation"].is_string());
    }

    #[test]
    fn error_field_follows_the_totals() {
        let only_failed = Outcome {
            failed: vec![(1701, None, "5".into())],
            ..Outcome::default()
        };
        assert_eq!(only_failed.envelope(M)["error"], 1);
        let nothing = Outcome::default().envelope(M);
        assert_eq!(
            (nothing["error"].clone(), nothing["message"].clone()),
            (json!(0), json!("none"))
        );
        let paged = Outcome {
            affected: vec![],
            total: Some(13),
            failed: vec![],
        };
        assert_eq!(paged.envelope(M)["data"]["total_affected_items"], 13);
    }

    #[test]
    fn envelope_keys_keep_wazuh_order() {
        let text = String::from_utf8(render(&Outcome::default().envelope(M), false)).unwrap();
        assert!(text.starts_with(r#"{"data":{"affected_items":[],"total_affected_items":0,"total_failed_items":0,"failed_items":[]},"message""#), "{text}");
    }

    #[test]
    fn problem_has_title_detail_and_code_and_pretty_uses_three_spaces() {
        let r = ApiError::wazuh(1705, Some("web01".into())).response(true);
        assert_eq!((r.status, r.content_type), (400, PROBLEM));
        let text = String::from_utf8(r.body).unwrap();
        assert!(text.starts_with("{\n   \"title\": \"Bad Request\",\n   \"detail\": \"There is an agent with the same name: web01\""), "{text}");
        assert!(text.contains("\"error\": 1705"), "{text}");
    }

    #[test]
    fn unauthorized_has_only_title_and_detail() {
        let r = ApiError::unauthorized("Invalid token").response(false);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"title":"Unauthorized","detail":"Invalid token"}"#
        );
    }
}
