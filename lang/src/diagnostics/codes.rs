//! The stable diagnostic codes. Each variant's doc comment is its one-line summary; spec.md
//! repeats the list with a one-line example of each. `naasc explain CODE` prints
//! [`Code::explanation`]: the summary, then the long text of `explain/CODE.md` (one file per
//! code, as rustc keeps `rustc_error_codes/src/error_codes/E0001.md`), compiled in with
//! `include_str!` so that this crate reads no files at run time.
//!
//! Each long text says when the code fires, why the language has the rule and how to fix it,
//! then shows an erroneous and a fixed program in fenced blocks that `tests/explain.rs` runs
//! through the real `naasc`:
//!
//! - ```` ```naas,E0301 ```` opens a program that must produce `E0301` (a fence may name only
//!   the code of its own file);
//! - ```` ```naas ```` opens a program that must check (or, for E06xx, compile for the switch)
//!   without any diagnostic;
//! - further comma-separated items starting with `--` are flags passed to `naasc`, e.g.
//!   ```` ```naas,E0608,--min-slots=100000 ````;
//! - inside a program, `\t` stands for a tab and `\xHH` for the byte HH, for the codes whose
//!   cause cannot be shown as text (E0002, E0003).
//!
//! E06xx examples run with `naasc compile FILE --target switch-sim` (the wrong program must
//! still pass `naasc check`); every other example runs with `naasc check --format json`.

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $name:ident = $text:literal,)*) => {
        /// A stable diagnostic code such as `E0201`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[doc = $doc])+ $name,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => $text,)* }
            }

            /// The one-line summary: the variant's doc comment, joined into one line.
            pub fn summary(self) -> String {
                let lines: &[&str] = match self { $(Code::$name => &[$($doc),+],)* };
                lines.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ")
            }

            /// The long text of `explain/CODE.md`: when the code fires, why, how to fix it,
            /// and an erroneous and a fixed example (see the module documentation).
            pub fn long_explanation(self) -> &'static str {
                // A missing file is a compile error here, so no code can lack its text.
                match self { $(Code::$name => include_str!(concat!("explain/", $text, ".md")),)* }
            }

            /// What `naasc explain` prints after `CODE: `: the summary on the first line, a
            /// blank line, then the long explanation.
            pub fn explanation(self) -> String {
                format!("{}\n\n{}", self.summary(), self.long_explanation().trim_end())
            }

            pub fn parse(text: &str) -> Option<Code> {
                match text.to_ascii_uppercase().as_str() { $($text => Some(Code::$name),)* _ => None }
            }
        }
    };
}

