//! The token enum, produced by a logos DFA. `Newline`, `Indent` and `Dedent` are produced only
//! by the layout wrapper in [`crate::lexer`], which owns the indentation stack.

use logos::Logos;
use std::fmt;

/// Why logos could not produce a token.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RawLexError {
    /// No token starts with this character.
    #[default]
    InvalidCharacter,
    /// Digits that form no valid literal, or an integer above `u64::MAX`.
    BadNumber(String),
}

fn int_literal(text: &str) -> Result<u64, RawLexError> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    let (radix, body) = match digits.get(..2) {
        Some("0x") | Some("0X") => (16, &digits[2..]),
        Some("0b") | Some("0B") => (2, &digits[2..]),
        Some("0o") | Some("0O") => (8, &digits[2..]),
        _ => (10, digits.as_str()),
    };
    if body.is_empty() {
        return Err(RawLexError::BadNumber(format!("`{text}` has no digits after its prefix")));
    }
    u64::from_str_radix(body, radix).map_err(|_| {
        RawLexError::BadNumber(format!(
            "integer literal `{text}` does not fit in 64 bits (the largest is 18446744073709551615)"
        ))
    })
}

fn float_literal(text: &str) -> Result<f64, RawLexError> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    match digits.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(RawLexError::BadNumber(format!("float literal `{text}` is out of range for f64"))),
    }
}

#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(error = RawLexError)]
#[logos(skip r"[ \t\x0C\r]+")]
#[logos(skip r"\\\r?\n")]
pub enum Token<'s> {
    #[regex(r"#[^\n]*", logos::skip, allow_greedy = true)]
    Comment,
    #[regex(r"\n")]
    RawNewline,

    /// End of a logical line (layout wrapper only).
    Newline,
    /// Start of a more indented block (layout wrapper only).
    Indent,
    /// End of an indented block (layout wrapper only).
    Dedent,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice())]
    Name(&'s str),
    #[regex(r"[0-9][0-9_]*|0[xX][0-9a-fA-F_]*|0[bB][01_]*|0[oO][0-7_]*", |lex| int_literal(lex.slice()))]
    Int(u64),
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?|[0-9][0-9_]*[eE][+-]?[0-9]+", |lex| float_literal(lex.slice()))]
    Float(f64),

    #[token("and")]
    And,
    #[token("or")]
    Or,
    #[token("not")]
    Not,
    #[token("if")]
    If,
    #[token("elif")]
    Elif,
    #[token("else")]
    Else,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("while")]
    While,
    #[token("break")]
    Break,
    #[token("continue")]
    Continue,
    #[token("return")]
    Return,
    #[token("pass")]
    Pass,
    #[token("def")]
    Def,
    #[token("class")]
    Class,
    #[token("const")]
    Const,
    #[token("aggregate")]
    Aggregate,
    #[token("True")]
    True,
    #[token("False")]
    False,
    /// Python keywords naas does not support; reserved so that they get a clear error.
    #[regex(r"import|from|lambda|with|try|except|finally|raise|yield|async|await|del|global|nonlocal|assert|is|None|as", |lex| lex.slice())]
    Unsupported(&'s str),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("->")]
    Arrow,
    #[token("=")]
    Assign,
    #[token("+=")]
    PlusAssign,
    #[token("-=")]
    MinusAssign,
    #[token("*=")]
    StarAssign,
    #[token("/=")]
    SlashAssign,
    #[token("//=")]
    FloorDivAssign,
    #[token("%=")]
    PercentAssign,
    #[token("&=")]
    AmpAssign,
    #[token("|=")]
    PipeAssign,
    #[token("^=")]
    CaretAssign,
    #[token("<<=")]
    ShlAssign,
    #[token(">>=")]
    ShrAssign,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("**")]
    StarStar,
    #[token("/")]
    Slash,
    #[token("//")]
    FloorDiv,
    #[token("%")]
    Percent,
    #[token("<<")]
    Shl,
    #[token(">>")]
    Shr,
    #[token("&")]
    Amp,
    #[token("|")]
    Pipe,
    #[token("^")]
    Caret,
    #[token("~")]
    Tilde,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Token::Comment => "comment",
            Token::RawNewline | Token::Newline => "end of line",
            Token::Indent => "indent",
            Token::Dedent => "dedent",
            Token::Name(name) => return write!(f, "name `{name}`"),
            Token::Int(value) => return write!(f, "integer `{value}`"),
            Token::Float(value) => return write!(f, "float `{value:?}`"),
            Token::Unsupported(word) => return write!(f, "keyword `{word}`"),
            Token::And => "`and`",
            Token::Or => "`or`",
            Token::Not => "`not`",
            Token::If => "`if`",
            Token::Elif => "`elif`",
            Token::Else => "`else`",
            Token::For => "`for`",
            Token::In => "`in`",
            Token::While => "`while`",
            Token::Break => "`break`",
            Token::Continue => "`continue`",
            Token::Return => "`return`",
            Token::Pass => "`pass`",
            Token::Def => "`def`",
            Token::Class => "`class`",
            Token::Const => "`const`",
            Token::Aggregate => "`aggregate`",
            Token::True => "`True`",
            Token::False => "`False`",
            Token::LParen => "`(`",
            Token::RParen => "`)`",
            Token::LBracket => "`[`",
            Token::RBracket => "`]`",
            Token::LBrace => "`{`",
            Token::RBrace => "`}`",
            Token::Comma => "`,`",
            Token::Colon => "`:`",
            Token::Dot => "`.`",
            Token::Arrow => "`->`",
            Token::Assign => "`=`",
            Token::PlusAssign => "`+=`",
            Token::MinusAssign => "`-=`",
            Token::StarAssign => "`*=`",
            Token::SlashAssign => "`/=`",
            Token::FloorDivAssign => "`//=`",
            Token::PercentAssign => "`%=`",
            Token::AmpAssign => "`&=`",
            Token::PipeAssign => "`|=`",
            Token::CaretAssign => "`^=`",
            Token::ShlAssign => "`<<=`",
            Token::ShrAssign => "`>>=`",
            Token::Plus => "`+`",
            Token::Minus => "`-`",
            Token::Star => "`*`",
            Token::StarStar => "`**`",
            Token::Slash => "`/`",
            Token::FloorDiv => "`//`",
            Token::Percent => "`%`",
            Token::Shl => "`<<`",
            Token::Shr => "`>>`",
            Token::Amp => "`&`",
            Token::Pipe => "`|`",
            Token::Caret => "`^`",
            Token::Tilde => "`~`",
            Token::EqEq => "`==`",
            Token::NotEq => "`!=`",
            Token::Lt => "`<`",
            Token::Le => "`<=`",
            Token::Gt => "`>`",
            Token::Ge => "`>=`",
        };
        f.write_str(text)
    }
}
