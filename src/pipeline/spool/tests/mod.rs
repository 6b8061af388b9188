//! Behaviour of the spool as the pipeline and the link use it, on real files in temp dirs.
//!
//! Dropping a `Spool` without `flush` is what a `SIGKILL` does to it (the write buffer is lost),
//! so the tests "kill" the agent by dropping it.

mod full;
mod property;
mod recovery;
mod roundtrip;

use super::{DropReport, Spool, SpoolConfig};
use crate::config::WhenFull;
use crate::pipeline::{Cursor, OutRecord, Outbox};
use std::path::{Path, PathBuf};

/// Body of the drop reports in tests: readable and parseable back.
fn drop_body(r: &DropReport) -> Vec<u8> {
    format!("drop {} {} {}", r.count, r.first_seq, r.last_seq).into_bytes()
}

/// The report in a drop-report body, `None` for an event body.
fn parse_drop(body: &[u8]) -> Option<DropReport> {
    let text = std::str::from_utf8(body).ok()?;
    let mut words = text
        .strip_prefix("drop ")?
        .split(' ')
        .map(|w| w.parse::<u64>());
    let (count, first_seq, last_seq) = (
        words.next()?.ok()?,
        words.next()?.ok()?,
        words.next()?.ok()?,
    );
    Some(DropReport {
        count,
        first_seq,
        last_seq,
    })
}

fn config(max_bytes: u64, segment_bytes: u64, when_full: WhenFull) -> SpoolConfig {
    SpoolConfig {
        max_bytes,
        segment_bytes,
        when_full,
    }
}

/// 64 KiB spool of 8 KiB segments dropping the oldest.
fn small() -> SpoolConfig {
    config(64 * 1024, 8 * 1024, WhenFull::DropOldest)
}

fn open(dir: &Path, config: SpoolConfig) -> Spool {
    Spool::open(dir, config, Box::new(drop_body)).unwrap()
}

/// An event body of `len` bytes that names `n`.
fn body(n: u64, len: usize) -> Vec<u8> {
    let mut b = format!("event {n} ").into_bytes();
    b.resize(len.max(b.len()), b'.');
    b
}

fn cursor(key: &str, value: &[u8]) -> Cursor {
    Cursor {
        key: key.to_string(),
        value: value.to_vec(),
    }
}

/// Everything after `after`, read the way the link does (batches of 7).
fn read_all(spool: &mut Spool, after: u64) -> Vec<OutRecord> {
    let mut out = Vec::new();
    let mut last = after;
    loop {
        let before = out.len();
        spool.read_after(last, 7, 4096, &mut out).unwrap();
        if out.len() == before {
            return out;
        }
        last = out[out.len() - 1].seq;
    }
}

fn seqs(records: &[OutRecord]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

/// The segment files in `dir`, oldest first.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seg-"))
        })
        .collect();
    files.sort();
    files
}

/// Size of every file in `dir`, as the file system reports it.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// First seq of a segment, from its file name.
fn first_of(path: &Path) -> u64 {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap();
    super::segment::parse_file_name(name).unwrap()
}
