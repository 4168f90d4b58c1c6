//! Writing to standard output so that failures are seen: Rust's `print!` silently drops
//! output when descriptor 1 is closed (it treats `EBADF` as success) and panics on any other
//! error. Commands write their results through [`write_all`] instead, which reports a closed
//! or failing stdout (exit 1) and ends quietly when a reader that has seen enough closes a
//! pipe (`naasc run ... | head -1`), as other Unix tools do.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::exit::Exit;

/// Descriptor 1 was closed when `naasc` started.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Notes whether stdout is open and fills closed standard descriptors (0, 1, 2) with
/// `/dev/null`, so that no file the command opens later takes descriptor 1 and receives
/// output meant for stdout. Call once, first thing in `main`.
pub fn guard_standard_streams() {
    let stdin_closed = std::io::stdin().as_fd().try_clone_to_owned().is_err();
    let stdout_closed = std::io::stdout().as_fd().try_clone_to_owned().is_err();
    let stderr_closed = std::io::stderr().as_fd().try_clone_to_owned().is_err();
    STDOUT_CLOSED.store(stdout_closed, Ordering::Relaxed);
    if !(stdin_closed || stdout_closed || stderr_closed) {
        return;
    }
    // `open` returns the lowest free descriptor: each opening fills the next closed one of
    // 0..=2, until one lands above 2 (then nothing was closed any more and it is dropped).
    for _ in 0..3 {
        let Ok(null) = std::fs::File::open("/dev/null") else { return };
        if null.as_raw_fd() > 2 {
            return;
        }
        // Kept open for the life of the process: it stands in for the closed descriptor.
        let _ = null.into_raw_fd();
    }
}

/// Why standard output could not take the results.
#[derive(Debug)]
pub enum StdoutError {
    /// Descriptor 1 was closed when `naasc` started (`naasc run ... >&-`).
    Closed,
    /// The reader closed its end of a pipe: it has all it wants.
    ReaderGone,
    /// Any other write error (a full disk, an I/O error).
    Failed(std::io::Error),
}

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StdoutError::Closed => f.write_str("standard output is closed"),
            StdoutError::ReaderGone => f.write_str("the reader of standard output closed the pipe"),
            StdoutError::Failed(error) => write!(f, "{error}"),
        }
    }
}

impl From<std::io::Error> for StdoutError {
    fn from(error: std::io::Error) -> StdoutError {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            StdoutError::ReaderGone
        } else {
            StdoutError::Failed(error)
        }
    }
}

impl StdoutError {
    /// Prints the error (unless the reader is simply done) and gives the exit code: a reader
    /// that closed the pipe ends the command quietly with 0; anything else is exit 1.
    pub fn report(&self, what: &str) -> Exit {
        match self {
            StdoutError::ReaderGone => Exit::Ok,
            error => {
                eprintln!("naasc: cannot write {what} to standard output: {error}");
                Exit::Program
            }
        }
    }
}

/// A writer on standard output, or [`StdoutError::Closed`] when it was closed at startup.
pub fn writer() -> Result<std::io::StdoutLock<'static>, StdoutError> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(StdoutError::Closed);
    }
    Ok(std::io::stdout().lock())
}

/// Writes `bytes` to standard output and flushes it.
pub fn write_all(bytes: &[u8]) -> Result<(), StdoutError> {
    let mut out = writer()?;
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
