//! In-memory storage with fault injection, for tests.
//!
//! Every file keeps two images: `current` (what reads see) and `durable` (what survives a
//! crash: the content at the last fdatasync). [`MemStorage::crash`] throws away what was
//! not synced, optionally keeping a torn prefix of it, exactly as a power cut would.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use super::{IoBuf, Storage, StorageFile};
use crate::constants::PAGE_BYTES;

#[derive(Debug, Default, Clone)]
struct MemFile {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Set once the file's directory entry is durable (create + sync_dir, or a rename).
    entry_durable: bool,
}

/// Faults to inject; each is checked on every matching call.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// The next N fdatasync calls fail with EIO.
    pub fail_fsync: u32,
    /// Writes (and allocations) that would grow the total bytes past this fail with ENOSPC.
    pub capacity_bytes: Option<u64>,
    /// Every write fails with EIO.
    pub fail_writes: bool,
}

#[derive(Debug, Default, Clone)]
struct Fs {
    files: BTreeMap<PathBuf, MemFile>,
    dirs: BTreeSet<PathBuf>,
    faults: Faults,
    fsync_count: u64,
    read_bytes: u64,
    /// Writes starting at or past this position wait until it is lifted.
    write_gate: Option<u64>,
    /// `remove_file` waits while this is set.
    removes_held: bool,
}

impl Fs {
    fn used_bytes(&self) -> u64 {
        self.files.values().map(|f| f.current.len() as u64).sum()
    }

    fn check_space(&self, path: &Path, new_len: u64) -> io::Result<()> {
        let Some(cap) = self.faults.capacity_bytes else {
            return Ok(());
        };
        let old = self.files.get(path).map_or(0, |f| f.current.len() as u64);
        if new_len > old && self.used_bytes() + (new_len - old) > cap {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }
}

/// A whole in-memory file system; clones share it.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    fs: Rc<RefCell<Fs>>,
    /// Fired when the write gate moves.
    gate_moved: Rc<event_listener::Event>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// An independent copy of the whole file system (for running many crash variants
    /// from one prepared state).
    pub fn deep_clone(&self) -> MemStorage {
        MemStorage {
            fs: Rc::new(RefCell::new(self.fs.borrow().clone())),
            gate_moved: Rc::default(),
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        self.fs.borrow_mut().faults = faults;
    }

    /// Bytes returned by every `read_at` so far (the device reads a fetch costs).
    pub fn read_bytes(&self) -> u64 {
        self.fs.borrow().read_bytes
    }

    pub fn fsync_count(&self) -> u64 {
        self.fs.borrow().fsync_count
    }

    /// Holds every write that starts at or past `pos` (in any file) in flight until the
    /// gate is lifted (`None`): for tests of what may overlap a slow write.
    pub fn hold_writes_from(&self, pos: Option<u64>) {
        self.fs.borrow_mut().write_gate = pos;
        self.gate_moved.notify(usize::MAX);
    }

    /// Holds every `remove_file` in flight until released: for tests of what may go on
    /// while a deletion is slow (an unlink that trims a discard-mounted disk).
    pub fn hold_removes(&self, held: bool) {
        self.fs.borrow_mut().removes_held = held;
        self.gate_moved.notify(usize::MAX);
    }

    async fn pass_remove_gate(&self) {
        let held = || self.fs.borrow().removes_held;
        while held() {
            let listener = self.gate_moved.listen();
            if held() {
                listener.await;
            }
        }
    }

    async fn pass_write_gate(&self, pos: u64) {
        let held = || self.fs.borrow().write_gate.is_some_and(|g| pos >= g);
        while held() {
            let listener = self.gate_moved.listen();
            if held() {
                listener.await;
            }
        }
    }

    /// Simulates a power cut: every file reverts to its durable image. For the file at
    /// `torn`, the unsynced bytes in `[durable_len, current_len)` are kept up to
    /// `keep_unsynced` bytes (a torn write); files whose entries were never made durable
    /// vanish.
    pub fn crash(&self, torn: Option<(&Path, usize)>) {
        let mut fs = self.fs.borrow_mut();
        fs.files.retain(|_, f| f.entry_durable);
        for (path, f) in fs.files.iter_mut() {
            let mut image = f.durable.clone();
            if let Some((p, keep)) = torn {
                if p == path {
                    image = torn_image(&f.durable, &f.current, keep);
                }
            }
            f.current = image.clone();
            f.durable = image;
        }
    }

    /// The current image of a file (for tests that corrupt bytes on purpose).
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        self.fs.borrow().files.get(path).map(|f| f.current.clone())
    }

    /// Overwrites a file's current and durable image (for tests: flip bits, cut tails).
    pub fn set_file_bytes(&self, path: &Path, bytes: Vec<u8>) {
        let mut fs = self.fs.borrow_mut();
        let f = fs.files.entry(path.to_owned()).or_default();
        f.current = bytes.clone();
        f.durable = bytes;
        f.entry_durable = true;
    }

    /// Paths of every file, sorted.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.fs.borrow().files.keys().cloned().collect()
    }

    fn with_file<T>(&self, path: &Path, f: impl FnOnce(&mut MemFile) -> T) -> io::Result<T> {
        let mut fs = self.fs.borrow_mut();
        let file = fs
            .files
            .get_mut(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(f(file))
    }
}

/// The image after a torn write: the durable bytes, overlaid with the first `keep`
/// bytes of what changed since (counted from the first differing byte).
fn torn_image(durable: &[u8], current: &[u8], keep: usize) -> Vec<u8> {
    let first_diff = durable
        .iter()
        .zip(current)
        .position(|(a, b)| a != b)
        .unwrap_or(durable.len().min(current.len()));
    let end = (first_diff + keep).min(current.len());
    let mut image = durable.to_vec();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[first_diff..end].copy_from_slice(&current[first_diff..end]);
    image
}

