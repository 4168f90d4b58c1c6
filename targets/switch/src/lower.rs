//! Lowering an aggregate's merge onto the pipeline: the merge is fully unrolled and checked for
//! what a switch cannot do (loops, data-dependent indexes, multiply/divide, floats without a
//! fixed-point scale, operators that are not one register's read-modify-write); each state
//! field is split into register words, each word update becomes an atom, and the atoms are
//! list-scheduled over stages (a carry or comparison flag is produced one stage before it is
//! consumed, and every atom waits for the key claim of stage 0).
//!
//! Field operators come from the decomposition (built-in aggregates) or from the merge-law
//! checker, which proves custom merges field-wise by symbolic execution of the same unrolled
//! IR; a field it could not prove is `Custom` and is rejected here (E0601).

use naas_ir::decompose::{AggregatePlan, MergeOp};
use naas_ir::ir::{BinaryOp, Expr, Function, ScalarTy, Stmt, VarTy};
use naas_ir::passes::{optimize, PassOptions};
use naas_ir::Compiled;
use naas_lang::diagnostics::{Code, Diagnostic};
use naas_lang::{bail_internal, InternalError};

use crate::network::counted;
use crate::profile::TargetProfile;
use crate::program::{Atom, AtomOp, Encoding, FieldMap, Insertion, PipelineProgram, Register, RegisterRole, Stage};
use crate::sorted_run::{self, Recognition, SortedRun};

/// Choices the program leaves open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LowerOptions {
    /// Carry float state fields as the i64 `round(x * scale)` (as SwitchML and ATP do).
    /// `None` rejects float state (E0603).
    pub fixed_point_scale: Option<u64>,
    /// Reject programs whose registers leave fewer key slots (per lane) than this (E0608).
    /// Without `lanes`, the lowering picks the most lanes that leave this many slots.
    pub min_key_slots: Option<u64>,
    /// Lanes to use (entries per packet, each with its own copy of the registers). `None`:
    /// the most that fit the pipeline and the packet.
    pub lanes: Option<u32>,
    /// The most passes through the pipeline a packet may make (recirculation). `None` is 1:
    /// the program must fit at line rate.
    pub max_passes: Option<u32>,
}

/// The most passes `LowerOptions::max_passes` may allow: every pass beyond the first halves
/// (thirds, ...) the switch's throughput, and 16 is already 1/16 of line rate.
pub const MAX_PASSES: u32 = 16;

/// Why [`lower`] produced no program.
#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    /// The program does not fit the switch: every reason, each a diagnostic (E0601–E0608)
    /// pointing at the source construct responsible.
    #[error("the aggregate does not fit the switch: {} error(s)", .0.len())]
    Diagnostics(Vec<Diagnostic>),
    /// A broken invariant of the compiler (a plan index out of range, an IR the verifier
    /// rejects, an identity state without a register encoding): a compiler bug, never a
    /// property of the user's program.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Lowers the merge of aggregate `plan_index` of `compiled` for `profile`. Every reason the
/// program does not fit is reported, each pointing at the source construct responsible.
pub fn lower(
    compiled: &Compiled,
    plan_index: usize,
    profile: &TargetProfile,
    options: &LowerOptions,
) -> Result<PipelineProgram, LowerError> {
    let Some(plan) = compiled.aggregates.get(plan_index) else {
        bail_internal!("no aggregate number {plan_index} to lower: the program has {}", compiled.aggregates.len());
    };
    let mut diagnostics = Vec::new();
    let unrolled = match optimize(&compiled.optimized, PassOptions { unroll: true }) {
        Ok(unrolled) => unrolled,
        Err(error) => bail_internal!(plan.merge_span, "cannot unroll the merge of `{}`: {error}", plan.name),
    };
    // A merge of sorted runs reads elements at data-dependent indexes by design: once
    // proved, it lowers onto an insertion chain and the per-access checks do not apply.
    let recognition =
        sorted_run::recognise(compiled, unrolled.function(plan.merge), unrolled.function(plan.lift), plan);
    let run = match &recognition {
        Recognition::Proved(run) => Some(*run),
        _ => None,
    };
    if run.is_none() {
        check_merge_code(unrolled.function(plan.merge), plan, &mut diagnostics);
    }
    let structural = !diagnostics.is_empty();
    let latest =
        if structural || run.is_some() { None } else { latest_pair(compiled, unrolled.function(plan.merge), plan) };
    let fields = map_fields(plan, profile, options, structural, latest, run.is_some(), &mut diagnostics);
    if let Recognition::NearMiss(note) = recognition {
        // The diagnostic at the construct (the data-dependent index, else the field's
        // operator) says why this merge of sorted runs' shape is not lowered as one.
        let at = diagnostics.iter().position(|d| d.code == Code::E0602).unwrap_or(0);
        if let Some(diagnostic) = diagnostics.get_mut(at) {
            diagnostic.notes.push(note);
        }
    }
    if !diagnostics.is_empty() {
        naas_lang::diagnostics::sort_and_dedup(&mut diagnostics);
        return Err(LowerError::Diagnostics(diagnostics));
    }
    let program = build(plan, profile, options, fields, latest, run, &mut diagnostics)?;
    if diagnostics.is_empty() {
        Ok(program)
    } else {
        Err(LowerError::Diagnostics(diagnostics))
    }
}

