//! Every profile in tuning/ has a `[log]` section that parses (unknown keys refused) and
//! yields a valid log config. The other sections belong to the broker and the bench, which
//! check them (net/tests/tuning_profiles.rs).

use cfa_engine::tuning::LogTuning;
use cfa_engine::LogConfig;
use serde::Deserialize;

#[derive(Deserialize)]
struct Profile {
    log: LogTuning,
}

#[test]
fn every_tuning_profile_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tuning");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tuning dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let profile: Profile =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        profile
            .log
            .apply(&LogConfig::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "default.toml",
            "durable.toml",
            "latency.toml",
            "throughput.toml"
        ]
    );
}

#[test]
fn a_typo_is_refused_with_its_name() {
    let err = toml::from_str::<Profile>("[log]\nflush_mod = \"interval\"\n")
        .err()
        .expect("refused");
    assert!(err.to_string().contains("flush_mod"), "{err}");
    let err = toml::from_str::<Profile>("[logs]\n")
        .err()
        .expect("refused");
    assert!(err.to_string().contains("logs"), "{err}");
}
