//! A pass-through file layer that counts what the engine asks of the disk: write calls,
//! bytes written (padding rewrites and zero-fill included) and fdatasyncs with their
//! latency. The bench wraps the real storage with it; the engine does not know.

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use cfa_engine::storage::{Storage, StorageFile};
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

/// Wraps a [`Storage`] and counts into an [`IoStats`].
#[derive(Clone)]
pub struct CountingStorage<S> {
    inner: S,
    stats: IoStatsRef,
}

impl<S: Storage> CountingStorage<S> {
    pub fn new(inner: S, stats: IoStatsRef) -> Self {
        CountingStorage { inner, stats }
    }
}

impl<S: Storage> Storage for CountingStorage<S> {
    type File = CountingFile<S::File>;

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path).await
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path).await
    }

    async fn list_subdirs(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_subdirs(path).await
    }

    async fn open(&self, path: &Path, create: bool) -> io::Result<Self::File> {
        let inner = self.inner.open(path, create).await?;
        Ok(CountingFile {
            inner,
            stats: self.stats.clone(),
        })
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path).await
    }

    async fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path).await
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path).await
    }

    async fn write_small_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner.write_small_file(path, data).await
    }

    async fn read_small_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        self.inner.read_small_file(path).await
    }
}

/// One counted file.
pub struct CountingFile<F> {
    inner: F,
    stats: IoStatsRef,
}

impl<F: StorageFile> StorageFile for CountingFile<F> {
    type Buf = F::Buf;

    fn alloc_buf(&self, len: usize) -> Self::Buf {
        self.inner.alloc_buf(len)
    }

    async fn write_at(&self, buf: Self::Buf, pos: u64) -> io::Result<usize> {
        let start = Instant::now();
        let n = self.inner.write_at(buf, pos).await?;
        let us = micros_since(start);
        let mut s = self.stats.borrow_mut();
        s.write_calls += 1;
        s.written_bytes += n as u64;
        s.write_histogram.saturating_record(us);
        Ok(n)
    }

    async fn write_durable_at(&self, buf: Self::Buf, pos: u64) -> io::Result<usize> {
        let start = Instant::now();
        let n = self.inner.write_durable_at(buf, pos).await?;
        let us = micros_since(start);
        let mut s = self.stats.borrow_mut();
        s.durable_writes += 1;
        s.written_bytes += n as u64;
        s.durable_write_histogram.saturating_record(us);
        Ok(n)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        let bytes = self.inner.read_at(pos, len).await?;
        let mut s = self.stats.borrow_mut();
        s.read_calls += 1;
        s.read_bytes += bytes.len() as u64;
        Ok(bytes)
    }

    async fn fdatasync(&self) -> io::Result<()> {
        let start = Instant::now();
        self.inner.fdatasync().await?;
        let us = micros_since(start);
        let mut s = self.stats.borrow_mut();
        s.fdatasyncs += 1;
        s.fdatasync_histogram.saturating_record(us);
        Ok(())
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len).await
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len).await
    }

    async fn size(&self) -> io::Result<u64> {
        self.inner.size().await
    }

    async fn close(self) -> io::Result<()> {
        self.inner.close().await
    }
}

fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros().max(1)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfa_engine::storage::mem::MemStorage;

    #[test]
    fn counts_writes_and_syncs() {
        let stats = IoStatsRef::default();
        let storage = CountingStorage::new(MemStorage::new(), stats.clone());
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
