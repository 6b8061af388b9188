//! A framed connection: proto frames read from and written to a (TLS) byte stream, every wait
//! bounded by a timeout. Both services use it; nothing here knows what the frames mean.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use gatewatch_proto::frame::{self, FrameDecoder, FrameError};
use serde::Serialize;

/// Size of one read from the stream.
const READ_CHUNK: usize = 16 * 1024;

/// Why a connection stopped being usable.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// The socket or TLS layer failed.
    Io(std::io::Error),
    /// A frame header was empty or oversized, or a body could not be encoded.
    Frame(FrameError),
    /// The peer closed the stream in the middle of a frame.
    Truncated { buffered: usize },
    /// Nothing arrived (or could be sent) within the limit.
    Timeout(Duration),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "i/o error: {e}"),
            ConnError::Frame(e) => write!(f, "{e}"),
            ConnError::Truncated { buffered } => {
                write!(f, "connection closed inside a frame ({buffered} bytes)")
            }
            ConnError::Timeout(d) => write!(f, "timed out after {} s", d.as_secs_f32()),
        }
    }
}

/// Runs `fut`, giving up after `limit`.
pub(crate) async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}

/// A stream that carries length-prefixed proto frames.
pub(crate) struct FramedConn<S> {
    stream: S,
    decoder: FrameDecoder,
    chunk: Vec<u8>,
    io_timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> FramedConn<S> {
    /// Frames of at most [`frame::DEFAULT_MAX_FRAME`] bytes; writes must finish within `io_timeout`.
    pub(crate) fn new(stream: S, io_timeout: Duration) -> Self {
        FramedConn {
            stream,
            decoder: FrameDecoder::new(frame::DEFAULT_MAX_FRAME),
            chunk: vec![0; READ_CHUNK],
            io_timeout,
        }
    }

    /// The next frame body, or `None` when the peer closed the stream between frames.
    ///
    /// Cancel-safe: the only await is one `read`, and received bytes go into the decoder in the
    /// same poll that returns them, so dropping this future loses nothing.
    pub(crate) async fn read_frame(&mut self) -> Result<Option<Vec<u8>>, ConnError> {
        loop {
            if let Some(body) = self.decoder.next_frame().map_err(ConnError::Frame)? {
                return Ok(Some(body));
            }
            let n = self
                .stream
                .read(&mut self.chunk)
                .await
                .map_err(ConnError::Io)?;
            if n == 0 {
                return match self.decoder.buffered() {
                    0 => Ok(None),
                    buffered => Err(ConnError::Truncated { buffered }),
                };
            }
            self.decoder
                .push(&self.chunk[..n])
                .map_err(ConnError::Frame)?;
        }
    }

    /// Like [`Self::read_frame`], failing with [`ConnError::Timeout`] after `limit`.
    pub(crate) async fn read_frame_within(
        &mut self,
        limit: Duration,
    ) -> Result<Option<Vec<u8>>, ConnError> {
        timeout(limit, self.read_frame())
            .await
            .unwrap_or(Err(ConnError::Timeout(limit)))
    }

    /// Encodes `msg` as one frame and writes it out (flushed) within the I/O timeout.
    pub(crate) async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), ConnError> {
        let bytes = frame::encode(msg, frame::DEFAULT_MAX_FRAME).map_err(ConnError::Frame)?;
        let limit = self.io_timeout;
        let stream = &mut self.stream;
        let write = async move {
            stream.write_all(&bytes).await?;
            stream.flush().await
        };
        match timeout(limit, write).await {
            Some(result) => result.map_err(ConnError::Io),
            None => Err(ConnError::Timeout(limit)),
        }
    }

    /// Closes the stream (TLS close_notify), best effort and bounded.
    pub(crate) async fn close(&mut self) {
        let limit = self.io_timeout;
        let _ = timeout(limit, self.stream.close()).await;
    }
}
