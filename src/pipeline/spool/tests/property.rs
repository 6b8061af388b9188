//! A pseudo-random run (deterministic) of appends, flushes, reads, acks, kills and reopens
//! against a model: every record appended and flushed is read back exactly once, in order, with
//! its body, unless a drop report covers it.

use super::*;
use std::collections::BTreeMap;
use tempfile::tempdir;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the test knows, as the link and manager would.
#[derive(Default)]
struct Model {
    /// Body of each event appended, by seq (replaced when a kill lost it and the seq came again).
    bodies: BTreeMap<u64, Vec<u8>>,
    /// Seqs read, in order (the manager's store).
    seen: Vec<u64>,
    /// Drop reports read.
    reports: Vec<DropReport>,
    /// Highest seq certainly written to the file (flushed or read).
    flushed: u64,
    /// Cursors appended, by key: (seq, value) in order.
    cursors: BTreeMap<String, Vec<(u64, Vec<u8>)>>,
}

impl Model {
    fn last_read(&self) -> u64 {
        self.seen.last().copied().unwrap_or(0)
    }

    fn read(&mut self, spool: &mut Spool, rng: &mut Rng) {
        let mut out = Vec::new();
        let max_records = 1 + rng.below(40) as usize;
        let max_bytes = 1 + rng.below(8000) as usize;
        spool
            .read_after(self.last_read(), max_records, max_bytes, &mut out)
            .unwrap();
        assert!(out.len() <= max_records);
        for r in out {
            assert!(
                r.seq > self.last_read(),
                "seq {} read twice or out of order",
                r.seq
            );
            match parse_drop(&r.body) {
                Some(report) => self.reports.push(report),
                None => assert_eq!(
                    Some(&r.body),
                    self.bodies.get(&r.seq),
                    "body of seq {}",
                    r.seq
                ),
            }
            self.flushed = self.flushed.max(r.seq);
            self.seen.push(r.seq);
        }
    }
}

/// Runs `steps` random operations; with `ack_on_read` the manager acknowledges everything as
/// soon as it is read (so "dropped" means exactly "never read").
/// Returns how many drop reports were read and how many times the spool was reopened, so the
/// tests can tell that the run exercised both.
fn run(seed: u64, steps: usize, ack_on_read: bool) -> (usize, usize) {
    let tmp = tempdir().unwrap();
    let cfg = config(48 * 1024, 6 * 1024, WhenFull::DropOldest);
    let mut rng = Rng(seed);
    let mut spool = open(tmp.path(), cfg);
    let mut model = Model::default();
    let mut reopens = 0;
    // While the link is down nothing is read or acknowledged, so the spool fills and drops.
    let mut link_up = true;
    for step in 0..steps {
        if rng.below(150) == 0 {
            link_up = !link_up;
        }
        match rng.below(100) {
            0..=59 => {
                let largest = if rng.below(10) == 0 { 5000 } else { 300 };
                let len = rng.below(largest) as usize;
                let b = body(step as u64, len);
                let c = (rng.below(5) == 0)
                    .then(|| cursor(&format!("m/{}", rng.below(3)), &step.to_le_bytes()));
                let seq = spool.append(&b, c.as_ref()).unwrap();
                model.bodies.insert(seq, b);
                if let Some(c) = c {
                    model.cursors.entry(c.key).or_default().push((seq, c.value));
                }
            }
            60..=69 => {
                spool.flush().unwrap();
                model.flushed = spool.last_seq();
            }
            70..=84 if link_up => {
                model.read(&mut spool, &mut rng);
                if ack_on_read {
                    spool.ack(model.last_read()).unwrap();
                }
            }
            85..=92 if link_up => {
                let up_to = model.last_read();
                spool.ack(up_to.saturating_sub(rng.below(30))).unwrap();
            }
            70..=92 => {}
            93..=97 => spool.sync().unwrap(),
            _ => {
                if rng.below(2) == 0 {
                    spool.flush().unwrap();
                    model.flushed = spool.last_seq();
                }
                drop(spool); // a kill: the buffer is lost
                spool = open(tmp.path(), cfg);
                reopens += 1;
                assert!(
                    spool.last_seq() >= model.flushed,
                    "step {step}: a flushed seq was lost"
                );
                // Records never written are gone; their seqs are given again.
                model.bodies.retain(|&seq, _| seq <= spool.last_seq());
                for (key, values) in &mut model.cursors {
                    values.retain(|(seq, _)| *seq <= spool.last_seq());
                    let expected = values.last().map(|(_, v)| v.as_slice());
                    assert_eq!(spool.cursor(key), expected, "step {step}: cursor {key}");
                }
            }
        }
        assert!(dir_size(tmp.path()) <= cfg.max_bytes, "step {step}");
    }
    while spool.last_seq() > model.last_read() {
        let before = model.seen.len();
        model.read(&mut spool, &mut rng);
        if model.seen.len() == before {
            break;
        }
    }
    check(
        &model,
        spool.last_seq(),
        ack_on_read.then_some(spool.dropped_total()),
    );
    (model.reports.len(), reopens)
}

/// Every seq up to `last_seq` was read or is covered by a report; with exact accounting, the
/// report counts add up to the records never read.
fn check(model: &Model, last_seq: u64, exact_total: Option<u64>) {
    let seen: std::collections::BTreeSet<u64> = model.seen.iter().copied().collect();
    let missing: Vec<u64> = (1..=last_seq).filter(|s| !seen.contains(s)).collect();
    for s in &missing {
        let covered = model
            .reports
            .iter()
            .any(|r| (r.first_seq..=r.last_seq).contains(s));
        assert!(covered, "seq {s} was lost without a drop report");
    }
    let reported: u64 = model.reports.iter().map(|r| r.count).sum();
    assert!(reported >= missing.len() as u64);
    if let Some(total) = exact_total {
        assert_eq!(reported, missing.len() as u64);
        assert_eq!(total, reported);
    }
}

#[test]
fn every_flushed_record_is_read_once_in_order_or_reported_with_acks_on_read() {
    let (mut reports, mut reopens) = (0, 0);
    for seed in 1..=6u64 {
        let (r, o) = run(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 3000, true);
        (reports, reopens) = (reports + r, reopens + o);
    }
    assert!(
        reports > 0 && reopens > 0,
        "{reports} reports, {reopens} reopens"
    );
}

#[test]
fn every_flushed_record_is_read_once_in_order_or_reported_with_lagging_acks() {
    let (mut reports, mut reopens) = (0, 0);
    for seed in 1..=6u64 {
        let (r, o) = run(seed.wrapping_mul(0x2545_f491_4f6c_dd1d), 3000, false);
        (reports, reopens) = (reports + r, reopens + o);
    }
    assert!(
        reports > 0 && reopens > 0,
        "{reports} reports, {reopens} reopens"
    );
}
