//! Differential testing on generated programs: random well-typed functions (arithmetic at
//! every integer width, floor division and modulo, shifts by arbitrary counts, conversions,
//! floats, comparisons, conditionals, array indexing, loops and branches) run on random
//! inputs with the interpreter and the JIT. Results must be identical, and a fault must be
//! the same fault at the same source location.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::{Scalar, ScalarTy};
use naas_ir::laws::random_scalar;
use naas_lang::types::{FloatTy, IntTy};
use naas_stdx::Rng;
use naas_target_native::{CallError, JitFunctions};
use proptest::prelude::*;

/// The scalar types of generated expressions, with the parameter holding each.
const TYPES: [(&str, &str); 8] =
    [("i8", "a"), ("i32", "b"), ("i64", "c"), ("u8", "d"), ("u32", "e"), ("u64", "f"), ("f64", "g"), ("bool", "h")];
const INTS: [&str; 6] = ["i8", "i32", "i64", "u8", "u32", "u64"];

struct Gen {
    rng: Rng,
}

impl Gen {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.below(items.len())]
    }

    fn literal(&mut self, ty: &str) -> String {
        let int = IntTy::from_name(ty);
        match (ty, int) {
            ("bool", _) => if self.rng.below(2) == 0 { "True" } else { "False" }.to_string(),
            ("f64", _) => {
                let edges = ["0.0", "1.5", "-2.25", "1e300", "1e-300", "-0.0"];
                edges[self.rng.below(edges.len())].to_string()
            }
            (_, Some(int)) => match random_scalar(&mut self.rng, ScalarTy::Int(int)) {
                Scalar::Int(_, v) if v < 0 => format!("({v})"),
                Scalar::Int(_, v) => v.to_string(),
                _ => "0".to_string(),
            },
            _ => "0".to_string(),
        }
    }

    fn param(ty: &str) -> &'static str {
        TYPES.iter().find(|(t, _)| *t == ty).map_or("c", |(_, p)| p)
    }

    /// An expression of type `ty`, at most `depth` deep. `extra` names another variable
    /// of type i64 in scope (a loop variable).
    fn expr(&mut self, ty: &str, depth: u32, extra: Option<&str>) -> String {
        self.gen(ty, depth, extra, false)
    }

    /// An expression that depends on a variable, so that the checker cannot fold it (constant
    /// subexpressions are folded exactly at compile time and must fit their type).
    fn var_expr(&mut self, ty: &str, depth: u32, extra: Option<&str>) -> String {
        self.gen(ty, depth, extra, true)
    }

    fn gen(&mut self, ty: &str, depth: u32, extra: Option<&str>, var: bool) -> String {
        if depth == 0 || self.rng.below(5) == 0 {
            return match self.rng.below(3) {
                0 if !var => self.literal(ty),
                1 if ty == "i64" && extra.is_some() => extra.unwrap_or("c").to_string(),
                _ => Gen::param(ty).to_string(),
            };
        }
        let d = depth - 1;
        match ty {
            "bool" => match self.rng.below(5) {
                0 => format!("not {}", self.var_expr("bool", d, extra)),
                1 => format!("({} and {})", self.expr("bool", d, extra), self.expr("bool", d, extra)),
                2 => format!("({} or {})", self.expr("bool", d, extra), self.expr("bool", d, extra)),
                _ => {
                    let t = self.pick(&["i8", "i32", "i64", "u8", "u32", "u64", "f64"]);
                    let op = self.pick(&["<", "<=", ">", ">=", "==", "!="]);
                    format!("({} {op} {})", self.var_expr(t, d, extra), self.expr(t, d, extra))
                }
            },
            "f64" => match self.rng.below(6) {
                0 => {
                    let from = self.pick_int();
                    format!("f64({})", self.var_expr(from, d, extra))
                }
                1 => format!(
                    "{}({}, {})",
                    self.pick(&["min", "max"]),
                    self.var_expr("f64", d, extra),
                    self.expr("f64", d, extra)
                ),
                2 => format!("abs({})", self.var_expr("f64", d, extra)),
                3 => self.conditional("f64", d, extra),
                _ => {
                    let op = self.pick(&["+", "-", "*", "/"]);
                    format!("({} {op} {})", self.var_expr("f64", d, extra), self.expr("f64", d, extra))
                }
            },
            int => match self.rng.below(9) {
                0 => {
                    let from = self.pick(&["i8", "i32", "i64", "u8", "u32", "u64", "f64", "bool"]);
                    let inner = self.expr(from, d, extra);
                    // A conversion of a bare literal must be representable; wrap it in a
                    // parameter-dependent form so the conversion happens at run time.
                    format!("{int}({inner} if h else {})", Gen::param(from))
                }
                1 => {
                    let op = self.pick(&["<<", ">>"]);
                    let count = self.pick_int();
                    format!("({} {op} {})", self.var_expr(int, d, extra), self.var_expr(count, d, extra))
                }
                2 => {
                    let op = self.pick(&["//", "%"]);
                    format!("({} {op} {})", self.var_expr(int, d, extra), self.expr(int, d, extra))
                }
                3 => format!(
                    "{}({}, {})",
                    self.pick(&["min", "max"]),
                    self.var_expr(int, d, extra),
                    self.expr(int, d, extra)
                ),
                4 => format!("{}({})", self.pick(&["-", "~", "abs"]), self.var_expr(int, d, extra)),
                5 => self.conditional(int, d, extra),
                6 if int == "i64" => {
                    let index = self.pick_int();
                    format!("xs[{}]", self.var_expr(index, d, extra))
                }
                _ => {
                    let op = self.pick(&["+", "-", "*", "&", "|", "^"]);
                    format!("({} {op} {})", self.var_expr(int, d, extra), self.expr(int, d, extra))
                }
            },
        }
    }

    fn pick_int(&mut self) -> &'static str {
        INTS[self.rng.below(INTS.len())]
    }

    fn conditional(&mut self, ty: &str, d: u32, extra: Option<&str>) -> String {
        format!("({} if {} else {})", self.var_expr(ty, d, extra), self.expr("bool", d, extra), self.expr(ty, d, extra))
    }

    /// A module with one expression function per type and one function with a loop.
    fn program(&mut self) -> String {
        let params = "a: i8, b: i32, c: i64, d: u8, e: u32, f: u64, g: f64, h: bool, xs: array[i64, 4]";
        let mut out = String::new();
        for (ty, _) in TYPES {
            let body = self.expr(ty, 4, None);
            out.push_str(&format!("def f_{ty}({params}) -> {ty}:\n    return {body}\n\n"));
        }
        let (init, cond, then, orelse) = (
            self.expr("i64", 3, None),
            self.expr("bool", 2, Some("i")),
            self.expr("i64", 3, Some("i")),
            self.expr("i64", 3, Some("i")),
        );
        out.push_str(&format!(
            "def f_loop({params}) -> i64:\n    acc: i64 = {init}\n    for i in range(3):\n        if {cond}:\n            acc = acc + {then}\n        else:\n            acc = acc ^ {orelse}\n            if acc < 0:\n                break\n    return acc\n"
        ));
        out
    }
}

