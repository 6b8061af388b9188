//! Query strings: percent-decoding, the parameters an endpoint accepts (any other is a 400, as
//! Wazuh's strict validation does), and typed getters whose errors read like Wazuh's schema errors.
//!
//! Lists (`agents_list`, `select`, `status`) may be comma-separated, repeated, or both.

use super::reply::ApiError;

/// Parameters every endpoint accepts.
pub(crate) const COMMON: [&str; 2] = ["pretty", "wait_for_complete"];

/// Longest timeframe number accepted (about 31 years in seconds), so the arithmetic never overflows.
const MAX_TIMEFRAME_DIGITS: usize = 9;

/// A decoded query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes `a=1&b=x%2Cy` (`+` is a space). Malformed escapes and non-UTF-8 are 400s.
    pub(crate) fn parse(raw: &str) -> Result<Query, ApiError> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Query { pairs })
    }

    /// Refuses any parameter not in `allowed` or [`COMMON`].
    pub(crate) fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        let mut extra: Vec<&str> = self
            .pairs
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !allowed.contains(n) && !COMMON.contains(n))
            .collect();
        extra.dedup();
        if extra.is_empty() {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "Extra query parameter(s) {} not in spec",
                extra.join(", ")
            )))
        }
    }

    /// The value of a parameter (the last one when repeated).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A list parameter: every occurrence, split at commas. An empty entry is a 400.
    pub(crate) fn list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let mut found = false;
        let mut items = Vec::new();
        for (_, value) in self.pairs.iter().filter(|(n, _)| n == name) {
            found = true;
            for item in value.split(',').map(str::trim) {
                if item.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "'' is not a valid item of {name}: expected a comma-separated list"
                    )));
                }
                items.push(item.to_string());
            }
        }
        Ok(found.then_some(items))
    }

    /// A boolean (`true`/`false`, any case); absent is false.
    pub(crate) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "'{v}' is not of type 'boolean' (parameter {name})"
            ))),
        }
    }

    /// `pretty`, read leniently (a malformed value is reported by [`Self::flag`] later).
    pub(crate) fn pretty(&self) -> bool {
        self.flag("pretty").unwrap_or(false)
    }

    /// An integer in `min..=max`, `default` when absent.
    pub(crate) fn integer(
        &self,
        name: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n: u64 = v.parse().map_err(|_| {
            ApiError::bad_request(format!("'{v}' is not of type 'integer' (parameter {name})"))
        })?;
        if n < min {
            return Err(ApiError::bad_request(format!(
                "{n} is less than the minimum of {min} (parameter {name})"
            )));
        }
        if n > max {
            return Err(ApiError::bad_request(format!(
                "{n} is greater than the maximum of {max} (parameter {name})"
            )));
        }
        Ok(n)
    }
}

fn decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request("malformed percent-encoding in the query string")
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("the query string is not UTF-8"))
}

/// A timeframe (`30`, `10s`, `30m`, `12h`, `7d`, `2w`) in seconds.
pub(crate) fn timeframe_secs(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], Some(c)),
        _ => (text, None),
    };
    if digits.is_empty()
        || digits.len() > MAX_TIMEFRAME_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        None | Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        Some('w') => 604_800,
        Some(_) => return None,
    };
    Some(n * scale)
}

/// An agent id as Wazuh's schema accepts it: digits only, at least 3 of them (and at most 9).
pub(crate) fn agent_id(text: &str) -> Result<u32, ApiError> {
    if (3..=9).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(id) = text.parse::<u32>() {
            return Ok(id);
        }
    }
    Err(ApiError::bad_request(format!(
        "'{text}' is not a 'numbers'. Agent ids have at least 3 digits, e.g. 001"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_percent_decoded_and_lists_split_and_merge() {
        let q = Query::parse("select=id%2Cname&select=ip&q=name%3Dgw+1&empty=&gap=1,,2").unwrap();
        assert_eq!(q.list("select").unwrap().unwrap(), vec!["id", "name", "ip"]);
        assert_eq!(q.get("q"), Some("name=gw 1"));
        assert_eq!(q.list("missing").unwrap(), None);
        assert!(q.list("empty").is_err());
        assert!(q.list("gap").is_err());
    }

    #[test]
    fn malformed_escape_is_a_bad_request() {
        assert_eq!(Query::parse("a=%G1").unwrap_err().status, 400);
        assert_eq!(Query::parse("a=%ff").unwrap_err().status, 400);
    }

    #[test]
    fn unknown_parameters_are_refused_but_pretty_and_wait_for_complete_pass() {
        let q = Query::parse("pretty=true&wait_for_complete=false&limit=1&bogus=1").unwrap();
        let err = q.only(&["limit"]).unwrap_err();
        assert!(err.detail.contains("bogus"), "{err:?}");
        assert!(Query::parse("pretty=true&limit=2")
            .unwrap()
            .only(&["limit"])
            .is_ok());
    }

    #[test]
    fn flags_and_integers_are_checked() {
        let q = Query::parse("a=True&b=no&e=&n=0&m=7").unwrap();
        assert!(q.flag("a").unwrap());
        assert!(q.flag("b").is_err());
        assert!(q.flag("e").is_err());
        assert!(!q.flag("c").unwrap());
        assert!(q.integer("n", 500, 1, 100_000).is_err());
        assert_eq!(q.integer("m", 500, 1, 100_000).unwrap(), 7);
        assert_eq!(q.integer("x", 500, 1, 100_000).unwrap(), 500);
    }

    #[test]
    fn timeframes_accept_wazuh_units() {
        assert_eq!(timeframe_secs("7d"), Some(604_800));
        assert_eq!(timeframe_secs("10"), Some(10));
        assert_eq!(timeframe_secs("0s"), Some(0));
        assert_eq!(timeframe_secs("1h"), Some(3600));
        for bad in ["", "d", "1x", "-1d", "1.5h", "99999999999d"] {
            assert_eq!(timeframe_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn agent_ids_need_three_digits() {
        assert_eq!(agent_id("001").unwrap(), 1);
        assert_eq!(agent_id("1234").unwrap(), 1234);
        for bad in ["1", "01", "abc", "00a", "0000000001"] {
            assert!(agent_id(bad).is_err(), "{bad}");
        }
    }
}
