//! What `open` makes of files left by a kill or damaged by the medium.

use super::*;
use std::fs::OpenOptions;
use std::io::Write;
use tempfile::tempdir;

fn append_to(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

/// Offset of the record `seq` in a segment file (by walking the length fields).
fn offset_of(path: &Path, first: u64, seq: u64) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut offset = 0usize;
    for _ in first..seq {
        offset += u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().unwrap()) as usize;
    }
    offset as u64
}

fn drops(records: &[OutRecord]) -> Vec<DropReport> {
    records.iter().filter_map(|r| parse_drop(&r.body)).collect()
}

#[test]
fn garbage_after_the_last_record_is_cut_and_appends_continue() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    for n in 1..=5 {
        spool.append(&body(n, 50), None).unwrap();
    }
    spool.flush().unwrap();
    drop(spool);
    let seg = segment_files(tmp.path()).pop().unwrap();
    let good_len = std::fs::metadata(&seg).unwrap().len();
    append_to(&seg, b"\x01\x02garbage from a torn write");
    let mut spool = open(tmp.path(), small());
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len);
    assert_eq!(spool.append(b"after", None).unwrap(), 6);
    let got = read_all(&mut spool, 0);
    assert_eq!(seqs(&got), [1, 2, 3, 4, 5, 6]);
    assert!(drops(&got).is_empty());
}

#[test]
fn half_written_last_record_is_cut_and_its_seq_is_given_again() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    for n in 1..=6 {
        spool.append(&body(n, 80), None).unwrap();
    }
    spool.flush().unwrap();
    drop(spool);
    let seg = segment_files(tmp.path()).pop().unwrap();
    let cut = offset_of(&seg, 1, 6) + 30; // the kill hit in the middle of writing record 6
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let mut spool = open(tmp.path(), small());
    assert_eq!(spool.last_seq(), 5);
    assert_eq!(spool.append(b"again", None).unwrap(), 6);
    let got = read_all(&mut spool, 0);
    assert_eq!(seqs(&got), [1, 2, 3, 4, 5, 6]);
    assert_eq!(got[5].body, b"again");
}

#[test]
fn corrupt_record_in_an_older_segment_ends_it_and_is_reported_as_a_drop() {
    let tmp = tempdir().unwrap();
    let cfg = config(64 * 1024, 4096, WhenFull::DropOldest);
    let mut spool = open(tmp.path(), cfg);
    for n in 1..=60 {
        spool.append(&body(n, 200), None).unwrap();
    }
    spool.flush().unwrap();
    drop(spool);
    let files = segment_files(tmp.path());
    assert!(files.len() >= 3);
    let second_first = first_of(&files[1]);
    flip_byte(&files[0], offset_of(&files[0], 1, 5) + 40);
    let mut spool = open(tmp.path(), cfg);
    let lost = second_first - 5; // records 5 ..= end of the first segment
    assert_eq!(spool.dropped_total(), lost);
    let got = read_all(&mut spool, 0);
    assert_eq!(
        drops(&got),
        [DropReport {
            count: lost,
            first_seq: 5,
            last_seq: second_first - 1
        }]
    );
    let events: Vec<u64> = got
        .iter()
        .filter(|r| parse_drop(&r.body).is_none())
        .map(|r| r.seq)
        .collect();
    let expected: Vec<u64> = (1..5).chain(second_first..=60).collect();
    assert_eq!(events, expected);
    drop(spool);
    // Reported once: a second restart finds nothing new to report.
    let mut spool = open(tmp.path(), cfg);
    assert_eq!(drops(&read_all(&mut spool, 0)).len(), 1);
    assert_eq!(spool.dropped_total(), lost);
}

#[test]
fn records_the_checkpoint_knew_of_but_gone_from_disk_are_reported() {
    let tmp = tempdir().unwrap();
    let cfg = config(64 * 1024, 4096, WhenFull::DropOldest);
    let mut spool = open(tmp.path(), cfg);
    for n in 1..=40 {
        spool.append(&body(n, 200), None).unwrap();
    }
    spool.ack(2).unwrap(); // checkpoint: last seq 40
    drop(spool);
    let last = segment_files(tmp.path()).pop().unwrap();
    let last_first = first_of(&last);
    std::fs::remove_file(&last).unwrap();
    let mut spool = open(tmp.path(), cfg);
    assert_eq!(spool.last_seq(), 41, "40 records and the drop report");
    let got = read_all(&mut spool, 2);
    let lost = 40 - last_first + 1;
    assert_eq!(
        drops(&got),
        [DropReport {
            count: lost,
            first_seq: last_first,
            last_seq: 40
        }]
    );
    assert_eq!(got.last().unwrap().seq, 41);
}

#[test]
fn damaged_checkpoint_falls_back_to_the_segments() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    spool.append(b"a", Some(&cursor("logs/a", b"7"))).unwrap();
    spool.append(b"b", None).unwrap();
    spool.flush().unwrap();
    drop(spool);
    std::fs::write(tmp.path().join("checkpoint"), b"GWCK\x01junk").unwrap();
    let mut spool = open(tmp.path(), small());
    assert_eq!(spool.append(b"c", None).unwrap(), 3);
    assert_eq!(spool.cursor("logs/a"), Some(&b"7"[..]));
    assert_eq!(seqs(&read_all(&mut spool, 0)), [1, 2, 3]);
}

