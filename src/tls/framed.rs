//! Proto frames over a TLS stream: one frame written and flushed, one frame read through the
//! bounded decoder.
//!
//! Neither future may be dropped half-way on a session that goes on: embedded-tls keeps a
//! partially read record header on the stack of the read future. The link therefore runs one
//! long-lived reader and one writer, and only drops them together with the session.

use super::TlsFailure;
use embedded_io_async::{Read, Write};
use embedded_tls::TlsError;
use gatewatch_proto::frame::{self, FrameDecoder, HEADER_LEN};

/// Largest chunk copied out of the TLS layer at once.
const READ_CHUNK: usize = 2048;

/// Encodes `msg` as one frame of at most `max_frame` body bytes, writes it and flushes it.
/// Returns the number of bytes written (header included).
pub async fn write_frame<W, T>(
    writer: &mut W,
    msg: &T,
    max_frame: usize,
    peer: &str,
) -> Result<usize, TlsFailure>
where
    W: Write<Error = TlsError>,
    T: serde::Serialize,
{
    let bytes = frame::encode(msg, max_frame).map_err(|error| TlsFailure::Frame {
        peer: peer.to_string(),
        error,
    })?;
    writer
        .write_all(&bytes)
        .await
        .map_err(|e| TlsFailure::transport(peer, e))?;
    writer
        .flush()
        .await
        .map_err(|e| TlsFailure::transport(peer, e))?;
    Ok(bytes.len())
}

/// Reads frames from a stream, holding at most one maximum-size frame plus one chunk.
pub struct FrameReader {
    decoder: FrameDecoder,
    chunk: usize,
}

impl FrameReader {
    /// A reader refusing frames whose body is over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameReader {
            decoder: FrameDecoder::new(max_frame),
            chunk: READ_CHUNK.min(max_frame + HEADER_LEN),
        }
    }

    /// The body of the next frame. An oversized or empty frame is a [`TlsFailure::Frame`]; the
    /// connection must then be closed.
    pub async fn next<R: Read<Error = TlsError>>(
        &mut self,
        reader: &mut R,
        peer: &str,
    ) -> Result<Vec<u8>, TlsFailure> {
        let bad = |error| TlsFailure::Frame {
            peer: peer.to_string(),
            error,
        };
        let mut buf = [0u8; READ_CHUNK];
        loop {
            if let Some(body) = self.decoder.next_frame().map_err(bad)? {
                return Ok(body);
            }
            let n = reader
                .read(&mut buf[..self.chunk])
                .await
                .map_err(|e| TlsFailure::transport(peer, e))?;
            if n == 0 {
                return Err(TlsFailure::Closed {
                    peer: peer.to_string(),
                });
            }
            self.decoder.push(&buf[..n]).map_err(bad)?;
        }
    }
}
