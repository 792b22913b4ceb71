//! Roles (users) and their passwords.
//!
//! A role is stored under its own key in the metadata key space (not in the object catalog:
//! roles belong to the cluster, not to a schema, and their names never clash with tables).
//! A password is never stored: a role keeps a SCRAM-SHA-256 verifier (RFC 5802, RFC 7677), in
//! PostgreSQL's text form `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, so that
//! the wire front end can run SCRAM authentication against it and a stolen verifier does not
//! reveal the password.
//!
//! The bootstrap superuser `reef` exists in every cluster without a stored record; `ALTER USER
//! reef PASSWORD ...` stores one for it.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlparser::ast;

use reef_txn::Transaction;

use crate::catalog::META_PREFIX;
use crate::error::{sqlstate, Result, SqlError};
use crate::session::{ExecResult, StmtCtx};

/// The bootstrap superuser's name.
pub const BOOTSTRAP: &str = "reef";

/// PBKDF2 iterations for new verifiers (PostgreSQL's default, `scram_iterations`).
pub const ITERATIONS: u32 = 4096;

/// A role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDesc {
    /// The role's name.
    pub name: String,
    /// The SCRAM-SHA-256 verifier, if the role has a password.
    pub verifier: Option<String>,
    /// Whether the role may log in (users may, plain roles may not).
    pub login: bool,
    /// Whether the role may manage roles.
    pub superuser: bool,
}

impl RoleDesc {
    /// The bootstrap superuser as it is before any `ALTER USER`.
    pub fn bootstrap() -> Self {
        RoleDesc {
            name: BOOTSTRAP.into(),
            verifier: None,
            login: true,
            superuser: true,
        }
    }
}

/// The key of a role's record.
pub fn role_key(name: &str) -> Vec<u8> {
    let mut k = vec![META_PREFIX, b'r'];
    k.extend_from_slice(name.as_bytes());
    k
}

/// The key range of every role record.
pub fn role_key_range() -> (Vec<u8>, Vec<u8>) {
    (vec![META_PREFIX, b'r'], vec![META_PREFIX, b'r' + 1])
}

/// Encodes a role for storage.
pub fn encode(role: &RoleDesc) -> Vec<u8> {
    serde_json::to_vec(role).expect("roles always serialise")
}

/// Decodes a stored role.
pub fn decode(bytes: &[u8]) -> Result<RoleDesc> {
    serde_json::from_slice(bytes)
        .map_err(|e| SqlError::internal(format!("corrupt role record: {e}")))
}

/// A parsed SCRAM-SHA-256 verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 32],
}

impl Verifier {
    /// Parses PostgreSQL's text form.
    pub fn parse(text: &str) -> Option<Verifier> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(Verifier {
            iterations: iterations.parse().ok().filter(|i| *i > 0)?,
            salt: B64.decode(salt).ok()?,
            stored_key: B64.decode(stored).ok()?.try_into().ok()?,
            server_key: B64.decode(server).ok()?.try_into().ok()?,
        })
    }

    /// Builds the verifier of `password` with `salt`.
    pub fn new(password: &str, salt: &[u8], iterations: u32) -> Verifier {
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        Verifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// PostgreSQL's text form.
    pub fn to_text(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }

    /// Checks a client's proof for `auth_message` (RFC 5802: ClientKey = proof XOR
    /// HMAC(StoredKey, AuthMessage) must hash to StoredKey). Compares in constant time.
    pub fn check_proof(&self, auth_message: &[u8], proof: &[u8]) -> bool {
        if proof.len() != 32 {
            return false;
        }
        let signature = hmac(&self.stored_key, auth_message);
        let mut client_key = [0u8; 32];
        for i in 0..32 {
            client_key[i] = proof[i] ^ signature[i];
        }
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        stored
            .iter()
            .zip(self.stored_key.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// The server's signature for `auth_message`, which proves to the client that the server
    /// knows the verifier.
    pub fn server_signature(&self, auth_message: &[u8]) -> [u8; 32] {
        hmac(&self.server_key, auth_message)
    }
}

/// The verifier text stored for a password given to CREATE or ALTER ROLE: a password that is
/// already a SCRAM-SHA-256 verifier is kept as it is (as PostgreSQL does); MD5 hashes are
/// refused; anything else is hashed with a fresh random salt.
pub fn verifier_for(password: &str) -> Result<String> {
    if password.starts_with("SCRAM-SHA-256$") {
        return Verifier::parse(password)
            .map(|v| v.to_text())
            .ok_or_else(|| {
                SqlError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "invalid SCRAM-SHA-256 verifier",
                )
            });
    }
    if password.len() == 35 && password.starts_with("md5") {
        return Err(SqlError::unsupported(
            "MD5 password hashes are not supported; give the password itself or a SCRAM-SHA-256 verifier",
        ));
    }
    if password.is_empty() {
        return Err(SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            "a password must not be empty",
        ));
    }
    let salt: [u8; 16] = rand::random();
    Ok(Verifier::new(password, &salt, ITERATIONS).to_text())
}

