//! Property tests for the front end: the lexer, parser and checker never panic and report
//! spans inside the source, whatever the input; printing a syntax tree and parsing it back
//! gives the same tree; and nesting beyond the compiler's limits is a diagnostic, not a
//! stack overflow.
//!
//! The number of cases follows proptest's `PROPTEST_CASES` convention through
//! `naas_test_support::proptest_config` (CI sets 10,000); the costlier properties run a fixed
//! fraction of it. Failures are persisted to `proptest-regressions/`, so a failing input is
//! replayed first on the next run.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::fmt::Write as _;

use naas_lang::ast::{
    AggItem, AggregateDef, Arg, BinOp, Block, ClassDef, CmpOp, ConstDef, Expr, ExprKind, Field, FunctionDef, Ident,
    Item, LogicOp, Module, Param, Stmt, StmtKind, TypeExpr, TypeExprKind, UnOp,
};
use naas_lang::check::CheckOptions;
use naas_lang::diagnostics::render::render_text;
use naas_lang::parser::MAX_EXPR_HEIGHT;
use naas_lang::printer::{print_module, print_module_explicit};
use naas_lang::spanless::erase_spans;
use naas_lang::{Code, Diagnostic, Span};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

// ---- Configuration -------------------------------------------------------------------------

/// Cases for a property that costs `weight` times as much per case as the cheap ones.
fn config(weight: u32) -> ProptestConfig {
    naas_test_support::proptest_config(weight)
}

const EXAMPLES: &[(&str, &str)] = &[
    ("reduce.naas", include_str!("../../examples/reduce.naas")),
    ("histogram.naas", include_str!("../../examples/histogram.naas")),
    ("robust_mean.naas", include_str!("../../examples/robust_mean.naas")),
    ("top_k.naas", include_str!("../../examples/top_k.naas")),
];

/// Source fragments that random inputs are built from: every keyword (naas and unsupported
/// Python ones), every operator and bracket, layout, literals at and beyond their limits,
/// names the examples use, and characters no token starts with.
#[rustfmt::skip]
const FRAGMENTS: &[&str] = &[
    "def ", "class ", "const ", "aggregate ", "if ", "elif ", "else", "for ", " in ", "while ",
    "break", "continue", "return ", "pass", "and ", "or ", "not ", "True", "False", "import ",
    "from ", "lambda ", "None", " is ", "as ", "try", "yield ", "(", ")", "[", "]", "{", "}", ",",
    ":", ".", "->", "=", "+=", "-=", "*=", "/=", "//=", "%=", "&=", "|=", "^=", "<<=", ">>=", "+",
    "-", "*", "**", "/", "//", "%", "<<", ">>", "&", "|", "^", "~", "==", "!=", "<", "<=", ">",
    ">=", "\n", "\n    ", "\n        ", "    ", "  ", " ", "\t", "\r\n", "\r", "\\\n", "#",
    "# note\n", "x", "i", "sample", "range", "range(", "min(", "max(", "count()", "avg(", "sum(",
    "len(", "I64_MIN", "identity", "lift", "merge", "array[i64, 4]", "tuple[i32, f64]", "u8", "i32",
    "i64", "u64", "f64", "bool", "0", "1", "255", "4", "18446744073709551615",
    "18446744073709551616", "1.5", "1e400", "2.5e-3", "0x", "0xff", "0b102", "0o7", "1_000", "K",
    "BUCKETS", "LIMIT", "$", "\"", "'", "!", "@", ";", "é", "\u{feff}", "\u{a0}",
];

// ---- Shared checks -------------------------------------------------------------------------

/// Every label of every diagnostic lies within `source`, on character boundaries.
fn check_diagnostic_spans(source: &str, diagnostics: &[Diagnostic]) -> Result<(), TestCaseError> {
    for diagnostic in diagnostics {
        for label in std::iter::once(&diagnostic.primary).chain(&diagnostic.secondary) {
            let Span { lo, hi } = label.span;
            let (lo, hi) = (lo as usize, hi as usize);
            prop_assert!(
                lo <= hi && hi <= source.len(),
                "{} span {lo}..{hi} is outside the source of {} bytes: {diagnostic:?}",
                diagnostic.code.as_str(),
                source.len()
            );
            prop_assert!(
                source.is_char_boundary(lo) && source.is_char_boundary(hi),
                "{} span {lo}..{hi} splits a character: {diagnostic:?}",
                diagnostic.code.as_str()
            );
        }
    }
    Ok(())
}

