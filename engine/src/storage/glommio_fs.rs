//! The real file layer: glommio's `DmaFile` (O_DIRECT, io_uring). Must run inside a
//! glommio executor.

use std::io;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

use super::{IoBuf, Storage, StorageFile};
use crate::constants::PAGE_BYTES;

/// Storage on the local file system through glommio.
#[derive(Debug, Clone, Default)]
pub struct GlommioStorage;

fn to_io(e: glommio::GlommioError<()>) -> io::Error {
    io::Error::from(e)
}

impl Storage for GlommioStorage {
    type File = GlommioFile;

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        // Directory creation is rare (topic creation) and cheap; std is fine here.
        std::fs::create_dir_all(path)
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        list(path, false)
    }

    async fn list_subdirs(&self, path: &Path) -> io::Result<Vec<String>> {
        list(path, true)
    }

    async fn open(&self, path: &Path, create: bool) -> io::Result<GlommioFile> {
        if let Some(dir) = path.parent() {
            probe_iopoll_once(dir).await?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await
            .map_err(to_io)?;
        // A second descriptor with O_DSYNC for `write_durable_at`: glommio submits no
        // linked write + fdatasync, and two round trips through the executor measured
        // 295/414 us (p50/p99) per 64 KiB cycle against 220/319 us for one O_DSYNC write.
        let dsync = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .dma_open(path)
            .await
            .map_err(to_io)?;
        Ok(GlommioFile {
            file: Rc::new(file),
            dsync: Rc::new(dsync),
        })
    }

    // Unlinking frees the file's blocks, and with online discard (`-o discard`) the kernel
    // trims them inside the syscall: 0.2 s for a 1 GiB segment on this project's disk. On
    // the executor thread that stalled every partition of the shard, so these run on
    // glommio's blocking thread (one per executor) while the shard goes on.
    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        glommio::executor()
            .spawn_blocking(move || std::fs::remove_file(path))
            .await
    }

    // A metadata operation, but one that can wait for the journal: off the shard thread.
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        glommio::executor()
            .spawn_blocking(move || std::fs::rename(from, to))
            .await
    }

    async fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        glommio::executor()
            .spawn_blocking(move || std::fs::remove_dir_all(path))
            .await
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let dir = glommio::io::Directory::open(path).await.map_err(to_io)?;
        dir.sync().await.map_err(to_io)?;
        dir.close().await.map_err(to_io)
    }

    async fn write_small_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        // Small metadata files (indexes at seal, checkpoints) use buffered I/O: temp file,
        // fsync, rename, fsync the directory. Each fsync waits for the disk (ftrace: up to
        // 4.3 ms each, three per file), and a segment seals while its partition takes
        // appends, so they run on glommio's blocking thread, not the shard's.
        let (path, data) = (path.to_path_buf(), data.to_vec());
        glommio::executor()
            .spawn_blocking(move || write_replacing(&path, &data))
            .await
    }

    async fn read_small_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

thread_local! {
    /// Devices whose iopoll support glommio has probed on this thread, with real data.
    static PROBED_DEVICES: std::cell::RefCell<std::collections::HashSet<u64>> = Default::default();
}

/// glommio decides, once per thread and device, whether reads go to its IOPOLL ring by
/// reading the first DMA file opened there. If that file is empty (a new segment), the
/// probe read hits EOF, "succeeds", and every later read on the device fails with
/// EOPNOTSUPP on devices without poll queues (virtio, most cloud disks). So before the
/// first open on a device we open a probe file that holds one page of data.
async fn probe_iopoll_once(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir)?.dev();
    if PROBED_DEVICES.with(|p| p.borrow().contains(&dev)) {
        return Ok(());
    }
    let probe = dir.join(".cfa-iopoll-probe");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&probe)?;
        f.write_all(&[0u8; PAGE_BYTES])?;
        f.sync_all()?;
    }
    let opened = OpenOptions::new()
        .read(true)
        .dma_open(&probe)
        .await
        .map_err(to_io);
    let _ = std::fs::remove_file(&probe);
    opened?.close().await.map_err(to_io)?;
    PROBED_DEVICES.with(|p| p.borrow_mut().insert(dev));
    Ok(())
}

fn list(path: &Path, dirs: bool) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() == dirs {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// glommio's DMA buffer (from the executor's io_memory pool, or the heap when the pool is
/// exhausted or could not be registered).
pub struct GlommioBuf(DmaBuffer);

impl Deref for GlommioBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl DerefMut for GlommioBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_bytes_mut()
    }
}

impl IoBuf for GlommioBuf {
    fn truncate(&mut self, len: usize) {
        assert_eq!(len % PAGE_BYTES, 0, "direct I/O buffers are page multiples");
        self.0.trim_to_size(len);
    }
}

/// One O_DIRECT file, open twice: plain, and with O_DSYNC for durable writes.
pub struct GlommioFile {
    file: Rc<DmaFile>,
    dsync: Rc<DmaFile>,
}

