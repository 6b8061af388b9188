//! Length-prefixed frames: a 4-byte little-endian body length, then the postcard body.
//!
//! Every function here is total on untrusted input. A frame longer than the configured maximum
//! is refused from its header alone, before any body byte is buffered, and sequence lengths inside
//! a body never pre-allocate more than the body could hold.

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::Serialize;

/// Default maximum body size, as Wazuh's 64 KiB message limit.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;
/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The body is longer than the maximum frame size.
    TooLarge { len: usize, max: usize },
    /// A frame with an empty body (never valid).
    Empty,
    /// The body is not a valid message.
    Malformed(String),
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the {max}-byte limit")
            }
            FrameError::Empty => f.write_str("empty frame"),
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Reads the body length from a header, refusing lengths outside `1..=max`.
pub fn body_len(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    if len == 0 {
        Err(FrameError::Empty)
    } else if len > max {
        Err(FrameError::TooLarge { len, max })
    } else {
        Ok(len)
    }
}

/// A postcard output appending to a `Vec` with slice copies. postcard's own `to_extend` copies a
/// byte string through a byte iterator, which the agent's size-optimised build leaves as a loop of
/// one byte at a time: every record and log line goes through this twice on the agent.
pub(crate) struct Append<'a>(pub(crate) &'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends one frame holding `msg` to `out` (which may already hold other frames). A frame over
/// `max` leaves `out` as it was; a serialization error (impossible for this crate's types) clears it.
pub fn encode_into<T: Serialize>(msg: &T, out: &mut Vec<u8>, max: usize) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    if let Err(e) = postcard::serialize_with_flavor(msg, Append(out)) {
        out.clear();
        return Err(FrameError::Malformed(e.to_string()));
    }
    let len = out.len() - start - HEADER_LEN;
    if len > max {
        out.truncate(start);
        return Err(FrameError::TooLarge { len, max });
    }
    out[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Encodes `msg` as one frame.
pub fn encode<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_into(msg, &mut out, max)?;
    Ok(out)
}

/// Decodes a frame body (without its header). Fails on trailing bytes.
pub fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(msg)
}

