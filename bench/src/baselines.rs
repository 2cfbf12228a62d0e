//! The baseline brokers of ../shared/baselines run on the same machine and workload as cfa:
//! Apache Iggy (own protocol, on disk, optionally fsync per batch) with its `iggy-bench`, and
//! Tansu (Kafka protocol, memory-only build) with `tansu/kafka_perf.py` (librdkafka).
//! Each baseline is started here on 127.0.0.1 and a free port, measured with its own tool,
//! stopped by its PID and its data deleted. What the tools print is parsed by pure functions
//! (`parse_iggy_output`, `parse_kafka_perf_line`) so the parsing is tested on real output.
//! A baseline whose files are missing is reported Absent, never faked.

use std::fs::{self, File};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long a started broker may take to accept TCP connections.
const PORT_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two readiness probes of a broker's port.
const PORT_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Bound of one readiness probe (loopback answers in microseconds).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// Pause between two checks whether a child process has exited.
const CHILD_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// iggy-server flushes and closes its shards on SIGTERM (35 ms when measured).
const IGGY_STOP_GRACE: Duration = Duration::from_secs(10);
/// tansu stops on SIGINT (SIGTERM did not stop it within 1 s, per the baselines README).
const TANSU_STOP_GRACE: Duration = Duration::from_secs(5);
/// `--version` of a binary.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);
/// `apt-get install libhwloc15` (with an `apt-get update` when the lists are missing).
const APT_TIMEOUT: Duration = Duration::from_secs(300);
/// tansu/install.sh: a pip download, a venv and confluent-kafka (about 6 s when measured).
const TANSU_INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// kafka_perf.py stops producing at --max-seconds, then flushes for up to 30 s more.
const KAFKA_PERF_FLUSH_GRACE: Duration = Duration::from_secs(35);
/// Lines of a tool's output or a broker's log quoted in an error.
const TAIL_LINES: usize = 6;
/// MB = 10^6 bytes (the unit of every result here).
const BYTES_PER_MB: f64 = 1e6;
/// MiB = 2^20 bytes (what kafka_perf.py calls MB).
const BYTES_PER_MIB: f64 = 1_048_576.0;
/// The root user iggy-server is started with and iggy-bench logs in as (its defaults).
const IGGY_ROOT_USER: &str = "iggy";
const IGGY_ROOT_PASSWORD: &str = "iggy";
/// The topic kafka_perf.py produces to.
const TANSU_TOPIC: &str = "perf";

