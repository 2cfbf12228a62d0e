//! Retention through the broker: each shard deletes the whole sealed segments of its
//! partitions that fall past retention.ms / retention.bytes
//! ([`cfa_engine::PartitionLog::enforce_retention`]).
//!
//! One task per shard, with at most one timer: a full sweep every
//! `retention_check_interval_ms` (Kafka's log.retention.check.interval.ms), and in between
//! a sweep of just the partitions whose active segment rolled (a roll is when a segment
//! becomes deletable, so space comes back without waiting for the next full sweep). The
//! task ends when the shard stops, before the partitions close.
//!
//! `__consumer_offsets` is never trimmed: the group coordinator rebuilds committed offsets
//! by replaying it from its start, and without compaction deleting a segment would lose
//! the offsets of every group that last committed in it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cfa_engine::StopSignal;
use event_listener::Event;
use futures_lite::FutureExt;

use crate::server::shard::{Partition, Shard};
use crate::server::topics::OFFSETS_TOPIC;

/// The shard's retention task controls.
#[derive(Debug, Default)]
pub(crate) struct Retention {
    stop: StopSignal,
    /// Fired when a partition of this shard rolled its active segment.
    rolled: Event,
    /// Some partition rolled since the last sweep (`Partition::retention_due` says which).
    any_rolled: Cell<bool>,
}

impl Retention {
    /// Marks `part` for a retention check soon (its active segment rolled).
    pub fn rolled(&self, part: &Partition) {
        part.retention_due.set(true);
        self.any_rolled.set(true);
        self.rolled.notify(1);
    }

    /// Ends the task (at shutdown); await its handle before closing partitions.
    pub fn stop(&self) {
        self.stop.stop();
    }
}

/// The shard's retention task: returns once `shard.retention.stop()` is called.
pub(crate) async fn run(shard: Rc<Shard>) {
    let r = &shard.retention;
    let interval = Duration::from_millis(shard.config.retention_check_interval_ms);
    let mut next_full = Instant::now() + interval;
    loop {
        let stopping = r.stop.listen();
        let rolled = r.rolled.listen();
        if r.stop.is_stopped() {
            return;
        }
        let now = Instant::now();
        if now >= next_full {
            sweep(&shard, false).await;
            next_full = Instant::now() + interval;
        } else if r.any_rolled.replace(false) {
            sweep(&shard, true).await;
        } else {
            let wake = async {
                stopping.await;
            }
            .or(async {
                rolled.await;
            });
            glommio::timer::sleep(next_full - now).or(wake).await;
        }
    }
}

/// Applies retention to every partition of the shard, or only to those that rolled.
async fn sweep(shard: &Shard, only_rolled: bool) {
    let parts: Vec<Rc<Partition>> = shard
        .partitions
        .borrow()
        .iter()
        .filter(|(id, p)| id.topic != OFFSETS_TOPIC && (!only_rolled || p.retention_due.get()))
        .map(|(_, p)| p.clone())
        .collect();
    for part in parts {
        if shard.retention.stop.is_stopped() {
            return;
        }
        part.retention_due.set(false);
        enforce(&part).await;
    }
}

/// Deletes what retention allows from one partition, unless it is closed or closing (the
/// close waits for a retention pass in progress: both hold `Partition::lifecycle`).
pub(crate) async fn enforce(part: &Partition) {
    let closed = part.lifecycle.lock().await;
    if *closed {
        return;
    }
    match part.log.enforce_retention().await {
        Ok(0) => {}
        Ok(_) => part.metrics.set_offsets(&part.log.offsets()),
        Err(e) => {
            tracing::error!(partition = %part.log.dir().display(), error = %e, "retention failed");
        }
    }
}
