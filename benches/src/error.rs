//! Why a benchmark stopped, and the exit code each reason maps to (as `naasc`'s: 1 for a
//! program or result problem, 2 for a usage or I/O problem).

use std::path::PathBuf;

/// A benchmark that could not run, or whose measured computations disagree.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A benchmark input did not compile (an example, a `--files` program, the generated
    /// front-end program): the rendered diagnostics or middle-end error.
    #[error("cannot compile {what}: {message}")]
    Compile { what: String, message: String },
    /// A file could not be read or written.
    #[error("cannot {action} {}: {error}", path.display())]
    Io { action: &'static str, path: PathBuf, error: std::io::Error },
    /// A measured run failed (a fault of the aggregation, a simulator error, a job error).
    #[error("{what} failed: {message}")]
    Run { what: String, message: String },
    /// Two implementations of the same computation gave different results: the comparison
    /// the benchmark prints would be meaningless.
    #[error("{0}")]
    Disagree(String),
}

impl BenchError {
    pub fn run(what: impl Into<String>, error: impl std::fmt::Display) -> BenchError {
        BenchError::Run { what: what.into(), message: error.to_string() }
    }

    pub fn compile(what: impl Into<String>, error: impl std::fmt::Display) -> BenchError {
        BenchError::Compile { what: what.into(), message: error.to_string() }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            BenchError::Io { .. } => 2,
            BenchError::Compile { .. } | BenchError::Run { .. } | BenchError::Disagree(_) => 1,
        }
    }
}