/// SaltedPassword: PBKDF2-HMAC-SHA-256 of the SASLprep-normalised password (the raw bytes when
/// it cannot be normalised, as in PostgreSQL).
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let prepared = stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| password.to_owned());
    let key = prepared.as_bytes();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(key, &u);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

/// HMAC-SHA-256.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// What CREATE ROLE or ALTER ROLE sets.
#[derive(Debug, Default)]
pub struct RoleOptions {
    /// Some(None) removes the password.
    pub password: Option<Option<String>>,
    /// LOGIN / NOLOGIN.
    pub login: Option<bool>,
    /// SUPERUSER / NOSUPERUSER.
    pub superuser: Option<bool>,
}

/// The password text of a role option (a string literal or NULL).
pub fn password_text(p: &ast::Password) -> Result<Option<String>> {
    match p {
        ast::Password::NullPassword => Ok(None),
        ast::Password::Password(ast::Expr::Value(v)) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
                Ok(Some(s.clone()))
            }
            ast::Value::Null => Ok(None),
            other => Err(SqlError::new(
                sqlstate::SYNTAX_ERROR,
                format!("a password must be a string literal, not {other}"),
            )),
        },
        other => Err(SqlError::new(
            sqlstate::SYNTAX_ERROR,
            format!("a password must be a string literal, not {other:?}"),
        )),
    }
}

// ----- Statements -----

fn txn_err(e: reef_txn::TxnError) -> SqlError {
    crate::error::from_txn(e)
}

/// Reads a role in `txn` (the bootstrap superuser exists without a record).
pub fn load(txn: &Transaction, name: &str) -> Result<Option<RoleDesc>> {
    match txn.get(&role_key(name)).map_err(txn_err)? {
        Some(bytes) => decode(&bytes).map(Some),
        None if name == BOOTSTRAP => Ok(Some(RoleDesc::bootstrap())),
        None => Ok(None),
    }
}

fn undefined(name: &str) -> SqlError {
    SqlError::new(
        sqlstate::UNDEFINED_OBJECT,
        format!("role \"{name}\" does not exist"),
    )
}

/// The session's user, which must be a superuser to manage roles.
fn require_superuser(ctx: &StmtCtx, what: &str) -> Result<String> {
    let me = ctx.hooks.current_setting("session_authorization")?;
    match load(&ctx.txn, &me)? {
        Some(r) if r.superuser => Ok(me),
        _ => Err(SqlError::new(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("permission denied to {what}"),
        )
        .with_hint("Only superusers manage roles.")),
    }
}

fn apply(role: &mut RoleDesc, opts: &[ast::RoleOption]) -> Result<()> {
    for o in opts {
        match o {
            ast::RoleOption::Password(p) => {
                role.verifier = password_text(p)?.map(|p| verifier_for(&p)).transpose()?
            }
            ast::RoleOption::Login(b) => role.login = *b,
            ast::RoleOption::SuperUser(b) => role.superuser = *b,
            // Privileges reef does not distinguish (every login role may create and change
            // tables) are accepted and have no effect.
            ast::RoleOption::CreateDB(_)
            | ast::RoleOption::CreateRole(_)
            | ast::RoleOption::Inherit(_)
            | ast::RoleOption::BypassRLS(_)
            | ast::RoleOption::Replication(_) => {}
            other => {
                return Err(SqlError::unsupported(format!(
                    "role option {other} is not supported"
                )))
            }
        }
    }
    Ok(())
}

