//! The acceptance tests of the containers module: real engine, real events.

use super::engine::{Engine, IMAGE};
use super::{config_for, unique, Harness};
use gatewatch_proto::containers::{
    ContainerAlert, ContainerEvent, EngineEvent, ObjectType, Severity,
};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn alert(e: &ContainerEvent) -> Option<&ContainerAlert> {
    match e {
        ContainerEvent::Alert(a) => Some(a),
        _ => None,
    }
}

fn engine_event(e: &ContainerEvent) -> Option<&EngineEvent> {
    match e {
        ContainerEvent::Engine(e) => Some(e),
        _ => None,
    }
}

/// Whether `e` is the engine event `object`/`action` whose name is `name`.
fn is(e: &ContainerEvent, object: ObjectType, action: &str, name: &str) -> bool {
    engine_event(e).is_some_and(|e| {
        e.object == object && e.action == action && e.name.as_deref() == Some(name)
    })
}

/// Starts the module on the shared engine once it is connected.
fn watching(engine: &Engine, account: &'static str) -> Harness {
    let mut module = Harness::start(config_for(&engine.socket), account, 1024);
    module.wait_for("the engine connection", WAIT, |e| {
        matches!(e, ContainerEvent::EngineConnected { .. })
    });
    module
}

#[test]
fn privileged_container_is_alerted() {
    let Some(engine) = Engine::shared() else {
        return;
    };
    let mut module = watching(&engine, "containers-privileged");
    let name = unique("priv");
    // Created, not started: this machine's own sandbox refuses the capabilities a privileged
    // container gets, and the finding is about the container's settings anyway.
    engine.docker(&["create", "--privileged", "--name", &name, IMAGE]);
    let found = module.wait_for("a privileged alert", WAIT, |e| {
        alert(e).is_some_and(|a| a.rule == "privileged" && a.container_name == name)
    });
    assert_eq!(alert(&found).map(|a| a.severity), Some(Severity::Critical));
    module.wait_for("the create event", WAIT, |e| {
        is(e, ObjectType::Container, "create", &name)
    });
    engine.docker(&["rm", "-f", &name]);
    module.stop().unwrap();
}

#[test]
fn sensitive_mount_is_alerted() {
    let Some(engine) = Engine::shared() else {
        return;
    };
    let mut module = watching(&engine, "containers-mount");
    let name = unique("mount");
    let socket_bind = format!("{}:/var/run/docker.sock", engine.socket.display());
    engine.docker(&[
        "create",
        "-v",
        "/etc:/host-etc:ro",
        "-v",
        &socket_bind,
        "--cap-add",
        "SYS_ADMIN",
        "--name",
        &name,
        IMAGE,
    ]);
    let mut seen = Vec::new();
    for (detail, severity) in [
        ("/etc:/host-etc:ro".to_string(), Severity::High),
        (
            format!("{}:/var/run/docker.sock:rw", engine.socket.display()),
            Severity::Critical,
        ),
    ] {
        let found = module.wait_for(&format!("a mount alert for {detail}"), WAIT, |e| {
            alert(e).is_some_and(|a| {
                a.rule == "sensitive_mount" && a.container_name == name && a.detail == detail
            })
        });
        assert_eq!(
            alert(&found).map(|a| a.severity),
            Some(severity),
            "{detail}"
        );
        seen.push(found);
    }
    let cap = module.wait_for("the SYS_ADMIN alert", WAIT, |e| {
        alert(e).is_some_and(|a| a.rule == "capability" && a.container_name == name)
    });
    assert_eq!(alert(&cap).map(|a| a.severity), Some(Severity::High));
    engine.docker(&["rm", "-f", &name]);
    module.stop().unwrap();
}

#[test]
fn exec_in_container_is_reported() {
    let Some(engine) = Engine::shared() else {
        return;
    };
    let mut module = watching(&engine, "containers-exec");
    let name = unique("exec");
    engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        IMAGE,
        "sleep",
        "60",
    ]);
    let output = engine.docker(&["exec", "-u", "1000", &name, "id", "-u"]);
    assert_eq!(
        output, "1000",
        "the container runs (network none) and so does the exec"
    );
    let found = module.wait_for("the exec_start event", WAIT, |e| {
        is(e, ObjectType::Container, "exec_start", &name)
    });
    assert_eq!(found.kind(), "container.exec");
    let exec = engine_event(&found)
        .and_then(|e| e.exec.clone())
        .expect("exec details");
    assert_eq!(exec.command, ["id", "-u"]);
    assert_eq!(exec.user, "1000");
    assert!(exec.inspected, "{exec:?}");
    assert!(!exec.exec_id.is_empty());
    engine.docker(&["rm", "-f", &name]);
    module.stop().unwrap();
}

