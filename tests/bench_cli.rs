//! `cfa bench` end to end: a workload file run on an embedded broker writes the JSON
//! scripts rely on, and the open-loop driver counts a broker stall in its latencies
//! instead of hiding it (no coordinated omission).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

fn workload(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("w.toml");
    std::fs::write(&path, body).expect("write workload");
    path
}

const FIXED_RATE: &str = r#"
name = "tiny-fixed"
tuning = "latency"
[topics]
partitions = 3
[messages]
size_bytes = 256
key_distribution = "uniform"
key_count = 100
[producers]
count = 1
rate_records_per_s = 1000
acks = "1"
[consumers]
groups = 1
per_group = 2
"#;

fn data_dir() -> tempfile::TempDir {
    // Direct I/O needs a real filesystem: under target/, not /tmp (may be tmpfs).
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the JSON was written");
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn a_workload_file_runs_on_an_embedded_broker_and_writes_the_documented_json() {
    let dir = data_dir();
    let file = workload(dir.path(), FIXED_RATE);
    let json = dir.path().join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .arg("bench")
        .arg("--workload")
        .arg(&file)
        .args(["--duration-s", "2", "--warmup-s", "0.5"])
        .arg("--json")
        .arg(&json)
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run cfa bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cfa bench failed: {stderr}");
    assert!(
        stderr.contains("tiny-fixed [measure"),
        "a live progress line: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("records sent") && stdout.contains("prod r/s"),
        "{stdout}"
    );
    let v = read_json(&json);
    for key in [
        "workload",
        "produce_records_per_s",
        "produce_mb_per_s",
        "consume_records_per_s",
        "consume_mb_per_s",
        "errors",
    ] {
        assert!(
            v[key].is_string() || v[key].is_number(),
            "{key}: {}",
            v[key]
        );
    }
    for key in ["publish_latency_us", "e2e_latency_us", "send_lateness_us"] {
        for q in ["p50", "p90", "p99", "p999", "p9999", "max"] {
            assert!(v[key][q].as_u64().is_some(), "{key}.{q}");
        }
    }
    for key in ["cores", "kernel", "filesystem"] {
        assert!(!v["machine"][key].is_null(), "machine.{key}");
    }
    assert_eq!(v["workload"], "tiny-fixed");
    assert_eq!(v["errors"], 0);
    // The embedded broker's own view of the window: every produce request it answered.
    let side = &v["broker_side"];
    let requests = side["produce_requests_per_s"].as_f64().expect("number");
    assert!(
        requests > 0.0,
        "the broker answered produce requests: {side}"
    );
    assert!(side["produce_request_mean_us"].as_f64().is_some(), "{side}");
    assert!(side["fsyncs_per_s"].as_f64().is_some(), "{side}");
    assert!(stdout.contains("the broker measured"), "{stdout}");
    // 1,000 records/s for 2 s, on schedule; every one read by the group.
    let produced = v["produce_records_per_s"].as_f64().expect("number");
    assert!((900.0..1100.0).contains(&produced), "{produced}");
    let consumed = v["consume_records_per_s"].as_f64().expect("number");
    assert!((900.0..1100.0).contains(&consumed), "{consumed}");
    let results: Vec<_> = std::fs::read_dir(dir.path().join("results"))
        .expect("results dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(results.iter().any(|n| n.ends_with(".svg")), "{results:?}");
    assert!(results.iter().any(|n| n.ends_with(".json")), "{results:?}");
}

#[test]
fn a_stalled_broker_shows_in_the_latencies_of_every_record_it_delayed() {
    let dir = data_dir();
    let (broker, addr) = common::start_with(&dir.path().join("broker"), "latency");
    let file = workload(dir.path(), FIXED_RATE);
    let json = dir.path().join("out.json");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .arg("bench")
        .arg("--workload")
        .arg(&file)
        .args(["--duration-s", "3", "--warmup-s", "0.5", "--no-save"])
        .args(["--bootstrap", &addr.to_string()])
        .arg("--json")
        .arg(&json)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn cfa bench");
    let stderr = bench.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines.next().expect("bench runs").expect("line");
        if line.contains("[measure") {
            break;
        }
        assert!(Instant::now() < deadline, "no measured phase");
    }
    std::thread::sleep(Duration::from_millis(800));
    let pid = broker.0.id().to_string();
    // Freeze the broker for 600 ms: every record intended meanwhile waits.
    let stop = Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill -STOP");
    assert!(stop.success());
    std::thread::sleep(Duration::from_millis(600));
    let cont = Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .expect("kill -CONT");
    assert!(cont.success());
    std::thread::spawn(move || lines.for_each(drop));
    let status = bench.wait().expect("bench exits");
    assert!(status.success());
    let v = read_json(&json);
    let publish = &v["publish_latency_us"];
    // ~600 of 3,000 records were intended during the stall: their latencies spread over
    // 0..600 ms, so the p99 is near 600 ms. A closed-loop bench would have sent one record
    // into the stall and reported a p99 of a few ms.
    let p99 = publish["p99"].as_u64().expect("p99");
    let max = publish["max"].as_u64().expect("max");
    assert!(p99 >= 300_000, "p99 {p99} us hides the stall");
    assert!(max >= 500_000, "max {max} us");
    let p90 = publish["p90"].as_u64().expect("p90");
    assert!(
        p90 >= 50_000,
        "p90 {p90} us: a fifth of the records were delayed"
    );
    assert!(v["e2e_latency_us"]["p99"].as_u64().expect("e2e p99") >= 300_000);
    // ... and the delay was the broker's: the producers handed those records to `send` on
    // time (the client buffered them), so the generator's own lateness stays small.
    let late_p99 = v["send_lateness_us"]["p99"].as_u64().expect("lateness p99");
    assert!(late_p99 < 100_000, "send lateness p99 {late_p99} us");
    // The schedule was kept: the delayed records were sent late, not skipped.
    let produced = v["produce_records_per_s"].as_f64().expect("number");
    assert!((900.0..1100.0).contains(&produced), "{produced}");
    drop(broker);
}

/// `cfa bench compare` with neither baselines nor limits still runs the workload and
/// prints its table, and `--no-save` leaves the results dir alone (the comparison's own
/// JSON, markdown and plot included).
#[test]
fn compare_prints_its_table_and_no_save_writes_nothing() {
    let dir = data_dir();
    let file = workload(dir.path(), FIXED_RATE);
    let results = dir.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args([
            "bench",
            "compare",
            "--no-baselines",
            "--no-limits",
            "--no-save",
        ])
        .arg("--workload")
        .arg(&file)
        .args(["--duration-s", "1", "--warmup-s", "0.5"])
        .arg("--results-dir")
        .arg(&results)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run cfa bench compare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cfa bench compare failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| tiny-fixed | cfa |"), "{stdout}");
    let written: Vec<_> = std::fs::read_dir(&results)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "--no-save wrote {written:?}");
}

