//! Checking of `aggregate` definitions in either form:
//! - built-in: the body is one `return` of an expression over aggregate calls;
//! - custom: `identity = ...`, `def lift`, `def merge` and optionally `def finish`.

use super::consteval;
use super::env::Env;
use super::expr::{AggMode, FnChecker};
use super::stmt::check_body;
use super::{Aggregate, AggregateForm, CustomAggregate, Function, Local, LocalKind};
use crate::ast::{AggItem, AggregateDef, ExprKind, FunctionDef, Ident, Stmt, StmtKind};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::types::Type;

type PartCalls = Vec<(String, Vec<(String, Span)>)>;

pub fn check_aggregate(
    env: &Env,
    def: &AggregateDef,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(Aggregate, PartCalls)> {
    if env.item(&def.name.name).is_none_or(|(_, span)| span != def.name.span) {
        // A duplicate or reserved name, already reported.
        return None;
    }
    let (params, ret) = env.signature(&def.name.name, &def.params, def.ret.as_ref(), def.span, diagnostics);
    check_param_names(env, &def.params, diagnostics);
    let custom = def.body.iter().any(|item| match item {
        AggItem::Def(_) => true,
        AggItem::Stmt(stmt) => is_identity(stmt),
    });
    if custom {
        check_custom(env, def, params, ret, diagnostics)
    } else {
        check_builtin(env, def, params, ret, diagnostics)
    }
}

/// Reports aggregate parameters named like built-ins or module items, or declared twice:
/// they name the input record's fields, which must be distinct.
fn check_param_names(env: &Env, params: &[crate::ast::Param], diagnostics: &mut Vec<Diagnostic>) {
    let mut checker = FnChecker::new(env, diagnostics, Type::Error, None);
    let mut seen: Vec<&Ident> = Vec::new();
    for param in params {
        if let Some(first) = seen.iter().find(|p| p.name == param.name.name) {
            checker.error(
                Diagnostic::error(
                    Code::E0102,
                    format!("parameter `{}` is declared twice", param.name.name),
                    param.name.span,
                    "repeated parameter",
                )
                .with_label(first.span, "first declared here"),
            );
            continue;
        }
        checker.local_name_allowed(&param.name);
        seen.push(&param.name);
    }
}

fn is_identity(stmt: &Stmt) -> bool {
    matches!(&stmt.kind, StmtKind::Assign { target, .. } if matches!(&target.kind, ExprKind::Name(n) if n == "identity"))
}

fn check_builtin(
    env: &Env,
    def: &AggregateDef,
    params: Vec<(String, Type)>,
    ret: Type,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(Aggregate, PartCalls)> {
    let mut result = None;
    for item in &def.body {
        match item {
            AggItem::Stmt(Stmt { kind: StmtKind::Return(Some(value)), .. }) if result.is_none() => result = Some(value),
            AggItem::Stmt(stmt) => diagnostics.push(
                Diagnostic::error(
                    Code::E0405,
                    "a built-in aggregate's body is a single `return`",
                    stmt.span,
                    "not allowed here",
                )
                .with_help("write `return sum(x), count()`; for custom logic define `identity`, `lift` and `merge`"),
            ),
            AggItem::Def(_) => {}
        }
    }
    let Some(result) = result else {
        diagnostics.push(
            Diagnostic::error(
                Code::E0401,
                format!("aggregate `{}` has no `return`", def.name.name),
                def.span,
                "empty aggregate",
            )
            .with_help("return aggregate calls, e.g. `return min(x), max(x)`"),
        );
        return None;
    };
    let mut checker = FnChecker::new(env, diagnostics, ret.clone(), def.ret.as_ref().map(|ty| ty.span));
    let mut locals = Vec::new();
    for (param, (name, ty)) in def.params.iter().zip(params) {
        // Bad names were reported by `check_param_names`.
        if checker.names.contains_key(&name) || crate::check::builtins::is_reserved(&name) || env.item(&name).is_some()
        {
            continue;
        }
        let id = checker.declare(&name, ty.clone(), LocalKind::Param, param.name.span);
        checker.mark_assigned(id);
        locals.push(Local { name, ty, kind: LocalKind::Param, span: param.name.span });
    }
    checker.agg = AggMode::Return;
    let checked = checker.expr(result);
    if !checked.ty().is_error() && !ret.is_error() && checker.infer.unify(checked.ty(), &ret).is_err() {
        let found = checker.infer.display(checked.ty());
        let mut diagnostic = Diagnostic::error(
            Code::E0201,
            format!("aggregate `{}` returns `{found}` but declares `{ret}`", def.name.name),
            result.span,
            format!("this is `{found}`"),
        );
        if let Some(ty) = &def.ret {
            diagnostic = diagnostic.with_label(ty.span, "declared here");
        }
        checker.error(
            diagnostic.with_help("`sum` of signed integers is i64, of unsigned u64; `avg` is f64; `count()` is u64"),
        );
    }
    checker.check_open_sums();
    if checker.agg_calls == 0 {
        checker.error(
            Diagnostic::error(Code::E0404, "the result uses no aggregate call", result.span, "constant result")
                .with_help("combine aggregate calls such as `sum(x)`, `count()`, `min(x)`"),
        );
    }
    let mut expr = checked.expr;
    checker.finish_expr(&mut expr);
    let calls = checker.into_parts().calls;
    let aggregate = Aggregate {
        name: def.name.name.clone(),
        span: def.span,
        params: locals,
        ret,
        form: AggregateForm::Builtin { result: expr },
    };
    Some((aggregate, vec![(format!("{}.lift", def.name.name), calls)]))
}

fn check_custom(
    env: &Env,
    def: &AggregateDef,
    params: Vec<(String, Type)>,
    ret: Type,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(Aggregate, PartCalls)> {
    let mut identity = None;
    let mut parts: [Option<&FunctionDef>; 3] = [None, None, None];
    for item in &def.body {
        match item {
            AggItem::Stmt(stmt) if is_identity(stmt) => {
                if let StmtKind::Assign { value, .. } = &stmt.kind {
                    if identity.is_some() {
                        diagnostics.push(Diagnostic::error(
                            Code::E0102,
                            "`identity` is defined twice",
                            stmt.span,
                            "again here",
                        ));
                    }
                    identity = Some((value, stmt.span));
                }
            }
            AggItem::Stmt(stmt) => diagnostics.push(
                Diagnostic::error(
                    Code::E0405,
                    "a custom aggregate's body holds only `identity = ...` and `def lift/merge/finish`",
                    stmt.span,
                    "not allowed here",
                )
                .with_help(if matches!(stmt.kind, StmtKind::Return(_)) {
                    "an aggregate is either built-in (`return ...`) or custom (`identity`, `lift`, `merge`), not both"
                } else {
                    "move this into one of the parts"
                }),
            ),
            AggItem::Def(part) => {
                let slot = match part.name.name.as_str() {
                    "lift" => 0,
                    "merge" => 1,
                    "finish" => 2,
                    other => {
                        diagnostics.push(
                            Diagnostic::error(
                                Code::E0405,
                                format!("`{other}` is not an aggregate part"),
                                part.name.span,
                                "unknown part",
                            )
                            .with_help("the parts are `lift`, `merge` and `finish`; define helpers at module level"),
                        );
                        continue;
                    }
                };
                if let Some(first) = parts[slot] {
                    diagnostics.push(
                        Diagnostic::error(
                            Code::E0102,
                            format!("`{}` is defined twice", part.name.name),
                            part.name.span,
                            "again here",
                        )
                        .with_label(first.name.span, "first defined here"),
                    );
                    continue;
                }
                parts[slot] = Some(part);
            }
        }
    }
    let [lift, merge, finish] = parts;
    let missing: Vec<&str> =
        [(identity.is_none(), "`identity`"), (lift.is_none(), "`lift`"), (merge.is_none(), "`merge`")]
            .into_iter()
            .filter(|(missing, _)| *missing)
            .map(|(_, name)| name)
            .collect();
    if !missing.is_empty() {
        diagnostics.push(
            Diagnostic::error(
                Code::E0401,
                format!("aggregate `{}` is missing {}", def.name.name, missing.join(" and ")),
                def.span,
                "incomplete aggregate",
            )
            .with_help("a custom aggregate defines `identity = <state>`, `def lift(...) -> S` and `def merge(a: S, b: S) -> S`"),
        );
    }
    let (Some((identity_expr, identity_span)), Some(lift), Some(merge)) = (identity, lift, merge) else {
        return None;
    };

    let name = &def.name.name;
    let (lift_params, state) = env.signature("lift", &lift.params, lift.ret.as_ref(), lift.span, diagnostics);
    let agg_types: Vec<&Type> = params.iter().map(|(_, ty)| ty).collect();
    let lift_types: Vec<&Type> = lift_params.iter().map(|(_, ty)| ty).collect();
    if agg_types != lift_types && !agg_types.iter().chain(&lift_types).any(|ty| ty.is_error()) {
        diagnostics.push(
            Diagnostic::error(
                Code::E0402,
                "`lift` must take the aggregate's parameters",
                lift.span,
                format!("takes ({})", join_types(&lift_types)),
            )
            .with_label(def.span, format!("the aggregate takes ({})", join_types(&agg_types))),
        );
    }
    let (merge_params, merge_ret) = env.signature("merge", &merge.params, merge.ret.as_ref(), merge.span, diagnostics);
    let state_pair = [state.clone(), state.clone()];
    let merge_types: Vec<Type> = merge_params.iter().map(|(_, ty)| ty.clone()).collect();
    if !state.is_error() && (merge_types != state_pair || merge_ret != state) && !merge_ret.is_error() {
        diagnostics.push(
            Diagnostic::error(
                Code::E0402,
                format!("`merge` must have the signature `(a: {state}, b: {state}) -> {state}`"),
                merge.span,
                "wrong signature",
            )
            .with_note(format!("the state type `{state}` is what `lift` returns")),
        );
    }
    let finish_sig = finish.map(|finish| {
        let (params, ret) = env.signature("finish", &finish.params, finish.ret.as_ref(), finish.span, diagnostics);
        (finish, params, ret)
    });
    match &finish_sig {
        Some((finish, finish_params, finish_ret)) => {
            let types: Vec<&Type> = finish_params.iter().map(|(_, ty)| ty).collect();
            if !state.is_error() && !ret.is_error() && (types != [&state] || *finish_ret != ret) {
                diagnostics.push(Diagnostic::error(
                    Code::E0402,
                    format!("`finish` must have the signature `(s: {state}) -> {ret}`"),
                    finish.span,
                    "wrong signature",
                ));
            }
        }
        None => {
            if !state.is_error() && !ret.is_error() && state != ret {
                diagnostics.push(
                    Diagnostic::error(
                        Code::E0402,
                        format!("without `finish`, the state type `{state}` must equal the result type `{ret}`"),
                        def.ret.as_ref().map_or(def.span, |ty| ty.span),
                        "result type",
                    )
                    .with_label(lift.ret.as_ref().map_or(lift.span, |ty| ty.span), "state type")
                    .with_help(format!("add `def finish(s: {state}) -> {ret}`")),
                );
            }
        }
    }

    let identity_value = {
        let mut checker = FnChecker::for_constant(env, diagnostics);
        let checked = checker.expr(identity_expr);
        checker.expect(checked.ty(), &state, identity_expr.span, "the identity (the state type)");
        let mut expr = checked.expr;
        checker.finish_expr(&mut expr);
        if checker.has_errors() {
            None
        } else {
            match consteval::eval(&expr) {
                Ok(value) => Some(value),
                Err(error) => {
                    diagnostics.push(error.into_diagnostic().with_note("`identity` must be a constant"));
                    None
                }
            }
        }
    };

    let mut part_calls = Vec::new();
    let mut check_part =
        |part: &FunctionDef, params: Vec<(String, Type)>, ret: Type, diagnostics: &mut Vec<Diagnostic>| {
            let idents: Vec<&Ident> = part.params.iter().map(|p| &p.name).collect();
            let checked = check_body(
                env,
                &part.name.name,
                part.span,
                &idents,
                params,
                ret,
                part.ret.as_ref(),
                &part.body,
                diagnostics,
            );
            checked.map(|(function, calls): (Function, _)| {
                part_calls.push((format!("{name}.{}", part.name.name), calls));
                function
            })
        };
    let lift_fn = check_part(lift, lift_params, state.clone(), diagnostics);
    let merge_fn = check_part(merge, merge_params, merge_ret, diagnostics);
    let finish_fn = match finish_sig {
        Some((finish, params, ret)) => Some(check_part(finish, params, ret, diagnostics)?),
        None => None,
    };
    let locals = def
        .params
        .iter()
        .zip(params)
        .map(|(param, (name, ty))| Local { name, ty, kind: LocalKind::Param, span: param.name.span })
        .collect();
    let aggregate = Aggregate {
        name: name.clone(),
        span: def.span,
        params: locals,
        ret,
        form: AggregateForm::Custom(Box::new(CustomAggregate {
            state,
            identity: identity_value?,
            identity_span,
            lift: lift_fn?,
            merge: merge_fn?,
            finish: finish_fn,
        })),
    };
    Some((aggregate, part_calls))
}

fn join_types(types: &[&Type]) -> String {
    types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
