//! Appending, reading, acknowledging, reopening; cursors; limits.

use super::*;
use crate::pipeline::spool::{AppendError, MAX_CURSOR_KEYS};
use tempfile::tempdir;

#[test]
fn appended_records_are_read_back_in_order_with_seqs_from_one() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    for n in 1..=3 {
        assert_eq!(spool.append(&body(n, 10), None).unwrap(), n);
    }
    spool.flush().unwrap();
    let got = read_all(&mut spool, 0);
    assert_eq!(seqs(&got), [1, 2, 3]);
    assert_eq!(got[1].body, body(2, 10));
    assert_eq!(
        (spool.last_seq(), spool.pending(), spool.acked()),
        (3, 3, 0)
    );
}

#[test]
fn read_after_sees_records_still_in_the_write_buffer() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    spool.append(b"one", None).unwrap();
    spool.flush().unwrap();
    spool.append(b"two", None).unwrap();
    assert_eq!(seqs(&read_all(&mut spool, 0)), [1, 2]);
}

#[test]
fn read_after_stops_at_max_records_and_max_bytes_but_returns_at_least_one() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    for n in 1..=10 {
        spool.append(&body(n, 100), None).unwrap();
    }
    let mut out = Vec::new();
    spool.read_after(0, 3, 1 << 20, &mut out).unwrap();
    assert_eq!(seqs(&out), [1, 2, 3]);
    out.clear();
    spool.read_after(3, 100, 250, &mut out).unwrap();
    assert_eq!(seqs(&out), [4, 5]);
    out.clear();
    spool.read_after(5, 100, 10, &mut out).unwrap();
    assert_eq!(seqs(&out), [6]);
}

#[test]
fn read_after_can_go_back_to_any_position() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), config(64 * 1024, 4096, WhenFull::DropOldest));
    for n in 1..=60 {
        spool.append(&body(n, 200), None).unwrap();
    }
    assert_eq!(read_all(&mut spool, 0).len(), 60);
    assert_eq!(
        seqs(&read_all(&mut spool, 41)),
        (42..=60).collect::<Vec<_>>()
    );
    assert_eq!(seqs(&read_all(&mut spool, 3))[0], 4);
    assert!(read_all(&mut spool, 60).is_empty());
}

#[test]
fn ack_removes_fully_acknowledged_segments_but_keeps_the_rest() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), config(64 * 1024, 4096, WhenFull::DropOldest));
    for n in 1..=60 {
        spool.append(&body(n, 200), None).unwrap();
    }
    spool.flush().unwrap();
    let before = segment_files(tmp.path()).len();
    assert!(before >= 3);
    spool.ack(30).unwrap();
    assert!(segment_files(tmp.path()).len() < before);
    assert_eq!((spool.acked(), spool.pending()), (30, 30));
    let first = spool.first_seq().unwrap();
    assert!(first <= 31 && first > 1, "first held {first}");
    assert_eq!(
        seqs(&read_all(&mut spool, 30)),
        (31..=60).collect::<Vec<_>>()
    );
}

#[test]
fn ack_beyond_the_last_seq_acknowledges_only_what_exists() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    spool.append(b"x", None).unwrap();
    spool.ack(99).unwrap();
    assert_eq!((spool.acked(), spool.pending()), (1, 0));
    assert_eq!(spool.append(b"y", None).unwrap(), 2);
}

#[test]
fn sequence_numbers_continue_after_reopen() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    spool.append(b"a", None).unwrap();
    spool.append(b"b", None).unwrap();
    spool.flush().unwrap();
    drop(spool);
    let mut spool = open(tmp.path(), small());
    assert_eq!(spool.last_seq(), 2);
    assert_eq!(spool.append(b"c", None).unwrap(), 3);
    assert_eq!(seqs(&read_all(&mut spool, 0)), [1, 2, 3]);
}

#[test]
fn sequence_numbers_continue_after_every_segment_was_acked_and_removed() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), config(64 * 1024, 4096, WhenFull::DropOldest));
    for n in 1..=40 {
        spool.append(&body(n, 200), None).unwrap();
    }
    spool.ack(40).unwrap();
    drop(spool);
    let mut spool = open(tmp.path(), small());
    assert!(segment_files(tmp.path()).is_empty());
    assert_eq!(spool.first_seq(), None);
    assert_eq!(
        (spool.last_seq(), spool.acked(), spool.pending()),
        (40, 40, 0)
    );
    assert_eq!(spool.append(b"next", None).unwrap(), 41);
    spool.flush().unwrap();
    drop(spool);
    let mut spool = open(tmp.path(), small());
    assert_eq!(seqs(&read_all(&mut spool, 0)), [41]);
}

