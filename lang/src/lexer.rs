//! The layout-aware lexer: wraps the logos token stream, turns indentation into
//! `Indent`/`Dedent` tokens, ends logical lines with `Newline`, ignores line breaks inside
//! brackets, and checks bracket balance. It yields `Result<(usize, Token, usize), LexError>`,
//! which is what lalrpop's external-lexer mode consumes.
//!
//! Recoverable problems (a stray character, a tab in indentation, a malformed number) are
//! recorded in a side list and lexing goes on, so that one run reports them all; problems
//! that leave no sensible token stream (unbalanced or too deeply nested brackets) end it.

use std::collections::VecDeque;

use logos::Logos;

use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::token::{RawLexError, Token};

/// Deepest bracket nesting accepted; deeper input is rejected with E0006.
pub const MAX_BRACKET_DEPTH: usize = 64;
/// Deepest block nesting accepted; deeper input is rejected with E0006.
pub const MAX_BLOCK_DEPTH: usize = 32;
/// Lexical errors recorded before lexing stops. Each error is a diagnostic that a person
/// reads, so a file of garbage must not produce millions of them (and the memory they take).
pub const MAX_LEX_ERRORS: usize = 50;

/// A problem that stops lexing; it is reported as a diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub struct LexError(pub Box<Diagnostic>);

pub type Spanned<'s> = (usize, Token<'s>, usize);

pub struct Lexer<'s, 'e> {
    source: &'s str,
    raw: logos::Lexer<'s, Token<'s>>,
    pending: VecDeque<Spanned<'s>>,
    /// Indentation columns of the enclosing blocks; always starts with 0.
    indents: Vec<usize>,
    /// Open brackets with their spans, innermost last.
    brackets: Vec<(Token<'s>, Span)>,
    /// Byte offset where the current physical line starts.
    line_start: usize,
    /// True until the first token of the current logical line has been seen.
    at_line_start: bool,
    /// True once the current logical line produced a token (so it needs a `Newline`).
    line_has_tokens: bool,
    finished: bool,
    /// Lexical errors recorded so far (the side list may hold errors of other stages too).
    lex_errors: usize,
    errors: &'e mut Vec<Diagnostic>,
}

impl<'s, 'e> Lexer<'s, 'e> {
    pub fn new(source: &'s str, errors: &'e mut Vec<Diagnostic>) -> Lexer<'s, 'e> {
        Lexer {
            source,
            raw: Token::lexer(source),
            pending: VecDeque::new(),
            indents: vec![0],
            brackets: Vec::new(),
            line_start: 0,
            at_line_start: true,
            line_has_tokens: false,
            finished: false,
            lex_errors: 0,
            errors,
        }
    }

    /// Produces the next batch of tokens into `pending`, or returns a fatal error.
    fn advance(&mut self) -> Result<(), LexError> {
        let Some(raw) = self.raw.next() else {
            self.finish()?;
            return Ok(());
        };
        let range = self.raw.span();
        let span = Span::new(range.start, range.end);
        let token = match raw {
            Ok(token) => token,
            Err(error) => {
                self.record_raw_error(error, span)?;
                // A malformed number still stands for a value; lex it as 0 so parsing continues.
                if self.source[range.clone()].starts_with(|c: char| c.is_ascii_digit()) {
                    Token::Int(0)
                } else {
                    return Ok(());
                }
            }
        };
        match token {
            Token::RawNewline => {
                self.line_start = range.end;
                if self.brackets.is_empty() {
                    if self.line_has_tokens {
                        self.pending.push_back((range.start, Token::Newline, range.end));
                    }
                    self.at_line_start = true;
                    self.line_has_tokens = false;
                }
                return Ok(());
            }
            Token::LParen | Token::LBracket | Token::LBrace if self.brackets.len() >= MAX_BRACKET_DEPTH => {
                return Err(fatal(
                    Diagnostic::error(
                        Code::E0006,
                        format!("brackets nested more than {MAX_BRACKET_DEPTH} deep"),
                        span,
                        "this bracket is too deep",
                    )
                    .with_help("split the expression into smaller ones with local variables"),
                ));
            }
            _ => {}
        }
        if self.at_line_start {
            self.layout(range.start)?;
            self.at_line_start = false;
        }
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => self.brackets.push((token.clone(), span)),
            Token::RParen | Token::RBracket | Token::RBrace => self.close_bracket(&token, span)?,
            _ => {}
        }
        self.line_has_tokens = true;
        self.pending.push_back((range.start, token, range.end));
        Ok(())
    }

    /// Emits `Indent`/`Dedent` tokens for a logical line whose first token starts at `at`.
    fn layout(&mut self, at: usize) -> Result<(), LexError> {
        let indentation = &self.source[self.line_start.min(at)..at];
        if let Some(tab) = indentation.find('\t') {
            let tab_at = self.line_start + tab;
            self.errors.push(
                Diagnostic::error(
                    Code::E0003,
                    "tab character in indentation",
                    Span::new(tab_at, tab_at + 1),
                    "tab here",
                )
                .with_help("indent with spaces only (4 per level is the convention)"),
            );
        }
        let column = indentation.chars().count();
        let current = self.indents.last().copied().unwrap_or(0);
        if column > current {
            if self.indents.len() > MAX_BLOCK_DEPTH {
                return Err(fatal(
                    Diagnostic::error(
                        Code::E0006,
                        format!("blocks nested more than {MAX_BLOCK_DEPTH} deep"),
                        Span::new(self.line_start, at),
                        "this line is too deeply indented",
                    )
                    .with_help("move the inner part into a helper function"),
                ));
            }
            self.indents.push(column);
            self.pending.push_back((at, Token::Indent, at));
        } else if column < current {
            while self.indents.last().is_some_and(|&level| level > column) {
                self.indents.pop();
                self.pending.push_back((at, Token::Dedent, at));
            }
            let enclosing = self.indents.last().copied().unwrap_or(0);
            if enclosing != column {
                self.errors.push(
                    Diagnostic::error(
                        Code::E0004,
                        "unindent does not match any outer indentation level",
                        Span::new(self.line_start, at),
                        format!("indented by {column} here"),
                    )
                    .with_note(format!("the enclosing block is indented by {enclosing}"))
                    .with_help("indent the line to the same column as the block it belongs to"),
                );
            }
        }
        Ok(())
    }

