//! The link against a small in-test manager (rustls, speaking the proto session) and a
//! Vec-backed outbox: resume, failover, refusal, keep-alives, batching, commands, reconnects,
//! rate limiting, the ack window and a prompt Goodbye at shutdown.

mod link_support;
mod tls_support;

use gatewatch::link::{LinkError, LinkState};
use gatewatch::pipeline::Outbox;
use gatewatch_proto::{AgentEvent, Command, CommandOutcome, KeepaliveStatus, Refusal};
use link_support::*;
use std::cell::RefCell;
use std::time::{Duration, Instant};
use tls_support::ca;

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

#[test]
fn unacknowledged_bytes_are_bounded_by_the_window() {
    let ca = ca("manager CA");
    let silent_acks = Script {
        ack_events: false,
        ..Script::default()
    };
    let (server, log) = manager("127.0.0.1", 0, &ca, vec![silent_acks]);
    let mut cfg = config(&["127.0.0.1"], server.port);
    cfg.max_batch_records = 2;
    cfg.max_unacked_bytes = 1; // one frame in flight at a time
                               // Once the first frame is out, give the link 300 ms to (wrongly) send more. Measured from the
                               // first send, not from the start, so a slow handshake (qemu) does not shorten the window.
    let started = Instant::now();
    let first_sent = std::cell::Cell::new(None::<Instant>);
    let run = run_link(
        cfg,
        creds(&ca, KEY),
        VecOutbox::with(1..=10, 10),
        no_action,
        move |stats, _| {
            if stats.sent() >= 2 && first_sent.get().is_none() {
                first_sent.set(Some(Instant::now()));
            }
            let waited = first_sent
                .get()
                .is_some_and(|t| t.elapsed() > Duration::from_millis(300));
            waited || started.elapsed() > Duration::from_secs(30)
        },
    );
    assert_eq!(run.result, Ok(()));
    assert_eq!(
        run.stats.sent(),
        2,
        "only the first frame may be sent before an ack"
    );
    assert_eq!(seqs_delivered(&log), vec![1, 2]);
}
