//! Two network namespaces joined by a veth pair, for firewall tests: a "gateway" (where the
//! response module's network commands run) and an "attacker". Unique names per test; both are
//! deleted (with the veth pair) when the [`Pair`] is dropped, even when the test fails.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The namespace pair.
pub struct Pair {
    /// Name of the gateway's namespace.
    pub gateway: String,
    /// Name of the attacker's namespace.
    pub attacker: String,
    /// The gateway's address on the veth link.
    pub gateway_ip: Ipv4Addr,
    /// The attacker's address.
    pub attacker_ip: Ipv4Addr,
    stop: Arc<AtomicBool>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Pair {
    /// Creates the pair; `None` (the test is skipped, saying why) when this machine cannot,
    /// unless `CI` is set: then it fails.
    pub fn create() -> Option<Pair> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}x{n}", std::process::id());
        let pair = Pair {
            gateway: format!("gw-resp-{id}"),
            attacker: format!("at-resp-{id}"),
            gateway_ip: Ipv4Addr::new(10, 231, 0, 1),
            attacker_ip: Ipv4Addr::new(10, 231, 0, 2),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (vg, va) = (format!("rg{id}"), format!("ra{id}"));
        let gw_addr = format!("{}/24", pair.gateway_ip);
        let at_addr = format!("{}/24", pair.attacker_ip);
        let setup = [
            vec!["netns", "add", &pair.gateway],
            vec!["netns", "add", &pair.attacker],
            vec![
                "link",
                "add",
                &vg,
                "netns",
                &pair.gateway,
                "type",
                "veth",
                "peer",
                "name",
                &va,
                "netns",
                &pair.attacker,
            ],
            vec!["-n", &pair.gateway, "addr", "add", &gw_addr, "dev", &vg],
            vec!["-n", &pair.attacker, "addr", "add", &at_addr, "dev", &va],
            vec!["-n", &pair.gateway, "link", "set", &vg, "up"],
            vec!["-n", &pair.attacker, "link", "set", &va, "up"],
            vec!["-n", &pair.gateway, "link", "set", "lo", "up"],
        ];
        for args in setup {
            if let Err(e) = ip(&args) {
                let why = format!("network namespaces unavailable (root and iproute2 needed): {e}");
                assert!(std::env::var_os("CI").is_none(), "{why}");
                eprintln!("skipped: {why}");
                return None;
            }
        }
        let nft = super::super::builtin::find_program("nft").is_some()
            || super::super::builtin::find_program("iptables").is_some();
        if !nft {
            let why = "neither nft nor iptables is installed (scripts/ci-response.sh)";
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipped: {why}");
            return None;
        }
        Some(pair)
    }

    /// A TCP listener on the gateway side (accepting until the pair is dropped); its address.
    pub fn listen(&self) -> SocketAddr {
        let (tx, rx) = std::sync::mpsc::channel();
        let ns = self.gateway.clone();
        let ip = self.gateway_ip;
        let stop = self.stop.clone();
        std::thread::spawn(move || {
            enter(&ns);
            let listener = TcpListener::bind((ip, 0)).expect("bind in the gateway namespace");
            listener
                .set_nonblocking(true)
                .expect("non-blocking listener");
            tx.send(listener.local_addr().expect("listener address"))
                .expect("test waiting");
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => drop(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        rx.recv().expect("the listener thread started")
    }

    /// Whether a TCP connection from the attacker's side reaches `addr` within a second.
    pub fn connects(&self, addr: SocketAddr) -> bool {
        let ns = self.attacker.clone();
        std::thread::spawn(move || {
            enter(&ns);
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        })
        .join()
        .expect("the connecting thread")
    }
}

/// Moves the calling thread into network namespace `ns`.
fn enter(ns: &str) {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("namespace file");
    // SAFETY: setns on a valid namespace descriptor only changes this thread's namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Deleting a namespace deletes the veth end inside it, and so the pair.
        let _ = ip(&["netns", "del", &self.gateway]);
        let _ = ip(&["netns", "del", &self.attacker]);
    }
}