/// Fails a short direct write: the engine never continues with part of a buffer on disk.
fn whole_write(n: usize, len: usize, pos: u64) -> io::Result<usize> {
    if n != len {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short direct write: {n} of {len} bytes at {pos}"),
        ));
    }
    Ok(n)
}

impl StorageFile for GlommioFile {
    type Buf = GlommioBuf;

    fn alloc_buf(&self, len: usize) -> GlommioBuf {
        assert_eq!(len % PAGE_BYTES, 0, "direct I/O buffers are page multiples");
        // Not zeroed here: the engine fills every byte (data, then zero padding), and a
        // memset of every write buffer cost a full extra pass over the data.
        GlommioBuf(self.file.alloc_dma_buffer(len))
    }

    async fn write_at(&self, buf: GlommioBuf, pos: u64) -> io::Result<usize> {
        assert_eq!(
            pos % PAGE_BYTES as u64,
            0,
            "direct I/O writes are page aligned"
        );
        let len = buf.len();
        let n = self.file.write_at(buf.0, pos).await.map_err(to_io)?;
        whole_write(n, len, pos)
    }

    async fn write_durable_at(&self, buf: GlommioBuf, pos: u64) -> io::Result<usize> {
        assert_eq!(
            pos % PAGE_BYTES as u64,
            0,
            "direct I/O writes are page aligned"
        );
        let len = buf.len();
        let n = self.dsync.write_at(buf.0, pos).await.map_err(to_io)?;
        whole_write(n, len, pos)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        let res = self.file.read_at(pos, len).await.map_err(to_io)?;
        // One copy out of the DMA buffer: glommio's ReadResult is !Send and tied to the
        // executor, while fetch responses hold `Bytes`. Cold reads only; the tail is cached.
        Ok(Bytes::copy_from_slice(&res))
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(to_io)
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        match self.file.pre_allocate(len, false).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = to_io(e);
                // tmpfs and some others lack fallocate: grow the file instead.
                if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
                    self.file.truncate(len).await.map_err(to_io)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len).await.map_err(to_io)
    }

    // A metadata change (extents marked unwritten): `fallocate -z` of a written 1 GiB
    // file took under 10 ms here, and it runs once per roll, so it runs inline.
    async fn zero_range(&self, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let mode = libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE;
        // SAFETY: fallocate takes an open descriptor (the file is held by `self`) and
        // plain integers; no memory is passed.
        let rc = unsafe { libc::fallocate(fd, mode, 0, len as libc::off_t) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(to_io)
    }

    async fn close(self) -> io::Result<()> {
        if let Ok(f) = Rc::try_unwrap(self.dsync) {
            f.close().await.map_err(to_io)?;
        }
        match Rc::try_unwrap(self.file) {
            Ok(f) => f.close().await.map_err(to_io),
            Err(_) => Ok(()), // another holder closes it on drop
        }
    }
}

/// glommio needs at least this much locked memory per executor besides its io_memory.
pub const MEMLOCK_BASE_BYTES: u64 = 512 * 1024;

/// The locked memory `executors` glommio executors with `io_memory_bytes` each need:
/// glommio registers io_memory with each of its three rings, and each registration counts
/// against RLIMIT_MEMLOCK.
pub fn memlock_needed_bytes(io_memory_bytes: usize, executors: usize) -> u64 {
    (3 * io_memory_bytes as u64 + MEMLOCK_BASE_BYTES) * executors as u64
}

/// Checks RLIMIT_MEMLOCK before starting executors and names what to raise when it is too
/// low, instead of failing later with an opaque io_uring error.
pub fn check_memlock(io_memory_bytes: usize, executors: usize) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if rc != 0 {
        return Err(format!(
            "getrlimit(RLIMIT_MEMLOCK) failed: {}",
            io::Error::last_os_error()
        ));
    }
    let needed = memlock_needed_bytes(io_memory_bytes, executors);
    if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < needed {
        return Err(format!(
            "locked-memory limit (RLIMIT_MEMLOCK) is {} KiB but {executors} shard(s) with io_memory {} KiB need {} KiB: \
             raise it (`ulimit -l {}`, or LimitMEMLOCK= in the systemd unit) or lower io_memory / the shard count",
            lim.rlim_cur / 1024,
            io_memory_bytes / 1024,
            needed / 1024,
            needed.div_ceil(1024)
        ));
    }
    Ok(())
}

/// Writes `data` to `path` durably and atomically: a temp file, fsync, rename over the
/// target, fsync of the directory (so the new name survives a crash too).
fn write_replacing(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlock_check_names_the_limit() {
        assert_eq!(
            memlock_needed_bytes(1 << 20, 2),
            2 * (3 * (1 << 20) + 512 * 1024)
        );
        assert!(
            check_memlock(1 << 20, 1).is_ok(),
            "8 MiB limit fits one 1 MiB shard"
        );
        let err = check_memlock(1 << 30, 64).expect_err("far too much");
        assert!(err.contains("ulimit -l"), "{err}");
    }
}
