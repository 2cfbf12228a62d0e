//! A pass-through file layer that counts what the engine asks of the disk: write calls,
//! bytes written (padding rewrites and zero-fill included) and fdatasyncs with their
//! latency. The bench wraps the real storage with it; the engine does not know.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use cfa_engine::storage::observed::{IoObserver, Observed};
use cfa_engine::storage::Storage;
use hdrhistogram::Histogram;

use crate::report::latency_histogram;

/// What one shard's logs asked of their files.
#[derive(Debug, Clone)]
pub struct IoStats {
    pub write_calls: u64,
    /// Bytes handed to `write_at`, page padding and zero-fill included.
    pub written_bytes: u64,
    /// write_at latency in microseconds (submit to completion).
    pub write_histogram: Histogram<u64>,
    pub fdatasyncs: u64,
    /// fdatasync latency in microseconds, as the engine saw it.
    pub fdatasync_histogram: Histogram<u64>,
    /// Writes that carried their own sync (O_DSYNC), and their latency in microseconds.
    pub durable_writes: u64,
    pub durable_write_histogram: Histogram<u64>,
    pub read_calls: u64,
    /// Bytes returned by `read_at`.
    pub read_bytes: u64,
}

impl Default for IoStats {
    fn default() -> Self {
        IoStats {
            write_calls: 0,
            written_bytes: 0,
            write_histogram: latency_histogram(),
            fdatasyncs: 0,
            fdatasync_histogram: latency_histogram(),
            durable_writes: 0,
            durable_write_histogram: latency_histogram(),
            read_calls: 0,
            read_bytes: 0,
        }
    }
}

/// Shared counters of one shard (single-threaded, like the logs that fill them).
pub type IoStatsRef = Rc<RefCell<IoStats>>;

/// Counts into an [`IoStats`] (successful calls only: the bench fails on an I/O error).
#[derive(Clone)]
pub struct Counter(IoStatsRef);

impl IoObserver for Counter {
    fn on_write(&self, res: &io::Result<usize>, took: Duration) {
        if let Ok(n) = res {
            let mut s = self.0.borrow_mut();
            s.write_calls += 1;
            s.written_bytes += *n as u64;
            s.write_histogram.saturating_record(micros(took));
        }
    }

    fn on_durable_write(&self, res: &io::Result<usize>, took: Duration) {
        if let Ok(n) = res {
            let mut s = self.0.borrow_mut();
            s.durable_writes += 1;
            s.written_bytes += *n as u64;
            s.durable_write_histogram.saturating_record(micros(took));
        }
    }

    fn on_fdatasync(&self, res: &io::Result<()>, took: Duration) {
        if res.is_ok() {
            let mut s = self.0.borrow_mut();
            s.fdatasyncs += 1;
            s.fdatasync_histogram.saturating_record(micros(took));
        }
    }

    fn on_read(&self, res: &io::Result<Bytes>) {
        if let Ok(bytes) = res {
            let mut s = self.0.borrow_mut();
            s.read_calls += 1;
            s.read_bytes += bytes.len() as u64;
        }
    }
}

/// A storage whose files count into `stats`.
pub type CountingStorage<S> = Observed<S, Counter>;

pub fn counting<S: Storage>(inner: S, stats: IoStatsRef) -> CountingStorage<S> {
    Observed::new(inner, Counter(stats))
}

fn micros(took: Duration) -> u64 {
    u64::try_from(took.as_micros().max(1)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfa_engine::storage::mem::MemStorage;
    use cfa_engine::storage::StorageFile;
    use std::path::Path;

    #[test]
    fn counts_writes_and_syncs() {
        let stats = IoStatsRef::default();
        let storage = counting(MemStorage::new(), stats.clone());
        futures_lite::future::block_on(async {
            let f = storage.open(Path::new("/d/f"), true).await.expect("open");
            let mut buf = f.alloc_buf(4096);
            buf.fill(7);
            f.write_at(buf, 0).await.expect("write");
            f.fdatasync().await.expect("sync");
        });
        let s = stats.borrow();
        assert_eq!((s.write_calls, s.written_bytes, s.fdatasyncs), (1, 4096, 1));
        assert_eq!(s.fdatasync_histogram.len(), 1);
        assert_eq!(s.write_histogram.len(), 1);
    }
}
