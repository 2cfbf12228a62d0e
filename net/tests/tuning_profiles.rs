//! Every profile in tuning/ is a valid broker configuration: known sections and keys only,
//! values in range.

use cfa_net::server::{BrokerConfig, Profile};

#[test]
fn every_tuning_profile_starts_a_broker_config() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tuning");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("tuning dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let config = BrokerConfig::from_profile(&profile)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            config.listen.to_string(),
            "127.0.0.1:9192",
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[test]
fn a_typo_is_refused_with_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[broker]\nlisten = \"127.0.0.1:9192\"\nshard = 2\n").expect("write");
    let e = Profile::load(&path).expect_err("typo");
    assert!(e.to_string().contains("shard"), "{e}");
    std::fs::write(&path, "[broker]\nconnection_inflight_bytes = 12\n").expect("write");
    let p = Profile::load(&path).expect("parses");
    let e = BrokerConfig::from_profile(&p).expect_err("out of range");
    assert!(e.to_string().contains("connection_inflight_bytes"), "{e}");
}
