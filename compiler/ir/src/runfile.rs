//! The run-test file format, shared by the interpreter's tests and every backend's: a
//! `.naas` program whose header comments state calls and their expected results, in the
//! spirit of Cranelift's `; run:` lines:
//!
//! ```text
//! # run: floordiv(-7, 2) == -4
//! # run: floordiv(1, 0) faults "integer division by zero"
//! ```
//!
//! Arguments and results are literals: integers, floats (`inf`, `-inf`, `nan` included),
//! `True`/`False`, arrays `[...]` and tuples `(...)`. They are typed by the function's
//! signature. Float results compare bit for bit (so `-0.0` differs from `0.0`).

use naas_lang::check::Program;
use naas_lang::internal::InternalError;
use naas_lang::types::Type;
use naas_lang::value::Value;

use crate::decompose::value_slots;
use crate::interp::Slot;

/// A literal as written in a run line, before it is given a type.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Int(i128),
    Float(f64),
    Bool(bool),
    List(Vec<Literal>),
    Tuple(Vec<Literal>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    Value(Literal),
    /// The call faults with a message containing this text.
    Fault(String),
}

/// One `# run:` line.
#[derive(Clone, Debug, PartialEq)]
pub struct RunLine {
    pub line: usize,
    pub function: String,
    pub args: Vec<Literal>,
    pub expected: Expected,
}

/// A run line resolved against a program: arguments and expected results as slots.
#[derive(Clone, Debug)]
pub struct RunCase {
    pub line: usize,
    pub function: String,
    pub args: Vec<Slot>,
    pub expected: Outcome,
}

/// What a resolved run line expects of the call.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// These results, one slot per result leaf.
    Values(Vec<Slot>),
    /// A fault whose message contains this text.
    Fault(String),
}

/// A run line that cannot be read or does not fit its program.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RunFileError {
    #[error("line {line}: {error}")]
    Syntax { line: usize, error: SyntaxError },
    #[error("line {line}: no function `{function}`")]
    NoFunction { line: usize, function: String },
    #[error("line {line}: `{function}` takes {count} arguments")]
    ArgumentCount { line: usize, function: String, count: usize },
    #[error("line {line}: {error}")]
    Type { line: usize, error: LiteralTypeError },
    /// A typed literal did not flatten into slots: a compiler bug.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// What is wrong with the text of a run line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("expected a function name")]
    ExpectedName,
    #[error("expected `{expected}` at `{found}`")]
    Expected { expected: char, found: String },
    #[error("expected `== value` or `faults \"message\"`, found `{found}`")]
    ExpectedOutcome { found: String },
    #[error("bad float `{0}`")]
    BadFloat(String),
    #[error("bad literal `{0}`")]
    BadLiteral(String),
}

/// A literal that is not a value of the type the function's signature gives it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{literal:?} is not a value of type `{ty}`")]
pub struct LiteralTypeError {
    pub literal: Literal,
    pub ty: Type,
}

/// Reads the `# run:` lines of a source file.
pub fn parse_run_lines(source: &str) -> Result<Vec<RunLine>, RunFileError> {
    let mut lines = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let Some(spec) = line.trim_start().strip_prefix("# run:") else { continue };
        let at = |error: SyntaxError| RunFileError::Syntax { line: number + 1, error };
        let mut parser = LiteralParser { text: spec.trim(), pos: 0 };
        let function = parser.name().ok_or(SyntaxError::ExpectedName).map_err(at)?;
        parser.expect('(').map_err(at)?;
        let args = parser.items(')').map_err(at)?;
        parser.skip_space();
        let rest = parser.rest();
        let expected = if let Some(value) = rest.strip_prefix("==") {
            let mut value_parser = LiteralParser { text: value.trim(), pos: 0 };
            let literal = value_parser.literal().map_err(at)?;
            Expected::Value(literal)
        } else if let Some(message) = rest.strip_prefix("faults") {
            Expected::Fault(message.trim().trim_matches('"').to_string())
        } else {
            return Err(at(SyntaxError::ExpectedOutcome { found: rest.to_string() }));
        };
        lines.push(RunLine { line: number + 1, function, args, expected });
    }
    Ok(lines)
}