#[test]
fn records_flushed_before_a_kill_are_all_there() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    for n in 1..=300 {
        spool.append(&body(n, 100), None).unwrap();
        if n == 250 {
            spool.flush().unwrap();
        }
    }
    drop(spool); // 251..=300 were still in the buffer
    let mut spool = open(tmp.path(), small());
    let got = read_all(&mut spool, 0);
    assert!(got.len() >= 250);
    assert_eq!(seqs(&got[..250]), (1..=250).collect::<Vec<_>>());
    assert!(drops(&got).is_empty());
}

#[test]
fn record_damaged_while_running_is_reported_and_reading_goes_on() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), config(64 * 1024, 4096, WhenFull::DropOldest));
    for n in 1..=60 {
        spool.append(&body(n, 200), None).unwrap();
    }
    spool.flush().unwrap();
    let files = segment_files(tmp.path());
    let second_first = first_of(&files[1]);
    flip_byte(&files[0], offset_of(&files[0], 1, 5) + 40);
    let expected: Vec<u64> = (1..5).chain(second_first..=60).collect();
    assert_eq!(seqs(&read_all(&mut spool, 0)), expected);
    let lost = second_first - 5;
    assert_eq!(
        spool.append(b"later", None).unwrap(),
        62,
        "the drop report takes 61"
    );
    let got = read_all(&mut spool, 60);
    assert_eq!(
        drops(&got),
        [DropReport {
            count: lost,
            first_seq: 5,
            last_seq: second_first - 1
        }]
    );
    assert_eq!(seqs(&got), [61, 62]);
    assert_eq!(spool.dropped_total(), lost);
    drop(spool);
    let mut spool = open(tmp.path(), config(64 * 1024, 4096, WhenFull::DropOldest));
    assert_eq!(drops(&read_all(&mut spool, 0)).len(), 1, "reported once");
}

#[test]
fn damage_in_the_active_segment_keeps_the_records_still_buffered() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    for n in 1..=10 {
        spool.append(&body(n, 50), None).unwrap();
    }
    spool.flush().unwrap();
    let seg = segment_files(tmp.path()).pop().unwrap();
    flip_byte(&seg, offset_of(&seg, 1, 3) + 30);
    for n in 11..=15 {
        spool.append(&body(n, 50), None).unwrap();
    }
    let got = read_all(&mut spool, 0);
    assert_eq!(seqs(&got), [1, 2, 11, 12, 13, 14, 15]);
    assert_eq!(got[2].body, body(11, 50));
    spool.append(b"later", None).unwrap();
    let got = read_all(&mut spool, 15);
    assert_eq!(
        drops(&got),
        [DropReport {
            count: 8,
            first_seq: 3,
            last_seq: 10
        }]
    );
    drop(spool);
    let mut spool = open(tmp.path(), small());
    let got = read_all(&mut spool, 0);
    assert_eq!(seqs(&got), [1, 2, 11, 12, 13, 14, 15, 16, 17]);
}

#[test]
fn acks_that_remove_nothing_go_to_the_ack_mark_and_survive_a_kill() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    for n in 1..=10 {
        spool.append(&body(n, 100), None).unwrap();
    }
    spool.flush().unwrap();
    let checkpoint = tmp.path().join("checkpoint");
    let inode = std::fs::metadata(&checkpoint).unwrap().ino();
    for n in 1..=6 {
        spool.ack(n).unwrap();
    }
    // No rename per ack: the checkpoint is the file written at open.
    assert_eq!(std::fs::metadata(&checkpoint).unwrap().ino(), inode);
    drop(spool); // as a kill: no sync
    let mut spool = open(tmp.path(), small());
    assert_eq!(spool.acked(), 6);
    assert_eq!(seqs(&read_all(&mut spool, 6)), [7, 8, 9, 10]);
    assert_eq!(spool.append(b"next", None).unwrap(), 11);
}

#[test]
fn damaged_ack_mark_falls_back_to_the_checkpoint() {
    let tmp = tempdir().unwrap();
    let mut spool = open(tmp.path(), small());
    for n in 1..=10 {
        spool.append(&body(n, 100), None).unwrap();
    }
    spool.ack(4).unwrap();
    drop(spool);
    flip_byte(&tmp.path().join("acked"), 9);
    let mut spool = open(tmp.path(), small());
    // The ack is lost with the mark: records are sent again (the manager de-duplicates), none
    // is reported dropped and no seq is reused.
    assert_eq!(spool.acked(), 0);
    let got = read_all(&mut spool, 0);
    assert_eq!(seqs(&got), (1..=10).collect::<Vec<_>>());
    assert!(drops(&got).is_empty());
    assert_eq!(spool.append(b"next", None).unwrap(), 11);
}