#[test]
fn bad_workloads_are_refused_naming_the_mistake() {
    let dir = data_dir();
    let file = workload(
        dir.path(),
        &FIXED_RATE.replace("partitions = 3", "partitions = 0"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .arg("bench")
        .arg("--workload")
        .arg(&file)
        .arg("--no-save")
        .output()
        .expect("run cfa bench");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("partitions"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["bench", "--workload", "no-such-workload", "--no-save"])
        .output()
        .expect("run cfa bench");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-workload") && stderr.contains("max-throughput-1kb"),
        "{stderr}"
    );
    // Not TOML at all; and a machine-limits file without its JSON line.
    let garbage = workload(dir.path(), "\u{0}[[[ not toml");
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .arg("bench")
        .arg("--workload")
        .arg(&garbage)
        .arg("--no-save")
        .output()
        .expect("run cfa bench");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("w.toml"), "names the file: {stderr}");
    let limits = dir.path().join("limits.txt");
    std::fs::write(&limits, "| a table | but no JSON line |\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args([
            "bench",
            "--workload",
            "seed-capacity",
            "--no-save",
            "--machine-limits",
        ])
        .arg(&limits)
        .output()
        .expect("run cfa bench");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("limits.txt") && stderr.contains("JSON"),
        "{stderr}"
    );
}

const MAX_RATE: &str = r#"
name = "tiny-max"
tuning = "throughput"
[topics]
partitions = 2
[messages]
size_bytes = 1024
[producers]
count = 1
acks = "1"
"#;

/// A max-rate workload in `compare` gets the pipeline floor beside it (fresh and written
/// blocks before its run, fresh blocks after it), an `x floor` ratio and the floor's
/// drift across the run; `bench floor` alone writes both results as JSON.
#[test]
fn compare_puts_the_pipeline_floor_beside_a_max_rate_run() {
    let dir = data_dir();
    let file = workload(dir.path(), MAX_RATE);
    let limits = dir.path().join("limits.txt");
    std::fs::write(
        &limits,
        "JSON: {\"seq_write_direct_1m_qd32_mbps\": 2000, \"loopback_tcp_1stream_gbyteps\": 2.5, \"fdatasync_64k_p99_us\": 150}\n",
    )
    .expect("write limits");
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["bench", "compare", "--no-baselines", "--no-save"])
        .arg("--workload")
        .arg(&file)
        .args(["--duration-s", "0.5", "--warmup-s", "0.2"])
        .arg("--machine-limits")
        .arg(&limits)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run cfa bench compare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cfa bench compare failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| x floor |"), "{stdout}");
    for row in [
        "| tiny-max | floor, fresh blocks, before | max |",
        "| tiny-max | floor, written blocks, before | max |",
        "| tiny-max | floor, fresh blocks, after | max |",
    ] {
        assert!(stdout.contains(row), "no row {row:?}: {stdout}");
    }
    assert!(
        stdout.contains("tiny-max: the fresh-blocks floor gave "),
        "{stdout}"
    );

    let json = dir.path().join("floor.json");
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["bench", "floor", "--duration-s", "0.3", "--warmup-s", "0"])
        .arg("--workload")
        .arg(&file)
        .arg("--json")
        .arg(&json)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run cfa bench floor");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = read_json(&json);
    let blocks: Vec<&str> = v
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            assert!(r["records"].as_u64().expect("records") > 0, "{r}");
            assert!(r["mb_per_s"].as_f64().expect("mb_per_s") > 0.0, "{r}");
            r["config"]["blocks"].as_str().expect("blocks")
        })
        .collect();
    assert_eq!(blocks, ["fresh", "written"]);
}