/// Reports loops left after unrolling, data-dependent indexes and operations without an ALU.
fn check_merge_code(merge: &Function, plan: &AggregatePlan, diagnostics: &mut Vec<Diagnostic>) {
    fn walk_block(f: &Function, block: &[Stmt], plan: &AggregatePlan, out: &mut Vec<Diagnostic>) {
        for stmt in block {
            match stmt {
                Stmt::Assign { value, .. } | Stmt::FillArray { value, .. } => walk_expr(f, value, None, out),
                Stmt::Store { array, offset, value } => {
                    walk_expr(f, offset, Some(*array), out);
                    walk_expr(f, value, None, out);
                }
                Stmt::If { cond, then, orelse } => {
                    walk_expr(f, cond, None, out);
                    walk_block(f, then, plan, out);
                    walk_block(f, orelse, plan, out);
                }
                Stmt::Loop { start, stop, step, body, .. } => {
                    let trips = if *step == 0 { 0 } else { ((stop - start).abs() + step.abs() - 1) / step.abs() };
                    out.push(
                        Diagnostic::error(
                            Code::E0607,
                            format!(
                                "the merge of `{}` keeps a loop of {trips} iterations that is too large to unroll",
                                plan.name
                            ),
                            plan.merge_span,
                            "this merge loops",
                        )
                        .with_note("a switch pipeline has no loops: every iteration becomes straight-line stages")
                        .with_help("bound the loop by a small constant or shrink the state"),
                    );
                    walk_block(f, body, plan, out);
                }
                Stmt::Block { body, .. } => walk_block(f, body, plan, out),
                Stmt::Return(operands) => {
                    for operand in operands {
                        if let naas_ir::ir::Operand::Scalar(expr) = operand {
                            walk_expr(f, expr, None, out);
                        }
                    }
                }
                Stmt::Call { args, .. } => {
                    for arg in args {
                        if let naas_ir::ir::Operand::Scalar(expr) = arg {
                            walk_expr(f, expr, None, out);
                        }
                    }
                }
                Stmt::CopyArray { .. } | Stmt::Break(_) | Stmt::Continue(_) => {}
            }
        }
    }
    fn walk_expr(f: &Function, expr: &Expr, array: Option<naas_ir::ir::Var>, out: &mut Vec<Diagnostic>) {
        match expr {
            Expr::Const(_) | Expr::Var(_) => {}
            Expr::Load { array, offset } => walk_expr(f, offset, Some(*array), out),
            Expr::CheckIndex { index, span, .. } => {
                if index.as_const().is_none() {
                    let array_name = array.map_or("array".to_string(), |a| f.vars[a.index()].name.clone());
                    let index_name = match &**index {
                        Expr::Var(v) => f.vars[v.index()].name.clone(),
                        _ => "...".to_string(),
                    };
                    out.push(
                        Diagnostic::error(
                            Code::E0602,
                            // The access alone; `one_index_diagnostic` writes the message.
                            format!("{array_name}[{index_name}]"),
                            *span,
                            "this index depends on the data, even after unrolling",
                        )
                        .with_note("each register array sits in one stage and is read and written once per packet at an address fixed by the key; an element chosen by comparing values would need to read several registers and write back another")
                        .with_help("write the merge so that every element is combined with the same element of the other state (field-wise add, min, max, or, and), keep the K largest or smallest values as a merge of sorted runs (spec.md 15.3, `examples/top_k.naas`), or run this aggregate on a NIC or host target"),
                    );
                }
                walk_expr(f, index, None, out);
            }
            Expr::Unary { arg, .. } | Expr::Cast { arg, .. } => walk_expr(f, arg, None, out),
            Expr::Binary { op, lhs, rhs, span } => {
                let unsupported = match op {
                    BinaryOp::Mul | BinaryOp::Div | BinaryOp::FloorDiv | BinaryOp::Mod => true,
                    BinaryOp::Shl | BinaryOp::Shr => rhs.as_const().is_none(),
                    _ => false,
                };
                if unsupported {
                    out.push(
                        Diagnostic::error(
                            Code::E0604,
                            format!("`{}` has no switch ALU: a pipeline adds, subtracts, compares, selects and does bitwise logic only", op.name()),
                            *span,
                            "this operation",
                        )
                        .with_help("move the computation to `lift` or `finish`, which run at the hosts"),
                    );
                }
                walk_expr(f, lhs, None, out);
                walk_expr(f, rhs, None, out);
            }
            Expr::Compare { lhs, rhs, .. } | Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => {
                walk_expr(f, lhs, None, out);
                walk_expr(f, rhs, None, out);
            }
            Expr::IfElse { cond, then, orelse } | Expr::Select { cond, then, orelse } => {
                walk_expr(f, cond, None, out);
                walk_expr(f, then, None, out);
                walk_expr(f, orelse, None, out);
            }
        }
    }
    let mut found = Vec::new();
    walk_block(merge, &merge.body, plan, &mut found);
    let (mut indexes, others): (Vec<Diagnostic>, Vec<Diagnostic>) =
        found.into_iter().partition(|d| d.code == Code::E0602);
    diagnostics.extend(others);
    diagnostics.extend(one_index_diagnostic(&mut indexes));
}

/// Folds the E0602 diagnostics of one merge into one: a merge like top-k's reads several
/// elements at data-dependent indexes, and each would repeat the same note and help. The
/// first index (in source order) is the primary label; the others are secondary labels.
fn one_index_diagnostic(indexes: &mut Vec<Diagnostic>) -> Option<Diagnostic> {
    naas_lang::diagnostics::sort_and_dedup(indexes);
    indexes.dedup_by_key(|d| d.primary.span);
    let mut rest = indexes.drain(..);
    let mut first = rest.next()?;
    let mut names = vec![first.message.clone()];
    for other in rest {
        if !names.contains(&other.message) {
            names.push(other.message.clone());
        }
        first
            .secondary
            .push(naas_lang::diagnostics::Label { span: other.primary.span, message: "this index too".to_string() });
    }
    if names.len() > 1 {
        // Each message is the `array[index]` text alone (see `walk_expr`).
        let shown: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        first.message = format!("data-dependent indexes {} cannot be switch register accesses", shown.join(", "));
    } else {
        first.message = format!("data-dependent index `{}` cannot be a switch register access", names[0]);
    }
    Some(first)
}

