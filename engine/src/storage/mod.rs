//! The file layer the engine writes through: a small trait of our own.
//!
//! Two implementations: [`glommio_fs::GlommioStorage`] (io_uring, O_DIRECT, the real thing)
//! and [`mem::MemStorage`] (in memory, with fault injection: dropped unsynced writes, torn
//! tails, failing fsync, ENOSPC). Moving to another io_uring runtime touches only this module.
//!
//! The futures are `!Send` on purpose: a partition is owned by one shard (thread) and its
//! files never leave it.

pub mod glommio_fs;
pub mod mem;
pub mod observed;

use std::io;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// A buffer that can be handed to [`StorageFile::write_at`]: page aligned, page-multiple long.
pub trait IoBuf: Deref<Target = [u8]> + DerefMut {
    /// Shortens the buffer to its first `len` bytes (a page multiple, at most its length),
    /// so a write of it writes only those.
    fn truncate(&mut self, len: usize);
}

/// Directory-level operations and opening files.
#[allow(async_fn_in_trait)] // single-threaded by design: no Send bound wanted
pub trait Storage: Clone + 'static {
    type File: StorageFile;

    async fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// File names (not paths) in a directory, in no particular order.
    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Subdirectory names of a directory.
    async fn list_subdirs(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Opens a file for direct I/O reads and writes, creating it if `create`.
    async fn open(&self, path: &Path, create: bool) -> io::Result<Self::File>;
    async fn remove_file(&self, path: &Path) -> io::Result<()>;
    async fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Renames a file (replacing `to`); durable once its directory is synced.
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created, removed files) durable.
    async fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Replaces a small file atomically and durably (write temp, fsync, rename, sync dir).
    async fn write_small_file(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Reads a whole small file; `None` if it does not exist.
    async fn read_small_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
}

/// One open segment file.
#[allow(async_fn_in_trait)]
pub trait StorageFile: 'static {
    type Buf: IoBuf;

    /// Allocates an aligned buffer of `len` bytes (`len` a multiple of the page size).
    /// Its contents are unspecified: the caller writes every byte before using it.
    fn alloc_buf(&self, len: usize) -> Self::Buf;
    /// Writes the whole buffer at `pos` (page aligned). Returns the bytes written.
    async fn write_at(&self, buf: Self::Buf, pos: u64) -> io::Result<usize>;
    /// Reads up to `len` bytes at any `pos`; shorter at end of file.
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes>;
    async fn fdatasync(&self) -> io::Result<()>;
    /// Writes the whole buffer at `pos` and returns once those bytes are durable, as
    /// `write_at` then `fdatasync` would, but in one round trip where the backend can
    /// (O_DSYNC: the kernel syncs as part of the write). Use it only when nothing else
    /// written to the file is waiting for an fdatasync.
    async fn write_durable_at(&self, buf: Self::Buf, pos: u64) -> io::Result<usize> {
        let n = self.write_at(buf, pos).await?;
        self.fdatasync().await?;
        Ok(n)
    }
    /// Reserves blocks up to `len` bytes and sets the file size to it (fallocate).
    async fn allocate(&self, len: u64) -> io::Result<()>;
    async fn truncate(&self, len: u64) -> io::Result<()>;
    /// Makes bytes `[0, len)` read as zeros while their blocks stay allocated (ext4's
    /// FALLOC_FL_ZERO_RANGE: extents marked unwritten, nothing freed, nothing trimmed).
    /// Durable after an fdatasync.
    async fn zero_range(&self, len: u64) -> io::Result<()>;
    async fn size(&self) -> io::Result<u64>;
    async fn close(self) -> io::Result<()>;
}

/// Joins a directory and a file name.
pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