/// Runs the whole front end on `source`, checks the spans of what it reports, and renders
/// some of the diagnostics (the renderer must cope with whatever spans the front end produces).
fn run_frontend(source: &str) -> Result<bool, TestCaseError> {
    let (ok, diagnostics) = match naas_lang::frontend(source, &CheckOptions::default()) {
        Ok((_, warnings)) => (true, warnings),
        Err(errors) => {
            prop_assert!(!errors.is_empty(), "the front end failed without a diagnostic");
            (false, errors)
        }
    };
    check_diagnostic_spans(source, &diagnostics)?;
    // Rendering costs about a millisecond per diagnostic in a debug build and generated
    // programs can have hundreds, so only the first diagnostic of each code is rendered.
    let mut rendered = Vec::new();
    for diagnostic in &diagnostics {
        if rendered.contains(&diagnostic.code) || rendered.len() >= 8 {
            continue;
        }
        rendered.push(diagnostic.code);
        let text = render_text(diagnostic, "input.naas", source, false);
        prop_assert!(text.contains(diagnostic.code.as_str()), "rendered diagnostic lacks its code:\n{text}");
    }
    Ok(ok)
}

// ---- The lexer -----------------------------------------------------------------------------

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => any::<u8>(),
        3 => 0x20u8..0x7f,
        1 => Just(b'\n'),
        1 => Just(b' '),
    ];
    prop::collection::vec(byte, 0..400)
}

proptest! {
    #![proptest_config(config(1))]

    #[test]
    fn lexer_never_panics_on_arbitrary_bytes(bytes in bytes()) {
        let source = String::from_utf8_lossy(&bytes);
        let (tokens, diagnostics) = naas_lang::lexer::tokenize(&source);
        let mut previous = 0;
        for (lo, token, hi) in &tokens {
            prop_assert!(lo <= hi && *hi <= source.len(), "token {token:?} at {lo}..{hi} is outside {} bytes", source.len());
            prop_assert!(*lo >= previous, "token {token:?} at {lo}..{hi} starts before the previous token at {previous}");
            previous = *lo;
        }
        check_diagnostic_spans(&source, &diagnostics)?;
    }
}

// ---- The whole front end on arbitrary text -------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        3 => r"[a-z_A-Z0-9 \n\t()\[\]:,.=+\-*/%<>&|^~#]{0,12}",
        1 => r"[ \n]{1,9}",
        2 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
    ];
    // Half the inputs get their brackets balanced, so that they get past the lexer's fatal
    // bracket errors and into the parser and checker.
    (prop::collection::vec(fragment, 0..40), any::<bool>()).prop_map(|(parts, balance)| {
        if balance {
            balance_brackets(&parts.concat())
        } else {
            parts.concat()
        }
    })
}

/// Drops closing brackets that match no opener and closes the ones left open.
fn balance_brackets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open = Vec::new();
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => open.push(c),
            ')' | ']' | '}' => {
                let partner = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if open.last() != Some(&partner) {
                    continue;
                }
                open.pop();
            }
            _ => {}
        }
        out.push(c);
    }
    out.extend(open.iter().rev().map(|c| match c {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }));
    out
}

proptest! {
    #![proptest_config(config(1))]

    #[test]
    fn frontend_never_panics_on_arbitrary_text(source in text()) {
        run_frontend(&source)?;
    }
}

// ---- Runs of invalid characters and long lines -------------------------------------------

/// Sources made of runs: invalid characters (repeated), spaces, names and newlines, with
/// lines up to a few thousand characters.
fn runs() -> impl Strategy<Value = String> {
    let run = prop_oneof![
        3 => (prop::sample::select(vec!["$", "?", "`", "é$", "!", "\u{a0}"]), 1usize..600).prop_map(|(c, n)| c.repeat(n)),
        2 => (1usize..40).prop_map(|n| " ".repeat(n)),
        2 => prop::sample::select(vec!["x", "def", "1", "(", ")", "= 1", "return"]).prop_map(str::to_string),
        1 => Just("\n".to_string()),
    ];
    prop::collection::vec(run, 0..40).prop_map(|runs| runs.concat())
}