/// Chooses each field's encoding; reports floats without a scale and non-atom operators.
fn map_fields(
    plan: &AggregatePlan,
    profile: &TargetProfile,
    options: &LowerOptions,
    structural: bool,
    latest: Option<Latest>,
    sorted_run: bool,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<FieldMap> {
    if let Some(pair) = latest {
        let fits = |index: usize| plan.state.fields[index].ty.scalar().size_bytes() * 8 <= profile.register_word_bits;
        if !profile.register_pair || !fits(pair.primary) || !fits(pair.secondary) {
            diagnostics.push(
                Diagnostic::error(
                    Code::E0601,
                    format!(
                        "the latest-value merge of `{}` needs one register pair of two {}-bit words; {}",
                        plan.name,
                        profile.register_word_bits,
                        if profile.register_pair {
                            "a field of this state is wider than a word"
                        } else {
                            "the profile has no register pairs (`register_pair = false`)"
                        }
                    ),
                    plan.merge_span,
                    "this merge keeps the larger (or smaller) pair, comparing one field first",
                )
                .with_note("both words of the pair must be compared and selected in one access, under one predicate; a wider field would need a second access to the same entry")
                .with_help("narrow the fields to one register word each, or run this aggregate on a NIC or host target"),
            );
        }
    }
    let in_latest = |index: usize| latest.is_some_and(|pair| pair.primary == index || pair.secondary == index);
    let w = profile.register_word_bits;
    let mut next_register = 1usize;
    let mut fields = Vec::new();
    for (index, field) in plan.state.fields.iter().enumerate() {
        let scalar = field.ty.scalar();
        let encoding = match scalar {
            ScalarTy::Int(int) => Encoding::Int(int),
            ScalarTy::Bool => Encoding::Bool,
            ScalarTy::Float(float) => match options.fixed_point_scale {
                Some(scale) if scale > 0 => Encoding::FixedPoint { float, scale },
                _ => {
                    diagnostics.push(
                        Diagnostic::error(
                            Code::E0603,
                            format!(
                                "{} has no switch representation: state field `{}` of `{}` holds floats",
                                scalar.name(),
                                field.name,
                                plan.name
                            ),
                            plan.merge_span,
                            format!("`{}` is merged here", field.name),
                        )
                        .with_note("switch ALUs have integer arithmetic only")
                        .with_help("declare a fixed-point scale (`--fixed-point 1000` carries round(x * 1000) as an i64; sums stay exact while |sum| * scale < 2^63), or accumulate integers in `lift`"),
                    );
                    Encoding::FixedPoint { float, scale: 1 }
                }
            },
        };
        let supported = in_latest(index)
            || sorted_run
            || !matches!(
                (field.merge, encoding),
                (MergeOp::Custom, _) | (MergeOp::Or | MergeOp::And, Encoding::FixedPoint { .. })
            );
        if !supported && !structural {
            diagnostics.push(
                Diagnostic::error(
                    Code::E0601,
                    format!(
                        "state field `{}` of `{}` is not merged by one register operation (add, min, max, or, and)",
                        field.name, plan.name
                    ),
                    plan.merge_span,
                    "this merge combines the field in a way a stateful ALU cannot",
                )
                .with_note("a stateful ALU reads one register word, combines it with the packet's word, and writes it back; the merge-law checker could not prove the field is combined that way")
                .with_help("write the merge field-wise (`out.f = a.f + b.f`, `min(a.f, b.f)`, ...), or run this aggregate on a NIC or host target"),
            );
        }
        let bits = encoding.bits();
        let words = bits.div_ceil(w).max(1);
        let elems = field.ty.size_elems();
        fields.push(FieldMap {
            name: field.name.clone(),
            ty: field.ty.to_string(),
            var_ty: field.ty,
            merge: field.merge,
            encoding,
            elems,
            words,
            first_register: next_register,
        });
        next_register += (elems * words) as usize;
    }
    fields
}

fn build(
    plan: &AggregatePlan,
    profile: &TargetProfile,
    options: &LowerOptions,
    fields: Vec<FieldMap>,
    latest: Option<Latest>,
    run: Option<SortedRun>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<PipelineProgram, InternalError> {
    let w = profile.register_word_bits;
    let mut registers = vec![Register { name: "key".to_string(), role: RegisterRole::Key, stage: 0 }];
    let atom = |register: usize, op: AtomOp, flag_in: Option<u32>, flag_out: Option<u32>| Atom {
        register,
        op,
        flag_in,
        flag_out,
        lane: 0,
        hi: None,
    };
    // One lane's atoms as chains: the atoms of a chain pass a carry or comparison flag from
    // one to the next, so they are placed one step apart within one pass.
    let mut chains: Vec<Vec<Atom>> = vec![vec![atom(0, AtomOp::KeyClaim, None, Some(0))]];
    let mut flags = 1u32;
    let mut next_flag = || {
        flags += 1;
        flags - 1
    };
    for (index, map) in fields.iter().enumerate() {
        for elem in 0..map.elems {
            for word in 0..map.words {
                let mut name = map.name.clone();
                if map.elems > 1 || matches!(map.var_ty, VarTy::Array(..)) {
                    name = format!("{name}[{elem}]");
                }
                if map.words > 1 {
                    name = format!("{name}.w{word}");
                }
                registers.push(Register { name, role: RegisterRole::Word { field: index, elem, word }, stage: 0 });
            }
            let base = map.first_register + (elem * map.words) as usize;
            let last = map.words - 1;
            if let Some(run) = run {
                // One insertion chain: every element's compare-and-swap, most significant
                // word first (a tie passes down as a flag, as in `min`/`max`), element after
                // element (the value passed on is a packet field: the next element's atoms
                // follow in the next stages). The whole chain is one chain for placement.
                if elem == 0 {
                    chains.push(Vec::new());
                }
                let mut flag_in = None;
                for word in (0..map.words).rev() {
                    let signed = word == last && map.encoding.signed();
                    let flag_out = (word > 0).then(&mut next_flag);
                    let op = AtomOp::Insert { max: run.max, signed };
                    if let Some(chain) = chains.last_mut() {
                        chain.push(atom(base + word as usize, op, flag_in, flag_out));
                    }
                    flag_in = flag_out;
                }
                continue;
            }
            if let Some(pair) = latest {
                // The pair is one atom on the primary field's register, the secondary as
                // the pair's other half (the fields take one word each: `map_fields`).
                if index == pair.primary {
                    let secondary = &fields[pair.secondary];
                    let op = AtomOp::Latest {
                        max: pair.max,
                        signed_primary: map.encoding.signed(),
                        signed_secondary: secondary.encoding.signed(),
                    };
                    let mut latest_atom = atom(base, op, None, None);
                    latest_atom.hi = Some((secondary.first_register, op));
                    chains.push(vec![latest_atom]);
                }
                if index == pair.primary || index == pair.secondary {
                    continue;
                }
            }
            match map.merge {
                // Carries ripple from the least significant word up.
                MergeOp::Add => {
                    let mut chain = Vec::new();
                    let mut flag_in = None;
                    for word in 0..map.words {
                        let flag_out = (word < last).then(&mut next_flag);
                        chain.push(atom(base + word as usize, AtomOp::Add, flag_in, flag_out));
                        flag_in = flag_out;
                    }
                    chains.push(chain);
                }
                // Comparisons are decided from the most significant word down.
                MergeOp::Min | MergeOp::Max => {
                    let mut chain = Vec::new();
                    let mut flag_in = None;
                    for word in (0..map.words).rev() {
                        let signed = word == last && map.encoding.signed();
                        let op =
                            if map.merge == MergeOp::Min { AtomOp::Min { signed } } else { AtomOp::Max { signed } };
                        let flag_out = (word > 0).then(&mut next_flag);
                        chain.push(atom(base + word as usize, op, flag_in, flag_out));
                        flag_in = flag_out;
                    }
                    chains.push(chain);
                }
                MergeOp::Or | MergeOp::And | MergeOp::Custom => {
                    let op = if map.merge == MergeOp::And { AtomOp::And } else { AtomOp::Or };
                    for word in 0..map.words {
                        chains.push(vec![atom(base + word as usize, op, None, None)]);
                    }
                }
            }
        }
    }
    if profile.register_pair {
        chains = pair_up(chains);
    }

    let identity_words = encode_identity(plan, &fields, w)?;
    let element_words = fields.first().map_or(1, |field| field.words);
    let mut program = PipelineProgram {
        aggregate: plan.name.clone(),
        profile: profile.clone(),
        fields,
        registers,
        stages: Vec::new(),
        lanes: 1,
        passes: 1,
        flags,
        identity_words,
        fixed_point_scale: options.fixed_point_scale,
        insertion: run.map(|run| Insertion { k: run.k, words: element_words, max: run.max }),
    };
    let fields_per_entry = program.fields_per_entry();
    if fields_per_entry > profile.max_packet_fields {
        diagnostics.push(
            Diagnostic::error(
                Code::E0606,
                format!(
                    "an entry of `{}` needs {fields_per_entry} packet fields (key and {} state words); `{}` carries at most {}",
                    plan.name,
                    program.state_words(),
                    profile.name,
                    profile.max_packet_fields
                ),
                plan.span,
                "the state of this aggregate is too large for one packet",
            )
            .with_help("shrink the state (fewer or narrower fields)"),
        );
    }
    let bound = program.packet_lane_bound();
    if let Some(lanes) = options.lanes {
        if lanes == 0 || lanes > bound {
            diagnostics.push(
                Diagnostic::error(
                    Code::E0606,
                    format!(
                        "`--lanes {lanes}`: a packet of `{}` carries 1 to {bound} entries of `{}` ({} packet fields each)",
                        profile.name, plan.name, fields_per_entry
                    ),
                    plan.span,
                    "the entries of this aggregate",
                )
                .with_help(format!("choose between 1 and {bound} lanes, or leave `--lanes` out to use the most that fit")),
            );
            return Ok(program);
        }
    }
    match choose(&chains, profile, options, bound) {
        Choice::Fits(schedule) => {
            program.lanes = schedule.lanes;
            program.passes = schedule.passes;
            program.stages = schedule.stages;
            for (step, atom) in program.lane_atoms(0).map(|(step, atom)| (step as u32, *atom)).collect::<Vec<_>>() {
                program.registers[atom.register].stage = step;
                if let Some((hi, _)) = atom.hi {
                    program.registers[hi].stage = step;
                }
            }
            if let Some(min) = options.min_key_slots {
                let (slots, stage) = program.key_slots();
                if slots < min {
                    diagnostics.push(
                        Diagnostic::error(
                            Code::E0608,
                            format!(
                                "the registers of `{}` leave room for {slots} key slots per lane (stage {stage} is full first, with {}); {min} are required",
                                plan.name,
                                counted(u64::from(program.lanes), "lane", "lanes")
                            ),
                            plan.span,
                            "the state of this aggregate",
                        )
                        .with_help(if program.lanes > 1 {
                            format!(
                                "use fewer lanes (`--lanes N` with N below {}: each lane's registers take room in the stages), shrink the state, or accept fewer key slots",
                                program.lanes
                            )
                        } else {
                            "shrink the state or accept fewer key slots".to_string()
                        }),
                    );
                }
            }
        }
        Choice::TooManyUpdates { chain } => {
            let max_passes = options.max_passes.unwrap_or(1).max(1);
            let updates: usize = chains.iter().map(Vec::len).sum();
            let lanes = options.lanes.unwrap_or(1);
            let register = &program.registers[chains[chain][0].register];
            let nth: usize = chains[..chain].iter().map(Vec::len).sum::<usize>() + 1;
            let needed = (updates * lanes as usize).div_ceil(profile.stateful_alus_per_stage as usize);
            let passes = if max_passes == 1 { "one pass".to_string() } else { format!("{max_passes} passes") };
            diagnostics.push(
                Diagnostic::error(
                    Code::E0605,
                    format!(
                        "the {} stateful update (`{}`) needs a stage ALU; stage {} is the last of `{}` and every stage has {}",
                        ordinal(nth),
                        register.name,
                        profile.stages - 1,
                        profile.name,
                        profile.stateful_alus_per_stage
                    ),
                    plan.merge_span,
                    format!(
                        "the merge of `{}` updates {} register words (plus the key)",
                        plan.name,
                        program.state_words()
                    ),
                )
                .with_note(if program.insertion.is_some() {
                    format!(
                        "this merge of sorted runs needs {updates} stateful updates per lane: the key claim, then its insertion chain's compare-and-swap atoms one stage after another"
                    )
                } else {
                    format!(
                        "this merge needs {updates} stateful updates per lane over at least {needed} stages; {} of {passes} offer{} {} stages x {} ALUs{}",
                        counted(u64::from(lanes), "lane", "lanes"),
                        if max_passes == 1 { "s" } else { "" },
                        profile.stages,
                        profile.stateful_alus_per_stage,
                        if max_passes == 1 { "" } else { " each" }
                    )
                })
                .with_help(match program.insertion {
                    // The words of an element pass a flag, and the inserted value moves on
                    // stage by stage: the chain runs in consecutive stages of one pass.
                    Some(chain) => format!(
                        "an insertion chain of {} x {} runs in consecutive stages of one pass after the key claim ({} stages in all; `{}` has {}): keep fewer values (a smaller K) or narrower ones",
                        counted(chain.k, "element", "elements"),
                        counted(chain.words, "word", "words"),
                        chain.k * chain.words + 1,
                        profile.name,
                        profile.stages
                    ),
                    None => format!(
                        "shrink the state (fewer or narrower fields; 64-bit fields take two 32-bit words and two stages), or allow recirculation with `--max-passes N` (at most {MAX_PASSES})"
                    ),
                }),
            );
        }
        Choice::PhvFull { bits } => {
            let max_passes = options.max_passes.unwrap_or(1).max(1);
            diagnostics.push(
                Diagnostic::error(
                    Code::E0606,
                    format!(
                        "an entry of `{}` brings {bits} bits of fields into the packet header vector; a pass of `{}` has room for {} bits of entry fields ({} PHV bits less {} of headers), and {} allowed",
                        plan.name,
                        profile.name,
                        profile.entry_phv_bits(),
                        profile.phv_bits_per_pass,
                        u64::from(profile.packet_header_bytes) * 8,
                        counted(u64::from(max_passes), "pass is", "passes are")
                    ),
                    plan.span,
                    "the state of this aggregate is too wide for the pipeline",
                )
                .with_help(format!(
                    "allow recirculation with `--max-passes N` (at most {MAX_PASSES}; each pass brings more of the entry in), or shrink the state"
                )),
            );
        }
    }
    Ok(program)
}

/// A latest-value (or arg-max) merge: a state of two integer fields merged by keeping the
/// pair that is lexicographically larger (`max`) or smaller, `primary` compared first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Latest {
    primary: usize,
    secondary: usize,
    max: bool,
}

/// What a value in a merge is, for [`latest_pair`]: a bool, or one of the two states' values
/// of field `f` (never anything computed from them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Bool,
    Field(usize),
}

