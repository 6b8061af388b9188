//! The byte format of one spool record.
//!
//! Every record checks itself, so recovery can tell a complete record from a torn or corrupt one
//! with nothing but the segment file. Layout (integers little-endian):
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! | 0      | 4    | CRC-32 of bytes 4..len                                       |
//! | 4      | 4    | len: size of the whole record, this header included          |
//! | 8      | 8    | seq                                                          |
//! | 16     | 1    | kind: 1 = event, 2 = drop report                             |
//! | 17     | 1    | cursor key length (0 = no cursor, at most [`MAX_KEY_LEN`])   |
//! | 18     | 2    | cursor value length (at most `MAX_CURSOR_BYTES`)             |
//! | 20     | 4    | body length                                                  |
//! | 24     | 24   | drop reports only: count, first_seq, last_seq (u64 each)     |
//! | …      |      | cursor key (UTF-8), cursor value, body                       |
//!
//! Decoding is total: any byte string yields a record or an [`Invalid`] reason, never a panic,
//! and it never allocates (it borrows from the caller's buffer).

use super::DropReport;
use crate::pipeline::{Cursor, MAX_CURSOR_BYTES};

/// Size of the fixed header.
pub(super) const HEADER_LEN: usize = 24;
/// Size of the drop-report range that follows the header of a drop report.
const RANGE_LEN: usize = 24;
/// Longest cursor key a record holds.
pub const MAX_KEY_LEN: usize = 128;

const KIND_EVENT: u8 = 1;
const KIND_DROP: u8 = 2;

/// Why some bytes are not a valid record.
pub(super) type Invalid = &'static str;

/// The fixed part of a record, checked for consistency but not yet against its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    /// Size of the whole record.
    pub len: u32,
    /// Sequence number.
    pub seq: u64,
}

/// A decoded record, borrowing from the buffer it was read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordView<'a> {
    pub seq: u64,
    /// `Some` for a drop report: the range it reports.
    pub drop: Option<DropReport>,
    pub cursor: Option<(&'a str, &'a [u8])>,
    pub body: &'a [u8],
}

/// Size of the encoded record.
pub(super) fn encoded_len(is_drop: bool, cursor: Option<&Cursor>, body_len: usize) -> usize {
    let range = if is_drop { RANGE_LEN } else { 0 };
    let cursor = cursor.map_or(0, |c| c.key.len() + c.value.len());
    HEADER_LEN + range + cursor + body_len
}

/// Appends the encoding of a record to `out`. The caller has checked the limits (key and value
/// sizes, and a total length that fits a u32 because it fits a segment).
pub(super) fn encode(
    out: &mut Vec<u8>,
    seq: u64,
    drop: Option<&DropReport>,
    cursor: Option<&Cursor>,
    body: &[u8],
) {
    let len = encoded_len(drop.is_some(), cursor, body.len());
    let start = out.len();
    let (key, value): (&[u8], &[u8]) = cursor.map_or((&[], &[]), |c| (c.key.as_bytes(), &c.value));
    debug_assert!(key.len() <= MAX_KEY_LEN && value.len() <= MAX_CURSOR_BYTES);
    out.reserve(len);
    out.extend_from_slice(&[0; 4]); // checksum, filled in below
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(if drop.is_some() {
        KIND_DROP
    } else {
        KIND_EVENT
    });
    out.push(key.len() as u8);
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    if let Some(d) = drop {
        out.extend_from_slice(&d.count.to_le_bytes());
        out.extend_from_slice(&d.first_seq.to_le_bytes());
        out.extend_from_slice(&d.last_seq.to_le_bytes());
    }
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the fixed header and checks that its lengths agree with each other.
pub(super) fn parse_header(bytes: &[u8; HEADER_LEN]) -> Result<Header, Invalid> {
    let fields = Fields::parse(bytes)?;
    Ok(Header {
        len: fields.len,
        seq: fields.seq,
    })
}

/// Decodes a whole record (`bytes` is exactly `header.len` long) and verifies its checksum.
pub(super) fn decode(bytes: &[u8]) -> Result<RecordView<'_>, Invalid> {
    let head: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or("shorter than a record header")?;
    let f = Fields::parse(head)?;
    if bytes.len() != f.len as usize {
        return Err("length differs from the header");
    }
    let stored = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if crc32fast::hash(&bytes[4..]) != stored {
        return Err("checksum mismatch");
    }
    let mut rest = &bytes[HEADER_LEN..];
    let drop = if f.is_drop {
        let (range, tail) = rest.split_at(RANGE_LEN);
        rest = tail;
        Some(DropReport {
            count: u64_at(range, 0),
            first_seq: u64_at(range, 8),
            last_seq: u64_at(range, 16),
        })
    } else {
        None
    };
    let (key, tail) = rest.split_at(f.key_len);
    let (value, body) = tail.split_at(f.value_len);
    let cursor = if f.key_len == 0 {
        None
    } else {
        let key = std::str::from_utf8(key).map_err(|_| "cursor key is not UTF-8")?;
        Some((key, value))
    };
    Ok(RecordView {
        seq: f.seq,
        drop,
        cursor,
        body,
    })
}