proptest! {
    #![proptest_config(config(1))]

    /// Adjacent invalid characters make one diagnostic, lexing stops after
    /// `MAX_LEX_ERRORS`, and every excerpt line is cut to a bounded width.
    #[test]
    fn invalid_character_runs_give_few_short_diagnostics(source in runs()) {
        let (_, diagnostics) = naas_lang::lexer::tokenize(&source);
        check_diagnostic_spans(&source, &diagnostics)?;
        let mut invalid: Vec<Span> =
            diagnostics.iter().filter(|d| d.code == Code::E0001).map(|d| d.primary.span).collect();
        invalid.sort_by_key(|span| span.lo);
        for pair in invalid.windows(2) {
            prop_assert!(pair[0].hi < pair[1].lo, "adjacent runs were not coalesced: {pair:?}");
        }
        prop_assert!(diagnostics.len() <= naas_lang::lexer::MAX_LEX_ERRORS + 1);
        let renderer = naas_lang::diagnostics::render::TextRenderer::new("input.naas", &source, false);
        for diagnostic in diagnostics.iter().take(8) {
            let text = renderer.render(diagnostic);
            prop_assert!(text.contains(diagnostic.code.as_str()), "{text}");
            let limit = naas_lang::diagnostics::render::MAX_SNIPPET_LINE_CHARS + 2 * naas_lang::diagnostics::MAX_TEXT_CHARS;
            for line in text.lines() {
                prop_assert!(line.chars().count() <= limit, "an excerpt line of {} characters", line.chars().count());
            }
            if source.lines().all(|line| line.chars().count() <= 100) {
                continue;
            }
            // Excerpt lines (` N │ text`) are windows, not whole lines.
            for line in text.lines().filter(|line| line.contains(" │ ") && !line.trim_start().starts_with('│')) {
                prop_assert!(line.chars().count() <= naas_lang::diagnostics::render::MAX_SNIPPET_LINE_CHARS + 16, "{line}");
            }
        }
    }
}

// ---- The whole front end on mutated examples -----------------------------------------------

#[derive(Clone, Debug)]
enum Mutation {
    Delete {
        at: Index,
        len: usize,
    },
    Insert {
        at: Index,
        fragment: &'static str,
    },
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Reindent {
        line: Index,
        indent: &'static str,
    },
    ReplaceWord {
        at: Index,
        fragment: &'static str,
    },
    /// Replaces the word, number or operator at or after `at` with another of its kind, which
    /// keeps the program parseable more often and so reaches the checker.
    Substitute {
        at: Index,
        choice: Index,
    },
}

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "x", "i", "j", "n", "a", "b", "out", "sample", "delay", "lo", "hi", "h", "identity", "lift",
    "merge", "bucket", "clamp", "range", "min", "max", "avg", "count", "sum", "len", "abs", "all",
    "any", "float", "int", "list", "I64_MIN", "U32_MAX", "F64_MAX", "K", "BUCKETS", "LIMIT",
    "Latency", "micros", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64",
    "bool", "array", "tuple", "True", "False", "and", "or", "not", "return", "pass", "break",
    "continue", "if", "else", "for", "in", "while", "def", "const",
];
#[rustfmt::skip]
const NUMBERS: &[&str] = &[
    "0", "1", "2", "3", "4", "7", "8", "64", "255", "256", "1000", "65535", "2147483648",
    "9223372036854775807", "9223372036854775808", "18446744073709551615", "0.0", "0.5", "1.0",
    "1e308", "0x10", "0b1", "1_0",
];
#[rustfmt::skip]
const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^", "~", "==", "!=", "<", "<=",
    ">", ">=", "=", "+=", "-=", "//=", "->",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let fragment = || prop::sample::select(FRAGMENTS);
    prop_oneof![
        2 => (any::<Index>(), 1usize..24).prop_map(|(at, len)| Mutation::Delete { at, len }),
        4 => (any::<Index>(), fragment()).prop_map(|(at, fragment)| Mutation::Insert { at, fragment }),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        2 => (any::<Index>(), prop::sample::select(&["", " ", "  ", "   ", "    ", "     ", "        ", "\t", "    \t"][..]))
            .prop_map(|(line, indent)| Mutation::Reindent { line, indent }),
        2 => (any::<Index>(), fragment()).prop_map(|(at, fragment)| Mutation::ReplaceWord { at, fragment }),
        6 => (any::<Index>(), any::<Index>()).prop_map(|(at, choice)| Mutation::Substitute { at, choice }),
    ]
}