/// Recognises a latest-value merge and proves it. The merge qualifies when its state is two
/// integer fields left `custom` by the merge-law checker, and its unrolled code only compares
/// a field's values with values of the same field, combines the comparisons with `and`, `or`,
/// `not` and conditionals, and returns for every field one of the two states' values of that
/// field. Such a merge's result depends only on the order of `a.f` and `b.f` for each field
/// (each `<`, `=` or `>`): nine cases, which the interpreter runs on representatives (1 and 2)
/// and compares with the lexicographic maximum and minimum, in both field orders. Agreeing on
/// all nine is equal on every input (spec.md section 15.3).
fn latest_pair(compiled: &Compiled, merge: &Function, plan: &AggregatePlan) -> Option<Latest> {
    use naas_ir::interp::{Interpreter, Slot};
    use naas_ir::ir::{Operand, Scalar, UnaryOp};
    use std::collections::HashMap;

    let fields = &plan.state.fields;
    if fields.len() != 2 || fields.iter().any(|f| f.merge != MergeOp::Custom) {
        return None;
    }
    let mut ints = Vec::new();
    for field in fields {
        match field.ty {
            VarTy::Scalar(ScalarTy::Int(int)) => ints.push(int),
            _ => return None,
        }
    }
    if merge.params.len() != 4 {
        return None;
    }
    fn class(expr: &Expr, vars: &HashMap<naas_ir::ir::Var, Class>) -> Option<Class> {
        match expr {
            Expr::Const(Scalar::Bool(_)) => Some(Class::Bool),
            Expr::Var(var) => vars.get(var).copied(),
            Expr::Compare { lhs, rhs, .. } => match (class(lhs, vars)?, class(rhs, vars)?) {
                (Class::Field(a), Class::Field(b)) if a == b => Some(Class::Bool),
                _ => None,
            },
            Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => {
                (class(lhs, vars)? == Class::Bool && class(rhs, vars)? == Class::Bool).then_some(Class::Bool)
            }
            Expr::Unary { op: UnaryOp::Not, arg } => (class(arg, vars)? == Class::Bool).then_some(Class::Bool),
            Expr::IfElse { cond, then, orelse } | Expr::Select { cond, then, orelse } => {
                let then = class(then, vars)?;
                (class(cond, vars)? == Class::Bool && class(orelse, vars)? == then).then_some(then)
            }
            _ => None,
        }
    }
    fn block(stmts: &[Stmt], vars: &mut HashMap<naas_ir::ir::Var, Class>) -> Option<()> {
        for stmt in stmts {
            match stmt {
                Stmt::Assign { dst, value } => {
                    let value = class(value, vars)?;
                    if vars.insert(*dst, value).is_some_and(|before| before != value) {
                        return None;
                    }
                }
                Stmt::If { cond, then, orelse } => {
                    if class(cond, vars)? != Class::Bool {
                        return None;
                    }
                    block(then, vars)?;
                    block(orelse, vars)?;
                }
                Stmt::Block { body, .. } => block(body, vars)?,
                Stmt::Return(operands) => {
                    if operands.len() != 2 {
                        return None;
                    }
                    for (index, operand) in operands.iter().enumerate() {
                        match operand {
                            Operand::Scalar(expr) if class(expr, vars)? == Class::Field(index) => {}
                            _ => return None,
                        }
                    }
                }
                _ => return None,
            }
        }
        Some(())
    }
    let mut vars: HashMap<naas_ir::ir::Var, Class> =
        merge.params.iter().enumerate().map(|(i, var)| (*var, Class::Field(i % 2))).collect();
    block(&merge.body, &mut vars)?;

    // The nine order cases, on the merge as compiled (the unrolled code computes the same).
    let interp = Interpreter::new(&compiled.optimized);
    let pairs = [(1i128, 2i128), (2, 2), (2, 1)];
    let mut outcomes = Vec::new();
    for (a0, b0) in pairs {
        for (a1, b1) in pairs {
            let args = vec![
                Slot::Scalar(Scalar::Int(ints[0], a0)),
                Slot::Scalar(Scalar::Int(ints[1], a1)),
                Slot::Scalar(Scalar::Int(ints[0], b0)),
                Slot::Scalar(Scalar::Int(ints[1], b1)),
            ];
            let out = interp.call(plan.merge, args).ok()?;
            let values: Vec<i128> = out
                .iter()
                .map(|slot| match slot {
                    Slot::Scalar(Scalar::Int(_, v)) => Some(*v),
                    _ => None,
                })
                .collect::<Option<Vec<i128>>>()?;
            outcomes.push(([a0, a1], [b0, b1], values));
        }
    }
    for (primary, secondary) in [(0usize, 1usize), (1, 0)] {
        for max in [true, false] {
            let agrees = outcomes.iter().all(|(a, b, got)| {
                let ordering = a[primary].cmp(&b[primary]).then(a[secondary].cmp(&b[secondary]));
                let keep_a = if max { ordering.is_ge() } else { ordering.is_le() };
                let want = if keep_a { a } else { b };
                got.as_slice() == want.as_slice()
            });
            if agrees {
                return Some(Latest { primary, secondary, max });
            }
        }
    }
    None
}

