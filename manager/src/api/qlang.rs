//! The `q` query language of Wazuh's list endpoints: `field op value` conditions joined with
//! `;` (and) and `,` (or), grouped with parentheses; `;` binds tighter than `,`, as SQL's AND
//! does over OR. Operators: `=`, `!=`, `<`, `>`, `~` (contains, any case).
//!
//! Parsing checks everything it can (format 1407, field 1408, operator 1409, date 1412), so that
//! evaluation never fails. A missing field matches no condition, as SQL's NULL does.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::query::timeframe_secs;
use super::reply::ApiError;
use super::view::{field, DATE_FIELDS, FIELDS};
use crate::model::parse_time_secs;

/// Longest `q` accepted, and deepest nesting of parentheses.
const MAX_LEN: usize = 4096;
const MAX_DEPTH: usize = 16;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Like,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Cond {
        field: String,
        op: Op,
        value: String,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// Parses `q`.
pub(crate) fn parse(q: &str) -> Result<Expr, ApiError> {
    if q.len() > MAX_LEN {
        return Err(format_error(&format!("longer than {MAX_LEN} characters")));
    }
    let mut p = Parser { text: q, pos: 0 };
    let expr = p.or(0)?;
    if p.pos != q.len() {
        return Err(format_error(&format!("unexpected {:?}", &q[p.pos..])));
    }
    Ok(expr)
}

fn format_error(what: &str) -> ApiError {
    ApiError::wazuh(1407, Some(what.to_string()))
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ApiError> {
        let mut terms = vec![self.and(depth)?];
        while self.peek() == Some(b',') {
            self.pos += 1;
            terms.push(self.and(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ApiError> {
        let mut terms = vec![self.atom(depth)?];
        while self.peek() == Some(b';') {
            self.pos += 1;
            terms.push(self.atom(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn atom(&mut self, depth: usize) -> Result<Expr, ApiError> {
        if self.peek() == Some(b'(') {
            if depth >= MAX_DEPTH {
                return Err(format_error("parentheses nested too deep"));
            }
            self.pos += 1;
            let inner = self.or(depth + 1)?;
            if self.peek() != Some(b')') {
                return Err(format_error("missing ')'"));
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.condition()
    }

    fn condition(&mut self) -> Result<Expr, ApiError> {
        let rest = &self.text[self.pos..];
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
            .count();
        if name_len == 0 {
            return Err(format_error(&format!("expected a field at {:?}", rest)));
        }
        let name = &rest[..name_len];
        let after = &rest[name_len..];
        let (op, op_len) = if after.starts_with("!=") {
            (Op::Ne, 2)
        } else {
            match after.bytes().next() {
                Some(b'=') => (Op::Eq, 1),
                Some(b'<') => (Op::Lt, 1),
                Some(b'>') => (Op::Gt, 1),
                Some(b'~') => (Op::Like, 1),
                _ => {
                    return Err(format_error(&format!(
                        "expected an operator after {name:?}"
                    )))
                }
            }
        };
        let value_start = name_len + op_len;
        let value_len = rest[value_start..]
            .find([';', ',', ')', '('])
            .unwrap_or(rest.len() - value_start);
        let value = &rest[value_start..value_start + value_len];
        check_condition(name, op, value)?;
        self.pos += value_start + value_len;
        Ok(Expr::Cond {
            field: name.to_string(),
            op,
            value: value.to_string(),
        })
    }
}

fn check_condition(name: &str, op: Op, value: &str) -> Result<(), ApiError> {
    if !FIELDS.contains(&name) || name == "os" {
        return Err(ApiError::wazuh(1408, Some(name.to_string())));
    }
    if name == "group" && matches!(op, Op::Lt | Op::Gt) {
        return Err(ApiError::wazuh(
            1409,
            Some(format!("{name} accepts only =, != and ~")),
        ));
    }
    let is_date = DATE_FIELDS.contains(&name);
    if is_date
        && op != Op::Like
        && timeframe_secs(value).is_none()
        && parse_time_secs(value).is_none()
    {
        return Err(ApiError::wazuh(1412, Some(value.to_string())));
    }
    Ok(())
}

/// Whether `object` satisfies `expr` at `now_secs`.
pub(crate) fn eval(expr: &Expr, object: &Map<String, Value>, now_secs: i64) -> bool {
    match expr {
        Expr::And(terms) => terms.iter().all(|t| eval(t, object, now_secs)),
        Expr::Or(terms) => terms.iter().any(|t| eval(t, object, now_secs)),
        Expr::Cond {
            field: name,
            op,
            value,
        } => match field(object, name) {
            None | Some(Value::Null) => false,
            Some(Value::Array(items)) => {
                let any = |op| items.iter().any(|i| compare(name, i, op, value, now_secs));
                match op {
                    Op::Ne => !any(Op::Eq),
                    _ => any(*op),
                }
            }
            Some(actual) => compare(name, actual, *op, value, now_secs),
        },
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Compares one field value with a literal.
pub(crate) fn compare(name: &str, actual: &Value, op: Op, literal: &str, now_secs: i64) -> bool {
    let text = text_of(actual);
    if op == Op::Like {
        return text.to_lowercase().contains(&literal.to_lowercase());
    }
    let ordering = if DATE_FIELDS.contains(&name) {
        match (parse_time_secs(&text), timeframe_secs(literal)) {
            // A timeframe compares ages: `lastKeepAlive<1d` is "less than a day ago".
            (Some(t), Some(age)) => {
                let actual_age = now_secs.saturating_sub(t);
                Some(actual_age.cmp(&i64::try_from(age).unwrap_or(i64::MAX)))
            }
            (Some(t), None) => parse_time_secs(literal).map(|l| t.cmp(&l)),
            (None, _) => None,
        }
    } else {
        Some(order_values(name, &text, literal))
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Gt => ordering == Ordering::Greater,
        Op::Like => false,
    }
}

/// Orders two texts of `name`: numerically for ids and codes, by version number for versions,
/// otherwise as strings.
pub(crate) fn order_values(name: &str, a: &str, b: &str) -> Ordering {
    match name {
        "id" | "status_code" => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        },
        "version" => version_numbers(a).cmp(&version_numbers(b)),
        _ => a.cmp(b),
    }
}

/// The numbers of a version text (`gatewatch v0.10.2` → [0, 10, 2]).
pub(crate) fn version_numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap_or(u64::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn agent(
        id: &str,
        status: &str,
        groups: &[&str],
        keepalive: Option<&str>,
    ) -> Map<String, Value> {
        let mut v =
            json!({"id": id, "name": format!("gw-{id}"), "status": status, "group": groups});
        if let Some(k) = keepalive {
            v["lastKeepAlive"] = k.into();
        }
        v.as_object().unwrap().clone()
    }

    fn matches(q: &str, a: &Map<String, Value>) -> bool {
        eval(&parse(q).unwrap(), a, 1_700_000_000)
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let a = agent("001", "active", &["g1"], None);
        assert!(matches("id=002,id=001;status=active", &a));
        assert!(!matches("(id=002,id=001);status=disconnected", &a));
        assert!(matches("id!=002;(status=active;(group=g2,group=g1))", &a));
    }

    #[test]
    fn ids_compare_as_numbers_and_names_as_text() {
        let a = agent("1000", "active", &[], None);
        assert!(matches("id>999", &a));
        assert!(matches("name~GW-1", &a));
        assert!(!matches("name=GW-1000", &a));
    }

    #[test]
    fn group_conditions_look_inside_the_list() {
        let a = agent("001", "active", &["default", "edge"], None);
        assert!(matches("group=edge", &a));
        assert!(!matches("group!=edge", &a));
        assert!(matches("group!=core", &a));
        assert!(matches("group~dge", &a));
    }

    #[test]
    fn dates_compare_with_timeframes_as_ages_and_with_dates_as_times() {
        let recent = agent("001", "active", &[], Some("2023-11-14T21:00:00+00:00"));
        assert!(matches("lastKeepAlive<1d", &recent));
        assert!(!matches("lastKeepAlive>1d", &recent));
        assert!(matches("lastKeepAlive>2023-11-01", &recent));
        let never = agent("002", "never_connected", &[], None);
        assert!(!matches("lastKeepAlive<1d", &never));
        assert!(!matches("lastKeepAlive>1d", &never));
    }

    #[test]
    fn errors_carry_the_wazuh_codes() {
        let code = |q: &str| parse(q).unwrap_err().code;
        assert_eq!(code("nofield=1"), Some(1408));
        assert_eq!(code("group<a"), Some(1409));
        assert_eq!(code("dateAdd<tomorrow"), Some(1412));
        for bad in ["", "id", "id=1;", "(id=1", "id=1)", "=1", "id=1,,id=2"] {
            assert_eq!(code(bad), Some(1407), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let q = format!("{}id=1{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(parse(&q).unwrap_err().code, Some(1407));
    }

    #[test]
    fn versions_order_by_number() {
        assert_eq!(
            order_values("version", "gatewatch v0.10.0", "gatewatch v0.9.9"),
            Ordering::Greater
        );
    }
}