fn mutate(source: &str, mutation: &Mutation) -> String {
    let mut bytes = source.as_bytes().to_vec();
    let mut lines: Vec<&str> = source.split_inclusive('\n').collect();
    match mutation {
        Mutation::Delete { at, len } => {
            let start = at.index(bytes.len() + 1);
            let end = (start + len).min(bytes.len());
            bytes.drain(start..end);
        }
        Mutation::Insert { at, fragment } => {
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, fragment.bytes());
        }
        Mutation::ReplaceWord { at, fragment } => {
            // Replace the run of word characters (or the single other byte) at `at`.
            if !bytes.is_empty() {
                let start = at.index(bytes.len());
                let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
                let len = bytes[start..].iter().take_while(|b| word(b)).count().max(1);
                bytes.splice(start..start + len, fragment.bytes());
            }
        }
        Mutation::Substitute { at, choice } => {
            let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
            let operator = |b: u8| b"+-*/%<>=!&|^~".contains(&b);
            let starts_token = |i: usize| {
                let b = bytes[i];
                let previous = i.checked_sub(1).map(|j| bytes[j]);
                (word(b) && !previous.is_some_and(word)) || (operator(b) && !previous.is_some_and(operator))
            };
            if !bytes.is_empty() {
                let from = at.index(bytes.len());
                let start = (from..bytes.len()).chain(0..from).find(|&i| starts_token(i));
                if let Some(start) = start {
                    let first = bytes[start];
                    let (class, len): (&[&str], usize) = if first.is_ascii_digit() {
                        (NUMBERS, bytes[start..].iter().take_while(|&&b| word(b) || b == b'.').count())
                    } else if word(first) {
                        (WORDS, bytes[start..].iter().take_while(|&&b| word(b)).count())
                    } else {
                        (OPERATORS, bytes[start..].iter().take_while(|&&b| operator(b)).count())
                    };
                    bytes.splice(start..start + len, choice.get(class).bytes());
                }
            }
        }
        Mutation::DuplicateLine(line) if !lines.is_empty() => {
            let i = line.index(lines.len());
            lines.insert(i, lines[i]);
            bytes = lines.concat().into_bytes();
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
            bytes = lines.concat().into_bytes();
        }
        Mutation::Reindent { line, indent } if !lines.is_empty() => {
            let i = line.index(lines.len());
            let text = format!("{indent}{}", lines[i].trim_start_matches([' ', '\t']));
            let mut out = String::new();
            for (j, original) in lines.iter().enumerate() {
                out.push_str(if j == i { &text } else { original });
            }
            bytes = out.into_bytes();
        }
        Mutation::DuplicateLine(_) | Mutation::SwapLines(..) | Mutation::Reindent { .. } => {}
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn unmutated_examples_check_ok() {
    for (name, source) in EXAMPLES {
        if let Err(errors) = naas_lang::frontend(source, &CheckOptions::default()) {
            let report: String = errors.iter().map(|d| render_text(d, name, source, false)).collect();
            panic!("{name} does not check:\n{report}");
        }
    }
}

proptest! {
    #![proptest_config(config(1))]

    #[test]
    fn frontend_never_panics_on_mutated_examples(
        example in 0..EXAMPLES.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut source = EXAMPLES[example].1.to_string();
        for mutation in &mutations {
            source = mutate(&source, mutation);
        }
        run_frontend(&source)?;
    }
}

// ---- Printing then parsing -----------------------------------------------------------------

/// Names that are not keywords; several start with one, to exercise longest-match lexing.
#[rustfmt::skip]
const NAMES: &[&str] = &[
    "a", "b", "x", "y", "n", "i", "k", "acc", "total", "_", "_tmp", "x1", "e", "e1", "E5",
    "Latency", "I64_MIN", "range", "min", "len", "iff", "ifx", "nota", "orr", "andy", "format",
    "inn", "isx", "Nonex", "Truey", "False_", "defs", "classy", "pass_", "returned", "asx", "elifs",
];
const TYPE_NAMES: &[&str] = &["i32", "i64", "u8", "u64", "f64", "bool", "Latency", "T"];

fn ident(name: &str) -> Ident {
    Ident { name: name.to_string(), span: Span::default() }
}

fn expr(kind: ExprKind) -> Expr {
    Expr { kind, span: Span::default(), ty: () }
}

fn stmt(kind: StmtKind) -> Stmt {
    Stmt { kind, span: Span::default() }
}

fn name() -> impl Strategy<Value = Ident> + Clone {
    prop::sample::select(NAMES).prop_map(ident)
}

fn name_expr() -> impl Strategy<Value = Expr> + Clone {
    prop::sample::select(NAMES).prop_map(|name| expr(ExprKind::Name(name.to_string())))
}

fn float() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![
        prop::sample::select(&[0.0, 0.5, 1.0, 2.5, 1e-7, 1e16, 1e20, 123_456.789, f64::MAX, f64::MIN_POSITIVE][..]),
        POSITIVE | NORMAL | SUBNORMAL | ZERO,
    ]
}