/// What to run, in broker-neutral terms (the cfa workload is mapped to this by the caller).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BaselineLoad {
    /// Name, for labels.
    pub workload: String,
    /// Payload bytes per record (1024 for the standard set).
    pub record_bytes: usize,
    /// Total partitions.
    pub partitions: u32,
    pub producers: u32,
    /// Total records to produce (bounded run).
    pub records: u64,
    /// Every batch fsynced before its ack (iggy fsync mode); tansu: acks=all, memory-only.
    pub durable: bool,
    /// "0" | "1" | "all" (Kafka-protocol baselines).
    pub acks: String,
    /// Producer batch size in bytes.
    pub batch_bytes: usize,
    pub linger_ms: u64,
    /// 0 = produce only; >0 = also run the consume side where the baseline tool can.
    pub consumers: u32,
    /// Hard time bound for each tool run of a baseline.
    pub max_seconds: f64,
    /// Target rate over all producers, MB/s (10^6 bytes); `None` = max rate. Passed to
    /// iggy-bench as `-r`; kafka_perf.py has no rate limit, so tansu is not run then.
    pub rate_mb_per_s: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BaselineResult {
    /// "iggy 0.8.0", "tansu 0.6.0 (memory-only)".
    pub system: String,
    /// Exact command lines run (for the report), one a line.
    pub command: String,
    pub produce_records_per_s: f64,
    /// MB = 10^6 bytes.
    pub produce_mb_per_s: f64,
    /// What the tool reports; None where it doesn't.
    pub publish_latency_us: BaselineLatency,
    pub consume_records_per_s: Option<f64>,
    /// MB = 10^6 bytes.
    pub consume_mb_per_s: Option<f64>,
    /// What the figures mean and where they differ from cfa's.
    pub notes: String,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BaselineLatency {
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub p999: Option<u64>,
    pub max: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BaselineOutcome {
    Ran(BaselineResult),
    Absent {
        system: String,
        reason: String,
    },
    /// Present, but its tool cannot run this load (e.g. no rate limit for a fixed rate).
    Skipped {
        system: String,
        reason: String,
    },
    Failed {
        system: String,
        error: String,
    },
}

/// The results line of one iggy-bench run ("Producers Results: ..." or "Consumers Results: ...").
#[derive(Debug, Clone, Serialize)]
pub struct IggySummary {
    /// "Producers" or "Consumers".
    pub role: String,
    /// Aggregate over all actors; iggy-bench's MB is 10^6 bytes.
    pub mb_per_s: f64,
    pub messages_per_s: f64,
    /// Per batch (request to ack / poll to reply), in microseconds.
    pub latency: BaselineLatency,
    pub total_time_s: Option<f64>,
}

/// The summary line of one kafka_perf.py run.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaPerfSummary {
    /// Records delivered (acknowledged without error).
    pub records: u64,
    pub records_per_s: f64,
    /// Converted from the line's "MB/sec", which is MiB (2^20 bytes) per second.
    pub mb_per_s: f64,
    pub avg_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// The percentiles are printed as whole milliseconds.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub acks: String,
    pub errors: u64,
    pub undelivered: u64,
    /// Rounded to 0.1 s by the tool.
    pub elapsed_s: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineParseError {
    #[error("no {0} line in the output")]
    MissingLine(&'static str),
    #[error("field `{field}` missing or unreadable in: {line}")]
    Field { field: &'static str, line: String },
}

#[derive(Debug, thiserror::Error)]
enum BaselineError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} did not finish within {secs:.1} s and was killed; output tail: {tail}")]
    Timeout {
        what: String,
        secs: f64,
        tail: String,
    },
    #[error("{what} exited with {status}; output tail: {tail}")]
    Exit {
        what: String,
        status: ExitStatus,
        tail: String,
    },
    #[error("{what} exited with {status} before accepting on {addr}; log tail: {tail}")]
    EarlyExit {
        what: String,
        status: ExitStatus,
        addr: SocketAddr,
        tail: String,
    },
    #[error("{what} exited with {status} while {during} ran; log tail: {tail}")]
    ServerDied {
        what: String,
        status: ExitStatus,
        during: String,
        tail: String,
    },
    #[error("{what} did not accept connections on {addr} within {secs} s; log tail: {tail}")]
    NotReady {
        what: String,
        addr: SocketAddr,
        secs: u64,
        tail: String,
    },
    #[error("cannot parse the output of {what}: {source}; output tail: {tail}")]
    Parse {
        what: String,
        #[source]
        source: BaselineParseError,
        tail: String,
    },
    #[error("iggy-server cannot load libhwloc.so.15 and `apt-get install -y libhwloc15` did not fix it: {0}")]
    MissingLibrary(String),
    #[error("{0}")]
    Unusable(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BaselineError {
    let what = what.into();
    move |source| BaselineError::Io { what, source }
}

/// Finds the baselines: ../shared/baselines next to the repository root (the cfa-bench
/// crate's CARGO_MANIFEST_DIR/../..), as laid out on the developers' machines and in CI.
pub fn default_baselines_dir() -> PathBuf {
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = repo_root.join("../shared/baselines");
    fs::canonicalize(&dir).unwrap_or(dir)
}

/// Runs every baseline it knows (iggy, tansu) one after another against `load`.
/// `work_dir` holds the temporary data dirs and the tansu install (reused when present).
pub fn run_all(baselines_dir: &Path, work_dir: &Path, load: &BaselineLoad) -> Vec<BaselineOutcome> {
    vec![
        run_iggy(baselines_dir, work_dir, load),
        run_tansu(baselines_dir, work_dir, load),
    ]
}

/// Starts iggy-server (fresh data dir under `work_dir`), runs iggy-bench pinned-producer and,
/// when `load.consumers > 0`, pinned-consumer on the data just produced, stops the server.
/// Each iggy-bench run is killed after `load.max_seconds`.
pub fn run_iggy(baselines_dir: &Path, work_dir: &Path, load: &BaselineLoad) -> BaselineOutcome {
    let dir = baselines_dir.join("iggy");
    let missing = missing_files(&dir, &["iggy-server", "iggy-bench", "server-config.toml"]);
    if !missing.is_empty() {
        return absent("iggy", &dir, &missing);
    }
    match iggy_run(&dir, work_dir, load) {
        Ok(result) => BaselineOutcome::Ran(result),
        Err(e) => failed("iggy", e),
    }
}

/// Installs tansu into `work_dir/tansu` once (tansu/install.sh), starts a memory-only broker,
/// runs `load.producers` kafka_perf.py processes in parallel against one topic of
/// `load.partitions` partitions, stops the broker. kafka_perf.py stops producing after
/// `load.max_seconds` and is killed if its final flush takes 35 s more.
pub fn run_tansu(baselines_dir: &Path, work_dir: &Path, load: &BaselineLoad) -> BaselineOutcome {
    if let Some(mb) = load.rate_mb_per_s {
        return BaselineOutcome::Skipped {
            system: "tansu".into(),
            reason: format!("kafka_perf.py has no rate limit, so a fixed-rate load ({mb:.1} MB/s) cannot be run on it"),
        };
    }
    let dir = baselines_dir.join("tansu");
    let mut missing = missing_files(&dir, &["kafka_perf.py"]);
    if !tansu_installed(&work_dir.join("tansu")) {
        missing.extend(missing_files(&dir, &["install.sh"]));
    }
    if !missing.is_empty() {
        return absent("tansu", &dir, &missing);
    }
    match tansu_run(&dir, work_dir, load) {
        Ok(result) => BaselineOutcome::Ran(result),
        Err(e) => failed("tansu", e),
    }
}

fn missing_files(dir: &Path, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|name| !dir.join(name).is_file())
        .map(|name| name.to_string())
        .collect()
}

fn absent(system: &str, dir: &Path, missing: &[String]) -> BaselineOutcome {
    BaselineOutcome::Absent {
        system: system.to_string(),
        reason: format!("missing in {}: {}", dir.display(), missing.join(", ")),
    }
}

fn failed(system: &str, e: BaselineError) -> BaselineOutcome {
    BaselineOutcome::Failed {
        system: system.to_string(),
        error: e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Iggy

/// iggy-bench's benchmark kinds used here.
const PRODUCER: &str = "pinned-producer";
const CONSUMER: &str = "pinned-consumer";

/// How the load maps onto iggy-bench's pinned benchmarks.
#[derive(Debug, Clone, Copy)]
struct IggyPlan {
    messages_per_batch: u64,
    batches_per_producer: u64,
    /// Pinned: one stream (1 topic, 1 partition) per producer.
    streams: u32,
}

impl IggyPlan {
    fn new(load: &BaselineLoad) -> Self {
        let messages_per_batch = (load.batch_bytes / load.record_bytes.max(1)).max(1) as u64;
        let streams = load.producers.max(1);
        let batches_per_producer = load
            .records
            .div_ceil(messages_per_batch * u64::from(streams))
            .max(1);
        IggyPlan {
            messages_per_batch,
            batches_per_producer,
            streams,
        }
    }

    fn total_messages(&self) -> u64 {
        self.messages_per_batch * self.batches_per_producer * u64::from(self.streams)
    }

    /// iggy-bench arguments for `kind` ("pinned-producer" / "pinned-consumer").
    fn bench_args(&self, load: &BaselineLoad, kind: &str, addr: SocketAddr) -> Vec<String> {
        let actors = if kind == PRODUCER {
            "--producers"
        } else {
            "--consumers"
        };
        [
            "-m",
            &load.record_bytes.to_string(),
            "-P",
            &self.messages_per_batch.to_string(),
            "-b",
            &self.batches_per_producer.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(rate_limit_args(load, kind))
        .chain(
            [
                kind,
                actors,
                &self.streams.to_string(),
                "--streams",
                &self.streams.to_string(),
                "tcp",
                // Without TCP_NODELAY iggy-bench 0.8.0 waits out Nagle against delayed
                // ACKs (~44 ms) on every batch under ~60 KB, so small-batch loads never
                // finished; cfa's client and Kafka's set TCP_NODELAY too.
                "--nodelay",
                "--server-address",
                &addr.to_string(),
            ]
            .iter()
            .map(|s| s.to_string()),
        )
        .collect()
    }
}

/// iggy-bench's `-r` (aggregate rate limit) for a producer run at a target rate.
fn rate_limit_args(load: &BaselineLoad, kind: &str) -> Vec<String> {
    match load.rate_mb_per_s {
        Some(mb) if kind == PRODUCER => vec![
            "-r".to_owned(),
            format!("{}KB", (mb * 1000.0).round() as u64),
        ],
        _ => Vec::new(),
    }
}

fn iggy_run(
    dir: &Path,
    work_dir: &Path,
    load: &BaselineLoad,
) -> Result<BaselineResult, BaselineError> {
    let dir = fs::canonicalize(dir).map_err(io_err(format!("{}", dir.display())))?;
    let run_dir = scratch_dir(&prepare_work_dir(work_dir)?, "iggy-run-")?;
    let version = iggy_version(&dir.join("iggy-server"), run_dir.path())?;
    let plan = IggyPlan::new(load);
    let addr = free_loopback_addr()?;
    let data_dir = run_dir.path().join("data");
    fs::create_dir(&data_dir).map_err(io_err(format!("mkdir {}", data_dir.display())))?;

    let server = iggy_server_spec(&dir, &data_dir, addr, load.durable);
    let log = run_dir.path().join("server.log");
    let stop = (libc::SIGTERM, IGGY_STOP_GRACE);
    let mut guard = start_server(&server, run_dir.path(), &log, "iggy-server", stop, addr)?;

    let bench = dir.join("iggy-bench");
    let limit = Duration::from_secs_f64(load.max_seconds.max(0.0));
    let producer = CmdSpec::new(&bench, plan.bench_args(load, PRODUCER, addr));
    let watched = Watched {
        server: &mut guard,
        log: &log,
    };
    let produced = iggy_bench(PRODUCER, &producer, run_dir.path(), limit, watched)?;
    let mut commands = vec![server.display() + " &", producer.display()];
    let consumed = if load.consumers > 0 {
        let consumer = CmdSpec::new(&bench, plan.bench_args(load, CONSUMER, addr));
        commands.push(consumer.display());
        let watched = Watched {
            server: &mut guard,
            log: &log,
        };
        Some(iggy_bench(
            CONSUMER,
            &consumer,
            run_dir.path(),
            limit,
            watched,
        )?)
    } else {
        None
    };
    let killed = guard.stop();
    commands.push("kill -TERM $server_pid".to_string());

    let mut notes = iggy_notes(load, &plan, consumed.as_ref());
    if killed {
        notes.push(format!(
            "iggy-server did not stop within {} s of SIGTERM; killed",
            IGGY_STOP_GRACE.as_secs()
        ));
    }
    Ok(BaselineResult {
        system: version,
        command: commands.join("\n"),
        produce_records_per_s: produced.messages_per_s,
        produce_mb_per_s: produced.mb_per_s,
        publish_latency_us: produced.latency,
        consume_records_per_s: consumed.as_ref().map(|c| c.messages_per_s),
        consume_mb_per_s: consumed.as_ref().map(|c| c.mb_per_s),
        notes: notes.join("; "),
    })
}

/// The server command of iggy/README.md's "Start the server by hand".
fn iggy_server_spec(dir: &Path, data_dir: &Path, addr: SocketAddr, durable: bool) -> CmdSpec {
    let mut spec = CmdSpec::new(&dir.join("iggy-server"), Vec::new());
    let path = |p: &Path| p.display().to_string();
    spec.env("IGGY_CONFIG_PATH", path(&dir.join("server-config.toml")))
        .env("IGGY_SYSTEM_PATH", path(data_dir))
        .env("IGGY_TCP_ADDRESS", addr.to_string())
        .env("IGGY_HTTP_ENABLED", "false")
        .env("IGGY_QUIC_ENABLED", "false")
        .env("IGGY_WEBSOCKET_ENABLED", "false")
        .env("IGGY_ROOT_USERNAME", IGGY_ROOT_USER)
        .env("IGGY_ROOT_PASSWORD", IGGY_ROOT_PASSWORD);
    if durable {
        spec.env("IGGY_SYSTEM_PARTITION_ENFORCE_FSYNC", "true")
            .env("IGGY_SYSTEM_PARTITION_MESSAGES_REQUIRED_TO_SAVE", "1");
    }
    // Any IGGY_* override inherited from the caller's environment would change the setup.
    spec.clear_env_prefix = Some("IGGY_");
    spec
}

fn iggy_bench(
    kind: &str,
    spec: &CmdSpec,
    cwd: &Path,
    limit: Duration,
    server: Watched<'_>,
) -> Result<IggySummary, BaselineError> {
    let what = format!("iggy-bench {kind}");
    let outputs = run_tools_against(&what, std::slice::from_ref(spec), cwd, limit, Some(server))?;
    parse_tool_output(&what, &outputs.concat(), parse_iggy_output)
}

/// `parse` applied to a tool's output; a failure quotes the output's tail.
fn parse_tool_output<T>(
    what: &str,
    output: &str,
    parse: fn(&str) -> Result<T, BaselineParseError>,
) -> Result<T, BaselineError> {
    parse(output).map_err(|source| BaselineError::Parse {
        what: what.to_string(),
        source,
        tail: tail(output),
    })
}

fn iggy_notes(load: &BaselineLoad, plan: &IggyPlan, consumed: Option<&IggySummary>) -> Vec<String> {
    let cores = cores();
    let mut notes = vec![
        format!(
            "pinned-producer: {p} streams of 1 topic x 1 partition, one per producer, so iggy's partitions = producers ({p}, {n} requested)",
            p = plan.streams,
            n = load.partitions
        ),
        format!(
            "latency per batch of {} messages (request to ack, from iggy-bench's 10 ms samples), not per record",
            plan.messages_per_batch
        ),
        if load.durable {
            "durable: every batch written and fsynced before its ack (enforce_fsync=true, messages_required_to_save=1; iggy 0.8.0 ignores an fsync error)".to_string()
        } else {
            "not durable: default config, batches reach the page cache once 1024 messages or 1 MiB are buffered, no fsync".to_string()
        },
        "acks and linger_ms do not apply (iggy acks after the append; iggy-bench sends whole batches back to back)".to_string(),
        format!("server and iggy-bench share the {cores} cores"),
        "iggy-bench with --nodelay (TCP_NODELAY, as cfa's client)".to_string(),
    ];
    if plan.total_messages() != load.records {
        notes.push(format!(
            "sent {} records ({} requested, rounded up to whole batches)",
            plan.total_messages(),
            load.records
        ));
    }
    if let Some(c) = consumed {
        notes.push(format!(
            "consume: pinned-consumer with {} consumers (iggy-bench needs one per stream; {} requested) reading what was just produced, from the page cache, per-batch poll latency p50 {} us p99 {} us",
            plan.streams,
            load.consumers,
            show(c.latency.p50),
            show(c.latency.p99)
        ));
    }
    notes
}

/// The server's version ("iggy 0.8.0"); installs libhwloc15 once when the loader misses it.
fn iggy_version(server: &Path, scratch: &Path) -> Result<String, BaselineError> {
    let probe = || {
        run_tools(
            "iggy-server --version",
            &[CmdSpec::new(server, vec!["--version".into()])],
            scratch,
            VERSION_TIMEOUT,
        )
    };
    let output = match probe() {
        Ok(output) => output,
        Err(e) if e.to_string().contains("libhwloc") => {
            install_hwloc_once(scratch);
            probe().map_err(|e| BaselineError::MissingLibrary(e.to_string()))?
        }
        Err(e) => return Err(e),
    };
    Ok(format!(
        "iggy {}",
        version_after(&output.concat(), "server")
    ))
}

/// `apt-get install -y libhwloc15`, after an `apt-get update` when the package lists lack it;
/// tried once per process.
fn install_hwloc_once(scratch: &Path) {
    static TRIED: OnceLock<()> = OnceLock::new();
    TRIED.get_or_init(|| {
        let apt = |args: &[&str]| {
            let spec = CmdSpec::new(
                Path::new("apt-get"),
                args.iter().map(|a| a.to_string()).collect(),
            );
            run_tools("apt-get", &[spec], scratch, APT_TIMEOUT).is_ok()
        };
        if !apt(&["install", "-y", "-q", "libhwloc15"]) {
            apt(&["update", "-q"]);
            apt(&["install", "-y", "-q", "libhwloc15"]);
        }
    });
}

/// Parses iggy-bench's output (ANSI colours allowed): the "Producers Results:" or
/// "Consumers Results:" line, e.g. "Producers Results: Total throughput: 555.35 MB/s,
/// 542334 messages/s, ..., p50 latency: 0.13 ms, ..., max: 28.80 ms, ..., total time: 0.15 s".
pub fn parse_iggy_output(output: &str) -> Result<IggySummary, BaselineParseError> {
    let clean = strip_ansi(output);
    let (role, fields) = clean
        .lines()
        .find_map(|line| {
            let (head, rest) = line.split_once("Results:")?;
            let role = head.trim();
            (role == "Producers" || role == "Consumers")
                .then(|| (role.to_string(), rest.to_string()))
        })
        .ok_or(BaselineParseError::MissingLine("iggy-bench \"Results:\""))?;
    let field_err = |field| BaselineParseError::Field {
        field,
        line: fields.trim().to_string(),
    };
    let mut summary = IggySummary {
        role,
        mb_per_s: f64::NAN,
        messages_per_s: f64::NAN,
        latency: BaselineLatency::default(),
        total_time_s: None,
    };
    for field in fields.split(", ").map(str::trim) {
        let (key, value) = field.split_once(": ").unwrap_or(("", field));
        let Some((number, unit)) = number_and_unit(value) else {
            continue;
        };
        let micros = || duration_us(number, unit);
        match key {
            "Total throughput" if unit == "MB/s" => summary.mb_per_s = number,
            "" if unit == "messages/s" => summary.messages_per_s = number,
            "p50 latency" => summary.latency.p50 = micros(),
            "p90 latency" => summary.latency.p90 = micros(),
            "p99 latency" => summary.latency.p99 = micros(),
            "p999 latency" => summary.latency.p999 = micros(),
            "max" => summary.latency.max = micros(),
            "total time" if unit == "s" => summary.total_time_s = Some(number),
            _ => {}
        }
    }
    if !summary.mb_per_s.is_finite() {
        return Err(field_err("Total throughput (MB/s)"));
    }
    if !summary.messages_per_s.is_finite() {
        return Err(field_err("messages/s"));
    }
    Ok(summary)
}

fn number_and_unit(value: &str) -> Option<(f64, &str)> {
    let (number, unit) = value.trim().split_once(' ')?;
    Some((number.parse().ok()?, unit.trim()))
}

/// A duration in `unit` as whole microseconds; None for an unknown unit or a non-finite value.
fn duration_us(value: f64, unit: &str) -> Option<u64> {
    let per_unit_us = match unit {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => return None,
    };
    finite(value).map(|v| (v * per_unit_us).round() as u64)
}

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// Removes ANSI escape sequences (ESC [ parameters final-byte), which iggy's logs carry.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameter and intermediate bytes run until the final byte in 0x40..=0x7E.
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Tansu

fn tansu_installed(install: &Path) -> bool {
    install.join("tansu").is_file() && install.join("venv/bin/python").is_file()
}

fn tansu_run(
    dir: &Path,
    work_dir: &Path,
    load: &BaselineLoad,
) -> Result<BaselineResult, BaselineError> {
    let dir = fs::canonicalize(dir).map_err(io_err(format!("{}", dir.display())))?;
    let work_dir = prepare_work_dir(work_dir)?;
    let run_dir = scratch_dir(&work_dir, "tansu-run-")?;
    let install = work_dir.join("tansu");
    ensure_tansu_install(&dir, &install, run_dir.path())?;
    let binary = install.join("tansu");
    let version = run_tools(
        "tansu --version",
        &[CmdSpec::new(&binary, vec!["--version".into()])],
        run_dir.path(),
        VERSION_TIMEOUT,
    )?;
    let system = format!(
        "tansu {} (memory-only)",
        version_after(&version.concat(), "tansu")
    );

    let addr = free_loopback_addr()?;
    let broker = tansu_broker_spec(&binary, addr);
    let log = run_dir.path().join("broker.log");
    let stop = (libc::SIGINT, TANSU_STOP_GRACE);
    let mut guard = start_server(&broker, run_dir.path(), &log, "tansu broker", stop, addr)?;

    let acks = if load.durable {
        "all"
    } else {
        load.acks.as_str()
    };
    let python = install.join("venv/bin/python");
    let perf_script = dir.join("kafka_perf.py");
    let specs: Vec<CmdSpec> = split_records(load.records, load.producers.max(1))
        .into_iter()
        .map(|records| {
            CmdSpec::new(
                &python,
                kafka_perf_args(&perf_script, addr, load, acks, records),
            )
        })
        .collect();
    let limit = Duration::from_secs_f64(load.max_seconds.max(0.0)) + KAFKA_PERF_FLUSH_GRACE;
    let watched = Watched {
        server: &mut guard,
        log: &log,
    };
    let outputs = run_tools_against(
        "kafka_perf.py",
        &specs,
        run_dir.path(),
        limit,
        Some(watched),
    )?;
    let killed = guard.stop();

    let runs = outputs
        .iter()
        .map(|output| parse_tool_output("kafka_perf.py", output, parse_kafka_perf_line))
        .collect::<Result<Vec<_>, _>>()?;
    let combined = combine_kafka_perf(&runs);
    if combined.records == 0 {
        return Err(BaselineError::Unusable(
            "kafka_perf.py delivered no records".to_string(),
        ));
    }
    let mut commands = vec![broker.display() + " &"];
    commands.extend(specs.iter().map(|s| s.display() + " &"));
    commands.push("wait; kill -INT $broker_pid".to_string());
    let mut notes = tansu_notes(load, acks, specs.len(), &runs, &combined);
    if killed {
        notes.push(format!(
            "tansu did not stop within {} s of SIGINT; killed",
            TANSU_STOP_GRACE.as_secs()
        ));
    }
    Ok(BaselineResult {
        system,
        command: commands.join("\n"),
        produce_records_per_s: combined.records_per_s,
        produce_mb_per_s: combined.records_per_s * load.record_bytes as f64 / BYTES_PER_MB,
        publish_latency_us: combined.latency,
        consume_records_per_s: None,
        consume_mb_per_s: None,
        notes: notes.join("; "),
    })
}

/// The broker command of the baselines README: memory storage, loopback listener.
fn tansu_broker_spec(binary: &Path, addr: SocketAddr) -> CmdSpec {
    let url = format!("tcp://{addr}");
    let args = [
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        "memory://tansu/",
    ];
    CmdSpec::new(binary, args.iter().map(|s| s.to_string()).collect())
}

/// Runs tansu/install.sh into `install` unless a complete install is already there.
fn ensure_tansu_install(dir: &Path, install: &Path, scratch: &Path) -> Result<(), BaselineError> {
    if tansu_installed(install) {
        return Ok(());
    }
    let spec = CmdSpec::new(
        Path::new("bash"),
        vec![
            dir.join("install.sh").display().to_string(),
            install.display().to_string(),
        ],
    );
    run_tools("tansu/install.sh", &[spec], scratch, TANSU_INSTALL_TIMEOUT)?;
    if tansu_installed(install) {
        Ok(())
    } else {
        Err(BaselineError::Unusable(format!(
            "tansu/install.sh succeeded but {} lacks tansu or venv/bin/python",
            install.display()
        )))
    }
}

fn kafka_perf_args(
    script: &Path,
    addr: SocketAddr,
    load: &BaselineLoad,
    acks: &str,
    records: u64,
) -> Vec<String> {
    vec![
        script.display().to_string(),
        "--bootstrap".into(),
        addr.to_string(),
        "--topic".into(),
        TANSU_TOPIC.into(),
        "--partitions".into(),
        load.partitions.max(1).to_string(),
        // Every process asks; the script takes "already exists" as success.
        "--create-topic".into(),
        "--num-records".into(),
        records.to_string(),
        "--record-size".into(),
        load.record_bytes.to_string(),
        "--acks".into(),
        acks.to_string(),
        "--batch-size".into(),
        load.batch_bytes.to_string(),
        "--linger-ms".into(),
        load.linger_ms.to_string(),
        "--max-seconds".into(),
        load.max_seconds.to_string(),
    ]
}

/// `records` split over `parts` processes, the remainder to the first ones.
fn split_records(records: u64, parts: u32) -> Vec<u64> {
    let parts = u64::from(parts.max(1));
    (0..parts)
        .map(|i| records / parts + u64::from(i < records % parts))
        .collect()
}

/// Parses kafka_perf.py's summary line, e.g. "100000 records sent, 159397.6 records/sec
/// (155.66 MB/sec), 142.81 ms avg latency, 368.38 ms max latency, 115 ms 50th, 309 ms 95th,
/// 353 ms 99th, 368 ms 99.9th. (acks=1 errors=0 undelivered=0 elapsed=0.6s)".
/// Its MB is 2^20 bytes; `mb_per_s` is converted to 10^6.
pub fn parse_kafka_perf_line(output: &str) -> Result<KafkaPerfSummary, BaselineParseError> {
    let line = output
        .lines()
        .find(|l| l.contains(" records sent, "))
        .ok_or(BaselineParseError::MissingLine(
            "kafka_perf.py \"records sent\"",
        ))?
        .trim();
    let field_err = |field| BaselineParseError::Field {
        field,
        line: line.to_string(),
    };
    let (head, trailer) = line
        .split_once(". (")
        .ok_or_else(|| field_err("(acks=... elapsed=...)"))?;
    let fields: Vec<&str> = head.split(", ").map(str::trim).collect();
    let ms_before = |suffix: &str| -> Option<f64> {
        fields
            .iter()
            .find_map(|f| f.strip_suffix(suffix))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .and_then(finite)
    };
    let records = fields
        .iter()
        .find_map(|f| f.strip_suffix(" records sent"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| field_err("records sent"))?;
    let rate = fields
        .iter()
        .find(|f| f.contains(" records/sec "))
        .ok_or_else(|| field_err("records/sec"))?;
    let mut tokens = rate.split_whitespace();
    let records_per_s: f64 = tokens
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| field_err("records/sec"))?;
    let mib_per_s: f64 = tokens
        .nth(1)
        .and_then(|n| n.trim_start_matches('(').parse().ok())
        .ok_or_else(|| field_err("MB/sec"))?;
    let mut summary = KafkaPerfSummary {
        records,
        records_per_s,
        mb_per_s: mib_per_s * BYTES_PER_MIB / BYTES_PER_MB,
        avg_ms: ms_before(" ms avg latency"),
        max_ms: ms_before(" ms max latency"),
        p50_ms: ms_before(" ms 50th"),
        p95_ms: ms_before(" ms 95th"),
        p99_ms: ms_before(" ms 99th"),
        p999_ms: ms_before(" ms 99.9th"),
        acks: String::new(),
        errors: 0,
        undelivered: 0,
        elapsed_s: f64::NAN,
    };
    for pair in trailer.trim_end_matches(')').split_whitespace() {
        match pair.split_once('=') {
            Some(("acks", v)) => summary.acks = v.to_string(),
            Some(("errors", v)) => summary.errors = v.parse().map_err(|_| field_err("errors"))?,
            Some(("undelivered", v)) => {
                summary.undelivered = v.parse().map_err(|_| field_err("undelivered"))?
            }
            Some(("elapsed", v)) => {
                summary.elapsed_s = v
                    .trim_end_matches('s')
                    .parse()
                    .map_err(|_| field_err("elapsed"))?
            }
            _ => {}
        }
    }
    if !summary.elapsed_s.is_finite() {
        return Err(field_err("elapsed"));
    }
    Ok(summary)
}

/// Several kafka_perf.py processes as one producer side.
#[derive(Debug)]
struct KafkaPerfTotal {
    records: u64,
    /// All delivered records over the slowest process's produce time (a lower bound: the
    /// processes start within milliseconds of each other but not at once).
    records_per_s: f64,
    /// Per percentile the worst process's value (exact for one process).
    latency: BaselineLatency,
}

fn combine_kafka_perf(runs: &[KafkaPerfSummary]) -> KafkaPerfTotal {
    let records: u64 = runs.iter().map(|r| r.records).sum();
    // records / records_per_s is the tool's own elapsed time, unrounded.
    let slowest_s = runs
        .iter()
        .map(|r| {
            if r.records_per_s > 0.0 {
                r.records as f64 / r.records_per_s
            } else {
                r.elapsed_s
            }
        })
        .fold(0.0_f64, f64::max);
    let worst_us = |pick: fn(&KafkaPerfSummary) -> Option<f64>| {
        runs.iter()
            .filter_map(pick)
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            })
            .and_then(|ms| duration_us(ms, "ms"))
    };
    KafkaPerfTotal {
        records,
        records_per_s: if slowest_s > 0.0 {
            records as f64 / slowest_s
        } else {
            0.0
        },
        latency: BaselineLatency {
            p50: worst_us(|r| r.p50_ms),
            p90: None,
            p99: worst_us(|r| r.p99_ms),
            p999: worst_us(|r| r.p999_ms),
            max: worst_us(|r| r.max_ms),
        },
    }
}

fn tansu_notes(
    load: &BaselineLoad,
    acks: &str,
    processes: usize,
    runs: &[KafkaPerfSummary],
    total: &KafkaPerfTotal,
) -> Vec<String> {
    let fmt_ms = |pick: fn(&KafkaPerfSummary) -> Option<f64>| {
        runs.iter()
            .map(|r| pick(r).map_or("n/a".to_string(), |v| format!("{v}")))
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut notes = vec![
        format!("memory-only build: nothing on disk, no fsync; Python client (librdkafka) shares the {} cores", cores()),
        format!(
            "{processes} kafka_perf.py processes in parallel (one per producer), one topic of {} partitions, acks={acks}; records/s = all delivered records / the slowest process's time",
            load.partitions.max(1)
        ),
        "latency per record from produce() to delivery report (includes linger and client queueing, unthrottled); percentiles printed as whole ms; with several processes each percentile is the worst process's; p90 not reported".to_string(),
        format!("per process: p95 {} ms, avg {} ms", fmt_ms(|r| r.p95_ms), fmt_ms(|r| r.avg_ms)),
    ];
    if load.durable {
        notes.push(
            "durable requested: ran acks=all, which for this memory-only build means stored in RAM"
                .to_string(),
        );
    }
    if load.consumers > 0 {
        notes.push("consume side not run: no consumer tool for tansu here".to_string());
    }
    let (errors, undelivered): (u64, u64) = runs
        .iter()
        .fold((0, 0), |(e, u), r| (e + r.errors, u + r.undelivered));
    if total.records < load.records || errors > 0 || undelivered > 0 {
        notes.push(format!(
            "delivered {} of {} records (errors {errors}, undelivered {undelivered}; the run stops at max_seconds)",
            total.records, load.records
        ));
    }
    notes
}

// ---------------------------------------------------------------------------------------
// Processes

/// A command line with the environment it is started with.
#[derive(Debug, Clone)]
struct CmdSpec {
    env: Vec<(String, String)>,
    /// Inherited variables with this prefix are removed.
    clear_env_prefix: Option<&'static str>,
    program: PathBuf,
    args: Vec<String>,
}

impl CmdSpec {
    fn new(program: &Path, args: Vec<String>) -> Self {
        CmdSpec {
            env: Vec::new(),
            clear_env_prefix: None,
            program: program.to_path_buf(),
            args,
        }
    }

    fn env(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    fn command(&self, cwd: &Path) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(prefix) = self.clear_env_prefix {
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with(prefix) {
                    cmd.env_remove(key);
                }
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.args)
            .current_dir(cwd)
            .stdin(Stdio::null());
        cmd
    }

    /// The shell form, for the report.
    fn display(&self) -> String {
        let quote = |s: &str| {
            if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", s.replace('\'', r"'\''"))
            } else {
                s.to_string()
            }
        };
        let env = self.env.iter().map(|(k, v)| format!("{k}={}", quote(v)));
        let program = std::iter::once(quote(&self.program.display().to_string()));
        let args = self.args.iter().map(|a| quote(a));
        env.chain(program).chain(args).collect::<Vec<_>>().join(" ")
    }
}

/// A started child that is stopped (signal, bounded wait, SIGKILL) when dropped, so no
/// error path leaves a process behind.
struct Guard {
    child: Child,
    what: String,
    /// None = SIGKILL at once.
    stop_signal: Option<libc::c_int>,
    grace: Duration,
}

impl Guard {
    /// Spawns `spec` in `cwd` with stdout and stderr appended to `log`.
    fn start(
        spec: &CmdSpec,
        cwd: &Path,
        log: &Path,
        what: &str,
        stop_signal: Option<libc::c_int>,
        grace: Duration,
    ) -> Result<Self, BaselineError> {
        let out = File::create(log).map_err(io_err(format!("create {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err(format!("dup {}", log.display())))?;
        let child = spec
            .command(cwd)
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io_err(format!("start {what} ({})", spec.program.display())))?;
        Ok(Guard {
            child,
            what: what.to_string(),
            stop_signal,
            grace,
        })
    }

    fn exited(&mut self) -> Result<Option<ExitStatus>, BaselineError> {
        self.child
            .try_wait()
            .map_err(io_err(format!("wait for {}", self.what)))
    }

    /// Stops the child; true when it had to be killed after the grace period.
    fn stop(mut self) -> bool {
        self.stop_now()
    }

    fn stop_now(&mut self) -> bool {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return false;
        }
        if let (Some(signal), Ok(pid)) = (self.stop_signal, libc::pid_t::try_from(self.child.id()))
        {
            // SAFETY: kill(2) takes plain integers; `pid` is our own child, which try_wait just
            // found running and which has not been reaped, so the pid cannot have been reused.
            unsafe { libc::kill(pid, signal) };
            let deadline = Instant::now() + self.grace;
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return false;
                }
                std::thread::sleep(CHILD_POLL_INTERVAL);
            }
        }
        // Best effort: the child may exit between the check and the kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stop_signal.is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Runs `specs` in parallel in `cwd`, each killed after `limit`; their outputs (stdout and
/// stderr) in order. Any failure stops the others.
fn run_tools(
    what: &str,
    specs: &[CmdSpec],
    cwd: &Path,
    limit: Duration,
) -> Result<Vec<String>, BaselineError> {
    run_tools_against(what, specs, cwd, limit, None)
}

/// A broker the tools talk to, with its log: when it dies the tools are stopped at once
/// (iggy-bench would otherwise retry its connection until `limit`).
struct Watched<'a> {
    server: &'a mut Guard,
    log: &'a Path,
}

fn run_tools_against(
    what: &str,
    specs: &[CmdSpec],
    cwd: &Path,
    limit: Duration,
    mut watched: Option<Watched<'_>>,
) -> Result<Vec<String>, BaselineError> {
    let file_stem: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut running = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let log = cwd.join(format!("{file_stem}-{i}.out"));
        running.push((
            Guard::start(spec, cwd, &log, what, None, Duration::ZERO)?,
            log,
            None,
        ));
    }
    let deadline = Instant::now() + limit;
    loop {
        for (guard, _, status) in running.iter_mut() {
            if status.is_none() {
                *status = guard.exited()?;
            }
        }
        if running.iter().all(|(_, _, status)| status.is_some()) {
            break;
        }
        if let Some(w) = watched.as_mut() {
            if let Some(status) = w.server.exited()? {
                return Err(BaselineError::ServerDied {
                    what: w.server.what.clone(),
                    status,
                    during: what.to_string(),
                    tail: tail(&read_lossy(w.log)),
                });
            }
        }
        if Instant::now() >= deadline {
            let tails = running
                .iter()
                .map(|(_, log, _)| tail(&read_lossy(log)))
                .collect::<Vec<_>>();
            return Err(BaselineError::Timeout {
                what: what.to_string(),
                secs: limit.as_secs_f64(),
                tail: tails.join(" || "),
            });
        }
        std::thread::sleep(CHILD_POLL_INTERVAL);
    }
    let mut outputs = Vec::with_capacity(running.len());
    for (_, log, status) in &running {
        let output = read_lossy(log);
        match status {
            Some(status) if !status.success() => {
                return Err(BaselineError::Exit {
                    what: what.to_string(),
                    status: *status,
                    tail: tail(&output),
                })
            }
            _ => outputs.push(output),
        }
    }
    Ok(outputs)
}

/// Starts a broker that listens on `addr`, logging to `log`, and waits until it accepts;
/// `stop` is the signal that stops it and how long it gets before SIGKILL.
fn start_server(
    spec: &CmdSpec,
    cwd: &Path,
    log: &Path,
    what: &str,
    stop: (libc::c_int, Duration),
    addr: SocketAddr,
) -> Result<Guard, BaselineError> {
    let mut guard = Guard::start(spec, cwd, log, what, Some(stop.0), stop.1)?;
    wait_for_port(&mut guard, addr, log)?;
    Ok(guard)
}

/// Waits (bounded) until `addr` accepts; fails early when the server exits.
fn wait_for_port(server: &mut Guard, addr: SocketAddr, log: &Path) -> Result<(), BaselineError> {
    let deadline = Instant::now() + PORT_READY_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok() {
            return Ok(());
        }
        if let Some(status) = server.exited()? {
            return Err(BaselineError::EarlyExit {
                what: server.what.clone(),
                status,
                addr,
                tail: tail(&read_lossy(log)),
            });
        }
        std::thread::sleep(PORT_POLL_INTERVAL);
    }
    Err(BaselineError::NotReady {
        what: server.what.clone(),
        addr,
        secs: PORT_READY_TIMEOUT.as_secs(),
        tail: tail(&read_lossy(log)),
    })
}

/// A loopback address whose port was free a moment ago (bound to port 0, then released).
fn free_loopback_addr() -> Result<SocketAddr, BaselineError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_err("bind 127.0.0.1:0"))?;
    listener
        .local_addr()
        .map_err(io_err("local address of 127.0.0.1:0"))
}

