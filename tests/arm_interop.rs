//! An ARM agent talks to an x86_64 manager: the aarch64 gateway binary, run under qemu-user,
//! enrolls with a native manager and streams events over TLS on loopback.
//!
//! The aarch64 binary is cross-built by `scripts/ci-arm.sh`, which then runs this test with
//! `GATEWATCH_AARCH64_AGENT` set to it (and `GATEWATCH_AARCH64_RUNNER` to the qemu binary, by
//! default `qemu-aarch64-static`). In a plain `cargo test` the variable is unset and the test says
//! loudly that it did not run; a variable that names a missing file is an error, not a skip.

mod common;

use common::{wait_for, Agent, Manager};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// ELF `e_machine` of AArch64.
const EM_AARCH64: u16 = 183;

/// Events the generator sends; enough for several batches, few enough for emulation.
const EVENTS: u64 = 300;

/// The cross-built agent and the emulator that runs it, or `None` when not configured.
fn aarch64_agent() -> Option<(PathBuf, String)> {
    let bin = PathBuf::from(std::env::var_os("GATEWATCH_AARCH64_AGENT")?);
    let runner = std::env::var("GATEWATCH_AARCH64_RUNNER")
        .unwrap_or_else(|_| "qemu-aarch64-static".to_string());
    Some((bin, runner))
}

/// Reads the ELF machine field, so that a native binary passed by mistake is caught.
fn elf_machine(bin: &Path) -> u16 {
    let bytes = std::fs::read(bin)
        .unwrap_or_else(|e| panic!("GATEWATCH_AARCH64_AGENT={}: {e}", bin.display()));
    assert!(
        bytes.len() > 20 && bytes.starts_with(b"\x7fELF"),
        "{} is not an ELF file",
        bin.display()
    );
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// Runs one `gatewatch` command of the aarch64 binary under the emulator.
fn emulated(runner: &str, bin: &Path, args: &[&str], config: &Path) -> Command {
    let mut cmd = Command::new(runner);
    cmd.arg(bin).args(args).arg("--config").arg(config);
    cmd
}

/// Kills the emulated agent if the test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        common::sigkill(&mut self.0);
    }
}

#[test]
fn aarch64_agent_streams_to_x86_manager() {
    let Some((bin, runner)) = aarch64_agent() else {
        // Written to the stderr handle, not with eprintln!, which the test harness captures.
        let _ = writeln!(
            std::io::stderr(),
            "\n{stars}\nSKIPPED aarch64_agent_streams_to_x86_manager: GATEWATCH_AARCH64_AGENT is not set.\n\
             scripts/ci-arm.sh (part of .ci/run) builds the aarch64 agent and runs this test\n\
             under qemu-user.\n{stars}\n",
            stars = "*".repeat(78)
        );
        return;
    };
    assert_eq!(
        elf_machine(&bin),
        EM_AARCH64,
        "{} is not an aarch64 binary",
        bin.display()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let manager = Manager::start(&dir.path().join("manager"), Some("arm-enroll-pass"));
    let extra = format!(
        "[buffer]\nevents_per_second = 0\n\n[modules.generator]\nenabled = true\ncount = {EVENTS}\nrate = 0\nbody_bytes = 120\n"
    );
    let agent = Agent::configure(&dir.path().join("agent"), &manager, &extra);

    let enroll = emulated(&runner, &bin, &["enroll"], &agent.config)
        .output()
        .unwrap_or_else(|e| panic!("run {runner} (is qemu-user-static installed?): {e}"));
    assert!(
        enroll.status.success(),
        "the aarch64 agent failed to enroll: {}",
        String::from_utf8_lossy(&enroll.stderr)
    );
    let id = agent.agent_id();

    let child = emulated(&runner, &bin, &["run"], &agent.config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start the aarch64 agent under {runner}: {e}"));
    let mut running = Running(child);

    let numbers = wait_for(
        Duration::from_secs(120),
        &format!("{EVENTS} events from the aarch64 agent"),
        || {
            let numbers = manager.generator_numbers(id);
            (numbers.len() as u64 >= EVENTS).then_some(numbers)
        },
    );
    assert_eq!(
        numbers,
        (0..EVENTS).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );

    let (connected, version): (i64, Option<String>) = manager
        .db()
        .query_row(
            "SELECT connected, version FROM agents WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the agent's row at the manager");
    assert_eq!(connected, 1, "the manager sees the aarch64 agent connected");
    assert_eq!(version.as_deref(), Some(gatewatch::VERSION));

    // qemu-user passes SIGTERM on to the emulated agent, which stops cleanly.
    common::sigterm(&running.0);
    let status = wait_for(Duration::from_secs(30), "the aarch64 agent to exit", || {
        running.0.try_wait().expect("wait for the agent")
    });
    assert!(status.success(), "the aarch64 agent exited with {status}");
}