fn leaf() -> impl Strategy<Value = Expr> + Clone {
    prop_oneof![
        3 => (0u64..1000).prop_map(|n| expr(ExprKind::Int(i128::from(n)))),
        1 => any::<u64>().prop_map(|n| expr(ExprKind::Int(i128::from(n)))),
        1 => Just(expr(ExprKind::Int(i128::from(u64::MAX)))),
        2 => float().prop_map(|f| expr(ExprKind::Float(f))),
        1 => any::<bool>().prop_map(|b| expr(ExprKind::Bool(b))),
        5 => name_expr(),
    ]
}

fn un_op() -> impl Strategy<Value = UnOp> + Clone {
    prop::sample::select(&[UnOp::Neg, UnOp::Pos, UnOp::Not, UnOp::BitNot][..])
}

const BIN_OPS: &[BinOp] = &[
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::Div,
    BinOp::FloorDiv,
    BinOp::Mod,
    BinOp::Pow,
    BinOp::Shl,
    BinOp::Shr,
    BinOp::BitAnd,
    BinOp::BitOr,
    BinOp::BitXor,
];

fn bin_op() -> impl Strategy<Value = BinOp> + Clone {
    prop::sample::select(BIN_OPS)
}

/// The operators with an augmented-assignment form (all but `**`).
fn aug_op() -> impl Strategy<Value = BinOp> + Clone {
    prop::sample::select(BIN_OPS).prop_filter("no **=", |op| *op != BinOp::Pow)
}

fn cmp_op() -> impl Strategy<Value = CmpOp> + Clone {
    prop::sample::select(&[CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge][..])
}

fn logic_op() -> impl Strategy<Value = LogicOp> + Clone {
    prop::sample::select(&[LogicOp::And, LogicOp::Or][..])
}

/// Expressions of every kind the parser produces, at most `depth + 1` levels tall. Comparisons
/// are single (the parser desugars chains into `and`), tuples are never empty (`()` is not
/// an expression), and literals are non-negative (a minus sign is a unary operator).
fn expr_of_depth(depth: u32) -> BoxedStrategy<Expr> {
    leaf()
        .prop_recursive(depth, 64, 4, |inner| {
            let arg = prop_oneof![
                2 => inner.clone().prop_map(Arg::Positional),
                1 => (name(), inner.clone()).prop_map(|(name, value)| Arg::Keyword(name, value)),
            ];
            prop_oneof![
                2 => (un_op(), inner.clone()).prop_map(|(op, e)| expr(ExprKind::Unary(op, Box::new(e)))),
                4 => (bin_op(), inner.clone(), inner.clone())
                    .prop_map(|(op, a, b)| expr(ExprKind::Binary(op, Box::new(a), Box::new(b)))),
                2 => (cmp_op(), inner.clone(), inner.clone())
                    .prop_map(|(op, a, b)| expr(ExprKind::Compare(op, Box::new(a), Box::new(b)))),
                2 => (logic_op(), inner.clone(), inner.clone())
                    .prop_map(|(op, a, b)| expr(ExprKind::Logic(op, Box::new(a), Box::new(b)))),
                1 => (inner.clone(), inner.clone(), inner.clone()).prop_map(|(cond, then, orelse)| {
                    expr(ExprKind::IfElse { cond: Box::new(cond), then: Box::new(then), orelse: Box::new(orelse) })
                }),
                2 => (name(), prop::collection::vec(arg, 0..4)).prop_map(|(func, args)| expr(ExprKind::Call { func, args })),
                1 => (inner.clone(), inner.clone()).prop_map(|(a, i)| expr(ExprKind::Index(Box::new(a), Box::new(i)))),
                1 => (inner.clone(), name()).prop_map(|(a, f)| expr(ExprKind::Field(Box::new(a), f))),
                1 => prop::collection::vec(inner.clone(), 1..4).prop_map(|items| expr(ExprKind::Tuple(items))),
                1 => prop::collection::vec(inner, 0..4).prop_map(|items| expr(ExprKind::Array(items))),
            ]
        })
        .boxed()
}