/// Creates `work_dir` and makes it absolute: the children run in other directories.
fn prepare_work_dir(work_dir: &Path) -> Result<PathBuf, BaselineError> {
    fs::create_dir_all(work_dir).map_err(io_err(format!("mkdir {}", work_dir.display())))?;
    fs::canonicalize(work_dir).map_err(io_err(format!("{}", work_dir.display())))
}

/// A fresh directory under `work_dir`, deleted when dropped.
fn scratch_dir(work_dir: &Path, prefix: &str) -> Result<tempfile::TempDir, BaselineError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(work_dir)
        .map_err(io_err(format!("temp dir in {}", work_dir.display())))
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// The last lines of `text`, colours removed, on one line.
fn tail(text: &str) -> String {
    let clean = strip_ansi(text);
    let lines: Vec<&str> = clean.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join(" | ")
}

/// "0.8.0" from a `--version` output line "server 0.8.0"; "unknown version" otherwise.
fn version_after(output: &str, word: &str) -> String {
    output
        .lines()
        .find_map(|line| {
            let mut tokens = line.split_whitespace();
            (tokens.next() == Some(word))
                .then(|| tokens.next())
                .flatten()
        })
        .unwrap_or("(unknown version)")
        .to_string()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn show(value: Option<u64>) -> String {
    value.map_or("n/a".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tail of a real `iggy-bench -m 1024 -P 64 -b 500 pinned-producer --producers 2
    /// --streams 2 tcp` run against iggy-server 0.8.0 here, colours as printed.
    const IGGY_PRODUCER_OUTPUT: &str = "\x1b[2m2026-11-25T13:41:49.704381Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2miggy_bench::actors::producer::benchmark_producer\x1b[0m\x1b[2m:\x1b[0m Producer #1 \u{2192} sent 32k messages in 500 batches of 64 messages in 0.15 s, total size: 32.77 MB, average throughput: 210.45 MB/s, p50 latency: 0.13 ms, p90 latency: 0.32 ms, p95 latency: 0.42 ms, p99 latency: 0.61 ms, p999 latency: 31.89 ms, p9999 latency: 54.81 ms, average latency: 0.30 ms, median latency: 0.13 ms, min latency: 0.14 ms, max latency: 28.80 ms, std dev latency: 8.21 ms
\x1b[2m2026-11-25T13:41:56.078602Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2miggy::tcp::tcp_client\x1b[0m\x1b[2m:\x1b[0m Automatic sign-in is disabled.

\x1b[2m2026-11-25T13:41:56.176550Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mbench_report::prints\x1b[0m\x1b[2m:\x1b[0m Benchmark: Pinned Producer, 2 producers, 2 streams, 1 topic per stream, 1 partitions per topic, 64000 messages, 64 messages per batch, 1000 message batches, 1024 bytes per message, 65.5MB of data processed


Producers Results: Total throughput: 447.98 MB/s, 437489 messages/s, average throughput per Producer: 223.99 MB/s, p50 latency: 0.12 ms, p90 latency: 0.29 ms, p95 latency: 0.48 ms, p99 latency: 0.85 ms, p999 latency: 21.26 ms, p9999 latency: 34.42 ms, average latency: 0.26 ms, median latency: 0.12 ms, min: 0.13 ms, max: 32.58 ms, std dev: 0.71 ms, total time: 0.15 s
";

    /// The tail of the pinned-consumer run (2 consumers) that followed it on the same server.
    const IGGY_CONSUMER_OUTPUT: &str = "\x1b[2m2026-11-25T13:41:56.403436Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mbench_report::prints\x1b[0m\x1b[2m:\x1b[0m Benchmark: Pinned Consumer, 2 consumers, 2 streams, 1 topic per stream, 64000 messages, 64 messages per batch, 1000 message batches, 1024 bytes per message, 65.5MB of data processed


Consumers Results: Total throughput: 624.96 MB/s, 610311 messages/s, average throughput per Consumer: 312.48 MB/s, p50 latency: 0.17 ms, p90 latency: 0.24 ms, p95 latency: 0.25 ms, p99 latency: 0.29 ms, p999 latency: 14.80 ms, p9999 latency: 27.73 ms, average latency: 0.24 ms, median latency: 0.17 ms, min: 0.15 ms, max: 5.44 ms, std dev: 0.14 ms, total time: 0.14 s
";

    /// iggy-bench against a port nobody listens on: it retries forever, no results line.
    const IGGY_REFUSED_OUTPUT: &str = "\x1b[2m2026-11-25T13:46:24.414615Z\x1b[0m \x1b[31mERROR\x1b[0m \x1b[2miggy::tcp::tcp_client\x1b[0m\x1b[2m:\x1b[0m Failed to connect to server: 127.0.0.1:1. Error: Connection refused (os error 111)
\x1b[2m2026-11-25T13:46:24.414627Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2miggy::tcp::tcp_client\x1b[0m\x1b[2m:\x1b[0m Retrying to connect to server (20/unlimited): 127.0.0.1:1 in: 1s
";

    /// A real kafka_perf.py run (100,000 x 1 KiB, acks=1) against tansu 0.6.0 here.
    const KAFKA_PERF_LINE: &str = "100000 records sent, 159397.6 records/sec (155.66 MB/sec), 142.81 ms avg latency, 368.38 ms max latency, 115 ms 50th, 309 ms 95th, 353 ms 99th, 368 ms 99.9th. (acks=1 errors=0 undelivered=0 elapsed=0.6s)\n";

    #[test]
    fn iggy_producer_results_line_is_parsed_not_the_per_producer_line() {
        let s = parse_iggy_output(IGGY_PRODUCER_OUTPUT).expect("parse");
        assert_eq!(s.role, "Producers");
        assert_eq!(s.mb_per_s, 447.98);
        assert_eq!(s.messages_per_s, 437_489.0);
        assert_eq!(s.latency.p50, Some(120));
        assert_eq!(s.latency.p90, Some(290));
        assert_eq!(s.latency.p99, Some(850));
        assert_eq!(s.latency.p999, Some(21_260));
        assert_eq!(s.latency.max, Some(32_580));
        assert_eq!(s.total_time_s, Some(0.15));
    }

    #[test]
    fn iggy_mb_is_decimal() {
        // 437489 messages/s x 1024 bytes = 447.99e6 bytes/s: iggy-bench's MB is 10^6 bytes.
        let s = parse_iggy_output(IGGY_PRODUCER_OUTPUT).expect("parse");
        let from_messages = s.messages_per_s * 1024.0 / BYTES_PER_MB;
        assert!(
            (from_messages - s.mb_per_s).abs() < 0.05,
            "{from_messages} vs {}",
            s.mb_per_s
        );
    }

    #[test]
    fn iggy_consumer_results_line_is_parsed() {
        let s = parse_iggy_output(IGGY_CONSUMER_OUTPUT).expect("parse");
        assert_eq!(s.role, "Consumers");
        assert_eq!(s.mb_per_s, 624.96);
        assert_eq!(s.messages_per_s, 610_311.0);
        assert_eq!(s.latency.p50, Some(170));
        assert_eq!(s.latency.max, Some(5_440));
    }

    #[test]
    fn iggy_output_without_results_is_an_error() {
        let e = parse_iggy_output(IGGY_REFUSED_OUTPUT).expect_err("no results line");
        assert!(matches!(e, BaselineParseError::MissingLine(_)), "{e}");
    }

    #[test]
    fn iggy_results_without_throughput_is_an_error() {
        let e = parse_iggy_output("Producers Results: p50 latency: 0.12 ms")
            .expect_err("no throughput");
        assert!(matches!(e, BaselineParseError::Field { .. }), "{e}");
    }

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(
            strip_ansi("\x1b[2ma\x1b[0m \x1b[32m INFO\x1b[0m"),
            "a  INFO"
        );
        assert_eq!(strip_ansi("plain \u{2192} text"), "plain \u{2192} text");
    }

    #[test]
    fn kafka_perf_line_is_parsed_and_mib_converted_to_mb() {
        let s = parse_kafka_perf_line(KAFKA_PERF_LINE).expect("parse");
        assert_eq!(s.records, 100_000);
        assert_eq!(s.records_per_s, 159_397.6);
        // 155.66 MiB/s = 163.22 MB/s, which 159397.6 records/s x 1024 bytes confirms.
        assert!((s.mb_per_s - 163.222).abs() < 0.01, "{}", s.mb_per_s);
        assert!((s.records_per_s * 1024.0 / BYTES_PER_MB - s.mb_per_s).abs() < 0.01);
        assert_eq!(s.avg_ms, Some(142.81));
        assert_eq!(s.max_ms, Some(368.38));
        assert_eq!(s.p50_ms, Some(115.0));
        assert_eq!(s.p95_ms, Some(309.0));
        assert_eq!(s.p99_ms, Some(353.0));
        assert_eq!(s.p999_ms, Some(368.0));
        assert_eq!(s.acks, "1");
        assert_eq!((s.errors, s.undelivered), (0, 0));
        assert_eq!(s.elapsed_s, 0.6);
    }

    #[test]
    fn kafka_perf_line_is_found_among_other_output() {
        let output =
            format!("create_topic: KafkaError{{code=TOPIC_ALREADY_EXISTS}}\n{KAFKA_PERF_LINE}");
        assert_eq!(
            parse_kafka_perf_line(&output).expect("parse").records,
            100_000
        );
    }

    #[test]
    fn kafka_perf_line_with_nothing_delivered_has_no_latency() {
        // A real run against a port nobody listens on (--max-seconds 1), librdkafka's log around.
        let output = "%3|1795614463.058|FAIL|rdkafka#producer-1| [thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)
0 records sent, 0.0 records/sec (0.00 MB/sec), nan ms avg latency, nan ms max latency, nan ms 50th, nan ms 95th, nan ms 99th, nan ms 99.9th. (acks=all errors=0 undelivered=1000 elapsed=31.1s)
%4|1795614463.071|TERMINATE|rdkafka#producer-1| [thrd:app]: Producer terminating with 1000 messages (1024000 bytes) still in queue or transit: use flush() to wait for outstanding message delivery
";
        let s = parse_kafka_perf_line(output).expect("parse");
        assert_eq!(s.records, 0);
        assert_eq!((s.p50_ms, s.max_ms), (None, None));
        assert_eq!((s.acks.as_str(), s.errors, s.undelivered), ("all", 0, 1000));
        assert_eq!(s.elapsed_s, 31.1);
        assert_eq!(combine_kafka_perf(&[s]).records_per_s, 0.0);
    }

    #[test]
    fn kafka_perf_garbage_is_an_error() {
        assert!(parse_kafka_perf_line("Traceback (most recent call last):").is_err());
        assert!(
            parse_kafka_perf_line("x records sent, 1 records/sec (1 MB/sec). (elapsed=1s)")
                .is_err()
        );
    }

    #[test]
    fn parallel_kafka_perf_runs_add_records_over_the_slowest_time() {
        let a = parse_kafka_perf_line(KAFKA_PERF_LINE).expect("parse");
        let mut b = a.clone();
        b.records_per_s /= 2.0; // twice as long
        b.p99_ms = Some(900.0);
        let total = combine_kafka_perf(&[a.clone(), b]);
        assert_eq!(total.records, 200_000);
        // 200,000 records over the slower process's 1.2548 s.
        assert!(
            (total.records_per_s - a.records_per_s).abs() < 0.5,
            "{}",
            total.records_per_s
        );
        assert_eq!(total.latency.p99, Some(900_000));
        assert_eq!(total.latency.p50, Some(115_000));
        assert_eq!(total.latency.p90, None);
    }

    #[test]
    fn records_split_over_producers_add_up() {
        assert_eq!(split_records(10, 3), vec![4, 3, 3]);
        assert_eq!(split_records(2_000_000, 2), vec![1_000_000, 1_000_000]);
        assert_eq!(split_records(5, 0), vec![5]);
    }

    fn load() -> BaselineLoad {
        BaselineLoad {
            workload: "t".into(),
            record_bytes: 1024,
            partitions: 6,
            producers: 2,
            records: 2_000_000,
            durable: false,
            acks: "1".into(),
            batch_bytes: 65_536,
            linger_ms: 5,
            consumers: 1,
            max_seconds: 120.0,
            rate_mb_per_s: None,
        }
    }

    #[test]
    fn iggy_plan_maps_batches_and_streams() {
        let plan = IggyPlan::new(&load());
        assert_eq!(
            (
                plan.messages_per_batch,
                plan.batches_per_producer,
                plan.streams
            ),
            (64, 15_625, 2)
        );
        assert_eq!(plan.total_messages(), 2_000_000);
        let addr: SocketAddr = "127.0.0.1:8090".parse().expect("addr");
        assert_eq!(
            plan.bench_args(&load(), CONSUMER, addr).join(" "),
            "-m 1024 -P 64 -b 15625 pinned-consumer --consumers 2 --streams 2 tcp --nodelay --server-address 127.0.0.1:8090"
        );
        let tiny = BaselineLoad {
            batch_bytes: 100,
            records: 3,
            ..load()
        };
        let plan = IggyPlan::new(&tiny);
        assert_eq!((plan.messages_per_batch, plan.batches_per_producer), (1, 2));
    }

    #[test]
    fn versions_are_read_from_the_version_line() {
        assert_eq!(version_after("server 0.8.0\n", "server"), "0.8.0");
        assert_eq!(version_after("tansu 0.6.0", "tansu"), "0.6.0");
        assert_eq!(version_after("garbage", "tansu"), "(unknown version)");
    }

    #[test]
    fn command_display_quotes_what_the_shell_would_split() {
        let mut spec = CmdSpec::new(Path::new("/x/iggy-server"), vec!["a b".into(), "c".into()]);
        spec.env("K", "v");
        assert_eq!(spec.display(), "K=v /x/iggy-server 'a b' c");
    }
}
