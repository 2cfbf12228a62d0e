//! The broker: one glommio executor per shard, each pinned to a core, each accepting
//! connections on the same address (SO_REUSEPORT) and owning a share of the partitions.
//! See ARCHITECTURE.md for the ownership rules and docs/format.md for the wire format.

mod admin;
pub mod config;
mod conn;
mod groups;
mod handlers;
pub mod idempotence;
pub mod metrics;
pub mod producer_state;
mod retention;
mod shard;
mod slot;
pub mod topics;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use cfa_engine::storage::glommio_fs::check_memlock;
use cfa_engine::{ClockRef, LogError, SystemClock};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

pub use config::{BrokerConfig, BrokerTuning, Profile};
pub use shard::owner_shard;

use crate::constants::{
    MESH_CHANNEL_CAPACITY, OFFSETS_TOPIC_PARTITIONS, OFFSETS_TOPIC_SEGMENT_BYTES,
};
use metrics::{Metrics, MetricsServer};
use shard::{Advertised, Shard, ShardMsg};
use topics::{TopicMeta, OFFSETS_TOPIC};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Memlock(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Log(#[from] LogError),
    #[error("shard executor: {0}")]
    Executor(String),
}

/// Starts brokers.
pub struct Broker;

/// A running broker.
pub struct BrokerHandle {
    addr: SocketAddr,
    /// Each shard's own listener port, by shard (empty without shard listeners).
    shard_ports: Arc<[u16]>,
    stops: Vec<flume::Sender<()>>,
    joins: Vec<ExecutorJoinHandle<Result<(), ServerError>>>,
    /// The metrics endpoint, stopped once every shard has (dropping it joins its thread).
    metrics: Option<MetricsServer>,
    /// The counters themselves, for an embedding program (the bench) to read directly.
    registry: Arc<Metrics>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

impl Broker {
    /// Validates the config, recovers the data dir and starts every shard; returns once
    /// all of them listen.
    pub fn start(mut config: BrokerConfig) -> Result<BrokerHandle, ServerError> {
        config.validate()?;
        check_memlock(config.io_memory_bytes, config.shards).map_err(ServerError::Memlock)?;
        cfa_engine::malloc_tuning::keep_freed_memory();
        std::fs::create_dir_all(&config.data_dir).map_err(io(format!(
            "creating data dir {}",
            config.data_dir.display()
        )))?;
        // Absolute from here on: glommio's directory sync failed (EBADF) on relative paths.
        config.data_dir = std::fs::canonicalize(&config.data_dir).map_err(io(format!(
            "resolving data dir {}",
            config.data_dir.display()
        )))?;
        let mut table = topics::load(&config.data_dir).map_err(io("reading topics.json"))?;
        if table.get(OFFSETS_TOPIC).is_none() {
            let meta = offsets_topic(&config)?;
            table
                .insert(meta)
                .map_err(|e| ServerError::Config(e.message))?;
            topics::store(&config.data_dir, &table).map_err(io("writing topics.json"))?;
        }
        let metrics = Arc::new(Metrics::new(config.shards));
        // Bound before any shard starts: a taken port fails the start with nothing to undo
        // (an early return below drops the server, which stops its thread).
        let metrics_server = config
            .metrics_listen
            .map(|addr| MetricsServer::start(addr, metrics.clone()))
            .transpose()?;
        let mesh = MeshBuilder::<ShardMsg, _>::full(config.shards, MESH_CHANNEL_CAPACITY);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (ready_tx, ready_rx) = flume::bounded::<Result<SocketAddr, ServerError>>(config.shards);
        let mut stops = Vec::with_capacity(config.shards);
        let mut joins = Vec::with_capacity(config.shards);
        let mut addr = config.listen;
        let (own_listeners, shard_ports) = bind_shard_listeners(&config)?;
        let mut own_listeners = own_listeners.into_iter();
        for id in 0..config.shards {
            let (stop_tx, stop_rx) = flume::bounded::<()>(1);
            stops.push(stop_tx);
            let (config, table, mesh, ready, metrics) = (
                config.clone(),
                table.clone(),
                mesh.clone(),
                ready_tx.clone(),
                metrics.clone(),
            );
            let listen = Listen {
                shared: addr,
                own: own_listeners.next(),
                shard_ports: shard_ports.clone(),
            };
            let handle = LocalExecutorBuilder::new(Placement::Fixed(id % cores))
                .name(&format!("cfa-shard-{id}"))
                .io_memory(config.io_memory_bytes)
                .spawn(move || async move {
                    run_shard(id, config, table, mesh, listen, ready, stop_rx, metrics).await
                })
                .map_err(|e| ServerError::Executor(e.to_string()))?;
            joins.push(handle);
            // Shard 0 binds first, so that a port-0 listen address becomes a real port
            // the other shards can share.
            if id == 0 {
                match ready_rx.recv() {
                    Ok(Ok(a)) => addr = a,
                    Ok(Err(e)) => return Err(fail(stops, joins, e)),
                    Err(_) => {
                        return Err(ServerError::Executor("shard 0 died while starting".into()))
                    }
                }
            }
        }
        // Every shard (shard 0 once more) reports when its partitions are open and it
        // serves: only then does `start` return.
        for _ in 0..config.shards {
            match ready_rx.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(fail(stops, joins, e)),
                Err(_) => return Err(ServerError::Executor("a shard died while starting".into())),
            }
        }
        tracing::info!(%addr, shards = config.shards, ?shard_ports, data_dir = %config.data_dir.display(), "broker listening");
        Ok(BrokerHandle {
            addr,
            shard_ports,
            stops,
            joins,
            metrics: metrics_server,
            registry: metrics,
        })
    }
}

/// Where a shard listens: the address all shards share (SO_REUSEPORT: the kernel spreads
/// connections), and with `shard_listeners` one of its own, whose port metadata lists.
struct Listen {
    shared: SocketAddr,
    own: Option<std::net::TcpListener>,
    /// Every shard's own port, by shard (empty without shard listeners).
    shard_ports: Arc<[u16]>,
}

/// Each shard's own listener, bound before any shard starts: a taken port fails the start
/// with nothing to undo, and every shard can list all the ports from its first request.
fn bind_shard_listeners(
    config: &BrokerConfig,
) -> Result<(Vec<std::net::TcpListener>, Arc<[u16]>), ServerError> {
    if !config.has_shard_listeners() {
        return Ok((Vec::new(), Arc::from(Vec::new())));
    }
    let mut listeners = Vec::with_capacity(config.shards);
    let mut ports = Vec::with_capacity(config.shards);
    for shard in 0..config.shards {
        let addr = config.shard_listen(shard);
        let bind_err = |source| ServerError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        ports.push(listener.local_addr().map_err(bind_err)?.port());
        listeners.push(listener);
    }
    Ok((listeners, Arc::from(ports)))
}

fn offsets_topic(config: &BrokerConfig) -> Result<TopicMeta, ServerError> {
    let mut meta = TopicMeta::new(
        OFFSETS_TOPIC,
        Some(OFFSETS_TOPIC_PARTITIONS),
        None,
        &[],
        &config.log,
    )
    .map_err(|e| ServerError::Config(e.message))?;
    meta.configs.insert(
        "segment.bytes".into(),
        OFFSETS_TOPIC_SEGMENT_BYTES
            .max(u64::from(config.log.max_message_bytes) + 4096)
            .to_string(),
    );
    meta.log_config(&config.log)
        .map_err(|e| ServerError::Config(e.message))?;
    Ok(meta)
}

/// Stops what started and returns the error that stopped the start.
fn fail(
    stops: Vec<flume::Sender<()>>,
    joins: Vec<ExecutorJoinHandle<Result<(), ServerError>>>,
    e: ServerError,
) -> ServerError {
    for s in &stops {
        let _ = s.try_send(());
    }
    drop(stops);
    for j in joins {
        let _ = j.join();
    }
    e
}

impl BrokerHandle {
    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Each shard's own listener, by shard; empty without shard listeners.
    pub fn shard_addrs(&self) -> Vec<SocketAddr> {
        let ip = self.addr.ip();
        self.shard_ports
            .iter()
            .map(|&port| SocketAddr::new(ip, port))
            .collect()
    }

    /// The broker's counters (what the Prometheus endpoint serves), endpoint or not.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.registry.clone()
    }

    /// Where the Prometheus endpoint listens, if `metrics_listen` was set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// Graceful stop: every shard stops accepting, answers what it can, flushes, fsyncs and
    /// closes its partitions (the next start then has nothing to recover).
    pub fn shutdown(self) -> Result<(), ServerError> {
        for s in &self.stops {
            let _ = s.try_send(());
        }
        self.wait()
    }

    /// Blocks until every shard has stopped; the first error wins.
    pub fn wait(self) -> Result<(), ServerError> {
        let mut first = None;
        for j in self.joins {
            let res = j
                .join()
                .map_err(|e| ServerError::Executor(e.to_string()))
                .and_then(|r| r);
            if let Err(e) = res {
                first.get_or_insert(e);
            }
        }
        drop(self.metrics);
        first.map_or(Ok(()), Err)
    }

    /// A sender that stops the broker when sent to (for signal handlers).
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let stops = self.stops.clone();
        move || {
            for s in &stops {
                let _ = s.try_send(());
            }
        }
    }
}