/// Pairs the atoms that can share a register pair (see [`AtomOp::pairable`]): chains of one
/// predicate-free atom without flags, two by two in field order. A pair is one register array
/// of two words per slot, updated in one access: one stateful ALU instead of two.
fn pair_up(chains: Vec<Vec<Atom>>) -> Vec<Vec<Atom>> {
    let mut out: Vec<Vec<Atom>> = Vec::with_capacity(chains.len());
    let mut open: Option<usize> = None;
    for chain in chains {
        let single = match chain.as_slice() {
            [only] if only.op.pairable() && only.flag_in.is_none() && only.flag_out.is_none() => Some(*only),
            _ => None,
        };
        match (single, open) {
            (Some(atom), Some(index)) => {
                out[index][0].hi = Some((atom.register, atom.op));
                open = None;
            }
            (Some(_), None) => {
                open = Some(out.len());
                out.push(chain);
            }
            (None, _) => out.push(chain),
        }
    }
    out
}

/// The schedule [`choose`] settled on.
struct Schedule {
    lanes: u32,
    passes: u32,
    stages: Vec<Stage>,
}

/// What [`choose`] found.
enum Choice {
    Fits(Schedule),
    /// Chain `chain` of one lane found no stage ALU.
    TooManyUpdates {
        chain: usize,
    },
    /// The stage ALUs would do, but an entry's `bits` of fields do not fit the PHV budget of
    /// the passes allowed.
    PhvFull {
        bits: u64,
    },
}

