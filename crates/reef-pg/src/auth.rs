//! Authentication and encryption of connections: SCRAM-SHA-256 (RFC 5802, RFC 7677) against a
//! role's stored verifier, and TLS from a PEM certificate and key.
//!
//! The rule: a role with a password always authenticates with SCRAM; a role without one (the
//! bootstrap `reef` superuser of a fresh cluster) is trusted from loopback only, unless
//! [`crate::PgConfig::require_password`] is set. A client that is not trusted learns nothing
//! about roles before it proves a password: unknown roles, roles without a password and roles
//! that may not log in all run the exchange against a mock verifier (with a salt that is stable
//! per role name) and fail with 28P01; a role that may not log in is refused with 28000 only
//! after a correct proof.

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use reef_sql::role::Verifier;
use reef_sql::{sqlstate, SqlError};
use tokio_rustls::rustls;

use crate::error::PgError;

/// The SASL mechanism offered.
pub(crate) const MECHANISM: &str = "SCRAM-SHA-256";

/// A TLS server configuration for the PostgreSQL port.
#[derive(Clone)]
pub struct TlsConfig(pub(crate) Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsConfig {}

impl TlsConfig {
    /// Loads a certificate chain and its private key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsConfig, PgError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &str, path: &Path, e: String| {
            PgError::Internal(format!(
                "cannot load TLS {what} from {}: {e}",
                path.display()
            ))
        };
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| bad("certificate", cert, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("certificate", cert, e.to_string()))?;
        if certs.is_empty() {
            return Err(bad(
                "certificate",
                cert,
                "no certificate in the file".into(),
            ));
        }
        let key_der =
            PrivateKeyDer::from_pem_file(key).map_err(|e| bad("key", key, e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PgError::Internal(format!("TLS setup: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)
            .map_err(|e| bad("certificate and key", cert, e.to_string()))?;
        Ok(TlsConfig(Arc::new(config)))
    }
}

/// The error for a failed password check, as PostgreSQL words it.
pub(crate) fn failed(user: &str) -> PgError {
    PgError::Rejected(SqlError::new(
        sqlstate::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    ))
}

fn malformed(what: &str) -> PgError {
    PgError::Protocol {
        code: sqlstate::PROTOCOL_VIOLATION,
        message: format!("malformed SCRAM message: {what}"),
    }
}

/// A verifier no password matches, for roles that do not exist or may not use a password. Its
/// salt is derived from the role name and a secret of this process, so that asking twice shows
/// the same salt, as for a real role.
pub(crate) fn mock_verifier(user: &str) -> Verifier {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let secret = SECRET.get_or_init(rand::random);
    let derived = reef_sql::role::hmac(secret, user.as_bytes());
    Verifier {
        iterations: reef_sql::role::ITERATIONS,
        salt: derived[..16].to_vec(),
        stored_key: reef_sql::role::hmac(secret, &derived),
        server_key: reef_sql::role::hmac(&derived, secret),
    }
}

/// The server side of one SCRAM-SHA-256 exchange, after the client's first message.
pub(crate) struct Scram {
    /// The GS2 header the client sent (`n,,` or `y,,`), which it must repeat, base64-encoded.
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl Scram {
    /// Reads the SASLInitialResponse body and returns the exchange and server-first-message.
    pub(crate) fn start(body: &[u8], v: &Verifier) -> Result<(Scram, String), PgError> {
        let end = body
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| malformed("no mechanism"))?;
        let mechanism = std::str::from_utf8(&body[..end]).map_err(|_| malformed("mechanism"))?;
        if mechanism != MECHANISM {
            return Err(PgError::Rejected(SqlError::new(
                sqlstate::INVALID_AUTHORIZATION,
                format!("SASL mechanism \"{mechanism}\" is not supported; use {MECHANISM}"),
            )));
        }
        let rest = &body[end + 1..];
        if rest.len() < 4 {
            return Err(malformed("no length"));
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let data = &rest[4..];
        if len < 0 || len as usize != data.len() {
            return Err(malformed("length"));
        }
        let first = std::str::from_utf8(data).map_err(|_| malformed("not UTF-8"))?;
        // gs2-header: a channel-binding flag and an (empty) authorization identity.
        let (gs2_header, bare) = match first.get(..3) {
            Some("n,," | "y,,") => (first[..3].to_owned(), &first[3..]),
            _ if first.starts_with("p=") => {
                return Err(PgError::Rejected(SqlError::new(
                    sqlstate::INVALID_AUTHORIZATION,
                    "SCRAM channel binding is not supported",
                )))
            }
            _ => return Err(malformed("GS2 header")),
        };
        let client_nonce = bare
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or_else(|| malformed("client nonce"))?;
        let nonce = format!("{client_nonce}{}", B64.encode(rand::random::<[u8; 18]>()));
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&v.salt), v.iterations);
        Ok((
            Scram {
                gs2_header,
                client_first_bare: bare.to_owned(),
                server_first: server_first.clone(),
                nonce,
            },
            server_first,
        ))
    }

    /// Checks the client-final-message (a SASLResponse body); returns the server-final-message,
    /// or None if the proof is wrong.
    pub(crate) fn finish(&self, body: &[u8], v: &Verifier) -> Result<Option<String>, PgError> {
        let last = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
        let (without_proof, proof) = last
            .rsplit_once(",p=")
            .ok_or_else(|| malformed("no proof"))?;
        let mut binding = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                binding = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        if binding != Some(B64.encode(&self.gs2_header).as_str()) {
            return Err(malformed("channel binding does not match"));
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(malformed("nonce does not match"));
        }
        let proof = B64.decode(proof).map_err(|_| malformed("proof"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        if !v.check_proof(auth_message.as_bytes(), &proof) {
            return Ok(None);
        }
        Ok(Some(format!(
            "v={}",
            B64.encode(v.server_signature(auth_message.as_bytes()))
        )))
    }
}
