//! The `cfa` command: CLI parsing and wiring only; the work lives in the crates.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: records are allocated on one thread (the sender's
/// caller, a connection's reader) and freed on another (the sender, the writer), and
/// glibc's cross-thread frees and consolidation took ~8% of the CPU of a max-rate run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench_cmd;
mod bench_compare;
mod broker_cmd;
mod client_cmd;
mod consume_cmd;
mod group_cmd;
mod produce_cmd;
mod topic_cmd;

#[derive(Parser)]
#[command(name = "cfa", version, about = "cfa: an event-streaming broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker until SIGTERM or SIGINT (then it flushes, fsyncs and closes).
    Broker(broker_cmd::BrokerArgs),
    /// Run workloads (bench/workloads/*.toml) on an embedded broker (or --bootstrap
    /// ADDR) through the client SDK; `bench compare` adds the baselines and the machine's
    /// limits; --engine benchmarks the storage engine alone.
    Bench(Box<bench_cmd::BenchArgs>),
    /// Create, list, describe or delete topics.
    Topic(topic_cmd::TopicArgs),
    /// Send stdin to a topic, one record per line.
    Produce(produce_cmd::ProduceArgs),
    /// Print a topic's records, one value per line.
    Consume(consume_cmd::ConsumeArgs),
    /// List consumer groups, or describe one: members, committed offsets, lag.
    Group(group_cmd::GroupArgs),
}

/// Exit code 0 on success; on failure one line on stderr naming the cause, and 1.
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    disable_transparent_huge_pages();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cfa: {}", client_cmd::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Transparent huge pages off for this process, as the JVM (and so Kafka) runs by
/// default. mimalloc asks for huge pages (`madvise`) and later returns parts of them to
/// the kernel when they fall idle (its purge); the next touch of such a part faults in
/// and zeroes a whole 2 MiB page again. In a 1,000-partition max-rate run that zeroing
/// (`clear_page_erms`) was 22% of all CPU; without THP 0.4%, and the run went from 508k
/// to 751k records/s (4 interleaved pairs, all won; max-throughput-1kb +4%, 4 of 5).
/// The kernel checks the flag at every fault, so memory mapped before this call (the
/// allocator's first arena) is covered too.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag on this
    // process's memory map; no memory is passed to the kernel.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not turn transparent huge pages off"
        );
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Broker(args) => broker_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(*args),
        Command::Topic(args) => topic_cmd::run(args),
        Command::Produce(args) => produce_cmd::run(args),
        Command::Consume(args) => consume_cmd::run(args),
        Command::Group(args) => group_cmd::run(args),
    }
}