/// Chooses passes, lanes and placement: the fewest passes (up to `max_passes`) in which one
/// lane fits (or the lanes asked for); then the most lanes that fit in those passes (at most
/// `bound`, the packet-size bound), or with `min_key_slots` the most that leave that many
/// slots; then the placement that spreads the registers most evenly over the stages (the
/// fewest words in the fullest stage, the most key slots per lane).
fn choose(chains: &[Vec<Atom>], profile: &TargetProfile, options: &LowerOptions, bound: u32) -> Choice {
    let max_passes = options.max_passes.unwrap_or(1).clamp(1, MAX_PASSES);
    let atoms_per_lane: u64 = chains.iter().map(|c| c.len() as u64).sum();
    let words_per_lane: u64 = chains.iter().flatten().map(|a| u64::from(a.words())).sum();
    let word_cap = u64::from(profile.stateful_alus_per_stage) * u64::from(profile.words_per_alu());
    for passes in 1..=max_passes {
        let one = options.lanes.unwrap_or(1);
        match place(chains, profile, one, passes, u64::MAX, true) {
            Ok(_) => {}
            Err(_) => continue,
        }
        let alus = u64::from(profile.stages) * u64::from(profile.stateful_alus_per_stage) * u64::from(passes);
        let most = u32::try_from((alus / atoms_per_lane.max(1)).min(u64::from(bound))).unwrap_or(bound).max(1);
        let candidates: Vec<u32> = match options.lanes {
            Some(lanes) => vec![lanes],
            None => (1..=most).rev().collect(),
        };
        let mut fallback = None;
        for lanes in candidates {
            // The fewest words in the fullest stage that could place every lane, and the
            // most slots that leaves: lane counts that cannot leave `min_key_slots` are
            // skipped without placing them.
            let least = (words_per_lane * u64::from(lanes)).div_ceil(u64::from(profile.stages)).max(1);
            let most_slots = profile.register_sram_bytes_per_stage / (least * profile.word_bytes());
            if options.lanes.is_none() && lanes > 1 && options.min_key_slots.is_some_and(|min| most_slots < min) {
                continue;
            }
            if place(chains, profile, lanes, passes, u64::MAX, true).is_err() {
                continue;
            }
            let mut best = None;
            for cap in least..=word_cap {
                if let Ok(stages) = place(chains, profile, lanes, passes, cap, true) {
                    best = Some((cap, stages));
                    break;
                }
            }
            let (cap, stages) = match best {
                Some(found) => found,
                None => match place(chains, profile, lanes, passes, u64::MAX, true) {
                    Ok(stages) => (word_cap, stages),
                    Err(_) => continue,
                },
            };
            let schedule = Schedule { lanes, passes, stages };
            let slots = profile.register_sram_bytes_per_stage / (cap.max(1) * profile.word_bytes());
            match options.min_key_slots {
                Some(min) if options.lanes.is_none() && slots < min => {
                    // Fewer lanes may leave enough; keep this one in case none does.
                    fallback = Some(schedule);
                }
                _ => return Choice::Fits(schedule),
            }
        }
        if let Some(schedule) = fallback {
            return Choice::Fits(schedule);
        }
    }
    // Nothing fits: with an unbounded PHV, is it the ALUs or the PHV?
    let lanes = options.lanes.unwrap_or(1);
    match place(chains, profile, lanes, max_passes, u64::MAX, false) {
        Ok(_) => {
            let field_bits = u64::from(profile.packet_field_bits);
            let bits = u64::from(profile.fields_per_key()) * field_bits
                + words_per_lane * u64::from(profile.fields_per_word()) * field_bits;
            Choice::PhvFull { bits: bits * u64::from(lanes) }
        }
        Err(failure) => failure,
    }
}

