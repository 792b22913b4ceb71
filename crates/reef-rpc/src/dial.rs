//! Outgoing gRPC connections: the one place their settings live.
//!
//! A node that listens on a specific address also dials from it, so that every connection
//! between two nodes carries both nodes' addresses. Operators' firewall rules, and the fault
//! tests' network partitions, can then tell nodes apart even when they share a host.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use tonic::transport::Endpoint;

static SOURCE: OnceLock<IpAddr> = OnceLock::new();

/// Makes this process dial every later gRPC connection from `ip` (the first call wins). An
/// unspecified address (`0.0.0.0`, `::`) leaves the choice to the operating system.
pub fn set_source(ip: IpAddr) {
    if !ip.is_unspecified() {
        let _ = SOURCE.set(ip);
    }
}

/// How often an open connection is probed with an HTTP/2 PING, and how long the answer may
/// take before the connection counts as dead.
///
/// A node that is stopped (SIGSTOP, a long pause) or cut off by the network still has a
/// connection that looks open, and requests on it would wait for their whole deadline; the
/// probe fails them within about two seconds instead, so callers turn to another replica.
pub const KEEPALIVE: Duration = Duration::from_secs(1);

/// An endpoint for `uri` (`http://HOST:PORT`) with the settings every connection shares:
/// no Nagle delay, a PING every [`KEEPALIVE`] that must be answered within it, and the source
/// address set by [`set_source`].
pub fn endpoint(uri: String) -> Result<Endpoint, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(uri)?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE)
        .keep_alive_timeout(KEEPALIVE)
        .keep_alive_while_idle(true);
    Ok(match SOURCE.get() {
        Some(ip) => endpoint.local_address(Some(*ip)),
        None => endpoint,
    })
}
