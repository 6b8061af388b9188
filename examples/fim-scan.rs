//! The FIM module alone, for `scripts/bench-fim.sh`: scans one directory into a state directory
//! as the agent's `fim` module does, with the events drained by a counter instead of the
//! pipeline and link, and prints the scan's numbers, CPU seconds and peak memory.
//!
//! ```sh
//! cargo run --release --example fim-scan -- /usr /tmp/fim-state   # baseline
//! cargo run --release --example fim-scan -- /usr /tmp/fim-state   # again: the rescan
//! ```

use futures_lite::FutureExt;
use gatewatch::modules::fim::{DirectoryConfig, Fim, FimConfig};
use gatewatch::pipeline::{event_queue, EventSender};
use gatewatch::runtime::alloc::{peak_bytes, CountingAllocator};
use gatewatch::runtime::budget::{account_for, Budgeted};
use gatewatch::runtime::{MemoryAccount, Module, ModuleContext, Shutdown};
use gatewatch_proto::fim::FimEvent;
use gatewatch_proto::Payload;
use std::rc::Rc;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// User plus system CPU seconds of this process (from `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 100 per second on Linux for every architecture we target.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, state] = args.as_slice() else {
        return Err("usage: fim-scan DIRECTORY STATE_DIR".into());
    };
    let config = FimConfig {
        enabled: true,
        frequency_secs: 86_400,
        scan_bytes_per_sec: 0,
        file_limit: 10_000_000,
        hash_md5: false,
        hash_sha1: false,
        hash_sha256: true,
        directories: vec![DirectoryConfig {
            path: dir.into(),
            ..DirectoryConfig::default()
        }],
        ..FimConfig::default()
    };
    std::fs::create_dir_all(state).map_err(|e| format!("cannot create {state}: {e}"))?;
    let account = account_for("fim").ok_or("no memory account")?;
    let memory = MemoryAccount::new(account, config.budget_bytes);
    let (tx, rx) = event_queue(1024);
    let ctx = ModuleContext::new(
        EventSender::new("fim", tx),
        memory,
        state.into(),
        Shutdown::new(),
        Rc::new(|_: &str| None),
    );
    let mut module = Fim::new(config.clone());
    let started = std::time::Instant::now();
    let drain = async {
        let mut changes = 0u64;
        while let Ok(sub) = rx.recv().await {
            match sub.body.payload {
                Payload::Fim(FimEvent::Change(_)) => changes += 1,
                Payload::Fim(FimEvent::ScanEnded {
                    files,
                    bytes_hashed,
                    duration_ms,
                }) => return Ok((changes, files, bytes_hashed, duration_ms)),
                _ => {}
            }
        }
        Err("the module stopped before its scan ended".to_string())
    };
    let run = async {
        let result = Budgeted::new(account, module.run(&ctx)).await;
        Err(format!("the module stopped: {result:?}"))
    };
    let (changes, files, hashed, scan_ms) = smol::block_on(drain.or(run))?;
    let wall = started.elapsed().as_secs_f64();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    println!(
        "wall={wall:.2}s cpu={:.2}s peak_rss={:.1}MiB module_heap_peak={:.0}KiB budget={}KiB \
         scan={:.2}s files={files} changes={changes} hashed={}MiB",
        cpu_seconds(),
        rss / 1024.0,
        peak_bytes(account) as f64 / 1024.0,
        config.budget_bytes / 1024,
        scan_ms as f64 / 1000.0,
        hashed / (1024 * 1024)
    );
    Ok(())
}