impl Storage for MemStorage {
    type File = MemFileHandle;

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        for anc in path.ancestors() {
            fs.dirs.insert(anc.to_owned());
        }
        Ok(())
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let fs = self.fs.borrow();
        if !fs.dirs.contains(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(fs
            .files
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    async fn list_subdirs(&self, path: &Path) -> io::Result<Vec<String>> {
        let fs = self.fs.borrow();
        Ok(fs
            .dirs
            .iter()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    async fn open(&self, path: &Path, create: bool) -> io::Result<MemFileHandle> {
        {
            let mut fs = self.fs.borrow_mut();
            if !fs.files.contains_key(path) {
                if !create {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                }
                fs.files.insert(path.to_owned(), MemFile::default());
            }
        }
        Ok(MemFileHandle {
            storage: self.clone(),
            path: path.to_owned(),
        })
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.pass_remove_gate().await;
        let mut fs = self.fs.borrow_mut();
        fs.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    // The renamed entry is durable only after a sync of the directory (a crash before it
    // loses the file under either name: the pessimistic reading of POSIX).
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let mut f = fs
            .files
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        f.entry_durable = false;
        fs.files.insert(to.to_owned(), f);
        Ok(())
    }

    async fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.files.retain(|p, _| !p.starts_with(path));
        fs.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        for (p, f) in fs.files.iter_mut() {
            if p.parent() == Some(path) {
                f.entry_durable = true;
            }
        }
        Ok(())
    }

    async fn write_small_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.check_space(path, data.len() as u64)?;
        if fs.faults.fail_writes {
            return Err(io::Error::other("injected write failure"));
        }
        let f = fs.files.entry(path.to_owned()).or_default();
        f.current = data.to_vec();
        f.durable = data.to_vec();
        f.entry_durable = true;
        Ok(())
    }

    async fn read_small_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.fs.borrow().files.get(path).map(|f| f.current.clone()))
    }
}

/// An aligned in-memory buffer.
pub struct MemBuf(Vec<u8>);

impl MemBuf {
    /// A buffer of `len` bytes (a page multiple) filled with garbage on purpose: a caller
    /// that forgets to fill a byte writes 0xA5 to the "disk", and the crash and recovery
    /// tests notice.
    pub fn garbage(len: usize) -> MemBuf {
        assert_eq!(len % PAGE_BYTES, 0, "direct I/O buffers are page multiples");
        MemBuf(vec![0xA5; len])
    }
}

impl Deref for MemBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for MemBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl IoBuf for MemBuf {
    fn truncate(&mut self, len: usize) {
        assert_eq!(len % PAGE_BYTES, 0, "direct I/O buffers are page multiples");
        assert!(len <= self.0.len(), "a buffer only shrinks");
        self.0.truncate(len);
    }
}

/// A handle to one in-memory file.
pub struct MemFileHandle {
    storage: MemStorage,
    path: PathBuf,
}

impl StorageFile for MemFileHandle {
    type Buf = MemBuf;

    fn alloc_buf(&self, len: usize) -> MemBuf {
        MemBuf::garbage(len)
    }

    async fn write_at(&self, buf: MemBuf, pos: u64) -> io::Result<usize> {
        assert_eq!(
            pos % PAGE_BYTES as u64,
            0,
            "direct I/O writes are page aligned"
        );
        self.storage.pass_write_gate(pos).await;
        let end = pos as usize + buf.len();
        {
            let fs = self.storage.fs.borrow();
            if fs.faults.fail_writes {
                return Err(io::Error::other("injected write failure"));
            }
            fs.check_space(&self.path, end as u64)?;
        }
        self.storage.with_file(&self.path, |f| {
            if f.current.len() < end {
                f.current.resize(end, 0);
            }
            f.current[pos as usize..end].copy_from_slice(&buf);
            buf.len()
        })
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        let bytes = self.storage.with_file(&self.path, |f| {
            let start = (pos as usize).min(f.current.len());
            let end = (start + len).min(f.current.len());
            Bytes::copy_from_slice(&f.current[start..end])
        })?;
        self.storage.fs.borrow_mut().read_bytes += bytes.len() as u64;
        Ok(bytes)
    }

    async fn fdatasync(&self) -> io::Result<()> {
        {
            let mut fs = self.storage.fs.borrow_mut();
            fs.fsync_count += 1;
            if fs.faults.fail_fsync > 0 {
                fs.faults.fail_fsync -= 1;
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
        }
        self.storage
            .with_file(&self.path, |f| f.durable = f.current.clone())
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        self.storage.fs.borrow().check_space(&self.path, len)?;
        self.storage.with_file(&self.path, |f| {
            if (f.current.len() as u64) < len {
                f.current.resize(len as usize, 0);
            }
        })
    }

    async fn zero_range(&self, len: u64) -> io::Result<()> {
        self.storage.with_file(&self.path, |f| {
            let end = (len as usize).min(f.current.len());
            f.current[..end].fill(0);
        })
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.storage
            .with_file(&self.path, |f| f.current.resize(len as usize, 0))
    }

    async fn size(&self) -> io::Result<u64> {
        self.storage
            .with_file(&self.path, |f| f.current.len() as u64)
    }

    async fn close(self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_image_keeps_prefix_of_change() {
        let durable = vec![1, 2, 3, 0, 0];
        let current = vec![1, 2, 3, 4, 5, 6];
        assert_eq!(torn_image(&durable, &current, 0), vec![1, 2, 3, 0, 0]);
        assert_eq!(torn_image(&durable, &current, 2), vec![1, 2, 3, 4, 5]);
        assert_eq!(torn_image(&durable, &current, 9), vec![1, 2, 3, 4, 5, 6]);
    }
}