fn any_expr() -> BoxedStrategy<Expr> {
    expr_of_depth(5)
}

fn small_expr() -> BoxedStrategy<Expr> {
    expr_of_depth(2)
}

fn type_expr() -> impl Strategy<Value = TypeExpr> + Clone {
    let named = prop::sample::select(TYPE_NAMES).prop_map(|name| TypeExprKind::Named(ident(name)));
    let arg = prop_oneof![
        2 => prop::sample::select(TYPE_NAMES).prop_map(|name| expr(ExprKind::Name(name.to_string()))),
        1 => (0u64..100).prop_map(|n| expr(ExprKind::Int(i128::from(n)))),
        1 => small_expr(),
    ];
    let apply = (prop::sample::select(&["array", "tuple"][..]), prop::collection::vec(arg, 0..4))
        .prop_map(|(head, args)| TypeExprKind::Apply { head: ident(head), args });
    prop_oneof![3 => named, 1 => apply].prop_map(|kind| TypeExpr { kind, span: Span::default() })
}

/// Assignable places: a name, an element, a field.
fn place() -> impl Strategy<Value = Expr> + Clone {
    prop_oneof![
        3 => name_expr(),
        1 => (name_expr(), small_expr()).prop_map(|(a, i)| expr(ExprKind::Index(Box::new(a), Box::new(i)))),
        1 => (name_expr(), name()).prop_map(|(a, f)| expr(ExprKind::Field(Box::new(a), f))),
    ]
}

fn simple_stmt() -> impl Strategy<Value = Stmt> + Clone {
    let target = prop_oneof![
        3 => place(),
        1 => prop::collection::vec(place(), 1..4).prop_map(|items| expr(ExprKind::Tuple(items))),
    ];
    prop_oneof![
        1 => any_expr().prop_map(StmtKind::Expr),
        4 => (target, any_expr()).prop_map(|(target, value)| StmtKind::Assign { target, value }),
        2 => (name(), type_expr(), prop::option::of(any_expr()))
            .prop_map(|(target, ty, value)| StmtKind::AnnAssign { target, ty, value }),
        2 => (place(), aug_op(), any_expr()).prop_map(|(target, op, value)| StmtKind::AugAssign { target, op, value }),
        2 => prop::option::of(any_expr()).prop_map(StmtKind::Return),
        1 => Just(StmtKind::Pass),
        1 => Just(StmtKind::Break),
        1 => Just(StmtKind::Continue),
    ]
    .prop_map(stmt)
}

/// Statements with blocks nested at most three deep.
fn any_stmt() -> BoxedStrategy<Stmt> {
    simple_stmt()
        .prop_recursive(3, 24, 4, |inner| {
            let block = || prop::collection::vec(inner.clone(), 1..4);
            prop_oneof![
                2 => (prop::collection::vec((any_expr(), block()), 1..4), prop::option::of(block()))
                    .prop_map(|(branches, orelse)| StmtKind::If { branches, orelse }),
                1 => (name(), any_expr(), block()).prop_map(|(var, iter, body)| StmtKind::For { var, iter, body }),
                1 => (any_expr(), block()).prop_map(|(cond, body)| StmtKind::While { cond, body }),
            ]
            .prop_map(stmt)
        })
        .boxed()
}

fn block() -> impl Strategy<Value = Block> {
    prop::collection::vec(any_stmt(), 1..5)
}

fn params() -> impl Strategy<Value = Vec<Param>> {
    prop::collection::vec((name(), prop::option::of(type_expr())).prop_map(|(name, ty)| Param { name, ty }), 0..4)
}

fn function() -> impl Strategy<Value = FunctionDef> {
    (name(), params(), prop::option::of(type_expr()), block()).prop_map(|(name, params, ret, body)| FunctionDef {
        name,
        params,
        ret,
        body,
        span: Span::default(),
    })
}

