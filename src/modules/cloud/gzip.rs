//! Bounded gunzip for log objects (`.gz`): raw deflate through miniz_oxide (already in the tree
//! for FIM), the gzip framing read here, the output grown only within the memory budget and a
//! size limit, so a small "zip bomb" cannot take the gateway's memory.

use crate::runtime::MemoryAccount;
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// Whether `data` starts like a gzip stream.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// Decompresses every gzip member of `data`; fails past `limit` output bytes or the budget.
pub fn gunzip(data: &[u8], limit: usize, memory: &MemoryAccount) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::new();
    let mut rest = data;
    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let mut chunk = vec![0u8; 32 * 1024];
    // The trailer states the (last member's) size: one exact allocation instead of doublings
    // that would hold old and new buffers at once. It is only a hint; growth stays bounded.
    if let Some(tail) = data.len().checked_sub(4).and_then(|at| data.get(at..)) {
        let stated = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
        if stated <= limit {
            memory
                .try_reserve(&mut out, stated)
                .map_err(|e| format!("decompressing: {e}"))?;
        }
    }
    while !rest.is_empty() {
        let body = skip_header(rest)?;
        state.reset(DataFormat::Raw);
        let mut input = body;
        let start = out.len();
        loop {
            let result = inflate(&mut state, input, &mut chunk, MZFlush::None);
            input = &input[result.bytes_consumed..];
            let written = &chunk[..result.bytes_written];
            if out.len() + written.len() > limit {
                return Err(format!("decompresses to more than {limit} bytes"));
            }
            if out.capacity() - out.len() < written.len() {
                let grow = out.capacity().max(written.len()).min(limit - out.len());
                memory
                    .try_reserve(&mut out, grow.max(written.len()))
                    .map_err(|e| format!("decompressing: {e}"))?;
            }
            out.extend_from_slice(written);
            match result.status {
                Ok(MZStatus::StreamEnd) => break,
                Ok(_) => {}
                Err(MZError::Buf) if result.bytes_written > 0 || result.bytes_consumed > 0 => {}
                Err(e) => return Err(format!("bad deflate data ({e:?})")),
            }
            if input.is_empty() && result.bytes_written == 0 {
                return Err("truncated gzip stream".into());
            }
        }
        if input.len() < 8 {
            return Err("gzip trailer missing".into());
        }
        let crc = u32::from_le_bytes([input[0], input[1], input[2], input[3]]);
        if crc != crc32fast::hash(&out[start..]) {
            return Err("gzip checksum mismatch".into());
        }
        rest = &input[8..];
        // Some writers pad the end with zeros.
        if rest.iter().all(|&b| b == 0) {
            break;
        }
    }
    Ok(out)
}

/// The deflate data after a member's header.
fn skip_header(data: &[u8]) -> Result<&[u8], String> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    if data.len() < 10 || !is_gzip(data) || data[2] != 8 {
        return Err("not a gzip (deflate) stream".into());
    }
    let flags = data[3];
    let mut at = 10;
    let truncated = || "truncated gzip header".to_string();
    if flags & FEXTRA != 0 {
        let len = data.get(at..at + 2).ok_or_else(truncated)?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = data
                .get(at..)
                .and_then(|d| memchr::memchr(0, d))
                .ok_or_else(truncated)?;
            at += end + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    data.get(at..).ok_or_else(truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::budget::account_for;

    fn memory() -> MemoryAccount {
        MemoryAccount::new(account_for("test-cloud-gzip").unwrap(), 64 << 20)
    }

    /// A gzip member written by hand around miniz_oxide's raw deflate.
    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
        out.extend(crc32fast::hash(data).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out
    }

    #[test]
    fn concatenated_members_decompress_in_order() {
        let mut data = gzip(b"first ");
        data.extend(gzip(b"second"));
        assert_eq!(gunzip(&data, 1024, &memory()).unwrap(), b"first second");
    }

    #[test]
    fn output_past_the_limit_is_refused() {
        let bomb = gzip(&vec![b'a'; 1 << 20]);
        assert!(bomb.len() < 5000);
        let error = gunzip(&bomb, 64 * 1024, &memory()).unwrap_err();
        assert!(error.contains("more than 65536"), "{error}");
    }

    #[test]
    fn corrupted_data_is_an_error() {
        let mut data = gzip(b"hello world");
        let n = data.len();
        data[n - 6] ^= 0xff;
        assert!(gunzip(&data, 1024, &memory()).is_err());
    }
}