/// Places `lanes` copies of the chains over `passes` passes: each chain of each lane at the
/// first step (pass x stages + stage) after its lane's key claim where its atoms fit one
/// step apart within one pass, each on a free stateful ALU, with at most `word_cap` register
/// words in any physical stage (over all passes: an array's SRAM is the stage's), and, with
/// `phv`, the entry fields of each pass within the PHV budget.
fn place(
    chains: &[Vec<Atom>],
    profile: &TargetProfile,
    lanes: u32,
    passes: u32,
    word_cap: u64,
    phv: bool,
) -> Result<Vec<Stage>, Choice> {
    let stages = profile.stages as usize;
    let steps = stages * passes as usize;
    let alus = profile.stateful_alus_per_stage as usize;
    let field_bits = u64::from(profile.packet_field_bits);
    let key_bits = u64::from(profile.fields_per_key()) * field_bits;
    let word_bits = u64::from(profile.fields_per_word()) * field_bits;
    let budget = if phv { profile.entry_phv_bits() } else { u64::MAX };
    let mut placed: Vec<Stage> = vec![Stage::default(); steps];
    let mut words = vec![0u64; stages];
    let mut phv_used = vec![0u64; passes as usize];
    for lane in 0..lanes {
        let mut in_pass = vec![false; passes as usize];
        let mut claim_step = 0usize;
        for (index, chain) in chains.iter().enumerate() {
            let earliest = if index == 0 { 0 } else { claim_step + 1 };
            let mut found = None;
            'start: for start in earliest..steps {
                let end = start + chain.len() - 1;
                if end >= steps || start / stages != end / stages {
                    continue;
                }
                let pass = start / stages;
                let mut bits = if in_pass[pass] { 0 } else { key_bits };
                for (k, atom) in chain.iter().enumerate() {
                    let step = start + k;
                    if placed[step].atoms.len() >= alus || words[step % stages] + u64::from(atom.words()) > word_cap {
                        continue 'start;
                    }
                    if atom.op != AtomOp::KeyClaim {
                        bits += u64::from(atom.words()) * word_bits;
                    }
                }
                if phv_used[pass].saturating_add(bits) > budget {
                    continue;
                }
                found = Some((start, pass, bits));
                break;
            }
            let Some((start, pass, bits)) = found else {
                return Err(Choice::TooManyUpdates { chain: index });
            };
            phv_used[pass] += bits;
            in_pass[pass] = true;
            for (k, atom) in chain.iter().enumerate() {
                let step = start + k;
                words[step % stages] += u64::from(atom.words());
                placed[step].atoms.push(Atom { lane, ..*atom });
            }
            if index == 0 {
                claim_step = start;
            }
        }
    }
    while placed.last().is_some_and(|stage| stage.atoms.is_empty()) {
        placed.pop();
    }
    Ok(placed)
}