#[test]
fn image_network_volume_changes_are_reported() {
    let Some(engine) = Engine::shared() else {
        return;
    };
    let mut module = watching(&engine, "containers-objects");
    let tag = format!("gwtest/{}:1", unique("img"));
    engine.import(&tag);
    let other = format!("gwtest/{}:2", unique("img"));
    engine.docker(&["tag", &tag, &other]);
    engine.docker(&["rmi", &other, &tag]);
    let network = unique("net");
    let volume = unique("vol");
    engine.docker(&["network", "create", &network]);
    engine.docker(&["network", "rm", &network]);
    engine.docker(&["volume", "create", &volume]);
    // A container joins its network (`none` here) when it starts and leaves it when it stops;
    // the volume is mounted and unmounted likewise.
    let name = unique("objects");
    let mount = format!("{volume}:/data");
    engine.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        &name,
        "-v",
        &mount,
        IMAGE,
        "true",
    ]);
    let id = engine.docker(&["inspect", "--format", "{{.Id}}", &name]);
    engine.docker(&["rm", &name]);
    engine.docker(&["volume", "rm", &volume]);

    module.wait_for("image import", WAIT, |e| {
        engine_event(e).is_some_and(|e| e.object == ObjectType::Image && e.action == "import")
    });
    module.wait_for("image tag", WAIT, |e| {
        is(e, ObjectType::Image, "tag", &other)
    });
    module.wait_for("image delete", WAIT, |e| {
        engine_event(e).is_some_and(|e| e.object == ObjectType::Image && e.action == "delete")
    });
    for action in ["create", "destroy"] {
        module.wait_for(&format!("network {action}"), WAIT, |e| {
            is(e, ObjectType::Network, action, &network)
        });
    }
    let of_container = |e: &EngineEvent| e.attributes.contains(&("container".into(), id.clone()));
    for action in ["connect", "disconnect"] {
        let found = module.wait_for(&format!("network {action}"), WAIT, |e| {
            engine_event(e).is_some_and(|e| {
                e.object == ObjectType::Network && e.action == action && of_container(e)
            })
        });
        assert_eq!(found.kind(), "container.network");
    }
    for action in ["create", "mount", "destroy"] {
        module.wait_for(&format!("volume {action}"), WAIT, |e| {
            engine_event(e).is_some_and(|e| {
                e.object == ObjectType::Volume && e.action == action && e.id == volume
            })
        });
    }
    let mount = module.wait_for("volume mount", WAIT, |e| {
        engine_event(e).is_some_and(|e| e.object == ObjectType::Volume && e.action == "mount")
    });
    let attributes = engine_event(&mount).map(|e| e.attributes.clone()).unwrap();
    assert!(
        attributes.contains(&("destination".into(), "/data".into())),
        "{attributes:?}"
    );
    module.stop().unwrap();
}

#[test]
fn engine_restart_is_survived() {
    // An engine of its own: stopping the shared one would disturb the other tests.
    let Some(mut engine) = Engine::start() else {
        return;
    };
    let mut module = watching(&engine, "containers-restart");
    let before = unique("before");
    engine.docker(&["create", "--name", &before, IMAGE]);
    module.wait_for("the first container", WAIT, |e| {
        is(e, ObjectType::Container, "create", &before)
    });
    engine.restart();
    let after = unique("after");
    // The module may still be waiting to reconnect: the event must come anyway (since=…).
    engine.docker(&["create", "--name", &after, IMAGE]);
    module.wait_for("the engine loss", WAIT, |e| {
        matches!(e, ContainerEvent::EngineLost { .. })
    });
    module.wait_for("the second container", WAIT, |e| {
        is(e, ObjectType::Container, "create", &after)
    });
    module.settle(Duration::from_millis(500));
    let connections = module
        .log
        .iter()
        .filter(|e| matches!(e, ContainerEvent::EngineConnected { .. }))
        .count();
    assert!(connections >= 2, "reconnected: {:#?}", module.log);
    let creates_before = module
        .log
        .iter()
        .filter(|e| is(e, ObjectType::Container, "create", &before))
        .count();
    assert_eq!(creates_before, 1, "nothing repeated: {:#?}", module.log);
    module.stop().unwrap();
}

