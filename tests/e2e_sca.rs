//! SCA end to end: Wazuh's own policies, rule semantics on fixtures, change-only events, and
//! results reaching the manager.

use gatewatch::modules::sca::eval::Evaluator;
use gatewatch::modules::sca::policy::{self, CheckStream};
use gatewatch::modules::sca::scan::run_check;
use gatewatch::runtime::budget::account_for;
use gatewatch::runtime::MemoryAccount;
use gatewatch_proto::sca::CheckResult;
use std::path::PathBuf;
use std::time::Duration;

fn shared_policy(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/testdata/wazuh-4.14.7/sca/"
    ))
    .join(name)
}

fn memory() -> MemoryAccount {
    MemoryAccount::new(account_for("test-sca-e2e").unwrap(), 64 * 1024 * 1024)
}

#[test]
fn wazuh_policies_load_unchanged() {
    for (name, checks) in [
        ("sca_distro_independent_linux.yml", 190),
        ("cis_debian12.yml", 207),
    ] {
        let path = shared_policy(name);
        let info = smol::block_on(policy::validate(&path, &[], || async {}))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.check_ids.len(), checks, "{name}");
        let mut eval = Evaluator::new(memory(), Duration::from_secs(30), true);
        let mut stream = CheckStream::open(&info).unwrap();
        let mut n = 0;
        let started = std::time::Instant::now();
        let mut counts = [0; 3];
        while let Some(check) = stream.next_check().unwrap() {
            let (result, _) = smol::block_on(run_check(&mut eval, &info, &check));
            match &result {
                CheckResult::Passed => counts[0] += 1,
                CheckResult::Failed => counts[1] += 1,
                CheckResult::NotApplicable { reason } => {
                    counts[2] += 1;
                    eprintln!("{} NA: {reason}", check.id);
                    assert!(!reason.is_empty(), "{name} {}: a stated reason", check.id);
                }
            }
            n += 1;
        }
        eprintln!("{name}: {counts:?} in {:?}", started.elapsed());
        assert_eq!(n, checks);
    }
}
