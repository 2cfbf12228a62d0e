//! The client verbs of the `cfa` binary (`topic`, `produce`, `consume`, `group`), run as
//! child processes against an in-process broker: what they print, their exit codes, and
//! the one-line errors that name the cause.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cfa_net::server::{Broker, BrokerConfig, BrokerHandle};

/// Longest any one child may run before the test kills it and fails.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

struct TestBroker {
    handle: BrokerHandle,
    _dir: tempfile::TempDir,
}

impl TestBroker {
    fn start() -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let handle = Broker::start(BrokerConfig::for_tests(dir.path())).expect("broker starts");
        TestBroker { handle, _dir: dir }
    }

    fn addr(&self) -> String {
        self.handle.local_addr().to_string()
    }

    /// Runs `cfa ARGS --bootstrap ADDR` with `stdin`.
    fn cfa(&self, args: &[&str], stdin: &str) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let addr = self.addr();
        all.extend(["--bootstrap", &addr]);
        cfa(&all, stdin)
    }

    /// As `cfa`, and fails the test unless it exits 0.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cfa(args, stdin);
        assert!(out.status.success(), "cfa {args:?} failed: {out:?}");
        out.stdout
    }
}

#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    /// Asserts a failure: non-zero exit, nothing on stdout, one stderr line containing
    /// every needle. Returns that line.
    fn fails_with(&self, needles: &[&str]) -> &str {
        assert!(!self.status.success(), "expected a failure: {self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:?}");
        for n in needles {
            assert!(lines[0].contains(n), "stderr lacks {n:?}: {self:?}");
        }
        lines[0]
    }
}

/// A child killed (by PID, through `Child::kill`) when the test ends however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cfa");
    Running(child)
}

fn reader(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Waits for the child's exit, killing it past `CHILD_TIMEOUT`.
fn finish(mut child: Running, args: &[&str]) -> Output {
    // A test may have taken stdout to read it as it comes.
    let stdout = child.0.stdout.take().map(reader);
    let stderr = reader(child.0.stderr.take().expect("stderr"));
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.0.kill();
            let _ = child.0.wait();
            let err = stderr.join().unwrap_or_default();
            panic!("cfa {args:?} still ran after {CHILD_TIMEOUT:?} (killed); stderr: {err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout
            .map(|r| r.join().expect("stdout reader"))
            .unwrap_or_default(),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn cfa(args: &[&str], stdin: &str) -> Output {
    let mut child = spawn(args);
    let mut input = child.0.stdin.take().expect("stdin");
    let stdin = stdin.to_owned();
    // A child that fails early closes its stdin; the write error is expected then.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let out = finish(child, args);
    writer.join().expect("stdin writer");
    out
}

/// An address nothing listens on: a port the OS just handed out and took back.
fn dead_address() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// The cells of the table rows whose first cells are `prefix`.
fn rows<'a>(table: &'a str, prefix: &[&str]) -> Vec<Vec<&'a str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.starts_with(prefix))
        .collect()
}

/// The cells of the one table row whose first cells are `prefix`.
fn row<'a>(table: &'a str, prefix: &[&str]) -> Vec<&'a str> {
    let mut found = rows(table, prefix);
    assert_eq!(found.len(), 1, "one row starting {prefix:?} in:\n{table}");
    found.remove(0)
}

#[test]
fn topic_create_list_describe_delete() {
    let b = TestBroker::start();
    let out = b.ok(
        &[
            "topic",
            "create",
            "soccer",
            "--partitions",
            "3",
            "--config",
            "retention.ms=60000",
        ],
        "",
    );
    assert_eq!(out, "Created topic soccer.\n");
    b.ok(&["topic", "create", "tennis", "--partitions", "1"], "");

    let dup = b.cfa(&["topic", "create", "soccer", "--partitions", "3"], "");
    dup.fails_with(&["soccer", "TopicAlreadyExists"]);
    let bad = b.cfa(
        &["topic", "create", "golf", "--config", "no.such.key=1"],
        "",
    );
    bad.fails_with(&["golf", "no.such.key"]);

    assert_eq!(lines(&b.ok(&["topic", "list"], "")), ["soccer", "tennis"]);
    let all = b.ok(&["topic", "list", "--include-internal"], "");
    assert_eq!(lines(&all), ["__consumer_offsets", "soccer", "tennis"]);

    let d = b.ok(&["topic", "describe", "soccer"], "");
    let d_lines = lines(&d);
    assert!(
        d_lines[0].starts_with("Topic: soccer\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: "),
        "{d}"
    );
    assert!(d_lines[0].contains("retention.ms=60000"), "{d}");
    assert_eq!(d_lines.len(), 5, "summary, header, 3 partitions: {d}");
    for p in ["0", "1", "2"] {
        // partition, leader, replicas, isr, log start, log end, high watermark, error
        assert_eq!(row(&d, &[p]), [p, "0", "0", "0", "0", "0", "0", "-"], "{d}");
    }

    assert_eq!(
        b.ok(&["topic", "delete", "soccer"], ""),
        "Deleted topic soccer.\n"
    );
    assert_eq!(lines(&b.ok(&["topic", "list"], "")), ["tennis"]);
    b.cfa(&["topic", "describe", "soccer"], "")
        .fails_with(&["unknown topic 'soccer'"]);
    b.cfa(&["topic", "delete", "soccer"], "")
        .fails_with(&["unknown topic 'soccer'"]);
}

