//! The cluster under test: `reef start` processes, node `i` on address 127.0.0.(11 + i) in the
//! harness's namespace, with the ways a node can be hurt (SIGKILL, SIGSTOP, a skewed clock) and
//! the operator commands the nemesis uses (`reef cluster ...`).

use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{run, Error, Result};

/// The PostgreSQL port every node listens on (at its own address).
pub const PG_PORT: u16 = 5433;
/// The gRPC port.
pub const GRPC_PORT: u16 = 20160;
/// The metrics port.
pub const METRICS_PORT: u16 = 20180;
/// What a node prints once it serves SQL.
const READY_MARKER: &str = "reefdb ready:";
/// Where Debian's libfaketime lives.
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// One `reef start` process and its data.
#[derive(Debug)]
pub struct Node {
    /// The node's index in the cluster (0-based; its reef node id is assigned by the cluster).
    pub index: usize,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Whether it is stopped with SIGSTOP.
    pub paused: bool,
    /// The clock offset it runs with, in seconds (0: the true time).
    pub skew_s: i64,
}

/// The nodes of the cluster under test.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    /// The nodes, by index.
    pub nodes: Vec<Node>,
}

/// Node `i`'s address.
pub fn addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 11 + i as u8)
}

/// Node `i`'s PostgreSQL connection string.
pub fn pg_url(i: usize) -> String {
    format!(
        "postgresql://reef@{}:{PG_PORT}/reef?connect_timeout=5",
        addr(i)
    )
}

/// Node `i`'s gRPC address.
pub fn grpc(i: usize) -> String {
    format!("{}:{GRPC_PORT}", addr(i))
}

