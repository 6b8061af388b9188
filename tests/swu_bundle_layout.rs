//! The SWUpdate bundle made by `scripts/ota-bundle.sh swu`: a cpio archive in the `newc` format
//! whose first member is `sw-description`, which lists every other member with its sha256, and
//! whose update script commits only when `gatewatch check --health` passes.
//!
//! The archive is parsed here byte by byte (not with the `cpio` tool that wrote it), so a change
//! of format or member order is caught the way SWUpdate would see it.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One member of a newc archive.
struct Member {
    name: String,
    mode: u32,
    data: Vec<u8>,
}

/// The members the bundle must hold, in order (SWUpdate reads sw-description first).
const LAYOUT: [&str; 4] = [
    "sw-description",
    "gatewatch",
    "agent.toml",
    "gatewatch-update.sh",
];

/// The agent binary put in the bundle (its architecture does not matter to the layout).
fn agent_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gatewatch"))
}

/// Runs the bundle script and returns the `.swu` bytes.
fn build_bundle(dir: &Path) -> Vec<u8> {
    let out = dir.join("gatewatch.swu");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ota-bundle.sh");
    let result = Command::new("bash")
        .arg(&script)
        .arg("swu")
        .arg("--binary")
        .arg(agent_binary())
        .arg("--out")
        .arg(&out)
        .args(["--version", "9.8.7", "--hw-compat", "1.0,2.0"])
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        result.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::read(&out).unwrap_or_else(|e| panic!("read {}: {e}", out.display()))
}

/// Rounds up to the next multiple of four (newc pads names and data to 4 bytes).
fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Reads one 8-digit hexadecimal header field.
fn hex_field(header: &[u8], index: usize) -> u32 {
    let start = 6 + 8 * index;
    let text = std::str::from_utf8(&header[start..start + 8]).expect("ASCII header field");
    u32::from_str_radix(text, 16).unwrap_or_else(|e| panic!("header field {text:?}: {e}"))
}

/// Parses a newc archive up to its trailer; panics on anything else.
fn parse_newc(bytes: &[u8]) -> Vec<Member> {
    let mut members = Vec::new();
    let mut at = 0;
    loop {
        let header = &bytes[at..at + 110];
        assert_eq!(&header[..6], b"070701", "newc magic at offset {at}");
        let mode = hex_field(header, 1);
        let size = hex_field(header, 6) as usize;
        let name_size = hex_field(header, 11) as usize;
        let name_bytes = &bytes[at + 110..at + 110 + name_size];
        assert_eq!(name_bytes.last(), Some(&0), "member names end with NUL");
        let name = String::from_utf8(name_bytes[..name_size - 1].to_vec()).expect("UTF-8 name");
        let data_start = at + pad4(110 + name_size);
        if name == "TRAILER!!!" {
            return members;
        }
        let data = bytes[data_start..data_start + size].to_vec();
        members.push(Member { name, mode, data });
        at = data_start + pad4(size);
    }
}

/// The bundle's members, from a fresh build.
fn bundle_members() -> Vec<Member> {
    let dir = tempfile::tempdir().expect("temp dir");
    parse_newc(&build_bundle(dir.path()))
}

fn member<'a>(members: &'a [Member], name: &str) -> &'a Member {
    members
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no {name} in the bundle"))
}

/// `@NAME@` placeholders of the templates that were not filled in.
fn unfilled_fields(text: &str) -> Vec<&str> {
    text.match_indices('@')
        .filter_map(|(at, _)| {
            let rest = &text[at + 1..];
            let end = rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_'))?;
            (end > 0 && rest[end..].starts_with('@')).then(|| &rest[..end])
        })
        .collect()
}

fn text(member: &Member) -> String {
    String::from_utf8(member.data.clone()).expect("UTF-8 text member")
}

#[test]
fn swu_bundle_layout() {
    let members = bundle_members();
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, LAYOUT, "sw-description first, then the payload");
    let binary = std::fs::read(agent_binary()).expect("read the agent binary");
    assert!(
        member(&members, "gatewatch").data == binary,
        "the binary is carried unchanged"
    );
    for executable in ["gatewatch", "gatewatch-update.sh"] {
        assert_eq!(
            member(&members, executable).mode & 0o111,
            0o111,
            "{executable} is executable"
        );
    }
}

#[test]
fn sw_description_pins_every_member_by_sha256() {
    let members = bundle_members();
    let description = text(member(&members, "sw-description"));
    assert!(description.contains("version = \"9.8.7\";"));
    assert!(description.contains("hardware-compatibility: [ \"1.0\", \"2.0\" ];"));
    for payload in &LAYOUT[1..] {
        let digest = hex::encode(Sha256::digest(&member(&members, payload).data));
        let entry = format!("filename = \"{payload}\";");
        let at = description
            .find(&entry)
            .unwrap_or_else(|| panic!("sw-description lists {payload}"));
        let rest = &description[at..];
        let end = rest.find('}').expect("entry closes");
        assert!(
            rest[..end].contains(&format!("sha256 = \"{digest}\";")),
            "sw-description pins {payload} to {digest}"
        );
    }
}

#[test]
fn update_script_commits_only_when_the_health_gate_passes() {
    let members = bundle_members();
    let script = text(member(&members, "gatewatch-update.sh"));
    assert!(
        unfilled_fields(&script).is_empty(),
        "template fields left: {:?}",
        unfilled_fields(&script)
    );
    let gate = script
        .find("check --health --within \"$WITHIN\"")
        .expect("the script runs the health gate");
    let rollback = script[gate..]
        .find("rollback")
        .expect("a failed health gate rolls back");
    assert!(script[gate..gate + rollback].contains("committed"));
}

#[test]
fn bundle_never_writes_the_agent_state_directory() {
    let members = bundle_members();
    let description = text(member(&members, "sw-description"));
    for line in description.lines().filter(|l| l.contains("path =")) {
        assert!(
            !line.contains("\"/var/lib/gatewatch/"),
            "the state directory (identity, spool) survives updates: {line}"
        );
    }
    let script = text(member(&members, "gatewatch-update.sh"));
    assert!(!script.contains("/var/lib/gatewatch\""));
    assert!(!script.contains("/var/lib/gatewatch/"));
}
