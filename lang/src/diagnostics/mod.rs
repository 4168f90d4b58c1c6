//! Diagnostics as plain data: a stable code, a message, labelled spans, notes and a fix hint.
//!
//! Every stage reports problems by building [`Diagnostic`] values; nothing outside
//! [`render`] knows how they are displayed. Codes are stable: once published, a code keeps
//! its meaning, and spec.md lists each with an example.

mod codes;
pub mod render;

pub use codes::Code;

use crate::span::Span;

/// Longest piece of source text (a name, a literal: anything between backquotes) that a
/// diagnostic echoes; longer pieces are cut to this many characters and marked with `…`.
pub const MAX_ECHO_CHARS: usize = 64;
/// Longest message, label, note or help text, in characters; the rest is cut and marked.
/// Notes that print whole states (law counterexamples over big arrays) are the usual case.
pub const MAX_TEXT_CHARS: usize = 1_000;
/// Default number of diagnostics shown per file (`naasc check --max-diagnostics`).
pub const DEFAULT_MAX_DIAGNOSTICS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// A span with a short message printed beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    /// The main location; its message explains what is wrong right there.
    pub primary: Label,
    /// Related locations (the other half of a duplicate, the call cycle, ...).
    pub secondary: Vec<Label>,
    pub notes: Vec<String>,
    /// How to fix it, when a fix is known.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: cut_text(message.into()),
            primary: Label { span, message: cut_text(label.into()) },
            secondary: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: Code, message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message, span, label) }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(cut_text(help.into()));
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(cut_text(note.into()));
        self
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { span, message: cut_text(message.into()) });
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by position so that reports read top to bottom, and drops exact repeats.
pub fn sort_and_dedup(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by_key(|d| (d.primary.span.lo, d.primary.span.hi, d.code));
    diagnostics.dedup();
}

/// Bounds a diagnostic text: every backquoted piece longer than [`MAX_ECHO_CHARS`] keeps its
/// first characters and says how long it was, and the whole text is cut at
/// [`MAX_TEXT_CHARS`]. Diagnostics echo source values, and a 100,000-digit literal must not
/// turn into a 100,000-character message (or one per reference to it).
pub fn cut_text(text: String) -> String {
    if text.len() <= MAX_ECHO_CHARS {
        return text;
    }
    let mut out = String::with_capacity(text.len().min(4 * MAX_TEXT_CHARS));
    // Odd pieces lie between backquotes. The length of a cut piece is written after its
    // closing backquote, which is the one that starts the next piece.
    let mut after_close: Option<String> = None;
    for (index, piece) in text.split('`').enumerate() {
        if index > 0 {
            out.push('`');
        }
        if let Some(suffix) = after_close.take() {
            out.push_str(&suffix);
        }
        let chars = piece.chars().count();
        if index % 2 == 1 && chars > MAX_ECHO_CHARS {
            out.extend(piece.chars().take(MAX_ECHO_CHARS));
            out.push('…');
            after_close = Some(format!(" ({chars} characters, cut to {MAX_ECHO_CHARS})"));
        } else {
            out.push_str(piece);
        }
    }
    if out.chars().count() <= MAX_TEXT_CHARS {
        return out;
    }
    let mut cut: String = out.chars().take(MAX_TEXT_CHARS).collect();
    cut.push_str(&format!("… (cut to {MAX_TEXT_CHARS} characters)"));
    cut
}

/// Keeps the first `max` diagnostics of one file (after [`sort_and_dedup`], so the first in
/// source order) and returns how many errors and warnings were left out.
pub fn limit(diagnostics: &mut Vec<Diagnostic>, max: usize) -> (usize, usize) {
    if diagnostics.len() <= max {
        return (0, 0);
    }
    let dropped = diagnostics.split_off(max);
    let errors = dropped.iter().filter(|d| d.is_error()).count();
    (errors, dropped.len() - errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_echoed_values_are_cut_and_short_ones_kept() {
        let digits = "9".repeat(100_000);
        let text = cut_text(format!("integer literal `{digits}` does not fit in 64 bits (the largest is `u64`)"));
        assert!(text.len() < 300, "{text}");
        assert!(
            text.starts_with(&format!("integer literal `{}…` (100000 characters, cut to 64)", "9".repeat(64))),
            "{text}"
        );
        assert!(text.ends_with("does not fit in 64 bits (the largest is `u64`)"), "{text}");
        let short = "name `x` is not defined, `y` neither".to_string();
        assert_eq!(cut_text(short.clone()), short);
    }

    #[test]
    fn long_unquoted_texts_are_cut_at_the_text_limit() {
        let note = format!("a = (state=[{}])", "1, ".repeat(100_000));
        let text = cut_text(note);
        assert!(text.chars().count() < MAX_TEXT_CHARS + 40, "{}", text.len());
        assert!(text.ends_with(&format!("… (cut to {MAX_TEXT_CHARS} characters)")));
    }

    #[test]
    fn constructors_bound_every_text() {
        let long = "x".repeat(10_000);
        let d = Diagnostic::error(Code::E0001, format!("`{long}`"), Span::new(0, 1), format!("`{long}`"))
            .with_note(long.clone())
            .with_help(long.clone())
            .with_label(Span::new(0, 1), long);
        for text in [
            &d.message,
            &d.primary.message,
            &d.notes[0],
            d.help.as_ref().unwrap_or(&String::new()),
            &d.secondary[0].message,
        ] {
            assert!(text.chars().count() <= MAX_TEXT_CHARS + 40, "{}", text.len());
        }
    }
}