fn item() -> impl Strategy<Value = Item> {
    let const_def = (name(), prop::option::of(type_expr()), any_expr())
        .prop_map(|(name, ty, value)| Item::Const(ConstDef { name, ty, value, span: Span::default() }));
    let class_def =
        (name(), prop::collection::vec((name(), type_expr()).prop_map(|(name, ty)| Field { name, ty }), 1..4))
            .prop_map(|(name, fields)| Item::Class(ClassDef { name, fields, span: Span::default() }));
    let agg_item = prop_oneof![1 => function().prop_map(AggItem::Def), 1 => any_stmt().prop_map(AggItem::Stmt)];
    let aggregate = (name(), params(), prop::option::of(type_expr()), prop::collection::vec(agg_item, 1..4)).prop_map(
        |(name, params, ret, body)| Item::Aggregate(AggregateDef { name, params, ret, body, span: Span::default() }),
    );
    prop_oneof![
        2 => const_def,
        1 => class_def,
        3 => function().prop_map(Item::Function),
        1 => aggregate,
    ]
}

fn module() -> impl Strategy<Value = Module> {
    prop::collection::vec(item(), 0..5).prop_map(|items| Module { items })
}

/// Parses printed text, or fails with the text and the diagnostics.
fn parse_printed(text: &str, how: &str) -> Result<Module, TestCaseError> {
    naas_lang::parse(text).map_err(|errors| {
        let report: String = errors.iter().map(|d| render_text(d, "printed.naas", text, false)).collect();
        TestCaseError::fail(format!("{how} printed program does not parse:\n{text}\n{report}"))
    })
}

/// Prints `module` minimally parenthesised (and, if `explicit`, fully parenthesised), parses
/// the text back, and compares the trees without their spans. Full parenthesisation nests a
/// bracket per level, so it only re-parses for trees at most `MAX_BRACKET_DEPTH` tall.
fn round_trip(module: &Module, explicit: bool) -> Result<(), TestCaseError> {
    let mut expected = module.clone();
    erase_spans(&mut expected);

    let text = print_module(module);
    let mut parsed = parse_printed(&text, "minimally parenthesised")?;
    erase_spans(&mut parsed);
    prop_assert_eq!(&parsed, &expected, "printed program parses to a different tree:\n{}", text);
    prop_assert_eq!(print_module(&parsed), text, "printing is not stable");

    if !explicit {
        return Ok(());
    }
    let explicit = print_module_explicit(module);
    let mut parsed = parse_printed(&explicit, "fully parenthesised")?;
    erase_spans(&mut parsed);
    prop_assert_eq!(&parsed, &expected, "explicit printing parses to a different tree:\n{}", explicit);
    Ok(())
}

proptest! {
    #![proptest_config(config(3))]

    #[test]
    fn printing_then_parsing_gives_the_same_tree(module in module()) {
        round_trip(&module, true)?;
    }
}

proptest! {
    #![proptest_config(config(5))]

    /// Generated programs parse, so this drives the checker over every syntactic form, in
    /// combinations no hand-written test has (mostly ill-typed ones).
    #[test]
    fn checker_never_panics_on_generated_programs(module in module()) {
        run_frontend(&print_module(&module))?;
    }
}

#[test]
fn examples_round_trip_through_the_printer() {
    for (name, source) in EXAMPLES {
        let module = naas_lang::parse(source).unwrap_or_else(|errors| panic!("{name} does not parse: {errors:?}"));
        round_trip(&module, true).unwrap_or_else(|error| panic!("{name}: {error}"));
    }
}

// ---- Nesting limits ------------------------------------------------------------------------

/// Wraps an expression in a function body.
fn in_function(expression: &str) -> String {
    format!("def f(a: bool, b: bool) -> i64:\n    return {expression}\n")
}