#[test]
fn oversized_event_is_rejected_without_growth() {
    // An engine of its own, so that no other test's events are in flight while memory is read.
    let Some(engine) = Engine::start() else {
        return;
    };
    let mut config = config_for(&engine.socket);
    config.max_event_bytes = 1024;
    let mut module = Harness::start(config, "containers-oversized", 1024);
    module.wait_for("the engine connection", WAIT, |e| {
        matches!(e, ContainerEvent::EngineConnected { .. })
    });
    module.settle(Duration::from_millis(300));
    let baseline = crate::runtime::alloc::current_bytes(module.account);
    // A real engine puts a container's labels in each of its events: a 4 KiB label makes the
    // create event larger than the 1 KiB maximum.
    let big = unique("big");
    let label = format!("note={}", "x".repeat(4096));
    engine.docker(&["create", "--label", &label, "--name", &big, IMAGE]);
    let small = unique("small");
    engine.docker(&["create", "--name", &small, IMAGE]);
    let rejected = module.wait_for("a rejection", WAIT, |e| {
        matches!(e, ContainerEvent::EventRejected { .. })
    });
    let ContainerEvent::EventRejected {
        bytes,
        limit,
        rejected_total,
    } = rejected
    else {
        unreachable!("matched above")
    };
    assert!(bytes > 4096, "{bytes}");
    assert_eq!((limit, rejected_total), (1024, 1));
    // The stream resynchronised: the next event is read.
    module.wait_for("the next container", WAIT, |e| {
        is(e, ObjectType::Container, "create", &small)
    });
    assert!(
        !module
            .log
            .iter()
            .any(|e| is(e, ObjectType::Container, "create", &big)),
        "the oversized event is not reported as an event"
    );
    module.settle(Duration::from_millis(300));
    let now = crate::runtime::alloc::current_bytes(module.account);
    assert!(
        now <= baseline + 1024,
        "the module holds {now} bytes after the rejection, {baseline} before"
    );
    engine.docker(&["rm", "-f", &big, &small]);
    module.stop().unwrap();
}

#[test]
fn shell_with_a_terminal_in_container_is_alerted() {
    let Some(engine) = Engine::shared() else {
        return;
    };
    let mut module = watching(&engine, "containers-shell");
    let name = unique("shell");
    engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        IMAGE,
        "sleep",
        "60",
    ]);
    engine.docker(&["exec", "-t", &name, "sh", "-c", "true"]);
    let found = module.wait_for("an interactive shell alert", WAIT, |e| {
        alert(e).is_some_and(|a| a.rule == "interactive_shell" && a.container_name == name)
    });
    let found = alert(&found).unwrap();
    assert_eq!(found.severity, Severity::Medium);
    assert_eq!(found.detail, "sh -c true");
    engine.docker(&["rm", "-f", &name]);
    module.stop().unwrap();
}

#[test]
fn the_api_version_is_negotiated_with_the_engine() {
    let Some(engine) = Engine::shared() else {
        return;
    };
    let module = watching(&engine, "containers-version");
    let theirs = engine.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    let connected = module.log.iter().find_map(|e| match e {
        ContainerEvent::EngineConnected {
            api_version,
            engine_version,
        } => Some((api_version.clone(), engine_version.clone())),
        _ => None,
    });
    let (api_version, engine_version) = connected.expect("a connection event");
    // The engine here (Debian's 20.10, API 1.41) is older than ours (1.52): its version is used.
    let expected = super::super::api::negotiate(&theirs).expect("a supported engine");
    assert_eq!(api_version, format!("{}.{}", expected.0, expected.1));
    assert!(!engine_version.is_empty());
    module.stop().unwrap();
}

#[test]
fn podman_exec_and_privileged_container_are_reported() {
    let Some(engine) = Engine::start_podman() else {
        return;
    };
    let mut module = watching(&engine, "containers-podman");
    let privileged = unique("podpriv");
    engine.docker(&["create", "--privileged", "--name", &privileged, IMAGE]);
    module.wait_for("a privileged alert", WAIT, |e| {
        alert(e).is_some_and(|a| a.rule == "privileged" && a.container_name == privileged)
    });
    let name = unique("podexec");
    engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        IMAGE,
        "sleep",
        "60",
    ]);
    assert_eq!(
        engine.docker(&["exec", "-u", "1000", &name, "id", "-u"]),
        "1000"
    );
    // podman reports an exec as `exec`, without naming it: the container's newest is inspected.
    let found = module.wait_for("the exec event", WAIT, |e| {
        is(e, ObjectType::Container, "exec", &name)
    });
    assert_eq!(found.kind(), "container.exec");
    let exec = engine_event(&found)
        .and_then(|e| e.exec.clone())
        .expect("exec details");
    assert_eq!(
        (exec.command.as_slice(), exec.user.as_str()),
        (&["id".to_string(), "-u".to_string()][..], "1000")
    );
    module.stop().unwrap();
}
