//! What a simulation can fail with. The CLI and the runtime tell these apart: a setting the
//! caller can change is a usage error, a run-time fault of the aggregate is reported with its
//! key and source location (as on the host), and a limit names itself.

use naas_ir::interp::RuntimeError;

/// Why [`super::simulate`] or [`super::simulate_entries`] stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum SimError {
    /// The configuration, the topology, the profile or the supplied entries were rejected
    /// before anything was simulated.
    Invalid(String),
    /// The aggregate's code faulted at run time (a lift, a merge at the reducer or in the
    /// reference fold, or a finish) on the entries of `key`.
    Fault { key: u64, error: RuntimeError },
    /// The simulation stopped during the run: a documented limit was reached (see spec
    /// section 15.6), or a value did not fit its encoding.
    Failed(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Invalid(message) | SimError::Failed(message) => f.write_str(message),
            SimError::Fault { key, error } => write!(f, "key `{key}`: {error}"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<String> for SimError {
    fn from(message: String) -> SimError {
        SimError::Failed(message)
    }
}

impl From<&str> for SimError {
    fn from(message: &str) -> SimError {
        SimError::Failed(message.to_string())
    }
}

impl From<SimError> for String {
    fn from(error: SimError) -> String {
        error.to_string()
    }
}

/// Shortens a number or value echoed in a message: what a flag or a generated record holds
/// can be hundreds of digits long (`1e300` printed in full), and a message needs only its
/// start and its size.
pub fn cut(text: &str) -> String {
    const KEEP: usize = 24;
    let chars = text.chars().count();
    if chars <= KEEP + 8 {
        return text.to_string();
    }
    let head: String = text.chars().take(KEEP).collect();
    format!("{head}… ({chars} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut() {
        assert_eq!(cut("1.5"), "1.5");
        let long = format!("{}", 1e300);
        assert_eq!(long.len(), 301);
        let short = cut(&long);
        assert!(short.starts_with("1000000000") && short.ends_with("(301 characters)"), "{short}");
    }
}