/// The front end rejects `source` with E0006 (and with nothing out of range).
fn assert_too_deep(what: &str, source: &str) {
    let errors = match naas_lang::frontend(source, &CheckOptions::default()) {
        Ok(_) => panic!("{what}: accepted"),
        Err(errors) => errors,
    };
    assert!(
        errors.iter().any(|d| d.code == Code::E0006),
        "{what}: expected E0006, got {:?}",
        errors.iter().map(|d| (d.code, &d.message)).collect::<Vec<_>>()
    );
    check_diagnostic_spans(source, &errors).unwrap_or_else(|error| panic!("{what}: {error}"));
    // Rendering scans the whole source per diagnostic (seconds for the 50 MB nested-blocks
    // input in a debug build), so only the smaller inputs are rendered.
    if source.len() < 1 << 20 {
        for diagnostic in &errors {
            render_text(diagnostic, "deep.naas", source, false);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let n = 20_000;
    assert_too_deep("nested parentheses", &in_function(&format!("{}1{}", "(".repeat(n), ")".repeat(n))));
    assert_too_deep("nested brackets", &in_function(&format!("{}1{}", "[".repeat(n), "]".repeat(n))));
    assert_too_deep("nested calls", &in_function(&format!("{}1{}", "f(".repeat(n), ")".repeat(n))));

    assert_too_deep("long sum", &in_function(&vec!["1"; 100_000].join(" + ")));
    assert_too_deep("long `and` chain", &in_function(&vec!["a"; 100_000].join(" and ")));
    assert_too_deep("long comparison chain", &in_function(&vec!["1"; 100_000].join(" < ")));
    assert_too_deep("long index chain", &in_function(&format!("a{}", "[0]".repeat(100_000))));
    assert_too_deep("long field chain", &in_function(&format!("a{}", ".b".repeat(100_000))));

    assert_too_deep("unary minus", &in_function(&format!("{}1", "-".repeat(50_000))));
    assert_too_deep("unary mix", &in_function(&format!("{}1", "-+~".repeat(20_000))));
    assert_too_deep("`not`", &in_function(&format!("{}a", "not ".repeat(50_000))));
    assert_too_deep("`**`", &in_function(&vec!["2"; 50_000].join(" ** ")));

    assert_too_deep("`if`-`else` chain", &in_function(&format!("{}a", "a if b else ".repeat(5_000))));
    assert_too_deep("tuple of deep items", &in_function(&format!("1, {}1", "-".repeat(50_000))));

    // 10,000 nested blocks, one more space of indentation each.
    let mut source = String::from("def f(a: bool) -> i64:\n");
    for depth in 1..=10_000 {
        source.push_str(&" ".repeat(depth));
        source.push_str("if a:\n");
    }
    source.push_str(&" ".repeat(10_001));
    source.push_str("return 1\n");
    assert_too_deep("nested blocks", &source);
}

/// Expressions exactly as tall as the parser allows, and blocks exactly as deep, go through
/// every pass (checker, printer, renderer) on the default test thread's stack.
#[test]
fn deepest_accepted_nesting_does_not_overflow_the_stack() {
    let height = MAX_EXPR_HEIGHT as usize;
    let shapes = [
        ("sum", vec!["1"; height].join(" + ")),
        ("calls around a sum", format!("{}{}{}", "g(".repeat(60), vec!["1"; height - 60].join(" + "), ")".repeat(60))),
        ("unary minus", format!("{}1", "-".repeat(height - 1))),
        ("bitwise not", format!("{}1", "~".repeat(height - 1))),
        ("`not`", format!("{}a", "not ".repeat(height - 1))),
        ("`and` chain", vec!["a"; height].join(" and ")),
        ("`if`-`else` chain", format!("{}1", "1 if a else ".repeat(height - 1))),
        ("index chain", format!("[1]{}", "[0]".repeat(height - 2))),
        ("`**`", vec!["2"; height].join(" ** ")),
    ];
    for (what, expression) in &shapes {
        let source = in_function(expression);
        let module = naas_lang::parse(&source).unwrap_or_else(|errors| panic!("{what}: does not parse: {errors:?}"));
        round_trip(&module, false).unwrap_or_else(|error| panic!("{what}: {error}"));
        run_frontend(&source).unwrap_or_else(|error| panic!("{what}: {error}"));
    }

    // The deepest blocks, with the tallest expression innermost.
    let depth = naas_lang::lexer::MAX_BLOCK_DEPTH;
    let mut source = String::from("def f(a: bool) -> i64:\n");
    for level in 1..depth {
        let _ = writeln!(source, "{}if a:", "    ".repeat(level));
    }
    let _ = writeln!(source, "{}return {}", "    ".repeat(depth), vec!["1"; height].join(" + "));
    let _ = writeln!(source, "    return 0");
    let module = naas_lang::parse(&source).unwrap_or_else(|errors| panic!("deepest blocks do not parse: {errors:?}"));
    round_trip(&module, false).unwrap_or_else(|error| panic!("deepest blocks: {error}"));
    run_frontend(&source).unwrap_or_else(|error| panic!("deepest blocks: {error}"));
}
