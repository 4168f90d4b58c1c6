//! Internal compiler errors: a broken invariant inside the compiler, never a problem with the
//! user's program. Passes return an [`InternalError`] instead of substituting a plausible
//! value, so a compiler bug stops the compilation loudly (the driver prints "internal
//! compiler error", asks for a report and exits with 101) and can never become a wrong
//! result. This is rust-analyzer's `never!` discipline made a value: the caller decides how
//! to recover, and tests assert on it.

use std::fmt;

use crate::span::Span;

/// What broke, and where in the source when the failing construct is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalError {
    /// Which invariant broke, in words a compiler developer can search for.
    pub message: String,
    /// The source construct being compiled, when known.
    pub span: Option<Span>,
}

impl InternalError {
    pub fn new(message: impl Into<String>) -> InternalError {
        InternalError { message: message.into(), span: None }
    }

    pub fn at(span: Span, message: impl Into<String>) -> InternalError {
        InternalError { message: message.into(), span: Some(span) }
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "internal compiler error: {}", self.message)
    }
}

impl std::error::Error for InternalError {}

/// Returns `Err(InternalError)` from the enclosing function: `bail_internal!(span, "...")` or
/// `bail_internal!("...")`, with `format!` arguments.
#[macro_export]
macro_rules! bail_internal {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {
        return Err($crate::internal::InternalError::new(format!($fmt $(, $arg)*)).into())
    };
    ($span:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {
        return Err($crate::internal::InternalError::at($span, format!($fmt $(, $arg)*)).into())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(span: Option<Span>) -> Result<(), InternalError> {
        match span {
            Some(span) => bail_internal!(span, "broken {}", 1),
            None => bail_internal!("broken {}", 2),
        }
    }

    #[test]
    fn bail_returns_the_error_with_its_span() {
        let span = Span::new(3, 5);
        assert_eq!(fails(Some(span)), Err(InternalError { message: "broken 1".into(), span: Some(span) }));
        assert_eq!(fails(None).map_err(|e| e.to_string()), Err("internal compiler error: broken 2".into()));
    }
}