impl Cluster {
    /// Prepares `count` nodes with data and logs under `dir`; starts nothing.
    pub fn new(bin: &Path, dir: &Path, count: usize) -> Result<Cluster> {
        if !(1..=9).contains(&count) {
            return Err(Error::Setup(format!("{count} nodes: expected 1 to 9")));
        }
        let mut nodes = Vec::new();
        for index in 0..count {
            let node_dir = dir.join(format!("n{}", index + 1));
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| Error::io(format!("creating {}", node_dir.display()), e))?;
            nodes.push(Node {
                index,
                data: node_dir.join("data"),
                log: node_dir.join("reef.log"),
                child: None,
                paused: false,
                skew_s: 0,
            });
        }
        Ok(Cluster {
            bin: bin.to_path_buf(),
            nodes,
        })
    }

    /// Every node's gRPC address, comma-separated, for `reef cluster --host`.
    pub fn hosts(&self) -> String {
        (0..self.nodes.len())
            .map(grpc)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node 0 (which founds the cluster), then the others joining through it, and waits
    /// until every node is up and every partition has its replicas.
    pub fn start_all(&mut self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.start(i)?;
        }
        self.wait_healthy(Duration::from_secs(120))
    }

    /// Starts node `i` (again) with its clock offset, and waits until it serves SQL.
    pub fn start(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].child.is_some() {
            return Ok(());
        }
        let others: Vec<String> = (0..self.nodes.len())
            .filter(|&j| j != i)
            .map(grpc)
            .collect();
        let node = &mut self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| Error::io(format!("opening {}", node.log.display()), e))?;
        let offset = log
            .metadata()
            .map_err(|e| Error::io("reading the log's size", e))?
            .len();
        let stderr = log
            .try_clone()
            .map_err(|e| Error::io("duplicating the log handle", e))?;
        let a = addr(i);
        let mut cmd = Command::new(&self.bin);
        cmd.arg("start")
            .arg("--data-dir")
            .arg(&node.data)
            .arg("--pg-addr")
            .arg(format!("{a}:{PG_PORT}"))
            .arg("--grpc-addr")
            .arg(format!("{a}:{GRPC_PORT}"))
            .arg("--metrics-addr")
            .arg(format!("{a}:{METRICS_PORT}"))
            .arg("--log-format")
            .arg("text");
        // Node 0 founds the cluster on first start; every other node joins through the rest.
        if i != 0 {
            cmd.arg("--join").arg(others.join(","));
        }
        if node.skew_s != 0 {
            cmd.env("LD_PRELOAD", FAKETIME_LIB)
                .env("FAKETIME", format!("{:+}s", node.skew_s))
                // Timers and timeouts run on the monotonic clock: only wall time is skewed.
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_NO_CACHE", "1");
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(stderr);
        let child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", self.bin.display()), e))?;
        node.child = Some(child);
        node.paused = false;
        self.wait_ready(i, offset, Duration::from_secs(90))
    }

    fn wait_ready(&mut self, i: usize, offset: u64, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        loop {
            let text = std::fs::read(&self.nodes[i].log).unwrap_or_default();
            let fresh =
                String::from_utf8_lossy(&text[(offset as usize).min(text.len())..]).into_owned();
            if fresh.contains(READY_MARKER) {
                return Ok(());
            }
            let node = &mut self.nodes[i];
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    node.child = None;
                    return Err(Error::Setup(format!(
                        "node {} exited while starting ({status}); its log: {}",
                        i + 1,
                        node.log.display()
                    )));
                }
            }
            if Instant::now() >= until {
                return Err(Error::Timeout(format!(
                    "node {} did not serve SQL within {timeout:?}; its log: {}",
                    i + 1,
                    self.nodes[i].log.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills node `i` and starts it again with its wall clock `skew_s` seconds off (0: the
    /// true time).
    pub fn restart_with_skew(&mut self, i: usize, skew_s: i64) -> Result<()> {
        self.kill(i)?;
        self.nodes[i].skew_s = skew_s;
        self.start(i)
    }

    /// Whether node `i` runs (it may be paused).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// Kills node `i` with SIGKILL, as a crash or power loss would.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            child.kill().map_err(|e| Error::io("sending SIGKILL", e))?;
            child
                .wait()
                .map_err(|e| Error::io("waiting for a killed node", e))?;
        }
        node.paused = false;
        Ok(())
    }

    /// Stops (`true`) or continues (`false`) node `i` with SIGSTOP or SIGCONT.
    pub fn pause(&mut self, i: usize, pause: bool) -> Result<()> {
        let node = &mut self.nodes[i];
        let Some(child) = node.child.as_ref() else {
            return Ok(());
        };
        let signal = if pause { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on our own child, which has not been waited for.
        if unsafe { libc::kill(child.id() as libc::pid_t, signal) } != 0 {
            return Err(Error::io(
                "signalling a node",
                std::io::Error::last_os_error(),
            ));
        }
        node.paused = pause;
        Ok(())
    }

    /// Kills every node with SIGKILL.
    pub fn kill_all(&mut self) {
        for i in 0..self.nodes.len() {
            let _ = self.kill(i);
        }
    }

    /// Runs `reef cluster ARGS --format json` against every node and parses its answer.
    pub fn admin(&self, args: &[&str]) -> Result<Value> {
        let hosts = self.hosts();
        let out = run(Command::new(&self.bin)
            .arg("cluster")
            .arg("--host")
            .arg(&hosts)
            .arg("--format")
            .arg("json")
            .args(args))?;
        serde_json::from_str(out.trim()).map_err(|e| {
            Error::Setup(format!(
                "reef cluster {}: unexpected answer {out:?}: {e}",
                args.join(" ")
            ))
        })
    }

    /// Waits until every node is up and no partition is under-replicated or unavailable.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        loop {
            let last;
            match self.admin(&["status"]) {
                Ok(status) => {
                    let up = status["nodes"]
                        .as_array()
                        .map_or(0, |n| n.iter().filter(|n| n["liveness"] == "up").count());
                    if up == self.nodes.len() && status["health"]["ok"] == true {
                        return Ok(());
                    }
                    last = format!("{up} nodes up, health {}", status["health"]);
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= until {
                return Err(Error::Timeout(format!(
                    "the cluster was not healthy within {timeout:?}: {last}"
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}