#[test]
fn produce_then_consume_from_the_beginning_keeps_per_key_order() {
    let b = TestBroker::start();
    b.ok(&["topic", "create", "games", "--partitions", "3"], "");
    // Keys from the line, gzip, acks=all (idempotent).
    let keyed: String = (0..60).map(|i| format!("game-{}:{i}\n", i % 6)).collect();
    let out = b.ok(
        &[
            "produce",
            "games",
            "--key-separator",
            ":",
            "--compression",
            "gzip",
        ],
        &keyed,
    );
    assert_eq!(out, "", "produce prints nothing on success");
    // One key for every line; each remaining codec and acks level.
    let runs = [
        ("zstd", "1", "z"),
        ("lz4", "all", "l"),
        ("snappy", "0", "s"),
    ];
    for (codec, acks, key) in runs {
        let values: String = (0..20).map(|i| format!("{key}-{i}\n")).collect();
        b.ok(
            &[
                "produce",
                "games",
                "--key",
                key,
                "--compression",
                codec,
                "--acks",
                acks,
            ],
            &values,
        );
    }
    let total = 60 + 20 * runs.len();

    let out = b.ok(
        &[
            "consume",
            "games",
            "--from-beginning",
            "--max-messages",
            &total.to_string(),
            "--print-key",
        ],
        "",
    );
    let got = lines(&out);
    assert_eq!(got.len(), total, "{out}");
    let mut want: BTreeSet<String> = (0..60).map(|i| format!("game-{}\t{i}", i % 6)).collect();
    for (_, _, key) in runs {
        want.extend((0..20).map(|i| format!("{key}\t{key}-{i}")));
    }
    let got_set: BTreeSet<String> = got.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(got_set, want, "every line once");
    // Same key, same partition: consumed in the order produced.
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for line in &got {
        let (key, value) = line.split_once('\t').expect("key TAB value");
        let seq: usize = value
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a sequence number");
        if let Some(prev) = last.insert(key, seq) {
            assert!(prev < seq, "key {key}: {seq} after {prev}");
        }
    }

    // Values only without --print-key; --max-messages stops early.
    let out = b.ok(
        &[
            "consume",
            "games",
            "--from-beginning",
            "--max-messages",
            "5",
        ],
        "",
    );
    assert_eq!(lines(&out).len(), 5, "{out}");
    assert!(lines(&out).iter().all(|l| !l.contains('\t')), "{out}");
    // Without --from-beginning only new records come: none, so the timeout ends it.
    let out = b.ok(&["consume", "games", "--timeout-ms", "1000"], "");
    assert_eq!(out, "");
}

#[test]
fn group_consumers_commit_what_they_printed() {
    let b = TestBroker::start();
    b.ok(&["topic", "create", "orders", "--partitions", "2"], "");
    let input: String = (0..20).map(|i| format!("order-{i}\n")).collect();
    b.ok(&["produce", "orders"], &input);

    let consume = |extra: &[&str]| {
        let mut args = vec![
            "consume",
            "orders",
            "--group",
            "billing",
            "--from-beginning",
        ];
        args.extend(extra);
        b.ok(&args, "")
    };
    let first = consume(&["--max-messages", "8"]);
    assert_eq!(lines(&first).len(), 8, "{first}");
    // Exactly the printed records are committed: 12 left. (The table lists the
    // partitions the group committed; keyless records may all sit in one partition.)
    let d = b.ok(&["group", "describe", "billing"], "");
    let sum = |d: &str, column: usize| -> u64 {
        rows(d, &["orders"])
            .iter()
            .map(|r| r[column].parse::<u64>().expect("a number"))
            .sum()
    };
    assert_eq!(
        (sum(&d, 2), sum(&d, 4)),
        (8, 12),
        "committed 8, lag 12: {d}"
    );

    let second = consume(&["--max-messages", "12"]);
    let mut seen: Vec<&str> = lines(&first);
    seen.extend(lines(&second));
    let seen: BTreeSet<&str> = seen.into_iter().collect();
    let want: BTreeSet<String> = (0..20).map(|i| format!("order-{i}")).collect();
    assert_eq!(seen.len(), 20, "no record twice: {first}\n{second}");
    assert!(seen.iter().all(|s| want.contains(*s)));

    // Everything committed: a third run gets nothing new.
    assert_eq!(consume(&["--timeout-ms", "1500"]), "");

    let list = b.ok(&["group", "list"], "");
    assert_eq!(row(&list, &["GROUP"]), ["GROUP", "STATE", "MEMBERS"]);
    assert_eq!(row(&list, &["billing"]), ["billing", "Empty", "0"]);
    let d = b.ok(&["group", "describe", "billing"], "");
    assert!(d.starts_with("Group: billing\tState: Empty"), "{d}");
    let header = row(&d, &["TOPIC"]);
    assert_eq!(
        header,
        [
            "TOPIC",
            "PARTITION",
            "COMMITTED",
            "LOG-END",
            "LAG",
            "MEMBER"
        ]
    );
    let listed = rows(&d, &["orders"]);
    assert!(!listed.is_empty(), "{d}");
    for r in &listed {
        assert_eq!(r[2], r[3], "committed = log end: {d}");
        assert_eq!((r[4], r[5]), ("0", "-"), "lag 0, no member: {d}");
    }
    assert_eq!(sum(&d, 2), 20, "{d}");
    b.cfa(&["group", "describe", "nobody"], "")
        .fails_with(&["nobody"]);
}