/// CREATE ROLE / CREATE USER.
pub(crate) fn create(ctx: &mut StmtCtx, cr: &ast::CreateRole) -> Result<ExecResult> {
    require_superuser(ctx, "create role")?;
    let mut opts = Vec::new();
    if let Some(p) = &cr.password {
        opts.push(ast::RoleOption::Password(p.clone()));
    }
    if let Some(b) = cr.login {
        opts.push(ast::RoleOption::Login(b));
    }
    if let Some(b) = cr.superuser {
        opts.push(ast::RoleOption::SuperUser(b));
    }
    if cr.connection_limit.is_some()
        || cr.valid_until.is_some()
        || !cr.in_role.is_empty()
        || !cr.in_group.is_empty()
        || !cr.role.is_empty()
        || !cr.user.is_empty()
        || !cr.admin.is_empty()
    {
        return Err(SqlError::unsupported(
            "role membership, CONNECTION LIMIT and VALID UNTIL are not supported",
        ));
    }
    for name in &cr.names {
        let name = crate::binder::object_name(name)?;
        if load(&ctx.txn, &name)?.is_some() {
            if cr.if_not_exists {
                continue;
            }
            return Err(SqlError::new(
                sqlstate::DUPLICATE_OBJECT,
                format!("role \"{name}\" already exists"),
            ));
        }
        let mut role = RoleDesc {
            name: name.clone(),
            verifier: None,
            login: false,
            superuser: false,
        };
        apply(&mut role, &opts)?;
        ctx.txn.put(role_key(&name), encode(&role));
    }
    Ok(ExecResult::tag("CREATE ROLE"))
}

/// ALTER ROLE / ALTER USER: options (a user may change its own password) or RENAME TO.
pub(crate) fn alter(
    ctx: &mut StmtCtx,
    name: &ast::Ident,
    op: &ast::AlterRoleOperation,
) -> Result<ExecResult> {
    let name = crate::binder::ident_name(name);
    let me = ctx.hooks.current_setting("session_authorization")?;
    let own_password = matches!(op, ast::AlterRoleOperation::WithOptions { options }
        if name == me && options.iter().all(|o| matches!(o, ast::RoleOption::Password(_))));
    if !own_password {
        require_superuser(ctx, "alter role")?;
    }
    let mut role = load(&ctx.txn, &name)?.ok_or_else(|| undefined(&name))?;
    match op {
        ast::AlterRoleOperation::WithOptions { options } => {
            apply(&mut role, options)?;
            if role.name == BOOTSTRAP && (!role.superuser || !role.login) {
                return Err(SqlError::new(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    "the bootstrap superuser must stay a superuser that can log in",
                ));
            }
            ctx.txn.put(role_key(&name), encode(&role));
        }
        ast::AlterRoleOperation::RenameRole { role_name } => {
            let new = crate::binder::ident_name(role_name);
            if name == BOOTSTRAP || name == me {
                return Err(SqlError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!("role \"{name}\" cannot be renamed"),
                ));
            }
            if load(&ctx.txn, &new)?.is_some() {
                return Err(SqlError::new(
                    sqlstate::DUPLICATE_OBJECT,
                    format!("role \"{new}\" already exists"),
                ));
            }
            // The verifier's salt does not depend on the name, so it stays valid.
            role.name = new.clone();
            ctx.txn.delete(role_key(&name));
            ctx.txn.put(role_key(&new), encode(&role));
        }
        other => {
            return Err(SqlError::unsupported(format!(
                "ALTER ROLE {other} is not supported"
            )))
        }
    }
    Ok(ExecResult::tag("ALTER ROLE"))
}

/// DROP ROLE / DROP USER.
pub(crate) fn drop(
    ctx: &mut StmtCtx,
    if_exists: bool,
    names: &[ast::ObjectName],
) -> Result<ExecResult> {
    let me = require_superuser(ctx, "drop role")?;
    for name in names {
        let name = crate::binder::object_name(name)?;
        if name == BOOTSTRAP || name == me {
            return Err(SqlError::new(
                sqlstate::OBJECT_IN_USE,
                format!("role \"{name}\" cannot be dropped: it is the bootstrap superuser or the current user"),
            ));
        }
        if load(&ctx.txn, &name)?.is_none() {
            if if_exists {
                continue;
            }
            return Err(undefined(&name));
        }
        ctx.txn.delete(role_key(&name));
    }
    Ok(ExecResult::tag("DROP ROLE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_matches_rfc7677_test_vector() {
        // RFC 7677, section 3: user "user", password "pencil".
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = Verifier::new("pencil", &salt, 4096);
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final_bare = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{client_first_bare},{server_first},{client_final_bare}");
        let proof = B64
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert!(v.check_proof(auth.as_bytes(), &proof));
        let mut wrong = proof.clone();
        wrong[0] ^= 1;
        assert!(!v.check_proof(auth.as_bytes(), &wrong));
        assert_eq!(
            B64.encode(v.server_signature(auth.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let text = v.to_text();
        assert_eq!(Verifier::parse(&text), Some(v));
    }

    #[test]
    fn stored_passwords_are_verifiers() {
        let v = verifier_for("secret").unwrap();
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(!v.contains("secret"));
        // A verifier given as the password is kept.
        assert_eq!(verifier_for(&v).unwrap(), v);
        assert!(verifier_for("md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(verifier_for("").is_err());
    }
}
