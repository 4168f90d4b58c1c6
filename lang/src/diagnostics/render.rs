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

/// Longest source line shown in full in an excerpt, in characters. A longer line is shown as
/// a window of this many characters around its labels, marked with `…` where it was cut,
/// so that a diagnostic on a 50 MB line is a few lines long and not 50 MB.
pub const MAX_SNIPPET_LINE_CHARS: usize = 160;
/// Characters kept before the first label on a cut line, for context.
const SNIPPET_CONTEXT_CHARS: usize = 40;

/// Renders many diagnostics of one file: the line index ariadne needs is built once, not
/// once per diagnostic.
pub struct TextRenderer<'a> {
    file_name: &'a str,
    text: &'a str,
    source: Source<&'a str>,
    color: bool,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
}

impl<'a> TextRenderer<'a> {
    pub fn new(file_name: &'a str, text: &'a str, color: bool) -> TextRenderer<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        TextRenderer { file_name, text, source: Source::from(text), color, line_starts }
    }

    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        let spans: Vec<Span> = std::iter::once(&diagnostic.primary)
            .chain(&diagnostic.secondary)
            .map(|label| clamp(label.span, self.text))
            .collect();
        let (first, last) = spans.iter().fold((usize::MAX, 0), |(first, last), span| {
            (first.min(self.line_of(span.lo as usize)), last.max(self.line_of(span.hi as usize)))
        });
        let long = (first..=last).any(|line| {
            let (start, end) = self.line_bounds(line);
            end - start > MAX_SNIPPET_LINE_CHARS && self.text[start..end].chars().count() > MAX_SNIPPET_LINE_CHARS
        });
        if !long {
            return render_with(diagnostic, self.file_name, self.text, &self.source, self.color);
        }
        self.render_cut(diagnostic, first, last)
    }

    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset).saturating_sub(1)
    }

    /// The byte range of a line without its line break.
    fn line_bounds(&self, line: usize) -> (usize, usize) {
        let start = self.line_starts.get(line).copied().unwrap_or(self.text.len());
        let end = self.line_starts.get(line + 1).map_or(self.text.len(), |next| next - 1);
        (start, end.max(start))
    }

    /// Renders a diagnostic whose excerpt has a line over [`MAX_SNIPPET_LINE_CHARS`]: ariadne
    /// gets a stand-in source in which the lines before the excerpt are empty (so line
    /// numbers stay right) and each excerpt line is cut to a window around its labels, with
    /// the labels moved into the windows; the header's position is then put back to the one
    /// in the real source.
    fn render_cut(&self, diagnostic: &Diagnostic, first: usize, last: usize) -> String {
        let mut endpoints: Vec<usize> = Vec::new();
        for label in std::iter::once(&diagnostic.primary).chain(&diagnostic.secondary) {
            let span = clamp(label.span, self.text);
            endpoints.extend([span.lo as usize, span.hi as usize]);
        }
        let mut view = "\n".repeat(first);
        // Per excerpt line: the kept byte range of the real line and where it sits in `view`.
        let mut windows: Vec<(usize, usize, usize)> = Vec::with_capacity(last - first + 1);
        for line in first..=last {
            let (start, end) = self.line_bounds(line);
            let anchor = endpoints.iter().copied().filter(|&at| at >= start && at <= end).min().unwrap_or(start);
            let before = self.text[start..anchor].char_indices().rev().nth(SNIPPET_CONTEXT_CHARS - 1);
            let window_start = before.map_or(start, |(at, _)| start + at);
            let window_end = self.text[window_start..end]
                .char_indices()
                .nth(MAX_SNIPPET_LINE_CHARS)
                .map_or(end, |(at, _)| window_start + at);
            if window_start > start {
                view.push('…');
            }
            windows.push((window_start, window_end, view.len()));
            view.push_str(&self.text[window_start..window_end]);
            if window_end < end {
                view.push('…');
            }
            view.push('\n');
        }
        let map = |offset: u32| -> u32 {
            let offset = offset as usize;
            let line = self.line_of(offset).clamp(first, last);
            let (start, end, at) = windows[line - first];
            let moved = at + offset.clamp(start, end) - start;
            u32::try_from(moved).unwrap_or(u32::MAX)
        };
        let mut moved = diagnostic.clone();
        for label in std::iter::once(&mut moved.primary).chain(moved.secondary.iter_mut()) {
            let span = clamp(label.span, self.text);
            label.span = Span { lo: map(span.lo), hi: map(span.hi) };
        }
        let cache = Source::from(view.as_str());
        let rendered = render_with(&moved, self.file_name, &view, &cache, self.color);
        // The header names the position in the stand-in source; put the real one back.
        let primary = clamp(diagnostic.primary.span, self.text);
        let line = self.line_of(primary.lo as usize);
        let column = self.text[self.line_starts[line]..primary.lo as usize].chars().count();
        let marker = format!("[ {}:", self.file_name);
        match rendered.find(&marker) {
            Some(at) => {
                let from = at + marker.len();
                let to = rendered[from..].find(' ').map_or(from, |end| from + end);
                format!("{}{}:{}{}", &rendered[..from], line + 1, column + 1, &rendered[to..])
            }
            None => rendered,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Code;

    #[test]
    fn long_lines_are_cut_around_the_label_and_keep_the_real_position() {
        let source = format!("x = 1\n{}@{}\n", "a".repeat(30_000), "b".repeat(30_000));
        let at = 6 + 30_000;
        let diagnostic = Diagnostic::error(Code::E0001, "unexpected character '@'", Span::new(at, at + 1), "here");
        let text = render_text(&diagnostic, "f.naas", &source, false);
        assert!(text.len() < 2_000, "{} bytes:\n{text}", text.len());
        assert!(text.contains("f.naas:2:30001"), "{text}");
        assert!(text.contains("…aaaa"), "{text}");
        assert!(text.contains("@bbb"), "{text}");
        assert!(text.contains("here"), "{text}");
    }

    #[test]
    fn short_lines_are_rendered_unchanged() {
        let source = "x = 1\ny = @\n";
        let diagnostic = Diagnostic::error(Code::E0001, "unexpected character '@'", Span::new(10, 11), "here");
        let text = render_text(&diagnostic, "f.naas", source, false);
        assert!(text.contains("f.naas:2:5"), "{text}");
        assert!(text.contains("y = @"), "{text}");
        assert!(!text.contains('…'), "{text}");
    }
}
