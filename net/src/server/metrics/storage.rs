//! A pass-through file layer that times what the engine waits on for durability:
//! `fdatasync` and `write_durable_at` (a write that carries its own sync). The broker
//! wraps its storage with it; the engine does not know.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cfa_engine::storage::{Storage, StorageFile};

use super::ShardMetrics;

/// Wraps a [`Storage`] and records sync latencies into a shard's metrics.
#[derive(Clone)]
pub struct MeteredStorage<S> {
    inner: S,
    shard: Arc<ShardMetrics>,
}

impl<S: Storage> MeteredStorage<S> {
    pub fn new(inner: S, shard: Arc<ShardMetrics>) -> Self {
        MeteredStorage { inner, shard }
    }
}

impl<S: Storage> Storage for MeteredStorage<S> {
    type File = MeteredFile<S::File>;

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
        Ok(MeteredFile {
            inner,
            shard: self.shard.clone(),
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

/// One metered file.
pub struct MeteredFile<F> {
    inner: F,
    shard: Arc<ShardMetrics>,
}

impl<F: StorageFile> StorageFile for MeteredFile<F> {
    type Buf = F::Buf;

    fn alloc_buf(&self, len: usize) -> Self::Buf {
        self.inner.alloc_buf(len)
    }

    async fn write_at(&self, buf: Self::Buf, pos: u64) -> io::Result<usize> {
        self.inner.write_at(buf, pos).await
    }

    /// Timed whether it succeeds or not: a sync that fails after 30 s is what an operator
    /// most needs to see.
    async fn write_durable_at(&self, buf: Self::Buf, pos: u64) -> io::Result<usize> {
        let start = Instant::now();
        let res = self.inner.write_durable_at(buf, pos).await;
        self.shard.fsync_done(start.elapsed());
        res
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        self.inner.read_at(pos, len).await
    }

    async fn fdatasync(&self) -> io::Result<()> {
        let start = Instant::now();
        let res = self.inner.fdatasync().await;
        self.shard.fsync_done(start.elapsed());
        res
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::metrics::Metrics;
    use cfa_engine::storage::mem::MemStorage;

    #[test]
    fn times_syncs_and_durable_writes_only() {
        let metrics = Metrics::new(1);
        let storage = MeteredStorage::new(MemStorage::new(), metrics.shard(0).clone());
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