// One parameter per thing a shard is handed at start; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
async fn run_shard(
    id: usize,
    config: BrokerConfig,
    table: topics::TopicTable,
    mesh: MeshBuilder<ShardMsg, glommio::channels::channel_mesh::Full>,
    listen: Listen,
    ready: flume::Sender<Result<SocketAddr, ServerError>>,
    stop: flume::Receiver<()>,
    metrics: Arc<Metrics>,
) -> Result<(), ServerError> {
    let Listen {
        shared: listen,
        own,
        shard_ports,
    } = listen;
    let listener = match glommio::net::TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            let err = ServerError::Bind {
                addr: listen,
                source: std::io::Error::other(e.to_string()),
            };
            let _ = ready.send(Err(ServerError::Bind {
                addr: listen,
                source: std::io::Error::other(e.to_string()),
            }));
            return Err(err);
        }
    };
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Executor(e.to_string()))?;
    if id == 0 {
        let _ = ready.send(Ok(addr));
    }
    let (senders, mut receivers) = mesh
        .join()
        .await
        .map_err(|e| ServerError::Executor(format!("joining the shard mesh: {e}")))?;
    let clock: ClockRef = Rc::new(SystemClock);
    let shard = Rc::new(Shard::new(
        id,
        config,
        clock,
        table.clone(),
        Some(senders),
        Advertised { addr, shard_ports },
        metrics,
    ));
    let opened = async {
        for meta in table.topics.values() {
            shard.open_topic(meta).await?;
        }
        Ok::<(), ServerError>(())
    }
    .await;
    if let Err(e) = opened {
        let msg = e.to_string();
        let _ = ready.send(Err(ServerError::Executor(msg.clone())));
        tracing::error!(shard = id, error = %msg, "shard failed to open its partitions");
        return Err(e);
    }
    if let Some(admin) = &shard.admin {
        if let Err(e) = admin.groups.start(&shard).await {
            let _ = ready.send(Err(ServerError::Executor(e.to_string())));
            return Err(e);
        }
    }
    // Only now serve the other shards: a request forwarded here before this shard opened
    // its partitions would be told "not on this broker" (seen right after restarts).
    for (_, stream) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = stream.recv().await {
                shard.on_message(msg).await;
            }
        })
        .detach();
    }
    let retention = glommio::spawn_local(retention::run(shard.clone()));
    let _ = ready.send(Ok(addr)); // shard 0 a second time: open and serving
    drop(ready);
    let own = own.map(|l| {
        use std::os::fd::{FromRawFd, IntoRawFd};
        // SAFETY: the descriptor is a bound, listening TCP socket that `into_raw_fd` gave
        // up, so the glommio listener is its only owner and closes it when dropped.
        let l = unsafe { glommio::net::TcpListener::from_raw_fd(l.into_raw_fd()) };
        let shard = shard.clone();
        glommio::spawn_local(async move { accept_forever(&shard, l).await })
    });
    accept_until_stopped(&shard, listener, stop).await;
    // A dropped task is cancelled: the shard's own listener closes with the shared one.
    drop(own);
    shard.shutting_down.set(true);
    if let Some(admin) = &shard.admin {
        admin.groups.stop().await;
    }
    // Retention ends before the partitions close (a pass in progress finishes first).
    shard.retention.stop();
    retention.await;
    shard.close_all().await
}

async fn accept_until_stopped(
    shard: &Rc<Shard>,
    listener: glommio::net::TcpListener,
    stop: flume::Receiver<()>,
) {
    use futures_lite::FutureExt;
    accept_forever(shard, listener)
        .or(async {
            let _ = stop.recv_async().await;
        })
        .await
}

async fn accept_forever(shard: &Rc<Shard>, listener: glommio::net::TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let shard = shard.clone();
                glommio::spawn_local(async move { conn::serve(shard, stream).await }).detach();
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
