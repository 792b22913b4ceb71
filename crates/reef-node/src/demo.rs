//! `reef demo`: a local cluster of real `reef start` processes on loopback ports, each with
//! its own data directory under one folder, for trying reefdb out. It waits until the cluster
//! is healthy, creates a small sample schema (once), prints how to connect and what runs
//! where, and stops every process on Ctrl-C. A second run reuses the data.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::admin::{Admin, Command as Op, Format};

/// How to run the demo.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// How many nodes.
    pub nodes: usize,
    /// The folder holding every node's data directory and log.
    pub data_dir: PathBuf,
    /// The first node's PostgreSQL port; node `i` listens on `pg_port + i - 1`.
    pub pg_port: u16,
    /// The first node's gRPC port.
    pub grpc_port: u16,
    /// The first node's metrics port.
    pub metrics_port: u16,
}

/// One node of the demo.
struct DemoNode {
    id: usize,
    child: Child,
    pg: String,
    grpc: String,
    metrics: String,
    log: PathBuf,
}

impl DemoNode {
    fn start(config: &DemoConfig, id: usize, bin: &Path) -> Result<DemoNode> {
        let offset = (id - 1) as u16;
        let pg = format!("127.0.0.1:{}", config.pg_port + offset);
        let grpc = format!("127.0.0.1:{}", config.grpc_port + offset);
        let metrics = format!("127.0.0.1:{}", config.metrics_port + offset);
        let dir = config.data_dir.join(format!("node{id}"));
        let log = config.data_dir.join(format!("node{id}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("start")
            .arg("--data-dir")
            .arg(&dir)
            .arg("--pg-addr")
            .arg(&pg)
            .arg("--grpc-addr")
            .arg(&grpc)
            .arg("--metrics-addr")
            .arg(&metrics)
            .arg("--log")
            .arg("warn");
        if id > 1 {
            cmd.arg("--join")
                .arg(format!("127.0.0.1:{}", config.grpc_port));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(DemoNode {
            id,
            child,
            pg,
            grpc,
            metrics,
            log,
        })
    }

    /// Waits for the node's ready line (up to two minutes).
    async fn wait_ready(&mut self) -> Result<()> {
        let stdout = self.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.contains("reefdb ready:") {
                    let _ = tx.send(());
                }
            }
        });
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            if rx.try_recv().is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "node {} exited ({status}) before it was ready; the last lines of {}:\n{}",
                    self.id,
                    self.log.display(),
                    tail(&self.log, 15)
                );
            }
            if Instant::now() > until {
                bail!(
                    "node {} was not ready within two minutes; see {}",
                    self.id,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM.
    fn terminate(&mut self) {
        // SAFETY: kill(2) on a child this process spawned and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The sample schema: customers and their orders, with an index; created once.
const SAMPLE: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, city text);
CREATE TABLE orders (
    id int PRIMARY KEY,
    customer_id int NOT NULL,
    amount numeric(10, 2) NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers
    SELECT g, 'customer ' || g,
           CASE g % 4 WHEN 0 THEN 'Lisbon' WHEN 1 THEN 'Osaka' WHEN 2 THEN 'Lima' ELSE 'Oslo' END
    FROM generate_series(1, 100) g;
INSERT INTO orders (id, customer_id, amount)
    SELECT g, 1 + g % 100, (g % 97) * 1.25 FROM generate_series(1, 1000) g;
CREATE INDEX orders_customer ON orders (customer_id);
";

/// Runs the demo until `stop` resolves (Ctrl-C), then stops every node.
pub async fn run(config: DemoConfig, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    if config.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    for (flag, port) in [
        ("--pg-port", config.pg_port),
        ("--grpc-port", config.grpc_port),
        ("--metrics-port", config.metrics_port),
    ] {
        if port as usize + config.nodes - 1 > u16::MAX as usize {
            bail!(
                "{flag} {port} leaves no room for {} consecutive ports",
                config.nodes
            );
        }
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let bin = std::env::current_exe().context("cannot find the reef binary")?;
    let mut nodes: Vec<DemoNode> = Vec::new();
    // Ctrl-C during the start stops the nodes started so far.
    tokio::pin!(stop);
    let started = async {
        // The first node founds a new cluster and the others join it. A cluster that ran
        // before restarts all at once: each node needs a quorum of the others to be ready.
        let restart = config.data_dir.join("node1").exists();
        nodes.push(DemoNode::start(&config, 1, &bin)?);
        if !restart {
            nodes[0].wait_ready().await?;
        }
        for id in 2..=config.nodes {
            nodes.push(DemoNode::start(&config, id, &bin)?);
        }
        for node in nodes.iter_mut().skip(usize::from(!restart)) {
            node.wait_ready().await?;
        }
        anyhow::Ok(())
    };
    let started = tokio::select! {
        started = started => Some(started),
        _ = &mut stop => None,
    };
    let result = match started {
        Some(Ok(())) => serve(&config, &mut nodes, stop).await,
        Some(Err(err)) => Err(err),
        None => Ok(()),
    };
    println!("\nstopping {} nodes...", nodes.len());
    for node in &mut nodes {
        node.terminate();
    }
    let until = Instant::now() + Duration::from_secs(20);
    for node in &mut nodes {
        while node.child.try_wait()?.is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        if node.child.try_wait()?.is_none() {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
    result
}

/// Waits for a healthy cluster, creates the sample schema, prints where everything is, and
/// waits for `stop`.
async fn serve(
    config: &DemoConfig,
    nodes: &mut [DemoNode],
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let hosts: Vec<String> = nodes.iter().map(|n| n.grpc.clone()).collect();
    let admin = Admin::new(hosts.clone(), 0);
    let roots = reef_client::RootClient::new(0, hosts, Duration::from_secs(10));
    // Healthy: every node up, every partition with its replicas and a leader.
    let replicas = config.nodes.min(3);
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(status) = roots.cluster().await {
            let up = status.nodes.iter().filter(|n| n.liveness == "up").count();
            let replicated = status.partitions.iter().all(|p| {
                p.leader_node_id != 0
                    && p.partition.as_ref().is_some_and(|q| {
                        q.replicas.iter().all(|r| !r.learner) && q.replicas.len() >= replicas
                    })
            });
            if up >= config.nodes && replicated {
                break;
            }
        }
        if Instant::now() > until {
            bail!(
                "the cluster did not become healthy within two minutes; see the node logs in {}",
                config.data_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Node ids come from the order the nodes joined in.
    if let Ok(status) = roots.cluster().await {
        for n in nodes.iter_mut() {
            if let Some(desc) = status
                .nodes
                .iter()
                .filter_map(|s| s.node.as_ref())
                .find(|d| d.addr == n.grpc)
            {
                n.id = desc.id as usize;
            }
        }
    }
    let url = format!("postgresql://reef@{}/reef", nodes[0].pg);
    let sample = create_sample(&url).await?;
    let summary = admin
        .run(Op::Status, Format::Table)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "\nreefdb demo: {} nodes, data in {}",
        nodes.len(),
        config.data_dir.display()
    )?;
    writeln!(out, "\nconnect with:\n  psql {url}\n")?;
    writeln!(
        out,
        "{:<5} {:<42} {:<18} METRICS",
        "NODE", "POSTGRESQL", "GRPC"
    )?;
    for n in nodes.iter() {
        writeln!(
            out,
            "{:<5} {:<42} {:<18} http://{}/metrics",
            n.id,
            format!("postgresql://reef@{}/reef", n.pg),
            n.grpc,
            n.metrics
        )?;
    }
    writeln!(out, "\n{}", summary.trim_end())?;
    writeln!(
        out,
        "\n{sample}\ntry: SELECT city, count(*), sum(amount) FROM orders JOIN customers ON customers.id = customer_id GROUP BY city;\n\
         look: reef cluster --host {} status | partitions | decommission <node> ...\n\
         press Ctrl-C to stop every node (the data stays for the next run)",
        nodes[0].grpc
    )?;
    out.flush()?;
    let mut watch = tokio::time::interval(Duration::from_millis(500));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = watch.tick() => {
                for n in nodes.iter_mut() {
                    if let Some(status) = n.child.try_wait()? {
                        bail!("node {} exited ({status}); the last lines of {}:\n{}", n.id, n.log.display(), tail(&n.log, 15));
                    }
                }
            }
        }
    }
}

/// Creates the sample schema unless it exists; says which.
async fn create_sample(url: &str) -> Result<String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    tokio::spawn(connection);
    // Whether each table is there: missing is SQLSTATE 42P01; anything else is a failure.
    let mut present = Vec::new();
    for table in ["customers", "orders"] {
        match client
            .query(&format!("SELECT 1 FROM {table} LIMIT 1"), &[])
            .await
        {
            Ok(_) => present.push(true),
            Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                present.push(false)
            }
            Err(err) => return Err(err).context(format!("looking for the sample table {table}")),
        }
    }
    match present.as_slice() {
        [true, true] => {
            Ok("sample tables customers and orders are there from an earlier run".into())
        }
        [false, false] => {
            client
                .batch_execute(SAMPLE)
                .await
                .context("creating the sample schema")?;
            Ok("created sample tables: customers (100 rows) and orders (1000 rows)".into())
        }
        _ => Ok(
            "only one of the sample tables customers and orders is there (an earlier run \
                 stopped while creating them); drop it to have both created again"
                .into(),
        ),
    }
}
