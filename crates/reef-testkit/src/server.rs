//! A `reef` server run as a child process for tests.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Error;

/// The text the server prints on stdout, followed by its connection URL, once it accepts
/// connections.
pub const READY_MARKER: &str = "reefdb ready:";

/// How long to wait for the ready line before also accepting a successful TCP connect as
/// readiness.
const CONNECT_PROBE_AFTER: Duration = Duration::from_secs(2);

/// How long [`TestServer::stop`] waits for the process to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds the `reef` binary: `$REEF_BIN` if set, otherwise the most recently built of
/// `{debug,release}/reef` under `$CARGO_TARGET_DIR`, `/var/tmp/reef-target` and the workspace's
/// `target/`.
pub fn find_reef_bin() -> Result<PathBuf, Error> {
    if let Some(bin) = std::env::var_os("REEF_BIN").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        roots.push(PathBuf::from(dir));
    }
    roots.push(PathBuf::from("/var/tmp/reef-target"));
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let candidates: Vec<PathBuf> = roots
        .iter()
        .flat_map(|root| ["debug", "release"].map(|profile| root.join(profile).join("reef")))
        .collect();
    candidates
        .iter()
        .filter_map(|path| {
            let modified = std::fs::metadata(path).ok()?.modified().ok()?;
            Some((modified, path))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path.clone())
        .ok_or_else(|| Error::BinaryNotFound {
            looked_in: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Returns the stacks of every thread of process `pid` as gdb prints them, or why they are
/// missing: what a hung server was doing is the first thing its failure report needs.
pub(crate) fn thread_stacks(pid: u32) -> String {
    let out = Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-ex",
            "thread apply all bt",
            "-p",
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            // Only the frames: gdb's banner and symbol-loading chatter say nothing here.
            text.lines()
                .filter(|l| l.starts_with('#') || l.starts_with("Thread "))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("(no stacks: cannot run gdb: {e})"),
    }
}

/// Picks a loopback TCP port that is free right now, below the kernel's ephemeral range: the
/// source ports of outgoing connections (nodes dialling each other) come from that range, and
/// one of them could take a port probed there before the server binds it.
pub(crate) fn free_port() -> Result<u16, Error> {
    use std::hash::{BuildHasher, Hasher};
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_100));
    for _ in 0..500 {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = low + (random % u64::from(high - low)) as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("binding a probe socket to find a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("reading the probe socket's address", e))?
        .port();
    Ok(port)
}

/// Configures and starts a [`TestServer`].
#[derive(Debug, Default)]
pub struct Builder {
    bin: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    port: Option<u16>,
    config: Option<String>,
    args: Vec<String>,
    start_timeout: Option<Duration>,
}

impl Builder {
    /// Returns a builder with the defaults: binary from [`find_reef_bin`], a fresh temporary data
    /// directory, a free port, no configuration file and a 60 second start timeout
    /// (`REEF_TEST_START_TIMEOUT` seconds if set).
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this `reef` binary, e.g. `env!("CARGO_BIN_EXE_reef")` in reef-node's tests.
    pub fn bin(mut self, bin: impl Into<PathBuf>) -> Self {
        self.bin = Some(bin.into());
        self
    }

    /// Uses this data directory instead of a temporary one; it is not deleted afterwards.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Listens on this loopback port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Writes this TOML text to a file and passes it with `--config`.
    pub fn config(mut self, toml: impl Into<String>) -> Self {
        self.config = Some(toml.into());
        self
    }

    /// Appends an extra argument to `reef start`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Waits this long for the server to become ready.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = Some(timeout);
        self
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(self) -> Result<TestServer, Error> {
        let bin = match self.bin {
            Some(bin) => bin,
            None => find_reef_bin()?,
        };
        let root = tempfile::Builder::new()
            .prefix("reef-test-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory", e))?;
        let data_dir = self.data_dir.unwrap_or_else(|| root.path().join("data"));
        let config_path = match &self.config {
            Some(text) => {
                let path = root.path().join("reef.toml");
                std::fs::write(&path, text)
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                Some(path)
            }
            None => None,
        };
        let start_timeout = self.start_timeout.unwrap_or_else(|| {
            let secs = std::env::var("REEF_TEST_START_TIMEOUT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(60);
            Duration::from_secs(secs)
        });
        let fixed_port = self.port.is_some();
        // The node's gRPC address too, unless the caller chose one.
        let grpc_port = if self.args.iter().any(|a| a == "--grpc-addr") {
            None
        } else {
            Some(free_port()?)
        };
        let mut server = TestServer {
            grpc_port,
            ready_line: None,
            bin,
            log_path: root.path().join("reef.log"),
            root,
            data_dir,
            config_path,
            args: self.args,
            port: match self.port {
                Some(port) => port,
                None => free_port()?,
            },
            child: None,
            start_timeout,
        };
        // Another process may take the free port between the probe and the server's bind; pick a
        // new one and try again in that case.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(Error::ExitedEarly { tail, .. })
                    if !fixed_port && attempts < 3 && tail.contains("in use") =>
                {
                    server.port = free_port()?;
                    if server.grpc_port.is_some() {
                        server.grpc_port = Some(free_port()?);
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// A `reef start` child process on a loopback port with its own data directory.
///
/// The process is killed (SIGKILL) when the value drops. The temporary directory holding the data
/// directory, the configuration file and the server log (stdout and stderr) is removed then too,
/// unless `REEF_TEST_KEEP` is set, in which case its path is printed.
#[derive(Debug)]
pub struct TestServer {
    bin: PathBuf,
    root: tempfile::TempDir,
    data_dir: PathBuf,
    log_path: PathBuf,
    config_path: Option<PathBuf>,
    args: Vec<String>,
    port: u16,
    /// The gRPC port the builder chose (`None`: the arguments give one).
    grpc_port: Option<u16>,
    /// The line the server printed when it became ready, if it printed one.
    ready_line: Option<String>,
    child: Option<Child>,
    start_timeout: Duration,
}

impl TestServer {
    /// Starts a server with the defaults of [`Builder::new`].
    pub fn start() -> Result<Self, Error> {
        Builder::new().start()
    }

    /// Returns a builder to configure the server before starting it.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The connection URL, `postgresql://reef@127.0.0.1:PORT/reef`.
    pub fn pg_url(&self) -> String {
        format!("postgresql://reef@127.0.0.1:{}/reef", self.port)
    }

    /// The loopback port the server listens on; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The line the server printed when it last became ready (`reefdb ready: ...`), if any.
    pub fn ready_line(&self) -> Option<&str> {
        self.ready_line.as_deref()
    }

    /// The address the server serves `/metrics` on, from its ready line.
    pub fn metrics_addr(&self) -> Option<String> {
        let line = self.ready_line.as_deref()?;
        let rest = &line[line.find("metrics on http://")? + "metrics on http://".len()..];
        Some(rest.split('/').next()?.to_string())
    }

    /// The server's data directory; it stays the same across restarts.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The file receiving the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Returns the last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    /// Connects a tokio-postgres client as user `reef` to database `reef`. Must be called inside
    /// a tokio runtime.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, Error> {
        crate::connect(&self.pg_url()).await
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it to be gone.
    pub fn kill9(&mut self) -> Result<(), Error> {
        let mut child = self.child.take().ok_or(Error::NotRunning)?;
        child
            .kill()
            .map_err(|e| Error::io("sending SIGKILL to reef", e))?;
        child
            .wait()
            .map_err(|e| Error::io("waiting for reef to exit", e))?;
        Ok(())
    }

    /// Stops the server with SIGTERM and waits for it to exit, returning its exit status. If it
    /// has not exited within 30 seconds it is killed and an error returned.
    pub fn stop(&mut self) -> Result<ExitStatus, Error> {
        let mut child = self.child.take().ok_or(Error::NotRunning)?;
        let pid = libc::pid_t::try_from(child.id()).expect("process ids fit in pid_t");
        // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child, which has
        // not been waited for, so the id cannot have been reused.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        if rc != 0 {
            return Err(Error::io(
                "sending SIGTERM to reef",
                std::io::Error::last_os_error(),
            ));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| Error::io("waiting for reef to exit", e))?
            {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let stacks = thread_stacks(child.id());
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::StopTimeout {
                    secs: STOP_TIMEOUT.as_secs(),
                    stacks,
                    tail: self.log_tail(60),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data directory and port, after stopping it with
    /// SIGTERM if it is still running, and waits until it accepts connections.
    pub fn restart(&mut self) -> Result<(), Error> {
        if self.child.is_some() {
            self.stop()?;
        }
        self.spawn()
    }

    /// Spawns `reef start` and waits for readiness.
    fn spawn(&mut self) -> Result<(), Error> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| Error::io(format!("opening {}", self.log_path.display()), e))?;
        let stderr = log
            .try_clone()
            .map_err(|e| Error::io("duplicating the log file handle", e))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("start")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--pg-addr")
            .arg(format!("127.0.0.1:{}", self.port));
        if let Some(config) = &self.config_path {
            cmd.arg("--config").arg(config);
        }
        if let Some(grpc) = self.grpc_port {
            cmd.arg("--grpc-addr").arg(format!("127.0.0.1:{grpc}"));
        }
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", self.bin.display()), e))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("reef-{}-stdout", self.port))
            .spawn(move || copy_stdout(stdout, log, ready_tx))
            .map_err(|e| Error::io("starting the log thread", e))?;
        self.child = Some(child);
        self.wait_ready(&ready_rx)
    }

    /// Waits until the ready line appears, or (after a grace period) a TCP connect succeeds.
    fn wait_ready(&mut self, ready_rx: &mpsc::Receiver<String>) -> Result<(), Error> {
        let started = Instant::now();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Ok(line) = ready_rx.try_recv() {
                self.ready_line = Some(line);
                return Ok(());
            }
            let child = self.child.as_mut().ok_or(Error::NotRunning)?;
            if let Some(status) = child
                .try_wait()
                .map_err(|e| Error::io("checking on reef", e))?
            {
                self.child = None;
                // Let the log thread flush what the process printed last.
                std::thread::sleep(Duration::from_millis(50));
                return Err(Error::ExitedEarly {
                    status: status.to_string(),
                    log: self.log_path.clone(),
                    tail: self.log_tail(40),
                });
            }
            let elapsed = started.elapsed();
            if elapsed >= CONNECT_PROBE_AFTER
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                // The server prints its ready line right after it binds: a connect can beat
                // the line through the log thread, so give the line a moment to arrive.
                self.ready_line = ready_rx.recv_timeout(Duration::from_secs(2)).ok();
                return Ok(());
            }
            if elapsed >= self.start_timeout {
                let _ = self.kill9();
                return Err(Error::StartTimeout {
                    secs: self.start_timeout.as_secs(),
                    log: self.log_path.clone(),
                    tail: self.log_tail(40),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("REEF_TEST_KEEP").is_some() {
            self.root.disable_cleanup(true);
            eprintln!(
                "REEF_TEST_KEEP: kept {} (log {})",
                self.root.path().display(),
                self.log_path.display()
            );
        }
    }
}

/// Copies the server's stdout into the log, signalling once the ready line passes.
fn copy_stdout(stdout: std::process::ChildStdout, mut log: File, ready_tx: mpsc::Sender<String>) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let _ = log.write_all(line.as_bytes());
                if line.contains(READY_MARKER) {
                    let _ = ready_tx.send(line.trim_end().to_string());
                }
            }
        }
    }
}

/// Returns the last `lines` lines of the file at `path`, or a note that it cannot be read.
fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