/// An incremental decoder for a byte stream: push what arrives, take whole frame bodies out.
/// It never buffers more than one header plus one maximum-size body.
pub struct FrameDecoder {
    max: usize,
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder that refuses bodies over `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            max,
            buf: Vec::new(),
        }
    }

    /// Adds received bytes. Fails (and the connection should be closed) when a header announces
    /// an empty or oversized frame, or when the caller lets more than two frames' worth of bytes
    /// pile up without taking frames out.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        let bound = 2 * (self.max + HEADER_LEN);
        if self.buf.len() + bytes.len() > bound {
            return Err(FrameError::TooLarge {
                len: self.buf.len() + bytes.len(),
                max: bound,
            });
        }
        self.buf.extend_from_slice(bytes);
        self.needed().map(|_| ())
    }

    /// Bytes still needed to complete the frame at the front of the buffer (0 = complete).
    fn needed(&self) -> Result<usize, FrameError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(HEADER_LEN - self.buf.len());
        }
        let len = body_len(self.header(), self.max)?;
        Ok((HEADER_LEN + len).saturating_sub(self.buf.len()))
    }

    fn header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0; HEADER_LEN];
        h.copy_from_slice(&self.buf[..HEADER_LEN]);
        h
    }

    /// Takes the next complete frame body, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = body_len(self.header(), self.max)?;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let body = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some(body))
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// `deserialize_with` helper for `Vec` fields of untrusted messages: like serde's own, but it
/// pre-allocates at most a few elements whatever length the input claims, so a lying length
/// costs nothing before the input runs out.
pub fn bounded_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct BoundedVisitor<T>(core::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for BoundedVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_seq(BoundedVisitor(core::marker::PhantomData))
}

/// `serialize_with` helper for a list of byte strings: each as serde bytes. serde's own `[u8]`
/// impl writes a sequence of `u8`, one call per byte; postcard encodes both the same way (a
/// length, then the raw bytes), so this changes the speed, not the wire.
pub fn byte_slices<S: serde::Serializer>(
    items: &[&[u8]],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    struct Bytes<'b>(&'b [u8]);
    impl serde::Serialize for Bytes<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }
    let mut seq = serializer.serialize_seq(Some(items.len()))?;
    for item in items {
        seq.serialize_element(&Bytes(item))?;
    }
    seq.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentMessage, ManagerMessage};

    #[test]
    fn records_are_written_as_a_length_and_raw_bytes() {
        // The wire format of a byte string is the same as serde's default for `[u8]`, so agents
        // and managers built either way understand each other.
        #[derive(serde::Serialize)]
        struct Plain<'a> {
            records: Vec<&'a [u8]>,
        }
        let records: Vec<&[u8]> = vec![b"first", &[0, 255, 7]];
        let fast = postcard::to_allocvec(&AgentMessage::Events {
            first_seq: 3,
            records: records.clone(),
        })
        .unwrap();
        let plain = postcard::to_allocvec(&Plain { records }).unwrap();
        // Variant index (2) and first_seq (3), then the list exactly as serde writes it.
        assert_eq!(&fast[..2], &[2, 3]);
        assert_eq!(&fast[2..], &plain[..]);
    }

    #[test]
    fn events_round_trip_borrowing_records() {
        let a = b"first".to_vec();
        let b = b"second".to_vec();
        let msg = AgentMessage::Events {
            first_seq: 10,
            records: vec![&a, &b],
        };
        let bytes = encode(&msg, DEFAULT_MAX_FRAME).unwrap();
        let len = body_len(bytes[..4].try_into().unwrap(), DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(len, bytes.len() - 4);
        let back: AgentMessage = decode_body(&bytes[4..]).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn oversized_header_is_refused_before_body() {
        let mut d = FrameDecoder::new(1024);
        let err = d.push(&(2000u32).to_le_bytes()).unwrap_err();
        assert_eq!(
            err,
            FrameError::TooLarge {
                len: 2000,
                max: 1024
            }
        );
    }

    #[test]
    fn zero_length_frame_is_refused() {
        let mut d = FrameDecoder::new(1024);
        assert_eq!(d.push(&[0, 0, 0, 0]).unwrap_err(), FrameError::Empty);
    }

    #[test]
    fn encoding_over_the_limit_fails_and_leaves_buffer_intact() {
        let big = vec![0u8; 100];
        let msg = AgentMessage::Events {
            first_seq: 1,
            records: vec![&big],
        };
        let mut out = vec![9, 9];
        assert!(matches!(
            encode_into(&msg, &mut out, 50),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(out, vec![9, 9]);
    }

    #[test]
    fn decoder_reassembles_split_and_joined_frames() {
        let m1 = encode(&ManagerMessage::Ack { up_to: 5 }, 1024).unwrap();
        let m2 = encode(&ManagerMessage::KeepaliveAck, 1024).unwrap();
        let mut stream = m1.clone();
        stream.extend_from_slice(&m2);
        let mut d = FrameDecoder::new(1024);
        let mut got = Vec::new();
        for byte in stream.chunks(3) {
            d.push(byte).unwrap();
            while let Some(f) = d.next_frame().unwrap() {
                got.push(decode_body::<ManagerMessage>(&f).unwrap());
            }
        }
        assert_eq!(
            got,
            vec![
                ManagerMessage::Ack { up_to: 5 },
                ManagerMessage::KeepaliveAck
            ]
        );
    }

    #[test]
    fn lying_sequence_length_does_not_preallocate() {
        // Events variant (index 2), first_seq 1, then a claimed record count of 2^32.
        let body = [2u8, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode_body::<AgentMessage>(&body).is_err());
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = encode(&ManagerMessage::KeepaliveAck, 1024).unwrap();
        bytes.push(0);
        assert!(decode_body::<ManagerMessage>(&bytes[4..]).is_err());
    }

    #[test]
    fn random_bodies_never_panic() {
        // A small deterministic xorshift keeps this test free of dependencies.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            let body: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
            let _ = decode_body::<AgentMessage>(&body);
            let _ = decode_body::<ManagerMessage>(&body);
            let _ = decode_body::<crate::EnrollRequest>(&body);
            let _ = decode_body::<crate::EnrollResponse>(&body);
        }
    }
}
