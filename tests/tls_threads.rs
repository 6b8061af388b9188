//! The agent runs on one thread: dialling a manager by IP literal must not start the `blocking`
//! resolver pool, which only host names use. (One test in its own binary, so that no other
//! test's threads are counted.)

mod tls_support;

use gatewatch::tls::{connect, TlsBuffers, TlsClientConfig, Verification};
use tls_support::{ca, leaf, serve, server_params};

fn resolver_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("blocking-"))
        .count()
}

#[test]
fn ip_literal_connect_starts_no_resolver_thread_but_a_host_name_does() {
    let manager_ca = ca("manager CA");
    let by_ip = leaf(server_params("127.0.0.1"), &manager_ca.issuer);
    let by_name = leaf(server_params("localhost"), &manager_ca.issuer);
    let ip_server = serve(
        vec![by_ip.cert_der.clone()],
        by_ip.key_pkcs8.clone(),
        1,
        |_, _| vec![],
    );
    let name_server = serve(
        vec![by_name.cert_der.clone()],
        by_name.key_pkcs8.clone(),
        1,
        |_, _| vec![],
    );
    let cfg = TlsClientConfig::new(Verification::PinnedCa {
        ca_der: manager_ca.cert_der.clone(),
    });
    let mut buffers = TlsBuffers::new();

    smol::block_on(async {
        let session = connect("127.0.0.1", ip_server.port, &cfg, &mut buffers)
            .await
            .unwrap();
        session.close().await;
    });
    assert_eq!(resolver_threads(), 0);

    // Positive control: the count does see the pool when a name is resolved.
    smol::block_on(async {
        let session = connect("localhost", name_server.port, &cfg, &mut buffers)
            .await
            .unwrap();
        session.close().await;
    });
    assert!(resolver_threads() >= 1);
}
