//! The network the nodes live on: a network namespace of the harness's own, where every node
//! has its own loopback address, and nftables rules that cut chosen pairs of them apart.
//!
//! The harness enters the namespace before it starts any thread, so its clients, the `reef`
//! processes it spawns and the `nft` commands it runs all see only that namespace: faults never
//! touch the host's network. Nodes listen on and dial from their own address, so a rule that
//! drops packets from one node's address to another's cuts exactly that link in both the
//! client and server directions of every connection between them; clients connect from
//! 127.0.0.1 and are never cut off.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

use crate::error::{run, Error, Result};

/// The nftables table holding the partition rules.
const TABLE: &str = "reef_jepsen";

/// A network namespace created by (and entered by) this process; deleted on drop.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates namespace `name` (replacing a leftover one of that name), moves this process
    /// into it and brings its loopback interface up. Must be called before any other thread
    /// starts: a namespace switch applies to the calling thread, and threads started later
    /// inherit it.
    pub fn enter(name: &str) -> Result<Namespace> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::Setup(
                "the fault tests need root to create a network namespace and nftables rules \
                 (run them with sudo)"
                    .into(),
            ));
        }
        remove_orphans();
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Namespace {
            name: name.to_string(),
        };
        let path = format!("/run/netns/{name}");
        let file =
            std::fs::File::open(&path).map_err(|e| Error::io(format!("opening {path}"), e))?;
        // SAFETY: setns with an open namespace file descriptor we own and a valid flag.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(Error::io(
                format!("entering network namespace {name}"),
                std::io::Error::last_os_error(),
            ));
        }
        run(Command::new("ip").args(["link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Deletes the namespaces of earlier runs that were killed before they could (`reefj-PID`
/// with no process PID left), killing the `reef` processes still running in them: nodes
/// outlive a harness that was killed.
fn remove_orphans() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("reefj-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &name]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<libc::pid_t>() {
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Replaces the partition rules with ones dropping every packet from `a` to `b` for each
/// `(a, b)` in `cuts`; an empty list heals the network.
pub fn cut(cuts: &[(Ipv4Addr, Ipv4Addr)]) -> Result<()> {
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", TABLE])
        .stderr(Stdio::null())
        .status();
    if cuts.is_empty() {
        return Ok(());
    }
    let mut rules = format!(
        "table inet {TABLE} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n"
    );
    for (a, b) in cuts {
        rules.push_str(&format!("    ip saddr {a} ip daddr {b} drop\n"));
    }
    rules.push_str("  }\n}\n");
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("running nft", e))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(rules.as_bytes())
            .map_err(|e| Error::io("writing nft rules", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("waiting for nft", e))?;
    if !out.status.success() {
        return Err(Error::Command {
            what: format!("nft -f - <<{rules}"),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// The links to cut so that nodes in different `groups` cannot reach each other (nodes in no
/// group reach everyone). Addresses are `addr(i)` for node `i`.
pub fn cuts_between(
    groups: &[Vec<usize>],
    addr: impl Fn(usize) -> Ipv4Addr,
) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    let mut cuts = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (hi, h) in groups.iter().enumerate() {
            if gi == hi {
                continue;
            }
            for &a in g {
                for &b in h {
                    cuts.push((addr(a), addr(b)));
                }
            }
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_cut_apart_both_ways_and_a_bridge_stays_connected() {
        let addr = |i: usize| Ipv4Addr::new(127, 0, 0, 11 + i as u8);
        // Node 2 is in no group: it bridges [0] and [1].
        let cuts = cuts_between(&[vec![0], vec![1]], addr);
        assert_eq!(cuts, vec![(addr(0), addr(1)), (addr(1), addr(0))]);
        let halves = cuts_between(&[vec![0, 1], vec![2, 3, 4]], addr);
        assert_eq!(halves.len(), 12);
        assert!(!halves.contains(&(addr(0), addr(1))));
    }
}
