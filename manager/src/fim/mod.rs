//! Each agent's FIM state, kept from its `fim.*` events, served in the shape of Wazuh's
//! `GET /syscheck/{agent_id}` (see [`crate::ManagerHandle::syscheck`]).
//!
//! The state is a table of the manager's database, updated in the same transaction that stores
//! the event, so it follows exactly the events stored: an event re-sent by the agent is
//! de-duplicated before it gets here, and a crash never leaves the two apart.

mod query;
mod state;

pub(crate) use query::{count, query};
pub use query::{FimEntry, SyscheckQuery};
pub(crate) use state::{apply, create_schema};

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (UTC), as Wazuh prints dates.
pub(crate) fn iso8601(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_formats_utc_dates() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }
}
