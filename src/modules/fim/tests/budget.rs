//! The memory budget over a large baseline.

use super::{config_for, Harness, Tree};
use gatewatch_proto::fim::{ChangeType, FimEvent};
use std::time::{Duration, Instant};

#[test]
fn hundred_thousand_files_within_budget() {
    let tree = Tree::new();
    let started = Instant::now();
    for d in 0..100 {
        let dir = tree.path(&format!("d{d:03}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..1000 {
            std::fs::write(dir.join(format!("file-{f:04}.txt")), format!("{d} {f}\n")).unwrap();
        }
    }
    eprintln!("created 100,000 files in {:?}", started.elapsed());
    let mut config = config_for(&tree.root, |_| {});
    config.file_limit = 200_000;
    let budget = config.budget_bytes;
    let started = Instant::now();
    let mut fim = Harness::start_with_queue(config, &tree.state, "fim-budget", 1024);
    let mut added = 0u64;
    let ended = loop {
        match fim.next(Duration::from_secs(600)) {
            Some(FimEvent::Change(c)) if c.event == ChangeType::Added => added += 1,
            Some(e @ FimEvent::ScanEnded { .. }) => break e,
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("the baseline did not finish"),
        }
        // Keep the log small: this test reads the events as they come.
        fim.log.clear();
    };
    let elapsed = started.elapsed();
    let db = tree.state.join("fim.db");
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(tree.state.join("fim.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let peak = crate::runtime::alloc::peak_bytes(fim.account);
    // SAFETY: a read-only statistics call of the bundled SQLite.
    let sqlite_peak = unsafe { rusqlite::ffi::sqlite3_memory_highwater(0) };
    eprintln!(
        "baseline of {added} files in {elapsed:?}: {ended:?}; module peak {peak} bytes of a {budget} budget; \
         SQLite heap peak (outside the allocator, whole process) {sqlite_peak} bytes; database {db_bytes} bytes"
    );
    assert_eq!(added, 100_000);
    assert!(peak <= budget, "peak {peak} over the budget {budget}");
    fim.stop().unwrap();
}
