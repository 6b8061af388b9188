//! Rotation, restarts and files that come and go while the module waits on a full queue.

use super::*;

fn numbers(events: &[LogEvent]) -> Vec<usize> {
    events
        .iter()
        .map(|e| text(e)["line ".len()..].parse().unwrap())
        .collect()
}

/// Lines `from..to` as the writer of the busy-queue tests writes them.
fn numbered(from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .flat_map(|n| format!("line {n:06}\n").into_bytes())
        .collect()
}

#[test]
fn a_file_appearing_under_a_glob_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("old.log"), b"before the start\n");
    let mut s = source(&dir.path().join("*.log"), Format::Syslog);
    s.only_future = true;
    with_collector(config(vec![s]), &Cursors::default(), |probe| async move {
        sleep(100).await;
        append(&dir.path().join("new.log"), b"first\nsecond\n");
        let events = probe.wait_for(2, WAIT).await;
        let lines: Vec<String> = events.iter().map(text).collect();
        assert_eq!(lines, ["first", "second"], "the old file only from its end");
        assert!(events[0].source.ends_with("new.log"));
    });
}

#[test]
fn a_file_rotated_while_the_agent_was_down_is_finished_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(
        &log,
        b"a line long enough to give the file a head worth a fingerprint\n",
    );
    let cursors = Cursors::default();
    let s = source(&log, Format::Syslog);
    with_collector(config(vec![s.clone()]), &cursors, |probe| async move {
        probe.wait_for(1, WAIT).await;
    });
    append(&log, b"written before the rotation\n");
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, b"written after it\n");
    with_collector(config(vec![s]), &cursors, |probe| async move {
        probe.wait_for(2, WAIT).await;
        sleep(300).await;
        let lines: Vec<String> = probe.events.borrow().iter().map(text).collect();
        assert_eq!(lines, ["written before the rotation", "written after it"]);
    });
}

#[test]
fn files_deleted_while_the_queue_is_full_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"");
    let mut s = source(&log, Format::Syslog);
    s.only_future = true;
    with_collector(config(vec![s]), &Cursors::default(), |probe| async move {
        sleep(100).await;
        probe.paused.set(true);
        // Enough lines to fill the queue, then three files that come and go behind it.
        append(&log, &numbered(0, 200));
        sleep(100).await;
        for k in 0..3 {
            std::fs::remove_file(&log).unwrap();
            append(&log, &numbered(200 + k * 10, 210 + k * 10));
            sleep(50).await;
        }
        probe.paused.set(false);
        let events = probe.wait_for(230, WAIT).await;
        assert_eq!(numbers(&events), (0..230).collect::<Vec<_>>());
    });
}

#[test]
fn copytruncate_cycles_while_the_queue_is_full_are_read_from_their_copies() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"");
    let mut s = source(&log, Format::Syslog);
    s.only_future = true;
    with_collector(config(vec![s]), &Cursors::default(), |probe| async move {
        sleep(100).await;
        probe.paused.set(true);
        append(&log, &numbered(0, 200));
        sleep(100).await;
        let mut next = 200;
        for k in 1..=3 {
            std::fs::copy(&log, dir.path().join(format!("app.log.{k}"))).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&log)
                .unwrap()
                .set_len(0)
                .unwrap();
            append(&log, &numbered(next, next + 10));
            next += 10;
            sleep(50).await;
        }
        probe.paused.set(false);
        let events = probe.wait_for(230, WAIT).await;
        assert_eq!(numbers(&events), (0..230).collect::<Vec<_>>());
    });
}

#[test]
fn copytruncate_reads_the_rest_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"");
    let mut s = source(&log, Format::Syslog);
    s.only_future = true;
    with_collector(config(vec![s]), &Cursors::default(), |probe| async move {
        sleep(100).await;
        let head = "a fairly long first line so that the head fingerprint is meaningful\n";
        append(&log, head.as_bytes());
        probe.wait_for(1, WAIT).await;
        // Written, copied and truncated faster than the collector reads.
        append(&log, b"b\nc\n");
        std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&log, b"d\n");
        let events = probe.wait_for(4, WAIT).await;
        let lines: Vec<String> = events.iter().map(text).collect();
        assert_eq!(lines[1..], ["b", "c", "d"]);
    });
}

#[test]
fn a_rotated_file_is_read_to_its_end_before_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"");
    let mut s = source(&log, Format::Syslog);
    s.only_future = true;
    with_collector(config(vec![s]), &Cursors::default(), |probe| async move {
        sleep(100).await;
        append(&log, b"a\n");
        probe.wait_for(1, WAIT).await;
        append(&log, b"b\nc\n");
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, b"d\n");
        let events = probe.wait_for(4, WAIT).await;
        let lines: Vec<String> = events.iter().map(text).collect();
        assert_eq!(lines, ["a", "b", "c", "d"]);
    });
}

#[test]
fn restart_resumes_after_the_last_accepted_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"one\ntwo\n");
    let cursors = Cursors::default();
    let s = source(&log, Format::Syslog);
    with_collector(config(vec![s.clone()]), &cursors, |probe| async move {
        probe.wait_for(2, WAIT).await;
    });
    append(&log, b"three\n");
    with_collector(config(vec![s]), &cursors, |probe| async move {
        let events = probe.wait_for(1, WAIT).await;
        sleep(300).await;
        let events_now = probe.events.borrow().clone();
        assert_eq!(events_now.len(), 1, "nothing read twice: {events:?}");
        assert_eq!(text(&events_now[0]), "three");
    });
}
