//! Harness for the `link_*` tests: a Vec-backed outbox (the real spool is tested on its own), a
//! small manager speaking the proto session on a real rustls server, and a driver that runs the
//! link on a `LocalExecutor` until a condition holds, then stops it.
#![allow(dead_code)] // each test file uses a different part of this module

use crate::tls_support::{
    leaf, recv_body, send_msg, serve_at, server_params, Ca, Stream, TestServer,
};
use gatewatch::enroll::Credentials;
use gatewatch::link::{self, LinkConfig, LinkError, LinkState, LinkStats};
use gatewatch::pipeline::{event_queue, EventSender, OutRecord, Outbox};
use gatewatch::runtime::shutdown::Shutdown;
use gatewatch_proto::frame::{decode_body, FrameDecoder};
use gatewatch_proto::session::proof_matches;
use gatewatch_proto::{
    AgentEvent, AgentMessage, Command, CommandOutcome, KeepaliveStatus, ManagerMessage, Payload,
    Refusal,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
pub const AGENT_ID: u32 = 1;

/// A spool stand-in: records in memory, trimmed on ack.
#[derive(Default)]
pub struct VecOutbox {
    pub records: Vec<OutRecord>,
    pub acked: u64,
    pub last: u64,
}

impl VecOutbox {
    pub fn with(seqs: impl IntoIterator<Item = u64>, body_len: usize) -> Self {
        let mut outbox = VecOutbox::default();
        outbox.add(seqs, body_len);
        outbox
    }

    pub fn add(&mut self, seqs: impl IntoIterator<Item = u64>, body_len: usize) {
        for seq in seqs {
            let mut body = format!("event {seq} ").into_bytes();
            body.resize(body_len.max(body.len()), b'.');
            self.records.push(OutRecord { seq, body });
            self.last = seq;
        }
    }
}

impl Outbox for VecOutbox {
    fn read_after(
        &mut self,
        after: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<OutRecord>,
    ) -> std::io::Result<()> {
        let mut bytes = 0;
        for r in self
            .records
            .iter()
            .filter(|r| r.seq > after)
            .take(max_records)
        {
            if !out.is_empty() && bytes + r.body.len() > max_bytes {
                break;
            }
            bytes += r.body.len();
            out.push(r.clone());
        }
        Ok(())
    }
    fn ack(&mut self, up_to: u64) -> std::io::Result<()> {
        self.acked = self.acked.max(up_to);
        self.records.retain(|r| r.seq > up_to);
        Ok(())
    }
    fn acked(&self) -> u64 {
        self.acked
    }
    fn last_seq(&self) -> u64 {
        self.last
    }
    fn pending(&self) -> u64 {
        self.records.len() as u64
    }
    fn dropped_total(&self) -> u64 {
        0
    }
}

/// What the fake manager saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Hello(u32),
    Events {
        first_seq: u64,
        records: Vec<Vec<u8>>,
    },
    Keepalive(KeepaliveStatus),
    CommandResult(u64, CommandOutcome),
    Goodbye,
}

/// How the fake manager behaves on one connection.
#[derive(Clone)]
pub struct Script {
    pub ack_up_to: u64,
    pub refuse: Option<Refusal>,
    pub ack_events: bool,
    pub answer_keepalives: bool,
    pub commands: Vec<(u64, Command)>,
    pub garbage_after_welcome: bool,
    pub max_frame: usize,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            ack_up_to: 0,
            refuse: None,
            ack_events: true,
            answer_keepalives: true,
            commands: vec![],
            garbage_after_welcome: false,
            max_frame: 64 * 1024,
        }
    }
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

pub fn fake_manager(stream: &mut Stream, script: &Script, log: &Log) {
    let mut decoder = FrameDecoder::new(script.max_frame);
    let Some(hello) = recv_body(stream, &mut decoder) else {
        return;
    };
    let Ok(AgentMessage::Hello { agent_id, .. }) = decode_body(&hello) else {
        return;
    };
    log.lock().unwrap().push(Seen::Hello(agent_id));
    let nonce = [9u8; 32];
    send_msg(stream, &ManagerMessage::Challenge { version: 1, nonce });
    let Some(auth) = recv_body(stream, &mut decoder) else {
        return;
    };
    let Ok(AgentMessage::Auth { proof }) = decode_body(&auth) else {
        return;
    };
    let refusal =
        script
            .refuse
            .or((!proof_matches(KEY.as_bytes(), &nonce, agent_id, &proof))
                .then_some(Refusal::BadProof));
    if let Some(reason) = refusal {
        send_msg(
            stream,
            &ManagerMessage::Refused {
                reason,
                detail: "as scripted".into(),
            },
        );
        return;
    }
    send_msg(
        stream,
        &ManagerMessage::Welcome {
            version: 1,
            ack_up_to: script.ack_up_to,
        },
    );
    if script.garbage_after_welcome {
        use std::io::Write;
        let _ = stream
            .write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff])
            .and_then(|_| stream.flush());
    }
    for (id, command) in &script.commands {
        send_msg(
            stream,
            &ManagerMessage::Command {
                id: *id,
                command: command.clone(),
            },
        );
    }
    while let Some(body) = recv_body(stream, &mut decoder) {
        let seen = match decode_body::<AgentMessage>(&body) {
            Ok(AgentMessage::Events { first_seq, records }) => {
                if script.ack_events {
                    send_msg(
                        stream,
                        &ManagerMessage::Ack {
                            up_to: first_seq + records.len() as u64 - 1,
                        },
                    );
                }
                Seen::Events {
                    first_seq,
                    records: records.iter().map(|r| r.to_vec()).collect(),
                }
            }
            Ok(AgentMessage::Keepalive { status }) => {
                if script.answer_keepalives {
                    send_msg(stream, &ManagerMessage::KeepaliveAck);
                }
                Seen::Keepalive(status)
            }
            Ok(AgentMessage::CommandResult { id, outcome }) => Seen::CommandResult(id, outcome),
            Ok(AgentMessage::Goodbye) => Seen::Goodbye,
            other => panic!("unexpected message {other:?}"),
        };
        log.lock().unwrap().push(seen);
    }
}