#[test]
fn errors_name_the_cause_on_one_line() {
    let b = TestBroker::start();
    b.cfa(&["produce", "nope"], "x\n")
        .fails_with(&["unknown topic 'nope'"]);
    b.cfa(&["consume", "nope", "--timeout-ms", "1000"], "")
        .fails_with(&["unknown topic 'nope'"]);
    b.cfa(
        &["consume", "nope", "--group", "g", "--max-messages", "1"],
        "",
    )
    .fails_with(&["unknown topic 'nope'"]);

    let dead = dead_address().to_string();
    let unreachable = format!("broker unreachable at {dead}");
    for args in [
        vec!["topic", "list"],
        vec!["produce", "t"],
        vec!["consume", "t", "--max-messages", "1"],
        vec!["group", "list"],
    ] {
        let mut args = args;
        args.extend(["--bootstrap", dead.as_str()]);
        cfa(&args, "x\n").fails_with(&[&unreachable]);
    }

    b.ok(
        &[
            "topic",
            "create",
            "small",
            "--config",
            "max.message.bytes=1024",
        ],
        "",
    );
    // Many small lines fit: the producer keeps its batches within the topic's limit.
    let many: String = (0..200).map(|i| format!("{i:0>40}\n")).collect();
    b.ok(&["produce", "small"], &many);
    // A record that cannot fit: the lines before it are delivered, nothing after it.
    let big = "x".repeat(2000);
    let out = b.cfa(&["produce", "small"], &format!("first\n{big}\nafter\n"));
    let line = out.fails_with(&["line 2: record of ", "exceeds max.message.bytes 1024"]);
    assert!(line.contains("'small'"), "{line}");
    let all = b.ok(
        &[
            "consume",
            "small",
            "--from-beginning",
            "--timeout-ms",
            "1500",
        ],
        "",
    );
    let all = lines(&all);
    assert_eq!(all.len(), 201);
    assert_eq!(all.last(), Some(&"first"));

    b.cfa(
        &["produce", "small", "--key-separator", ":"],
        "a:1\nno-separator\n",
    )
    .fails_with(&["line 2: no key separator \":\""]);
    let clash = b.cfa(
        &["produce", "small", "--key", "k", "--key-separator", ":"],
        "",
    );
    assert_eq!(clash.status.code(), Some(2), "a usage error: {clash:?}");
}

#[test]
fn consume_without_limits_runs_until_interrupted() {
    let b = TestBroker::start();
    b.ok(&["topic", "create", "live", "--partitions", "1"], "");
    b.ok(&["produce", "live"], "hello\n");
    let addr = b.addr();
    let args = [
        "consume",
        "live",
        "--group",
        "watchers",
        "--from-beginning",
        "--bootstrap",
        addr.as_str(),
    ];
    let mut child = spawn(&args);
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(rx.recv_timeout(CHILD_TIMEOUT).as_deref(), Ok("hello"));
    // Nothing new comes, and with neither flag it keeps running.
    assert!(rx.recv_timeout(Duration::from_millis(1000)).is_err());
    let status = child.0.try_wait().expect("try_wait");
    assert!(status.is_none(), "it keeps running: {status:?}");
    // SAFETY: kill sends a signal to the child we started; it reads no memory of ours.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) }, 0);
    let out = finish(child, &args);
    assert!(out.status.success(), "Ctrl-C is a normal stop: {out:?}");
    assert_eq!(out.stderr, "");
    // It left the group (no member waits out a session timeout) and committed the record.
    let d = b.ok(&["group", "describe", "watchers"], "");
    assert!(d.contains("\tMembers: 0"), "{d}");
    assert_eq!(row(&d, &["live", "0"]), ["live", "0", "1", "1", "0", "-"]);
}
