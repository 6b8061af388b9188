//! Test helper: an installer environment made of a fixed table, so tests never touch the
//! process environment (tests run in parallel threads that share it).

/// A `vars` closure answering from `pairs`.
pub(super) fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let table: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| {
        table
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}
