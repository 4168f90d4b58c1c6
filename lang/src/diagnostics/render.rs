//! Turns [`Diagnostic`]s into rustc-style text reports (through ariadne) or into
//! machine-readable records for `--format json`. The only module that knows about ariadne.

use ariadne::{Color, Config, IndexType, Label as AriadneLabel, Report, ReportKind, Source};
use serde::Serialize;

use super::{Diagnostic, Severity};
use crate::span::{LineIndex, Span};

/// Renders one diagnostic as text, e.g. `error[E0301]: ...` with the source excerpt.
pub fn render_text(diagnostic: &Diagnostic, file_name: &str, source: &str, color: bool) -> String {
    TextRenderer::new(file_name, source, color).render(diagnostic)
}

/// Renders many diagnostics of one file: the line index ariadne needs is built once, not
/// once per diagnostic.
pub struct TextRenderer<'a> {
    file_name: &'a str,
    text: &'a str,
    source: Source<&'a str>,
    color: bool,
}

impl<'a> TextRenderer<'a> {
    pub fn new(file_name: &'a str, text: &'a str, color: bool) -> TextRenderer<'a> {
        TextRenderer { file_name, text, source: Source::from(text), color }
    }

    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        render_with(diagnostic, self.file_name, self.text, &self.source, self.color)
    }
}

fn render_with(diagnostic: &Diagnostic, file_name: &str, source: &str, cache: &Source<&str>, color: bool) -> String {
    // rustc's header, `error[E0301]: message`, rather than ariadne's `[E0301] Error: message`.
    let header = format!("{}[{}]", severity_word(diagnostic.severity), diagnostic.code);
    let header_color = match diagnostic.severity {
        Severity::Error => Color::Red,
        Severity::Warning => Color::Yellow,
    };
    let kind = ReportKind::Custom(&header, header_color);
    let config = Config::new().with_index_type(IndexType::Byte).with_color(color).with_compact(false);
    let primary = clamp(diagnostic.primary.span, source);
    let mut report =
        Report::build(kind, (file_name, primary.range())).with_message(&diagnostic.message).with_config(config);
    // Ariadne starts a new excerpt whenever a label lies above the previous one, so labels
    // are ordered by position: one excerpt, read top to bottom.
    let mut labels: Vec<(Span, &str)> = vec![(primary, diagnostic.primary.message.as_str())];
    labels.extend(diagnostic.secondary.iter().map(|label| (clamp(label.span, source), label.message.as_str())));
    labels.sort_by_key(|(span, _)| (span.lo, span.hi));
    for (order, (span, message)) in labels.into_iter().enumerate() {
        report = report.with_label(
            AriadneLabel::new((file_name, span.range()))
                .with_message(message)
                .with_order(i32::try_from(order).unwrap_or(i32::MAX)),
        );
    }
    for note in &diagnostic.notes {
        report = report.with_note(note);
    }
    if let Some(help) = &diagnostic.help {
        report = report.with_help(help);
    }
    let mut out = Vec::new();
    if report.finish().write((file_name, cache), &mut out).is_err() {
        // Writing into a Vec cannot fail; should ariadne still refuse, keep the essentials.
        return format!("{}[{}]: {}\n", severity_word(diagnostic.severity), diagnostic.code, diagnostic.message);
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    if color {
        text
    } else {
        strip_ansi_escapes(&text)
    }
}

/// Removes `ESC [ ... letter` sequences: ariadne writes a few even with colour off.
fn strip_ansi_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// Keeps spans inside the source and on character boundaries, so a bad span from any
/// stage degrades the picture rather than the program.
fn clamp(span: Span, source: &str) -> Span {
    let mut lo = (span.lo as usize).min(source.len());
    let mut hi = (span.hi as usize).min(source.len()).max(lo);
    while !source.is_char_boundary(lo) {
        lo -= 1;
    }
    while !source.is_char_boundary(hi) {
        hi += 1;
    }
    Span::new(lo, hi)
}

/// A diagnostic as `naasc check --format json` prints it.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
    pub file: String,
    /// 1-based line and column (in characters) of the primary span's start.
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    /// Byte offsets of the primary span.
    pub span: JsonSpan,
    pub label: String,
    pub labels: Vec<JsonLabel>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct JsonSpan {
    pub start: u32,
    pub end: u32,
}

#[derive(Debug, Serialize)]
pub struct JsonLabel {
    pub line: usize,
    pub column: usize,
    pub span: JsonSpan,
    pub message: String,
}

pub fn to_json(diagnostic: &Diagnostic, file_name: &str, lines: &LineIndex<'_>) -> JsonDiagnostic {
    let span = diagnostic.primary.span;
    let (line, column) = lines.line_col(span.lo);
    let (end_line, end_column) = lines.line_col(span.hi);
    JsonDiagnostic {
        severity: severity_word(diagnostic.severity),
        code: diagnostic.code.as_str(),
        message: diagnostic.message.clone(),
        file: file_name.to_string(),
        line,
        column,
        end_line,
        end_column,
        span: JsonSpan { start: span.lo, end: span.hi },
        label: diagnostic.primary.message.clone(),
        labels: diagnostic
            .secondary
            .iter()
            .map(|label| {
                let (line, column) = lines.line_col(label.span.lo);
                JsonLabel {
                    line,
                    column,
                    span: JsonSpan { start: label.span.lo, end: label.span.hi },
                    message: label.message.clone(),
                }
            })
            .collect(),
        notes: diagnostic.notes.clone(),
        help: diagnostic.help.clone(),
    }
}