/// A fake manager on `ip` with a certificate from `ca`, running `scripts` (one per connection;
/// the last one repeats). Returns the server and what it saw.
pub fn manager(ip: &str, port: u16, ca: &Ca, scripts: Vec<Script>) -> (TestServer, Log) {
    let cert = leaf(server_params(ip), &ca.issuer);
    let log: Log = Arc::default();
    let seen = log.clone();
    let server = serve_at(
        &format!("{ip}:{port}"),
        vec![cert.cert_der.clone()],
        cert.key_pkcs8.clone(),
        None,
        8,
        move |i, s| {
            fake_manager(s, &scripts[i.min(scripts.len() - 1)], &seen);
            vec![]
        },
    );
    (server, log)
}

pub fn config(managers: &[&str], port: u16) -> LinkConfig {
    LinkConfig {
        managers: managers.iter().map(|m| m.to_string()).collect(),
        port,
        keepalive: Duration::from_secs(1),
        reconnect: Duration::from_secs(5),
        max_frame: 64 * 1024,
        events_per_second: 0,
        flood_threshold: 0,
        max_batch_records: 256,
        max_unacked_bytes: 1 << 20,
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
    }
}

pub fn creds(ca: &Ca, key: &str) -> Credentials {
    Credentials {
        agent_id: AGENT_ID,
        name: "gw-01".into(),
        ip: "any".into(),
        key: key.into(),
        manager_ca_der: ca.cert_der.clone(),
    }
}

/// What a run of the link left behind.
pub struct Run {
    pub result: Result<(), LinkError>,
    pub stop_took: Duration,
    pub stats: Rc<LinkStats>,
    pub outbox: Rc<RefCell<VecOutbox>>,
    pub agent_events: Vec<AgentEvent>,
    pub commands: Rc<RefCell<Vec<Command>>>,
}

/// Runs the link until `done` holds (or 10 s), then requests shutdown and waits for it to return.
/// `during` may act on the outbox once the link is connected (e.g. add records).
pub fn run_link(
    cfg: LinkConfig,
    creds: Credentials,
    outbox: VecOutbox,
    during: impl FnOnce(&RefCell<VecOutbox>, &event_listener::Event),
    done: impl Fn(&LinkStats, &VecOutbox) -> bool,
) -> Run {
    let outbox = Rc::new(RefCell::new(outbox));
    let stats = Rc::new(LinkStats::new());
    let new_records = Rc::new(event_listener::Event::new());
    let shutdown = Shutdown::new();
    let commands = Rc::new(RefCell::new(Vec::new()));
    let (tx, rx) = event_queue(16);
    let seen_commands = commands.clone();
    let handler: link::CommandHandler = Box::new(move |c: &Command| {
        seen_commands.borrow_mut().push(c.clone());
        CommandOutcome::Done
    });
    let ex = smol::LocalExecutor::new();
    let (result, stop_took) = smol::block_on(ex.run(async {
        let dyn_outbox: Rc<RefCell<dyn Outbox>> = outbox.clone();
        let task = ex.spawn(link::run(
            cfg,
            creds,
            dyn_outbox,
            new_records.clone(),
            stats.clone(),
            handler,
            EventSender::new("agent", tx),
            shutdown.clone(),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut during = Some(during);
        while !task.is_finished() && Instant::now() < deadline && !done(&stats, &outbox.borrow()) {
            if stats.state() == LinkState::Connected {
                if let Some(act) = during.take() {
                    act(&outbox, &new_records);
                }
            }
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
        shutdown.request();
        let stop = Instant::now();
        let result = task.await;
        (result, stop.elapsed())
    }));
    let agent_events = std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|s| match s.body.payload {
            Payload::Agent(e) => Some(e),
            _ => None,
        })
        .collect();
    Run {
        result,
        stop_took,
        stats,
        outbox,
        agent_events,
        commands,
    }
}

pub fn no_action(_: &RefCell<VecOutbox>, _: &event_listener::Event) {}

pub fn events(log: &Log) -> Vec<(u64, Vec<Vec<u8>>)> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            Seen::Events { first_seq, records } => Some((*first_seq, records.clone())),
            _ => None,
        })
        .collect()
}

pub fn seqs_delivered(log: &Log) -> Vec<u64> {
    events(log)
        .iter()
        .flat_map(|(first, records)| (0..records.len() as u64).map(move |i| first + i))
        .collect()
}

/// Waits until the server has logged what the agent sent before closing.
pub fn settle(log: &Log, what: impl Fn(&[Seen]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !what(&log.lock().unwrap()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn run_body(seq: u64) -> Vec<u8> {
    let mut body = format!("event {seq} ").into_bytes();
    body.resize(20.max(body.len()), b'.');
    body
}
