//! A pass-through file layer that times what the engine waits on for durability:
//! `fdatasync` and `write_durable_at` (a write that carries its own sync). The broker
//! wraps its storage with it; the engine does not know.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use cfa_engine::storage::observed::{IoObserver, Observed};
use cfa_engine::storage::Storage;

use super::ShardMetrics;

/// Times every sync (fdatasync, durable write) into a shard's fsync histogram, whether it
/// succeeds or not: a sync that fails after 30 s is what an operator most needs to see.
#[derive(Clone)]
pub struct SyncTimer(Arc<ShardMetrics>);

impl IoObserver for SyncTimer {
    fn on_durable_write(&self, _res: &io::Result<usize>, took: Duration) {
        self.0.fsync_done(took);
    }

    fn on_fdatasync(&self, _res: &io::Result<()>, took: Duration) {
        self.0.fsync_done(took);
    }
}

/// The broker's storage: `inner` with its syncs timed into the shard's metrics.
pub type MeteredStorage<S> = Observed<S, SyncTimer>;

pub fn metered<S: Storage>(inner: S, shard: Arc<ShardMetrics>) -> MeteredStorage<S> {
    Observed::new(inner, SyncTimer(shard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::metrics::Metrics;
    use cfa_engine::storage::mem::MemStorage;
    use cfa_engine::storage::StorageFile;
    use std::path::Path;

    #[test]
    fn times_syncs_and_durable_writes_only() {
        let metrics = Metrics::new(1);
        let storage = metered(MemStorage::new(), metrics.shard(0).clone());
        futures_lite::future::block_on(async {
            let f = storage.open(Path::new("/d/f"), true).await.expect("open");
            let mut buf = f.alloc_buf(4096);
            buf.fill(7);
            f.write_at(buf, 0).await.expect("write");
            assert_eq!(metrics.shard(0).fsync.snapshot().count(), 0);
            f.fdatasync().await.expect("sync");
            let mut buf = f.alloc_buf(4096);
            buf.fill(8);
            f.write_durable_at(buf, 4096).await.expect("durable write");
            assert_eq!(f.size().await.expect("size"), 8192);
        });
        assert_eq!(metrics.shard(0).fsync.snapshot().count(), 2);
        assert!(metrics
            .render()
            .contains("cfa_fsync_duration_seconds_count{shard=\"0\"} 2\n"));
    }
}