fn inputs(rng: &mut Rng) -> Vec<Slot> {
    let mut args: Vec<Slot> = [
        ScalarTy::Int(IntTy::I8),
        ScalarTy::Int(IntTy::I32),
        ScalarTy::Int(IntTy::I64),
        ScalarTy::Int(IntTy::U8),
        ScalarTy::Int(IntTy::U32),
        ScalarTy::Int(IntTy::U64),
        ScalarTy::Float(FloatTy::F64),
        ScalarTy::Bool,
    ]
    .into_iter()
    .map(|ty| Slot::Scalar(random_scalar(rng, ty)))
    .collect();
    args.push(Slot::Array((0..4).map(|_| random_scalar(rng, ScalarTy::Int(IntTy::I64))).collect()));
    args
}

fn check(seed: u64) {
    let mut generator = Gen { rng: Rng::new(seed) };
    let source = generator.program();
    let compiled = naas_test_support::compile_source(&source);
    let jit = JitFunctions::compile(&compiled.optimized).unwrap_or_else(|e| panic!("{e}\n{source}"));
    let interp = Interpreter::new(&compiled.optimized);
    let mut rng = Rng::new(seed ^ 0xdead_beef);
    for _ in 0..8 {
        let args = inputs(&mut rng);
        for function in &compiled.optimized.functions {
            let expected = interp.call(compiled.optimized.find(&function.name).unwrap(), args.clone());
            let got = jit.call(&function.name, &args);
            match (&expected, &got) {
                (Ok(a), Ok(b)) if a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y)) => {}
                (Err(a), Err(CallError::Fault(b))) if a.fault() == Some((b.fault, b.span)) => {}
                _ => panic!("`{}` on {args:?}: interpreter {expected:?}, JIT {got:?}\n{source}", function.name),
            }
        }
    }
}

proptest! {
    // Each case compiles a generated program: a twentieth of the workspace's case count.
    #![proptest_config(naas_test_support::proptest_config(20))]

    #[test]
    fn jit_agrees_with_the_interpreter_on_generated_programs(seed in any::<u64>()) {
        check(seed);
    }
}