#[test]
fn cursor_survives_reopen_and_removal_of_its_segment() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), config(64 * 1024, 4096, WhenFull::DropOldest));
    spool
        .append(b"line", Some(&cursor("logs/syslog", b"offset=120")))
        .unwrap();
    for n in 2..=40 {
        spool.append(&body(n, 200), None).unwrap();
    }
    spool.ack(40).unwrap();
    drop(spool);
    let spool = open(tmp.path(), small());
    assert!(segment_files(tmp.path()).is_empty());
    assert_eq!(spool.cursor("logs/syslog"), Some(&b"offset=120"[..]));
    assert_eq!(spool.cursor("logs/other"), None);
}

#[test]
fn latest_cursor_survives_a_kill_after_flush() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    spool.append(b"1", Some(&cursor("fim/etc", b"1"))).unwrap();
    spool.append(b"2", Some(&cursor("fim/etc", b"2"))).unwrap();
    spool.flush().unwrap();
    spool.append(b"3", Some(&cursor("fim/etc", b"3"))).unwrap();
    assert_eq!(spool.cursor("fim/etc"), Some(&b"3"[..]));
    drop(spool); // killed before the third was flushed
    let spool = open(tmp.path(), small());
    assert_eq!(spool.cursor("fim/etc"), Some(&b"2"[..]));
}

#[test]
fn body_too_large_for_a_segment_is_refused_and_the_largest_fits() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    let err = spool.append(&vec![0; 8 * 1024], None).unwrap_err();
    let AppendError::TooLarge { len, max } = err else {
        panic!("{err}")
    };
    assert_eq!(len, 8 * 1024);
    assert!(max < len);
    assert_eq!(spool.append(&vec![1; max], None).unwrap(), 1);
    assert_eq!(read_all(&mut spool, 0)[0].body.len(), max);
}

#[test]
fn cursor_with_a_bad_key_or_value_is_refused() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    let long_key = "k".repeat(129);
    let long_value = vec![0; crate::pipeline::MAX_CURSOR_BYTES + 1];
    for c in [
        cursor("", b"v"),
        cursor(&long_key, b"v"),
        cursor("ok", &long_value),
    ] {
        assert!(matches!(
            spool.append(b"e", Some(&c)),
            Err(AppendError::BadCursor { .. })
        ));
    }
    assert_eq!(spool.last_seq(), 0);
}

#[test]
fn new_cursor_keys_beyond_the_limit_are_refused() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), config(4 << 20, 1 << 20, WhenFull::DropOldest));
    for i in 0..MAX_CURSOR_KEYS {
        spool
            .append(b"e", Some(&cursor(&format!("m/{i}"), b"1")))
            .unwrap();
    }
    let err = spool
        .append(b"e", Some(&cursor("m/new", b"1")))
        .unwrap_err();
    assert!(matches!(err, AppendError::BadCursor { .. }), "{err}");
    // An existing key can still move.
    spool.append(b"e", Some(&cursor("m/7", b"2"))).unwrap();
}

#[test]
fn open_rejects_segments_too_small_or_above_half_the_spool() {
    let tmp = tempdir().unwrap();
    for cfg in [
        config(64 * 1024, 100, WhenFull::Block),
        config(64 * 1024, 40 * 1024, WhenFull::Block),
    ] {
        let err = Spool::open(tmp.path(), cfg, Box::new(drop_body))
            .err()
            .unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("buffer.spool_segment_bytes"),
            "{err}"
        );
    }
}

#[test]
fn second_open_of_the_same_directory_is_refused() {
    let tmp = tempdir().unwrap();
    let _spool = open(tmp.path(), small());
    let err = Spool::open(tmp.path(), small(), Box::new(drop_body))
        .err()
        .unwrap();
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn sync_keeps_everything_readable() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    spool.append(b"a", Some(&cursor("x/y", b"1"))).unwrap();
    spool.ack(1).unwrap();
    spool.append(b"b", None).unwrap();
    spool.sync().unwrap();
    drop(spool);
    let mut spool = open(tmp.path(), small());
    assert_eq!(spool.acked(), 1);
    assert_eq!(seqs(&read_all(&mut spool, 1)), [2]);
}
