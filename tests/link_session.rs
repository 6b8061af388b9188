//! The link against a small in-test manager (rustls, speaking the proto session) and a
//! Vec-backed outbox: resume, failover, refusal, keep-alives, batching, commands, reconnects,
//! rate limiting and a prompt Goodbye at shutdown.

mod tls_support;

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
use tls_support::{ca, leaf, recv_body, send_msg, serve_at, server_params, Ca, Stream, TestServer};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const AGENT_ID: u32 = 1;

/// A spool stand-in: records in memory, trimmed on ack.
#[derive(Default)]
struct VecOutbox {
    records: Vec<OutRecord>,
    acked: u64,
    last: u64,
}

impl VecOutbox {
    fn with(seqs: impl IntoIterator<Item = u64>, body_len: usize) -> Self {
        let mut outbox = VecOutbox::default();
        outbox.add(seqs, body_len);
        outbox
    }

    fn add(&mut self, seqs: impl IntoIterator<Item = u64>, body_len: usize) {
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
enum Seen {
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
struct Script {
    ack_up_to: u64,
    refuse: Option<Refusal>,
    ack_events: bool,
    answer_keepalives: bool,
    commands: Vec<(u64, Command)>,
    garbage_after_welcome: bool,
    max_frame: usize,
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

type Log = Arc<Mutex<Vec<Seen>>>;

fn fake_manager(stream: &mut Stream, script: &Script, log: &Log) {
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
        stream.write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff]).unwrap();
        stream.flush().unwrap();
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
fn manager(ip: &str, port: u16, ca: &Ca, scripts: Vec<Script>) -> (TestServer, Log) {
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

fn config(managers: &[&str], port: u16) -> LinkConfig {
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

fn creds(ca: &Ca, key: &str) -> Credentials {
    Credentials {
        agent_id: AGENT_ID,
        name: "gw-01".into(),
        ip: "any".into(),
        key: key.into(),
        manager_ca_der: ca.cert_der.clone(),
    }
}

/// What a run of the link left behind.
struct Run {
    result: Result<(), LinkError>,
    stop_took: Duration,
    stats: Rc<LinkStats>,
    outbox: Rc<RefCell<VecOutbox>>,
    agent_events: Vec<AgentEvent>,
    commands: Rc<RefCell<Vec<Command>>>,
}

/// Runs the link until `done` holds (or 10 s), then requests shutdown and waits for it to return.
/// `during` may act on the outbox once the link is connected (e.g. add records).
fn run_link(
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

fn no_action(_: &RefCell<VecOutbox>, _: &event_listener::Event) {}

fn events(log: &Log) -> Vec<(u64, Vec<Vec<u8>>)> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            Seen::Events { first_seq, records } => Some((*first_seq, records.clone())),
            _ => None,
        })
        .collect()
}

fn seqs_delivered(log: &Log) -> Vec<u64> {
    events(log)
        .iter()
        .flat_map(|(first, records)| (0..records.len() as u64).map(move |i| first + i))
        .collect()
}

/// Waits until the server has logged what the agent sent before closing.
fn settle(log: &Log, what: impl Fn(&[Seen]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !what(&log.lock().unwrap()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn session_resumes_after_the_welcome_ack_and_says_goodbye() {
    let ca = ca("manager CA");
    let (server, log) = manager(
        "127.0.0.1",
        0,
        &ca,
        vec![Script {
            ack_up_to: 4,
            ..Script::default()
        }],
    );
    let run = run_link(
        config(&["127.0.0.1"], server.port),
        creds(&ca, KEY),
        VecOutbox::with(1..=10, 20),
        no_action,
        |_, o| o.acked() == 10,
    );
    assert_eq!(run.result, Ok(()));
    assert!(
        run.stop_took < Duration::from_secs(1),
        "shutdown took {:?}",
        run.stop_took
    );
    settle(&log, |l| l.contains(&Seen::Goodbye));
    assert_eq!(
        seqs_delivered(&log),
        (5..=10).collect::<Vec<_>>(),
        "records 1..=4 are held by the manager"
    );
    assert_eq!(events(&log)[0].1[0], run_body(5));
    assert_eq!(log.lock().unwrap()[0], Seen::Hello(AGENT_ID));
    assert_eq!(log.lock().unwrap().last(), Some(&Seen::Goodbye));
    assert_eq!(
        (run.stats.acked(), run.stats.sent(), run.stats.connects()),
        (10, 6, 1)
    );
    assert!(run.outbox.borrow().records.is_empty());
}

fn run_body(seq: u64) -> Vec<u8> {
    let mut body = format!("event {seq} ").into_bytes();
    body.resize(20.max(body.len()), b'.');
    body
}

#[test]
fn fails_over_to_the_second_manager_when_the_first_is_down() {
    let ca = ca("manager CA");
    let (server, log) = manager("127.0.0.2", 0, &ca, vec![Script::default()]);
    // Nothing listens on 127.0.0.1 at that port.
    let cfg = config(&["127.0.0.1", "127.0.0.2"], server.port);
    let run = run_link(
        cfg,
        creds(&ca, KEY),
        VecOutbox::with(1..=3, 10),
        no_action,
        |_, o| o.acked() == 3,
    );
    assert_eq!(run.result, Ok(()));
    assert_eq!(
        run.stats.manager(),
        Some(format!("127.0.0.2:{}", server.port))
    );
    assert_eq!(seqs_delivered(&log), vec![1, 2, 3]);
}

#[test]
fn bad_proof_refusal_is_fatal_with_a_clear_error() {
    let ca = ca("manager CA");
    let (server, _log) = manager("127.0.0.1", 0, &ca, vec![Script::default()]);
    let wrong_key = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    let run = run_link(
        config(&["127.0.0.1"], server.port),
        creds(&ca, wrong_key),
        VecOutbox::default(),
        no_action,
        |_, _| false,
    );
    let err = run.result.unwrap_err();
    assert!(
        matches!(
            err,
            LinkError::Refused {
                reason: Refusal::BadProof,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{}", server.port)),
        "{message}"
    );
    assert!(message.contains("key does not match"), "{message}");
    assert_eq!(run.stats.state(), LinkState::Refused);
    assert_eq!(run.stats.connects(), 0);
}

#[test]
fn busy_refusal_is_retried_not_fatal() {
    let ca = ca("manager CA");
    let busy = Script {
        refuse: Some(Refusal::Busy),
        ..Script::default()
    };
    let (server, log) = manager("127.0.0.1", 0, &ca, vec![busy, Script::default()]);
    let run = run_link(
        config(&["127.0.0.1"], server.port),
        creds(&ca, KEY),
        VecOutbox::with(1..=2, 10),
        no_action,
        |_, o| o.acked() == 2,
    );
    assert_eq!(run.result, Ok(()));
    assert_eq!(seqs_delivered(&log), vec![1, 2]);
    assert!(run.stats.last_error().unwrap_or_default().contains("busy"));
}

#[test]
fn keepalives_are_sent_with_the_agent_status() {
    let ca = ca("manager CA");
    let (server, log) = manager(
        "127.0.0.1",
        0,
        &ca,
        vec![Script {
            ack_events: false,
            ..Script::default()
        }],
    );
    let mut cfg = config(&["127.0.0.1"], server.port);
    cfg.keepalive = Duration::from_millis(50);
    let run = run_link(
        cfg,
        creds(&ca, KEY),
        VecOutbox::with(1..=3, 10),
        no_action,
        |s, _| s.keepalives_sent() >= 4,
    );
    assert_eq!(run.result, Ok(()));
    settle(&log, |l| {
        l.iter().filter(|s| matches!(s, Seen::Keepalive(_))).count() >= 4
    });
    let keepalives: Vec<KeepaliveStatus> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            Seen::Keepalive(k) => Some(k.clone()),
            _ => None,
        })
        .collect();
    assert!(keepalives.len() >= 4, "{keepalives:?}");
    assert_eq!(keepalives[0].version, gatewatch::VERSION);
    assert_eq!(keepalives[0].spooled, 3, "nothing was acknowledged");
}

#[test]
fn batches_respect_max_frame() {
    let ca = ca("manager CA");
    let script = Script {
        max_frame: 512,
        ..Script::default()
    };
    let (server, log) = manager("127.0.0.1", 0, &ca, vec![script]);
    let mut cfg = config(&["127.0.0.1"], server.port);
    cfg.max_frame = 512;
    let run = run_link(
        cfg,
        creds(&ca, KEY),
        VecOutbox::with(1..=30, 100),
        no_action,
        |_, o| o.acked() == 30,
    );
    assert_eq!(run.result, Ok(()));
    let frames = events(&log);
    assert!(
        frames.len() >= 6,
        "30 records of 100 bytes need several 512-byte frames, got {}",
        frames.len()
    );
    assert_eq!(seqs_delivered(&log), (1..=30).collect::<Vec<_>>());
    // The server's decoder refuses frames over 512 bytes, so arriving at all proves the bound.
}

#[test]
fn gaps_in_the_outbox_end_a_batch() {
    let ca = ca("manager CA");
    let (server, log) = manager("127.0.0.1", 0, &ca, vec![Script::default()]);
    let mut outbox = VecOutbox::with(1..=5, 10);
    outbox.add(8..=10, 10); // 6 and 7 were dropped by the spool
    let run = run_link(
        config(&["127.0.0.1"], server.port),
        creds(&ca, KEY),
        outbox,
        no_action,
        |_, o| o.acked() == 10,
    );
    assert_eq!(run.result, Ok(()));
    let frames: Vec<(u64, usize)> = events(&log).iter().map(|(f, r)| (*f, r.len())).collect();
    assert_eq!(frames, vec![(1, 5), (8, 3)]);
}

#[test]
fn records_added_later_are_sent_when_notified() {
    let ca = ca("manager CA");
    let (server, log) = manager("127.0.0.1", 0, &ca, vec![Script::default()]);
    let add = |outbox: &RefCell<VecOutbox>, new_records: &event_listener::Event| {
        outbox.borrow_mut().add(3..=4, 10);
        new_records.notify(usize::MAX);
    };
    let run = run_link(
        config(&["127.0.0.1"], server.port),
        creds(&ca, KEY),
        VecOutbox::with(1..=2, 10),
        add,
        |_, o| o.acked() == 4,
    );
    assert_eq!(run.result, Ok(()));
    assert_eq!(seqs_delivered(&log), vec![1, 2, 3, 4]);
}

#[test]
fn commands_are_answered() {
    let ca = ca("manager CA");
    let script = Script {
        commands: vec![(9, Command::Restart)],
        ..Script::default()
    };
    let (server, log) = manager("127.0.0.1", 0, &ca, vec![script]);
    let answered = |l: &[Seen]| l.contains(&Seen::CommandResult(9, CommandOutcome::Done));
    let seen = log.clone();
    let run = run_link(
        config(&["127.0.0.1"], server.port),
        creds(&ca, KEY),
        VecOutbox::default(),
        no_action,
        move |_, _| answered(&seen.lock().unwrap()),
    );
    assert_eq!(run.result, Ok(()));
    assert!(answered(&log.lock().unwrap()));
    assert_eq!(*run.commands.borrow(), vec![Command::Restart]);
}

#[test]
fn garbage_from_the_manager_causes_a_reconnect() {
    let ca = ca("manager CA");
    let garbage = Script {
        garbage_after_welcome: true,
        ..Script::default()
    };
    let (server, log) = manager("127.0.0.1", 0, &ca, vec![garbage, Script::default()]);
    let run = run_link(
        config(&["127.0.0.1"], server.port),
        creds(&ca, KEY),
        VecOutbox::with(1..=2, 10),
        no_action,
        |s, o| s.connects() == 2 && o.acked() == 2,
    );
    assert_eq!(run.result, Ok(()));
    assert_eq!(run.stats.connects(), 2);
    assert!(
        run.stats
            .last_error()
            .unwrap_or_default()
            .contains("garbage"),
        "{:?}",
        run.stats.last_error()
    );
    assert!(seqs_delivered(&log).ends_with(&[1, 2]));
}

#[test]
fn silence_from_the_manager_causes_a_reconnect() {
    let ca = ca("manager CA");
    let mute = Script {
        ack_events: false,
        answer_keepalives: false,
        ..Script::default()
    };
    let (server, _log) = manager("127.0.0.1", 0, &ca, vec![mute, Script::default()]);
    let mut cfg = config(&["127.0.0.1"], server.port);
    cfg.keepalive = Duration::from_millis(50);
    cfg.reconnect = Duration::from_millis(300);
    let run = run_link(
        cfg,
        creds(&ca, KEY),
        VecOutbox::with(1..=2, 10),
        no_action,
        |s, o| s.connects() == 2 && o.acked() == 2,
    );
    assert_eq!(run.result, Ok(()));
    assert!(
        run.stats
            .last_error()
            .unwrap_or_default()
            .contains("sent nothing"),
        "{:?}",
        run.stats.last_error()
    );
}

#[test]
fn rate_limit_holds_events_back_and_reports_one_flood() {
    let ca = ca("manager CA");
    let (server, log) = manager("127.0.0.1", 0, &ca, vec![Script::default()]);
    let mut cfg = config(&["127.0.0.1"], server.port);
    cfg.events_per_second = 20;
    cfg.flood_threshold = 30;
    let run = run_link(
        cfg,
        creds(&ca, KEY),
        VecOutbox::with(1..=100, 10),
        no_action,
        |s, _| s.sent() >= 30,
    );
    assert_eq!(run.result, Ok(()));
    let sent = run.stats.sent();
    // One second of burst (20) plus 20 per second after it: about 30 by the time we stopped.
    assert!((30..=40).contains(&sent), "sent {sent}");
    assert!(seqs_delivered(&log).len() as u64 <= sent);
    let floods: Vec<_> = run
        .agent_events
        .iter()
        .filter(|e| matches!(e, AgentEvent::Flood { .. }))
        .collect();
    assert_eq!(floods.len(), 1, "{:?}", run.agent_events);
    assert!(
        matches!(floods[0], AgentEvent::Flood { events_per_second: 20, backlog } if *backlog >= 30)
    );
}
