//! A pass-through file layer that reports what the engine asks of the disk to an
//! [`IoObserver`]: the bench counts calls and bytes with it, the broker times its syncs
//! for metrics. The engine itself never knows it is observed.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Storage, StorageFile};

/// Hooks called after each observed file operation, with its result and how long it
/// took; every hook ignores the call by default.
pub trait IoObserver: Clone + 'static {
    fn on_write(&self, _result: &io::Result<usize>, _took: Duration) {}
    /// A write that carried its own sync (`write_durable_at`).
    fn on_durable_write(&self, _result: &io::Result<usize>, _took: Duration) {}
    fn on_fdatasync(&self, _result: &io::Result<()>, _took: Duration) {}
    fn on_read(&self, _result: &io::Result<Bytes>) {}
}

/// Wraps a [`Storage`]; every file it opens reports to `observer`.
#[derive(Debug, Clone)]
pub struct Observed<S, O> {
    inner: S,
    observer: O,
}

impl<S: Storage, O: IoObserver> Observed<S, O> {
    pub fn new(inner: S, observer: O) -> Self {
        Observed { inner, observer }
    }
}

impl<S: Storage, O: IoObserver> Storage for Observed<S, O> {
    type File = ObservedFile<S::File, O>;

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
        Ok(ObservedFile {
            inner,
            observer: self.observer.clone(),
        })
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path).await
    }

    async fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to).await
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

/// One observed file.
pub struct ObservedFile<F, O> {
    inner: F,
    observer: O,
}

impl<F: StorageFile, O: IoObserver> StorageFile for ObservedFile<F, O> {
    type Buf = F::Buf;

    fn alloc_buf(&self, len: usize) -> Self::Buf {
        self.inner.alloc_buf(len)
    }

    async fn write_at(&self, buf: Self::Buf, pos: u64) -> io::Result<usize> {
        let start = Instant::now();
        let res = self.inner.write_at(buf, pos).await;
        self.observer.on_write(&res, start.elapsed());
        res
    }

    async fn write_durable_at(&self, buf: Self::Buf, pos: u64) -> io::Result<usize> {
        let start = Instant::now();
        let res = self.inner.write_durable_at(buf, pos).await;
        self.observer.on_durable_write(&res, start.elapsed());
        res
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        let res = self.inner.read_at(pos, len).await;
        self.observer.on_read(&res);
        res
    }

    async fn fdatasync(&self) -> io::Result<()> {
        let start = Instant::now();
        let res = self.inner.fdatasync().await;
        self.observer.on_fdatasync(&res, start.elapsed());
        res
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len).await
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len).await
    }

    async fn zero_range(&self, len: u64) -> io::Result<()> {
        self.inner.zero_range(len).await
    }

    async fn size(&self) -> io::Result<u64> {
        self.inner.size().await
    }

    async fn close(self) -> io::Result<()> {
        self.inner.close().await
    }
}
