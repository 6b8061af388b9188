//! Read markers, stored in the spool beside the event they follow (`send_with_cursor`), so the
//! marker the module resumes from is always that of the last event the spool accepted.
//!
//! A marker names an object (key or blob name) and how many of its records were sent; `done`
//! says the object was read to its end. Times (Graph, Log Analytics) use the same form with the
//! time as the name.

use crate::pipeline::MAX_CURSOR_BYTES;

const VERSION: u8 = 2;
/// Version, done flag, record count and size.
const FIXED: usize = 18;

/// Where a source stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The object (or the last time seen).
    pub name: String,
    /// Records of that object already sent.
    pub records: u64,
    /// The object was read to its end.
    pub done: bool,
    /// The object's size when it was listed (0 when unknown): a growing blob listed with the
    /// same size has nothing new.
    pub size: u64,
}

impl Marker {
    /// The bytes stored in the spool; `None` when the name is too long to store.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.name.len() + FIXED);
        out.push(VERSION);
        out.push(u8::from(self.done));
        out.extend_from_slice(&self.records.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        (out.len() <= MAX_CURSOR_BYTES).then_some(out)
    }

    /// Reads what [`Marker::encode`] wrote; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Marker> {
        if bytes.len() < FIXED || bytes[0] != VERSION {
            return None;
        }
        Some(Marker {
            name: String::from_utf8(bytes[FIXED..].to_vec()).ok()?,
            records: u64::from_le_bytes(bytes[2..10].try_into().ok()?),
            done: bytes[1] == 1,
            size: u64::from_le_bytes(bytes[10..18].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_overlong_names_are_refused() {
        let marker = Marker {
            name: "AWSLogs/1/CloudTrail/r/2026/11/28/f.json.gz".into(),
            records: 7,
            done: false,
            size: 1234,
        };
        assert_eq!(Marker::decode(&marker.encode().unwrap()), Some(marker));
        let long = Marker {
            name: "k".repeat(MAX_CURSOR_BYTES),
            records: 0,
            done: true,
            size: 0,
        };
        assert_eq!(long.encode(), None);
        assert_eq!(Marker::decode(b"junk"), None);
    }
}
