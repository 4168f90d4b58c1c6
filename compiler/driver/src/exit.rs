//! The exit codes of every `naasc` command, in one place (spec §16.3), so that a command says
//! which kind of failure it met rather than which number that kind happens to have.

use std::process::ExitCode;

/// Why `naasc` stops. The discriminants are the process exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked.
    Ok = 0,
    /// The program or the data has errors (diagnostics, invalid rows, a fault of the
    /// aggregation, results that could not be written).
    Program = 1,
    /// The command line is wrong, or a file could not be opened, read or created.
    Usage = 2,
    /// A bug in `naasc` itself.
    Internal = 101,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_documented_numbers() {
        assert_eq!([Exit::Ok, Exit::Program, Exit::Usage, Exit::Internal].map(|e| e as u8), [0, 1, 2, 101]);
        assert_eq!(ExitCode::from(Exit::Usage), ExitCode::from(2));
    }
}