    fn close_bracket(&mut self, token: &Token<'s>, span: Span) -> Result<(), LexError> {
        let expected_open = match token {
            Token::RParen => Token::LParen,
            Token::RBracket => Token::LBracket,
            _ => Token::LBrace,
        };
        match self.brackets.pop() {
            Some((open, _)) if open == expected_open => Ok(()),
            Some((open, open_span)) => Err(fatal(
                Diagnostic::error(
                    Code::E0005,
                    format!("mismatched bracket: {open} is closed by {token}"),
                    span,
                    format!("expected the partner of {open}"),
                )
                .with_label(open_span, "opened here"),
            )),
            None => Err(fatal(Diagnostic::error(
                Code::E0005,
                format!("unexpected closing bracket {token}"),
                span,
                "nothing is open here",
            ))),
        }
    }

    fn finish(&mut self) -> Result<(), LexError> {
        self.finished = true;
        let end = self.source.len();
        if let Some((open, open_span)) = self.brackets.last() {
            return Err(fatal(
                Diagnostic::error(
                    Code::E0005,
                    format!("unclosed bracket {open}"),
                    *open_span,
                    "opened here and never closed",
                )
                .with_help("add the closing bracket"),
            ));
        }
        if self.line_has_tokens {
            self.pending.push_back((end, Token::Newline, end));
        }
        while self.indents.len() > 1 {
            self.indents.pop();
            self.pending.push_back((end, Token::Dedent, end));
        }
        Ok(())
    }

    /// Records a lexical error. A run of adjacent invalid characters becomes one diagnostic
    /// whose span covers the run; past [`MAX_LEX_ERRORS`] errors lexing stops.
    fn record_raw_error(&mut self, error: RawLexError, mut span: Span) -> Result<(), LexError> {
        // Take in the rest of a run of invalid characters now, on a copy of the logos lexer
        // so that the token after the run is not consumed: one diagnostic for the run.
        let mut run = 1usize;
        if error == RawLexError::InvalidCharacter {
            loop {
                let mut ahead = self.raw.clone();
                match ahead.next() {
                    Some(Err(RawLexError::InvalidCharacter)) if ahead.span().start == span.hi as usize => {
                        span.hi = u32::try_from(ahead.span().end).unwrap_or(u32::MAX);
                        run += 1;
                        self.raw = ahead;
                    }
                    _ => break,
                }
            }
        }
        self.lex_errors += 1;
        if self.lex_errors > MAX_LEX_ERRORS {
            return Err(fatal(
                Diagnostic::error(
                    Code::E0001,
                    format!("more than {MAX_LEX_ERRORS} lexical errors; the rest of the file was not read"),
                    span,
                    "lexing stopped here",
                )
                .with_help("is this a naas source file? fix the errors above first"),
            ));
        }
        let text = &self.source[span.range()];
        let diagnostic = match error {
            RawLexError::BadNumber(message) => {
                let help = if message.starts_with("float") {
                    "float literals must be finite f64 values (at most about 1.8e308)"
                } else {
                    "integer literals are decimal, 0x hex, 0o octal or 0b binary and at most 18446744073709551615"
                };
                Diagnostic::error(Code::E0007, message, span, "invalid literal").with_help(help)
            }
            RawLexError::InvalidCharacter => {
                let c = text.chars().next().unwrap_or('?');
                let diagnostic = if run == 1 {
                    Diagnostic::error(
                        Code::E0001,
                        format!("unexpected character {c:?}"),
                        span,
                        "no token starts with this character",
                    )
                } else {
                    Diagnostic::error(
                        Code::E0001,
                        format!("{run} unexpected characters, starting with {c:?}"),
                        span,
                        "no token starts with these characters",
                    )
                };
                match c {
                    '"' | '\'' => diagnostic.with_help("naas has no strings; comments start with `#`"),
                    '!' => diagnostic.with_help("write `not x` for negation and `!=` for inequality"),
                    ';' => diagnostic.with_help("put each statement on its own line"),
                    '@' => diagnostic.with_help("naas has no decorators or matrix multiplication"),
                    _ => diagnostic,
                }
            }
        };
        self.errors.push(diagnostic);
        Ok(())
    }
}

fn fatal(diagnostic: Diagnostic) -> LexError {
    LexError(Box::new(diagnostic))
}

impl<'s> Iterator for Lexer<'s, '_> {
    type Item = Result<Spanned<'s>, LexError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(token) = self.pending.pop_front() {
                return Some(Ok(token));
            }
            if self.finished {
                return None;
            }
            if let Err(error) = self.advance() {
                self.finished = true;
                self.pending.clear();
                return Some(Err(error));
            }
        }
    }
}

/// Lexes a whole source into tokens, for golden tests and tools. Stops at a fatal error.
pub fn tokenize(source: &str) -> (Vec<Spanned<'_>>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut tokens = Vec::new();
    for item in Lexer::new(source, &mut errors) {
        match item {
            Ok(token) => tokens.push(token),
            Err(LexError(diagnostic)) => {
                errors.push(*diagnostic);
                break;
            }
        }
    }
    (tokens, errors)
}