codes! {
    /// A character that cannot start any token, e.g. `$` or a string quote (naas has no strings).
    E0001 = "E0001",
    /// The source is not valid UTF-8. Re-save the file as UTF-8.
    E0002 = "E0002",
    /// A tab character in indentation. Indent with spaces only.
    E0003 = "E0003",
    /// A dedent to a column that matches no enclosing block. Indent each block consistently.
    /// (An indented line where no block starts is a syntax error, E0008.)
    E0004 = "E0004",
    /// An unclosed, mismatched or unexpected bracket.
    E0005 = "E0005",
    /// Brackets, blocks or an expression nested deeper than the compiler's limit. Split the
    /// expression with local variables or helper functions.
    E0006 = "E0006",
    /// A malformed or too large numeric literal. Integer literals are at most 2**64 - 1.
    E0007 = "E0007",
    /// A syntax error: a token the grammar does not allow at that point.
    E0008 = "E0008",
    /// The file ends in the middle of a construct.
    E0009 = "E0009",
    /// A Python keyword that naas does not support (`import`, `lambda`, `try`, ...).
    E0010 = "E0010",
    /// A name that is not defined: no local, parameter, constant, function or type has it.
    E0101 = "E0101",
    /// A name defined twice in the same scope (two functions, two fields, two parameters).
    E0102 = "E0102",
    /// A type annotation that names no type.
    E0103 = "E0103",
    /// A local variable read before it is assigned on every path to the read.
    E0104 = "E0104",
    /// A definition that reuses a built-in name such as `range`, `min` or `i64`.
    E0105 = "E0105",
    /// An expression whose type is not the type required where it is used.
    E0201 = "E0201",
    /// An operator applied to operand types it is not defined for.
    E0202 = "E0202",
    /// A call with the wrong number of arguments.
    E0203 = "E0203",
    /// A call of something that is not a function, type or record.
    E0204 = "E0204",
    /// A constant that does not fit the type it is used at, e.g. `x: u8 = 300`.
    E0205 = "E0205",
    /// An invalid index: indexing a non-array, a non-integer index, or a constant index out of bounds.
    E0206 = "E0206",
    /// An unknown field, or a record construction with a missing, repeated or positional field.
    E0207 = "E0207",
    /// An assignment to something that cannot be assigned: a constant, a loop variable, a call.
    E0208 = "E0208",
    /// A function with a return type that can reach its end without returning a value.
    E0209 = "E0209",
    /// An expression statement: naas functions are pure, so its value would be lost.
    E0210 = "E0210",
    /// A malformed type, e.g. `array[i32]` without a length or a length that is not a constant.
    E0211 = "E0211",
    /// A constant expression that cannot be evaluated at compile time (not constant, division by
    /// zero, overflow of the 128-bit constant arithmetic).
    E0212 = "E0212",
    /// A function or parameter without a type annotation.
    E0213 = "E0213",
    /// The power operator `**`, which naas does not have. (`is` is an unsupported keyword,
    /// E0010; `in` outside `for` is a syntax error, E0008.)
    E0214 = "E0214",
    /// A `while` loop: iteration must be bounded.
    E0301 = "E0301",
    /// Recursion, direct or through other functions: every call graph must be acyclic.
    E0302 = "E0302",
    /// A `range` bound that is not a compile-time constant.
    E0303 = "E0303",
    /// A function whose worst-case operation count exceeds the budget (`--max-ops`).
    E0304 = "E0304",
    /// A value or stack frame over a memory bound: a frame over `--max-bytes`, an array over
    /// 2^24 elements, or a record over 2^24 bytes.
    E0305 = "E0305",
    /// `break` or `continue` outside a loop.
    E0306 = "E0306",
    /// A `range` with step zero.
    E0307 = "E0307",
    /// A `for` loop over something that is neither `range(...)` nor an array.
    E0308 = "E0308",
    /// An aggregate in the custom form without `identity`, `lift` or `merge`.
    E0401 = "E0401",
    /// An aggregate part with the wrong signature (lift parameters, merge or finish types).
    E0402 = "E0402",
    /// An aggregate call (`sum`, `count`, ...) outside the return of a built-in aggregate.
    E0403 = "E0403",
    /// In a built-in aggregate, a parameter used outside an aggregate call, or aggregate calls nested.
    E0404 = "E0404",
    /// An item in an aggregate body that belongs to neither form.
    E0405 = "E0405",
    /// A custom `merge` that is not commutative: `merge(a, b) != merge(b, a)` for states the
    /// network can produce. The report shows the states.
    E0501 = "E0501",
    /// A custom `merge` that is not associative: `merge(merge(a, b), c) != merge(a, merge(b, c))`.
    E0502 = "E0502",
    /// An `identity` that is not a unit of `merge`: `merge(identity, a) != a`.
    E0503 = "E0503",
    /// `lift` or `merge` faults (division by zero, bad index) on states the law checker built.
    E0504 = "E0504",
    /// A state field that combines floating-point values: addition of floats is not
    /// associative, so results can differ in the last bits with the merge order (a warning).
    W0501 = "W0501",
    /// A state field the switch target cannot merge with one stateful-ALU operation: its
    /// merge is not field-wise add, min, max, or, and (the merge-law checker could not prove
    /// it). Write the merge field-wise, or run the aggregate on a host or NIC target.
    E0601 = "E0601",
    /// A merge that indexes an array with a value computed from the data (e.g. `a[i]` where
    /// `i` counts comparisons) and is not a merge of sorted runs (top-k, which lowers onto an
    /// insertion chain). Switch registers are addressed by the key only, once per stage;
    /// combine each element with the same element of the other state.
    E0602 = "E0602",
    /// A floating-point state field on the switch target, which has integer ALUs only.
    /// Declare a fixed-point scale (`--fixed-point 1000`) or accumulate integers in `lift`.
    E0603 = "E0603",
    /// An operation with no switch ALU in a merge: multiplication, division, modulo or a shift
    /// by a variable amount. Move it to `lift` or `finish`, which run at the hosts.
    E0604 = "E0604",
    /// A merge that needs more stateful updates than the pipeline's stages offer (each stage
    /// has a few stateful ALUs; carries and comparisons of wide fields take extra stages).
    /// Shrink the state: fewer or narrower fields.
    E0605 = "E0605",
    /// A state too large for one packet entry on the switch target (key plus state words
    /// exceed the profile's packet fields). Shrink the state.
    E0606 = "E0606",
    /// A merge that keeps a loop after full unrolling (too many iterations); switch
    /// pipelines have no loops. Bound the loop by a small constant.
    E0607 = "E0607",
    /// A state whose register words leave fewer key slots than required in some stage's
    /// register memory. Shrink the state or accept fewer slots.
    E0608 = "E0608",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    /// The long texts are read in a terminal: they must stay narrow, start with prose (the
    /// summary comes first), and every fence must be closed and hold a `naas` program.
    #[test]
    fn long_explanations_are_well_formed() {
        for &code in Code::ALL {
            let text = code.long_explanation();
            assert!(text.ends_with("```\n"), "{code}: the text should end with its fixed example");
            assert!(!text.starts_with(char::is_whitespace) && !text.starts_with("```"), "{code}");
            let mut open = false;
            let (mut wrong, mut fixed) = (0, 0);
            for (number, line) in text.lines().enumerate() {
                let place = format!("{code}.md line {}", number + 1);
                assert!(line.chars().count() <= 80, "{place} is wider than 80 columns");
                assert!(!line.ends_with(char::is_whitespace) && !line.contains('\t'), "{place}");
                let Some(info) = line.strip_prefix("```") else { continue };
                if open {
                    assert!(info.is_empty(), "{place}: a fence closes with a bare ```");
                    open = false;
                    continue;
                }
                open = true;
                let mut items = info.split(',');
                assert_eq!(items.next(), Some("naas"), "{place}: every example is a `naas` program");
                let codes: Vec<&str> = items.filter(|item| !item.starts_with("--")).collect();
                match codes.as_slice() {
                    [] => fixed += 1,
                    [item] if *item == code.as_str() => wrong += 1,
                    _ => panic!("{place}: {codes:?} is not `{code}` alone or `--` flags"),
                }
            }
            assert!(!open, "{code}: unclosed fence");
            assert!(wrong >= 1 && fixed >= 1, "{code}: {wrong} erroneous and {fixed} fixed examples");
        }
    }

    #[test]
    fn the_explanation_starts_with_the_summary() {
        let text = Code::E0301.explanation();
        assert!(text.starts_with("A `while` loop: iteration must be bounded.\n\n"), "{text}");
        assert!(text.contains("```naas,E0301\n") && text.ends_with("```"), "{text}");
    }
}
