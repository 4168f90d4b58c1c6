//! Why native code could not be produced for a program: what the caller can act on (an
//! aggregate this target cannot run, an architecture it does not know, Cranelift refusing a
//! host or a function) apart from a broken invariant of the translator itself, which is an
//! [`InternalError`] and never a plausible-looking result.

use naas_lang::InternalError;

/// A failure of the native target.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NativeError {
    /// The aggregate takes an array per record; native folds read one scalar column per field.
    #[error(
        "aggregate `{aggregate}` takes an array (`{input}`) per record; native folds read one scalar column per field"
    )]
    ArrayInput { aggregate: String, input: String },
    /// An object file was asked for an architecture not in [`crate::object::ARCHES`].
    #[error("unknown architecture `{0}`; expected one of x86_64, aarch64")]
    UnknownArch(String),
    /// Cranelift has no code generator for the machine the JIT runs on.
    #[error("this host is not supported by Cranelift: {0}")]
    UnsupportedHost(String),
    /// Cranelift has no code generator for the architecture asked for.
    #[error("Cranelift cannot target `{arch}`: {message}")]
    UnsupportedArch { arch: String, message: String },
    /// A Cranelift module refused a declaration (two aggregates whose C symbols coincide).
    #[error("{0}")]
    Module(String),
    /// Cranelift could not compile a function (its message is kept as rendered).
    #[error("cannot compile `{function}`: {message}")]
    Codegen { function: String, message: String },
    /// The JIT could not make its code executable.
    #[error("cannot finalise JIT code: {0}")]
    Finalize(String),
    /// The object file could not be written out.
    #[error("cannot write the object file: {0}")]
    Emit(String),
    /// A broken invariant of the translator: a compiler bug, never a problem of the program.
    #[error(transparent)]
    Internal(#[from] InternalError),
}