/// Types a run line's literals by the named function's signature.
pub fn resolve(program: &Program, line: &RunLine) -> Result<RunCase, RunFileError> {
    let function = program
        .functions
        .iter()
        .find(|f| f.name == line.function)
        .ok_or_else(|| RunFileError::NoFunction { line: line.line, function: line.function.clone() })?;
    let params: Vec<&Type> = function.param_types().collect();
    if params.len() != line.args.len() {
        return Err(RunFileError::ArgumentCount {
            line: line.line,
            function: line.function.clone(),
            count: params.len(),
        });
    }
    let at = |error: LiteralTypeError| RunFileError::Type { line: line.line, error };
    let mut args = Vec::new();
    for (literal, ty) in line.args.iter().zip(params) {
        let value = typed(literal, ty).map_err(at)?;
        args.extend(value_slots(&value, ty)?);
    }
    let expected = match &line.expected {
        Expected::Value(literal) => {
            let value = typed(literal, &function.ret).map_err(at)?;
            Outcome::Values(value_slots(&value, &function.ret)?)
        }
        Expected::Fault(message) => Outcome::Fault(message.clone()),
    };
    Ok(RunCase { line: line.line, function: line.function.clone(), args, expected })
}

/// Gives a literal the type `ty`.
pub fn typed(literal: &Literal, ty: &Type) -> Result<Value, LiteralTypeError> {
    match (literal, ty) {
        (Literal::Int(v), Type::Int(int)) if int.contains(*v) => Ok(Value::Int(*int, *v)),
        (Literal::Int(v), Type::Float(float)) => Ok(Value::Float(*float, naas_lang::ops::int_to_float(*float, *v))),
        (Literal::Float(v), Type::Float(float)) => Ok(Value::Float(*float, naas_lang::ops::float_round(*float, *v))),
        (Literal::Bool(b), Type::Bool) => Ok(Value::Bool(*b)),
        (Literal::List(items), Type::Array(elem, len)) if items.len() == *len as usize => {
            Ok(Value::Array(items.iter().map(|item| typed(item, elem)).collect::<Result<_, _>>()?))
        }
        (Literal::Tuple(items), Type::Tuple(types)) if items.len() == types.len() => {
            Ok(Value::Tuple(items.iter().zip(types).map(|(item, ty)| typed(item, ty)).collect::<Result<_, _>>()?))
        }
        (Literal::Tuple(items), Type::Record(record)) if items.len() == record.fields.len() => Ok(Value::Record(
            record.clone(),
            items.iter().zip(&record.fields).map(|(item, (_, ty))| typed(item, ty)).collect::<Result<_, _>>()?,
        )),
        (literal, ty) => Err(LiteralTypeError { literal: literal.clone(), ty: ty.clone() }),
    }
}

struct LiteralParser<'a> {
    text: &'a str,
    pos: usize,
}

impl LiteralParser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        while self.rest().starts_with(' ') {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), SyntaxError> {
        self.skip_space();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(SyntaxError::Expected { expected: c, found: self.rest().to_string() })
        }
    }

    fn name(&mut self) -> Option<String> {
        self.skip_space();
        let len = self.rest().find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(self.rest().len());
        if len == 0 {
            return None;
        }
        let name = self.rest()[..len].to_string();
        self.pos += len;
        Some(name)
    }

    fn items(&mut self, close: char) -> Result<Vec<Literal>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if self.rest().starts_with(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.literal()?);
            self.skip_space();
            if self.rest().starts_with(',') {
                self.pos += 1;
            } else {
                self.expect(close)?;
                return Ok(items);
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, SyntaxError> {
        self.skip_space();
        let rest = self.rest();
        if rest.starts_with('[') {
            self.pos += 1;
            return Ok(Literal::List(self.items(']')?));
        }
        if rest.starts_with('(') {
            self.pos += 1;
            return Ok(Literal::Tuple(self.items(')')?));
        }
        let len = rest.find([',', ')', ']', ' ']).unwrap_or(rest.len());
        let word = rest[..len].to_string();
        self.pos += len;
        let word = word.as_str();
        match word {
            "True" => Ok(Literal::Bool(true)),
            "False" => Ok(Literal::Bool(false)),
            "inf" => Ok(Literal::Float(f64::INFINITY)),
            "-inf" => Ok(Literal::Float(f64::NEG_INFINITY)),
            "nan" => Ok(Literal::Float(f64::NAN)),
            _ if word.contains(['.', 'e']) => {
                word.parse().map(Literal::Float).map_err(|_| SyntaxError::BadFloat(word.to_string()))
            }
            _ => word.parse().map(Literal::Int).map_err(|_| SyntaxError::BadLiteral(word.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lines_parse() {
        let lines =
            parse_run_lines("# run: f(1, -2.5, [True, False], (3, nan)) == [1, 2]\n# run: g() faults \"boom\"\n")
                .unwrap_or_default();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].args[1], Literal::Float(-2.5));
        assert_eq!(lines[0].expected, Expected::Value(Literal::List(vec![Literal::Int(1), Literal::Int(2)])));
        assert_eq!(lines[1].expected, Expected::Fault("boom".into()));
    }
}