/// The identity state as register words: the merge's unit (e.g. MAX for min), which empty
/// slots hold so that an entry claiming a slot merges into it unchanged.
fn encode_identity(plan: &AggregatePlan, fields: &[FieldMap], w: u32) -> Result<Vec<u64>, InternalError> {
    let words: usize = fields.iter().map(|f| (f.elems * f.words) as usize).sum();
    let probe = PipelineProgram {
        aggregate: String::new(),
        profile: TargetProfile { register_word_bits: w, ..TargetProfile::default() },
        fields: fields.to_vec(),
        registers: vec![Register { name: String::new(), role: RegisterRole::Key, stage: 0 }; words + 1],
        stages: Vec::new(),
        lanes: 1,
        passes: 1,
        flags: 0,
        identity_words: Vec::new(),
        fixed_point_scale: None,
        insertion: None,
    };
    // Identities are in range by construction (fixed point saturates infinities) and have the
    // state layout's types, so a failure here is a compiler bug.
    probe.encode_state(&plan.identity).map_err(|error| {
        InternalError::at(plan.span, format!("the identity of `{}` has no register encoding: {error}", plan.name))
    })
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use super::*;
    use naas_ir::interp::Slot;
    use naas_ir::ir::Scalar;

    fn internal(compiled: &Compiled, plan_index: usize) -> InternalError {
        match lower(compiled, plan_index, &TargetProfile::default(), &LowerOptions::default()) {
            Err(LowerError::Internal(error)) => error,
            Err(LowerError::Diagnostics(diagnostics)) => {
                panic!("diagnostics instead of an internal error: {diagnostics:?}")
            }
            Ok(_) => panic!("lowered a broken input"),
        }
    }

    fn latest_source(merge_body: &str) -> String {
        format!(
            "aggregate latest(t: u32, v: i32) -> tuple[u32, i32]:\n    identity = (0, I32_MIN)\n\n    def lift(t: u32, v: i32) -> tuple[u32, i32]:\n        return t, v\n\n    def merge(a: tuple[u32, i32], b: tuple[u32, i32]) -> tuple[u32, i32]:\n{merge_body}"
        )
    }

    fn latest_op(source: &str, profile: &TargetProfile) -> Result<AtomOp, Vec<Diagnostic>> {
        let compiled = naas_test_support::compile_source(source);
        match lower(&compiled, 0, profile, &LowerOptions::default()) {
            Ok(program) => Ok(program.lane_atoms(0).map(|(_, atom)| atom.op).nth(1).unwrap()),
            Err(LowerError::Diagnostics(diagnostics)) => Err(diagnostics),
            Err(LowerError::Internal(error)) => panic!("{error}"),
        }
    }

    /// Lexicographic maxima and minima are recognised in either field order and however
    /// the comparisons are written; merges that are not one of them stay E0601.
    #[test]
    fn latest_value_merges_are_recognised_and_others_are_not() {
        let profile = TargetProfile::default();
        let max = latest_source(
            "        if a[0] > b[0] or (a[0] == b[0] and a[1] >= b[1]):\n            return a\n        return b\n",
        );
        assert_eq!(
            latest_op(&max, &profile).unwrap(),
            AtomOp::Latest { max: true, signed_primary: false, signed_secondary: true }
        );
        // The value first, the timestamp breaking ties, keeping the smaller pair.
        let min = latest_source(
            "        if b[1] < a[1] or (b[1] == a[1] and b[0] < a[0]):\n            return b\n        return a\n",
        );
        assert_eq!(
            latest_op(&min, &profile).unwrap(),
            AtomOp::Latest { max: false, signed_primary: true, signed_secondary: false }
        );
        for (what, body) in [
            ("ties keep the first", "        if a[0] >= b[0]:\n            return a\n        return b\n"),
            ("mixes the pairs", "        if a[0] > b[0]:\n            return a[0], b[1]\n        return b[0], a[1]\n"),
            ("computes a value", "        if a[0] > b[0]:\n            return a[0], a[1] + 1\n        return b\n"),
            (
                "compares with a constant",
                "        if a[0] > b[0] or a[1] > 0:\n            return a\n        return b\n",
            ),
        ] {
            let diagnostics = latest_op(&latest_source(body), &profile).expect_err(what);
            assert!(diagnostics.iter().all(|d| d.code == Code::E0601), "{what}: {diagnostics:?}");
        }
        // Without register pairs the pair is two accesses: E0601 says why.
        let no_pairs = TargetProfile { register_pair: false, ..TargetProfile::default() };
        let diagnostics = latest_op(&max, &no_pairs).unwrap_err();
        assert!(diagnostics[0].message.contains("`register_pair = false`"), "{diagnostics:?}");
    }

    /// An aggregate index the program does not have is the caller's bug, not a diagnostic
    /// about the user's program.
    #[test]
    fn a_missing_aggregate_is_an_internal_error() {
        let compiled = naas_test_support::compile_example("reduce");
        let error = internal(&compiled, 7);
        assert_eq!(error.message, "no aggregate number 7 to lower: the program has 1");
        assert_eq!(error.span, None);
    }

    /// IR that the verifier rejects (here a merge whose parameter is listed twice) stops the
    /// lowering at the merge, instead of being reported as the user's E0607.
    #[test]
    #[cfg_attr(not(debug_assertions), ignore = "the passes verify the IR in debug builds only")]
    fn ir_the_verifier_rejects_is_an_internal_error() {
        let mut compiled = naas_test_support::compile_example("reduce");
        let merge = compiled.aggregates[0].merge;
        let function = &mut compiled.optimized.functions[merge.0 as usize];
        let first = function.params[0];
        function.params.push(first);
        let error = internal(&compiled, 0);
        assert!(error.message.starts_with("cannot unroll the merge of `delay_stats`: "), "{}", error.message);
        assert!(error.message.contains("listed twice"), "{}", error.message);
        assert_eq!(error.span, Some(compiled.aggregates[0].merge_span));
    }

    /// An identity state of another type than its field has no register encoding: a
    /// compiler bug, where the lowering used to put zeros in the empty slots.
    #[test]
    fn an_identity_without_an_encoding_is_an_internal_error() {
        let mut compiled = naas_test_support::compile_example("reduce");
        compiled.aggregates[0].identity[0] = Slot::Scalar(Scalar::Bool(true));
        let error = internal(&compiled, 0);
        assert_eq!(
            error.to_string(),
            "internal compiler error: the identity of `delay_stats` has no register encoding: \
             state field `min(delay)`: value True does not match its type i32"
        );
        assert_eq!(error.span, Some(compiled.aggregates[0].span));
    }
}
