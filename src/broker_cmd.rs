//! `cfa broker`: a tuning profile, command-line overrides, then run until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use cfa_net::server::{Broker, BrokerConfig, Profile};

#[derive(clap::Args)]
pub struct BrokerArgs {
    /// Tuning profile (TOML): [broker] and [log] sections, every key documented in it.
    #[arg(long, default_value = "tuning/default.toml")]
    config: PathBuf,
    /// Data directory (overrides broker.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen address IP:port (overrides broker.listen).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// This broker's node id (overrides broker.node_id).
    #[arg(long)]
    node_id: Option<u32>,
    /// Shards, one per core by default (overrides broker.shards).
    #[arg(long)]
    shards: Option<usize>,
    /// Prometheus endpoint IP:port (overrides broker.metrics_listen).
    #[arg(long)]
    metrics: Option<SocketAddr>,
}

fn config(args: &BrokerArgs) -> Result<BrokerConfig> {
    let profile = Profile::load(&args.config)?;
    let mut c = BrokerConfig::from_profile(&profile)?;
    if let Some(d) = &args.data_dir {
        c.data_dir = d.clone();
    }
    if let Some(a) = args.listen {
        c.listen = a;
    }
    if let Some(n) = args.node_id {
        c.node_id = n;
    }
    if let Some(n) = args.shards {
        c.shards = n;
    }
    if let Some(m) = args.metrics {
        c.metrics_listen = Some(m);
    }
    c.validate()?;
    Ok(c)
}

pub fn run(args: BrokerArgs) -> Result<()> {
    let config = config(&args)?;
    let data_dir = config.data_dir.clone();
    let broker = Broker::start(config).context("broker failed to start")?;
    let shard_ports: Vec<String> = broker
        .shard_addrs()
        .iter()
        .map(|a| a.port().to_string())
        .collect();
    let shards = match shard_ports.is_empty() {
        true => String::new(),
        false => format!("; shard ports {}", shard_ports.join(", ")),
    };
    eprintln!(
        "cfa broker listening on {} (data in {}{shards}); SIGTERM or Ctrl-C stops it cleanly",
        broker.local_addr(),
        data_dir.display()
    );
    let stop = broker.stopper();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("installing signal handlers")?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            eprintln!("cfa broker: signal {sig}, shutting down");
            stop();
        }
    });
    broker.wait().context("broker stopped with an error")?;
    eprintln!("cfa broker: stopped cleanly");
    Ok(())
}
