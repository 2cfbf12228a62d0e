//! The `cfa` command: CLI parsing and wiring only; the work lives in the crates.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench_cmd;
mod broker_cmd;

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
    /// Benchmark an embedded broker (or --bootstrap ADDR) under a standard load through
    /// the client SDK; --engine benchmarks the storage engine alone.
    Bench(bench_cmd::BenchArgs),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Broker(args) => broker_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
    }
}