/// The header fields, validated against each other.
struct Fields {
    len: u32,
    seq: u64,
    is_drop: bool,
    key_len: usize,
    value_len: usize,
}

impl Fields {
    fn parse(h: &[u8; HEADER_LEN]) -> Result<Fields, Invalid> {
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let seq = u64_at(h, 8);
        let is_drop = match h[16] {
            KIND_EVENT => false,
            KIND_DROP => true,
            _ => return Err("unknown record kind"),
        };
        let key_len = usize::from(h[17]);
        let value_len = usize::from(u16::from_le_bytes([h[18], h[19]]));
        let body_len = u32::from_le_bytes([h[20], h[21], h[22], h[23]]) as usize;
        if seq == 0 {
            return Err("sequence number 0");
        }
        if key_len > MAX_KEY_LEN || value_len > MAX_CURSOR_BYTES || (key_len == 0 && value_len > 0)
        {
            return Err("cursor lengths out of range");
        }
        let range = if is_drop { RANGE_LEN } else { 0 };
        let expected = (HEADER_LEN + range + key_len + value_len).checked_add(body_len);
        if expected != Some(len as usize) {
            return Err("lengths in the header do not add up");
        }
        Ok(Fields {
            len,
            seq,
            is_drop,
            key_len,
            value_len,
        })
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            key: "logs/syslog".into(),
            value: vec![7, 8, 9],
        }
    }

    #[test]
    fn event_with_cursor_round_trips() {
        let mut buf = Vec::new();
        encode(&mut buf, 42, None, Some(&cursor()), b"body");
        assert_eq!(buf.len(), encoded_len(false, Some(&cursor()), 4));
        let header = parse_header(buf[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(
            header,
            Header {
                len: buf.len() as u32,
                seq: 42
            }
        );
        let view = decode(&buf).unwrap();
        assert_eq!(view.seq, 42);
        assert_eq!(view.drop, None);
        assert_eq!(view.cursor, Some(("logs/syslog", &[7u8, 8, 9][..])));
        assert_eq!(view.body, b"body");
    }

    #[test]
    fn drop_report_round_trips_with_its_range() {
        let report = DropReport {
            count: 5,
            first_seq: 10,
            last_seq: 14,
        };
        let mut buf = Vec::new();
        encode(&mut buf, 15, Some(&report), None, b"dropped");
        let view = decode(&buf).unwrap();
        assert_eq!(view.drop, Some(report));
        assert_eq!(view.cursor, None);
        assert_eq!(view.body, b"dropped");
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, 3, None, Some(&cursor()), b"some body bytes");
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn truncated_record_is_invalid() {
        let mut buf = Vec::new();
        encode(&mut buf, 3, None, None, b"abc");
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err());
        }
    }

    #[test]
    fn header_with_absurd_lengths_is_rejected() {
        let mut h = [0u8; HEADER_LEN];
        h[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        h[8] = 1;
        h[16] = KIND_EVENT;
        h[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_header(&h).is_err());
    }
}
