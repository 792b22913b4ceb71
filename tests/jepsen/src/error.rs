//! The harness's error type.

/// What went wrong while setting up or running a test (not an anomaly: those are findings).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An external command (`ip`, `nft`, `reef`) failed.
    #[error("{what} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        what: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A SQL statement of the harness's own (setup, not the workload) failed.
    #[error("{what}: {message}")]
    Sql {
        /// What was being done.
        what: String,
        /// The driver's error with the server's SQLSTATE and message.
        message: String,
    },
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The harness cannot run here or was asked something impossible.
    #[error("{0}")]
    Setup(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Wraps a driver error with what was being done.
    pub fn sql(what: impl Into<String>, source: tokio_postgres::Error) -> Error {
        let message = match source.as_db_error() {
            Some(db) => format!(
                "{} ({}): {}",
                db.message(),
                db.code().code(),
                db.detail().unwrap_or("")
            ),
            None => source.to_string(),
        };
        Error::Sql {
            what: what.into(),
            message,
        }
    }
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs a command to completion, returning its stdout, or an error with its stderr.
pub fn run(cmd: &mut std::process::Command) -> Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| Error::io(format!("running {what}"), e))?;
    if !out.status.success() {
        return Err(Error::Command {
            what,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
