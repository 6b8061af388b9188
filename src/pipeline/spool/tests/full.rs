//! A full spool: the byte cap, `drop_oldest` and its drop reports, `block`.

use super::*;
use crate::pipeline::spool::AppendError;
use std::collections::BTreeSet;
use tempfile::tempdir;

/// Fills a 64 KiB spool far beyond its size with varied records and cursors, checking the cap
/// after every append.
fn overfill(spool: &mut Spool, dir: &Path, records: u64) {
    for n in 1..=records {
        let len = 20 + (n * 7919 % 900) as usize;
        let c = cursor(&format!("mod/{}", n % 5), &n.to_le_bytes());
        spool
            .append(&body(n, len), (n % 10 == 0).then_some(&c))
            .unwrap();
        if n % 13 == 0 {
            spool.flush().unwrap();
        }
        assert!(
            spool.bytes_on_disk() <= 64 * 1024,
            "after {n}: {}",
            spool.bytes_on_disk()
        );
        assert!(dir_size(dir) <= 64 * 1024, "after {n}: {}", dir_size(dir));
    }
    spool.flush().unwrap();
}

#[test]
fn drop_oldest_never_exceeds_the_cap_and_reports_exactly_what_was_lost() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    overfill(&mut spool, tmp.path(), 3000);
    let got = read_all(&mut spool, 0);
    let seen: BTreeSet<u64> = got.iter().map(|r| r.seq).collect();
    let reports: Vec<DropReport> = got.iter().filter_map(|r| parse_drop(&r.body)).collect();
    assert!(!reports.is_empty());
    let missing: Vec<u64> = (1..=spool.last_seq())
        .filter(|s| !seen.contains(s))
        .collect();
    assert_eq!(
        reports.iter().map(|r| r.count).sum::<u64>(),
        missing.len() as u64
    );
    assert_eq!(spool.dropped_total(), missing.len() as u64);
    for s in missing {
        assert!(
            reports
                .iter()
                .any(|r| (r.first_seq..=r.last_seq).contains(&s)),
            "seq {s} lost unreported"
        );
    }
    assert_eq!(spool.cursor("mod/0"), Some(&3000u64.to_le_bytes()[..]));
}

#[test]
fn the_manager_learns_of_a_drop_right_after_it() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    let mut n = 0;
    while spool.dropped_total() == 0 {
        n += 1;
        spool.append(&body(n, 500), None).unwrap();
    }
    // The drop report took the seq right before the event that caused the drop.
    let got = read_all(&mut spool, 0);
    let report = parse_drop(&got[got.len() - 2].body).unwrap();
    assert_eq!(report.first_seq, 1);
    assert_eq!(report.count, spool.dropped_total());
    assert_eq!(got[0].seq, report.last_seq + 1);
}

#[test]
fn read_after_skips_dropped_ranges() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    for n in 1..=10 {
        spool.append(&body(n, 100), None).unwrap();
    }
    assert_eq!(read_all(&mut spool, 0).len(), 10);
    overfill(&mut spool, tmp.path(), 1000);
    let first = spool.first_seq().unwrap();
    assert!(first > 11);
    let mut out = Vec::new();
    spool.read_after(10, 5, 1 << 20, &mut out).unwrap();
    assert_eq!(out[0].seq, first);
    out.clear();
    spool.read_after(0, 5, 1 << 20, &mut out).unwrap();
    assert_eq!(out[0].seq, first);
}

#[test]
fn block_policy_returns_full_and_accepts_again_after_ack() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), config(32 * 1024, 8 * 1024, WhenFull::Block));
    let mut n = 0;
    let err = loop {
        n += 1;
        match spool.append(&body(n, 500), None) {
            Ok(seq) => assert_eq!(seq, n),
            Err(e) => break e,
        }
        assert!(n < 1000, "never full");
    };
    assert!(matches!(err, AppendError::Full), "{err}");
    spool.flush().unwrap();
    assert!(dir_size(tmp.path()) <= 32 * 1024);
    assert!(matches!(
        spool.append(&body(n, 500), None),
        Err(AppendError::Full)
    ));
    spool.ack(n - 1).unwrap();
    assert_eq!(spool.append(&body(n, 500), None).unwrap(), n);
    assert_eq!(spool.dropped_total(), 0);
    assert_eq!(seqs(&read_all(&mut spool, n - 1)), [n]);
}

#[test]
fn dropped_total_survives_reopen() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    overfill(&mut spool, tmp.path(), 600);
    let dropped = spool.dropped_total();
    assert!(dropped > 0);
    drop(spool);
    let spool = open(tmp.path(), small());
    assert_eq!(spool.dropped_total(), dropped);
}

#[test]
fn reopening_with_a_smaller_cap_drops_down_to_it() {
    let tmp = tempdir().unwrap();
    let mut spool = open(
        tmp.path(),
        config(256 * 1024, 8 * 1024, WhenFull::DropOldest),
    );
    for n in 1..=1000 {
        spool.append(&body(n, 200), None).unwrap();
    }
    spool.flush().unwrap();
    drop(spool);
    let mut spool = open(tmp.path(), small());
    assert!(dir_size(tmp.path()) <= 64 * 1024);
    let got = read_all(&mut spool, 0);
    let report = got.iter().find_map(|r| parse_drop(&r.body)).unwrap();
    assert_eq!(report.first_seq, 1);
    assert_eq!(report.count + got.len() as u64 - 1, 1000);
}
