//! What the process tests share: a `cfa broker` child process on a free port.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A broker process, killed when the test ends however it ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cfa broker` with tuning/PROFILE.toml on a free port, 2 shards.
pub fn start_with(dir: &Path, profile: &str) -> (Proc, SocketAddr) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tuning/{profile}.toml"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["broker", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--shards", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cfa broker");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("cfa broker listening on ") {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("broker reports its address");
    (Proc(child), addr.parse().expect("an address"))
}
