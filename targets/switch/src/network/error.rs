//! What a simulation can fail with. The CLI and the runtime tell these apart: a setting the
//! caller can change is a usage error, a run-time fault of the aggregate is reported with its
//! key and source location (as on the host), a limit names itself, and a broken invariant of
//! the simulator is an internal error (exit code 101), never a plausible result.

use naas_ir::interp::RuntimeError;
use naas_lang::InternalError;

use crate::program::EncodeError;

/// The longest piece of a flag's value or a generated value that a message quotes (see
/// [`naas_stdx::excerpt`]).
pub const QUOTE_CHARS: usize = 24;

/// `text` shortened for a message: what a flag or a generated record holds can be hundreds of
/// digits long (`1e300` printed in full), and a message needs only its start and its size.
pub(crate) fn quote(text: &str) -> std::borrow::Cow<'_, str> {
    naas_stdx::excerpt(text, QUOTE_CHARS)
}

/// Why [`super::simulate`] or [`super::simulate_entries`] stopped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The configuration, the topology, the profile or the supplied entries were rejected
    /// before anything was simulated: the message says which setting and why, so a caller
    /// reports it as a usage error.
    #[error("{0}")]
    Invalid(String),
    /// The aggregate's code faulted at run time (a lift, a merge at the reducer or in the
    /// reference fold, or a finish) on the entries of `key`.
    #[error("key `{key}`: {error}")]
    Fault { key: u64, error: RuntimeError },
    /// A lifted state has no register encoding (a float beyond the fixed-point range).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The simulation stopped during the run at a documented limit (see spec section 15.6);
    /// the message names the limit.
    #[error("{0}")]
    Limit(String),
    /// A broken invariant of the simulator or of the compiler that produced its input.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// A `--dist` value that is not a distribution.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DistError {
    #[error("invalid distribution `{text}`: the zipf exponent must be a positive number, found `{exponent}`")]
    ZipfExponent {
        /// The value, shortened.
        text: String,
        /// The exponent's text, shortened.
        exponent: String,
    },
    #[error("invalid distribution `{text}`: expected `uniform` or `zipf:S` (e.g. `zipf:1.1`)")]
    Unknown {
        /// The value, shortened.
        text: String,
    },
}

/// A `--slot-index` value other than `hash` or `direct`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid slot index `{text}`: expected `hash` or `direct`")]
pub struct SlotIndexError {
    /// The value, shortened.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_quoted_with_their_length() {
        assert_eq!(quote("1.5"), "1.5");
        let long = format!("{}", 1e300);
        assert_eq!(long.len(), 301);
        assert_eq!(quote(&long), format!("{}… (301 characters)", &long[..QUOTE_CHARS]));
    }

    #[test]
    fn internal_errors_say_so() {
        let error = SimError::from(InternalError::new("a packet delivered to a mapper"));
        assert_eq!(error.to_string(), "internal compiler error: a packet delivered to a mapper");
    }
}
