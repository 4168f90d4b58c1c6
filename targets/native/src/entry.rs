//! The batch entry points of an aggregate (see [`crate::abi`]), built into any Cranelift
//! module (JIT or object file) by one [`EntryBuilder`] that reuses its contexts.

use cranelift_codegen::ir::{types, AbiParam, Function, InstBuilder, Signature, Type, UserFuncName, Value};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, Linkage, Module};
use naas_ir::decompose::AggregatePlan;
use naas_ir::interp::Slot;
use naas_ir::ir::{self as nir, VarTy};
use naas_lang::{bail_internal, InternalError};

use crate::abi::{AggregateAbi, FaultSite, StructLayout};
use crate::error::NativeError;
use crate::translate::{clif_type, constant, copy_bytes, flags, inline_function, stack_array, EntryContext, Storage};
use crate::vector::VectorFold;

/// The entry points of one aggregate in a module.
#[derive(Clone, Debug)]
pub struct EntryIds {
    pub init: FuncId,
    pub fold: FuncId,
    pub fold_keyed: FuncId,
    pub merge: FuncId,
    pub finish: FuncId,
    /// True when `fold` runs on vectors (see [`crate::vector`]).
    pub vectorised: bool,
}

/// Builds entry functions, keeping one Cranelift context and one frontend context for all.
pub struct EntryBuilder {
    ctx: Context,
    builder_ctx: FunctionBuilderContext,
    /// The Cranelift IR of every function defined, for `--emit clif`.
    pub clif: Vec<String>,
}

impl Default for EntryBuilder {
    fn default() -> Self {
        EntryBuilder::new()
    }
}

type Built = Result<(), NativeError>;

impl EntryBuilder {
    pub fn new() -> EntryBuilder {
        EntryBuilder { ctx: Context::new(), builder_ctx: FunctionBuilderContext::new(), clif: Vec::new() }
    }

    /// Declares and defines all entry points of `plan`; fault sites are appended to `sites`.
    pub fn build<M: Module>(
        &mut self,
        module: &mut M,
        ir: &nir::Module,
        plan: &AggregatePlan,
        abi: &AggregateAbi,
        sites: &mut Vec<FaultSite>,
    ) -> Result<EntryIds, NativeError> {
        let ptr = module.target_config().pointer_type();
        let sig = |params: &[Type], ret: bool| {
            let mut sig = module.make_signature();
            sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
            if ret {
                sig.returns.push(AbiParam::new(types::I32));
            }
            sig
        };
        let init_sig = sig(&[ptr], false);
        let fold_sig = sig(&[ptr, ptr, types::I64, ptr], true);
        let keyed_sig = sig(&[ptr, ptr, ptr, types::I64, ptr], true);
        let merge_sig = sig(&[ptr, ptr, ptr], true);
        let finish_sig = sig(&[ptr, ptr, ptr], true);
        let declare = |module: &mut M, which: &str, sig: &Signature| {
            module
                .declare_function(&abi.entry(which), Linkage::Export, sig)
                .map_err(|e| NativeError::Module(e.to_string()))
        };
        let mut ids = EntryIds {
            init: declare(module, "init", &init_sig)?,
            fold: declare(module, "fold", &fold_sig)?,
            fold_keyed: declare(module, "fold_keyed", &keyed_sig)?,
            merge: declare(module, "merge", &merge_sig)?,
            finish: declare(module, "finish", &finish_sig)?,
            vectorised: false,
        };
        let lift = ir.function(plan.lift);
        let merge = ir.function(plan.merge);
        let finish = ir.function(plan.finish);
        self.define(module, ids.init, init_sig, &abi.entry("init"), |b, _cx, params| {
            init_body(b, params[0], &abi.state, &plan.identity);
            Ok(())
        })?;
        let vector = VectorFold::detect(ir, plan, abi);
        ids.vectorised = vector.is_some();
        let parts = FoldParts {
            abi,
            lift,
            merge,
            identity: &plan.identity,
            reassociate: reassociates(plan) && registers_hold(&abi.state),
            vector: vector.as_ref(),
        };
        self.define_faulting(module, ids.fold, fold_sig, &abi.entry("fold"), sites, |b, cx, params, record| {
            fold_body(b, cx, params, record, &parts, false)
        })?;
        self.define_faulting(
            module,
            ids.fold_keyed,
            keyed_sig,
            &abi.entry("fold_keyed"),
            sites,
            |b, cx, params, record| fold_body(b, cx, params, record, &parts, true),
        )?;
        self.define_faulting(module, ids.merge, merge_sig, &abi.entry("merge"), sites, |b, cx, params, _| {
            let dst = load_state(b, cx.ptr, params[0], &abi.state);
            let src = load_state(b, cx.ptr, params[1], &abi.state);
            let args: Vec<Storage> = dst.iter().chain(&src).copied().collect();
            inline_function(b, cx, merge, &args, &dst)?;
            store_state(b, cx.ptr, params[0], &abi.state, &dst);
            Ok(())
        })?;
        self.define_faulting(module, ids.finish, finish_sig, &abi.entry("finish"), sites, |b, cx, params, _| {
            let state = load_state(b, cx.ptr, params[0], &abi.state);
            let out = allocate(b, cx.ptr, &abi.result);
            inline_function(b, cx, finish, &state, &out)?;
            store_state(b, cx.ptr, params[1], &abi.result, &out);
            Ok(())
        })?;
        Ok(ids)
    }

    /// Declares and defines `NAME_call(const uint8_t *args, uint8_t *results, naas_fault *)`
    /// for one IR function: its parameters and results are C structs (see [`call_layouts`]).
    pub fn build_call<M: Module>(
        &mut self,
        module: &mut M,
        f: &nir::Function,
        sites: &mut Vec<FaultSite>,
    ) -> Result<FuncId, NativeError> {
        let ptr = module.target_config().pointer_type();
        let mut sig = module.make_signature();
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(ptr), AbiParam::new(ptr)]);
        sig.returns.push(AbiParam::new(types::I32));
        let name = format!("{}_call", crate::abi::c_identifier(&f.name));
        let id =
            module.declare_function(&name, Linkage::Export, &sig).map_err(|e| NativeError::Module(e.to_string()))?;
        let (params, results) = call_layouts(f);
        self.define_faulting(module, id, sig, &name, sites, |b, cx, args, _| {
            let inputs = load_state(b, cx.ptr, args[0], &params);
            let outputs = allocate(b, cx.ptr, &results);
            inline_function(b, cx, f, &inputs, &outputs)?;
            store_state(b, cx.ptr, args[1], &results, &outputs);
            Ok(())
        })?;
        Ok(id)
    }

    /// Defines function `id`: `body` gets a builder in the entry block, the pointer type and
    /// the parameters, and emits every return itself.
    fn define_raw<M: Module>(
        &mut self,
        module: &mut M,
        id: FuncId,
        sig: Signature,
        name: &str,
        body: impl FnOnce(&mut FunctionBuilder<'_>, Type, &[Value]) -> Built,
    ) -> Built {
        self.ctx.func = Function::with_name_signature(UserFuncName::user(0, id.as_u32()), sig);
        let config = module.target_config();
        let ptr = config.pointer_type();
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder_ctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let params = b.block_params(entry).to_vec();
            body(&mut b, ptr, &params)?;
            b.seal_all_blocks();
            b.finalize(config);
        }
        self.finish_definition(module, id, name)
    }

    /// Defines an entry point that returns nothing.
    fn define<M: Module>(
        &mut self,
        module: &mut M,
        id: FuncId,
        sig: Signature,
        name: &str,
        body: impl FnOnce(&mut FunctionBuilder<'_>, Type, &[Value]) -> Built,
    ) -> Built {
        self.define_raw(module, id, sig, name, |b, ptr, params| {
            body(b, ptr, params)?;
            b.ins().return_(&[]);
            Ok(())
        })
    }

    /// Defines an entry point that returns a status: 0, or 1 + a fault site. `body` gets the
    /// parameters and a variable holding the current record index (for fault reports).
    fn define_faulting<M: Module>(
        &mut self,
        module: &mut M,
        id: FuncId,
        sig: Signature,
        name: &str,
        sites: &mut Vec<FaultSite>,
        body: impl FnOnce(&mut FunctionBuilder<'_>, &mut EntryContext<'_>, &[Value], cranelift_frontend::Variable) -> Built,
    ) -> Built {
        self.define_raw(module, id, sig, name, |b, ptr, params| {
            let Some(&fault_out) = params.last() else { bail_internal!("entry point `{name}` without parameters") };
            let record = b.declare_var(types::I64);
            let zero = b.ins().iconst(types::I64, 0);
            b.def_var(record, zero);
            let fault_block = b.create_block();
            b.append_block_param(fault_block, types::I32);
            b.append_block_param(fault_block, types::I64);
            let mut cx = EntryContext { ptr, fault_block, sites };
            body(b, &mut cx, params, record)?;
            let ok = b.ins().iconst(types::I32, 0);
            b.ins().return_(&[ok]);
            // The fault block records where it happened and returns 1 + the site.
            b.switch_to_block(fault_block);
            let (site, value) = (b.block_params(fault_block)[0], b.block_params(fault_block)[1]);
            let index = b.use_var(record);
            b.ins().store(flags(), index, fault_out, 0);
            b.ins().store(flags(), value, fault_out, 8);
            let status = b.ins().iadd_imm_s(site, 1);
            b.ins().return_(&[status]);
            Ok(())
        })
    }

    fn finish_definition<M: Module>(&mut self, module: &mut M, id: FuncId, name: &str) -> Built {
        if cfg!(debug_assertions) {
            let flags = cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder());
            // The translator produced invalid Cranelift IR: a bug of ours, not of the program.
            if let Err(errors) = cranelift_codegen::verifier::verify_function(&self.ctx.func, &flags) {
                bail_internal!("Cranelift verification of `{name}` failed: {errors}");
            }
        }
        self.clif.push(format!("; {name}\n{}", self.ctx.func.display()));
        module
            .define_function(id, &mut self.ctx)
            .map_err(|e| NativeError::Codegen { function: name.to_string(), message: format!("{e:?}") })?;
        module.clear_context(&mut self.ctx);
        Ok(())
    }
}

fn field_offset(offset: u32) -> i32 {
    i32::try_from(offset).unwrap_or(i32::MAX)
}

/// Writes the identity state.
fn init_body(b: &mut FunctionBuilder<'_>, state: Value, layout: &StructLayout, identity: &[Slot]) {
    for (field, slot) in layout.fields.iter().zip(identity) {
        let values: Vec<naas_ir::ir::Scalar> = match slot {
            Slot::Scalar(value) => vec![*value],
            Slot::Array(values) => values.clone(),
        };
        let size = field.ty.scalar().size_bytes();
        for (i, value) in values.into_iter().enumerate() {
            let v = constant(b, value);
            b.ins().store(flags(), v, state, field_offset(field.offset + size * i as u32));
        }
    }
}

/// Fresh storage shaped like a struct: variables for scalars, stack slots for arrays.
fn allocate(b: &mut FunctionBuilder<'_>, ptr: Type, layout: &StructLayout) -> Vec<Storage> {
    layout
        .fields
        .iter()
        .map(|field| match field.ty {
            VarTy::Scalar(ty) => Storage::Scalar(b.declare_var(clif_type(ty)), ty),
            VarTy::Array(ty, len) => Storage::Array { base: stack_array(b, ptr, ty, len), ty, len },
        })
        .collect()
}

/// Loads a struct from memory into fresh storage.
fn load_state(b: &mut FunctionBuilder<'_>, ptr: Type, base: Value, layout: &StructLayout) -> Vec<Storage> {
    let storage = allocate(b, ptr, layout);
    copy_into(b, ptr, base, layout, &storage);
    storage
}

/// Stores storage back into a struct in memory.
fn store_state(b: &mut FunctionBuilder<'_>, ptr: Type, base: Value, layout: &StructLayout, storage: &[Storage]) {
    for (field, store) in layout.fields.iter().zip(storage) {
        match *store {
            Storage::Scalar(var, _) => {
                let v = b.use_var(var);
                b.ins().store(flags(), v, base, field_offset(field.offset));
            }
            Storage::Array { base: slot, ty, len } => {
                let dst = b.ins().iadd_imm_s(base, i64::from(field.offset));
                copy_bytes(b, ptr, dst, slot, ty.size_bytes() * len, ty.size_bytes());
            }
        }
    }
}

/// How many independent accumulators a plain fold keeps when reassociation is exact.
pub const ACCUMULATORS: usize = 4;

/// True when merging in a different order gives bit-identical states: every field combines
/// with an operator that is exactly associative and commutative (integer add, min, max, or,
/// and; float min and max, but not float add).
pub fn reassociates(plan: &AggregatePlan) -> bool {
    use naas_ir::decompose::MergeOp;
    plan.state.fields.iter().all(|field| match field.merge {
        MergeOp::Min | MergeOp::Max | MergeOp::Or | MergeOp::And => true,
        MergeOp::Add => !field.ty.scalar().is_float(),
        MergeOp::Custom => false,
    })
}

/// True when a state is a few scalars, which live in registers: only then do independent
/// accumulators pay. An array state lives in stack memory, and copies of it multiply the code
/// Cranelift compiles (4 accumulators of `histogram.naas` took its compile latency over 5 ms)
/// without shortening a dependency chain that memory already breaks.
fn registers_hold(state: &StructLayout) -> bool {
    state.fields.len() <= 8 && state.fields.iter().all(|f| matches!(f.ty, VarTy::Scalar(_)))
}

/// Writes the identity into storage. An identity of another shape than the state is a
/// decomposition bug, reported as one.
fn set_identity(b: &mut FunctionBuilder<'_>, storage: &[Storage], identity: &[Slot]) -> Result<(), InternalError> {
    if storage.len() != identity.len() {
        bail_internal!("an identity of {} fields for a state of {}", identity.len(), storage.len());
    }
    for (store, slot) in storage.iter().zip(identity) {
        match (*store, slot) {
            (Storage::Scalar(var, _), Slot::Scalar(value)) => {
                let v = constant(b, *value);
                b.def_var(var, v);
            }
            (Storage::Array { base, ty, len }, Slot::Array(values)) if values.len() == len as usize => {
                for (i, value) in values.iter().enumerate() {
                    let v = constant(b, *value);
                    b.ins().store(flags(), v, base, field_offset(ty.size_bytes() * i as u32));
                }
            }
            _ => bail_internal!("an identity field does not have the shape of its state field"),
        }
    }
    Ok(())
}

/// The pieces of an aggregate the record loops expand.
pub struct FoldParts<'a> {
    pub abi: &'a AggregateAbi,
    pub lift: &'a nir::Function,
    pub merge: &'a nir::Function,
    pub identity: &'a [Slot],
    /// Keep several accumulators (see [`reassociates`] and `registers_hold`).
    pub reassociate: bool,
    /// Fold on vectors first (plain folds only).
    pub vector: Option<&'a VectorFold>,
}

/// Loads record `index`'s fields from the columns into fresh variables.
fn load_record(b: &mut FunctionBuilder<'_>, abi: &AggregateAbi, columns: &[Value], index: Value) -> Vec<Storage> {
    let mut inputs = Vec::with_capacity(abi.columns.len());
    for ((_, ty), column) in abi.columns.iter().zip(columns) {
        let offset = crate::translate::scale(b, index, ty.size_bytes());
        let addr = b.ins().iadd(*column, offset);
        let value = b.ins().load(clif_type(*ty), flags(), addr, 0);
        let var = b.declare_var(clif_type(*ty));
        b.def_var(var, value);
        inputs.push(Storage::Scalar(var, *ty));
    }
    inputs
}

/// `state = merge(state, lift(record))`.
fn fold_record(
    b: &mut FunctionBuilder<'_>,
    cx: &mut EntryContext<'_>,
    parts: &FoldParts<'_>,
    inputs: &[Storage],
    state: &[Storage],
    lifted: &[Storage],
) -> Built {
    inline_function(b, cx, parts.lift, inputs, lifted)?;
    let args: Vec<Storage> = state.iter().chain(lifted).copied().collect();
    inline_function(b, cx, parts.merge, &args, state)?;
    Ok(())
}

/// A counted loop over records `record..n` in steps of `step`, calling `body` with the
/// index of the first record of each step. `record` holds the index of the record being
/// folded (for fault reports) and ends at the first record not processed.
pub(crate) fn record_loop(
    b: &mut FunctionBuilder<'_>,
    cx: &mut EntryContext<'_>,
    record: cranelift_frontend::Variable,
    n: Value,
    step: i64,
    mut body: impl FnMut(&mut FunctionBuilder<'_>, &mut EntryContext<'_>, Value) -> Built,
) -> Built {
    let (header, block, exit) = (b.create_block(), b.create_block(), b.create_block());
    b.ins().jump(header, &[]);
    b.switch_to_block(header);
    let i = b.use_var(record);
    let end = b.ins().iadd_imm_s(i, step);
    // `i + step <= n` without overflow: n is a record count, far below 2^63.
    let more = b.ins().icmp(cranelift_codegen::ir::condcodes::IntCC::UnsignedLessThanOrEqual, end, n);
    b.ins().brif(more, block, &[], exit, &[]);
    b.switch_to_block(block);
    let i = b.use_var(record);
    body(b, cx, i)?;
    let i = b.use_var(record);
    let next = b.ins().iadd_imm_s(i, step);
    b.def_var(record, next);
    b.ins().jump(header, &[]);
    b.switch_to_block(exit);
    Ok(())
}

/// The record loop of `fold` (the state kept in registers, with several accumulators when
/// reassociation is exact) and `fold_keyed` (one state per record, addressed by its slot).
fn fold_body(
    b: &mut FunctionBuilder<'_>,
    cx: &mut EntryContext<'_>,
    params: &[Value],
    record: cranelift_frontend::Variable,
    parts: &FoldParts<'_>,
    keyed: bool,
) -> Built {
    let ptr = cx.ptr;
    let abi = parts.abi;
    let (state_ptr, slots, columns, n) = if keyed {
        (params[0], Some(params[1]), params[2], params[3])
    } else {
        (params[0], None, params[1], params[2])
    };
    let column_ptrs: Vec<Value> = (0..abi.columns.len())
        .map(|i| b.ins().load(ptr, flags(), columns, field_offset(i as u32 * ptr.bytes())))
        .collect();
    if let Some(slots) = slots {
        let state = allocate(b, ptr, &abi.state);
        let lifted = allocate(b, ptr, &abi.state);
        return record_loop(b, cx, record, n, 1, |b, cx, i| {
            let inputs = load_record(b, abi, &column_ptrs, i);
            let slot_addr = b.ins().imul_imm_s(i, 4);
            let slot_addr = b.ins().iadd(slots, slot_addr);
            let slot = b.ins().load(types::I32, flags(), slot_addr, 0);
            let slot = b.ins().uextend(ptr, slot);
            let offset = b.ins().imul_imm_s(slot, i64::from(abi.state.size));
            let base = b.ins().iadd(state_ptr, offset);
            copy_into(b, ptr, base, &abi.state, &state);
            fold_record(b, cx, parts, &inputs, &state, &lifted)?;
            store_state(b, ptr, base, &abi.state, &state);
            Ok(())
        });
    }
    // A plain fold keeps its state in registers for the whole loop.
    let state = load_state(b, ptr, state_ptr, &abi.state);
    let lifted = allocate(b, ptr, &abi.state);
    if let Some(vector) = parts.vector {
        // Whole blocks on vectors; the scalar loop below folds the remainder.
        vector.emit(b, cx, &column_ptrs, record, n, &state)?;
    } else if parts.reassociate {
        // Independent accumulators break the dependency chain through one state; they start
        // at the identity and are merged into the first at the end.
        let mut accumulators = vec![state.clone()];
        for _ in 1..ACCUMULATORS {
            let extra = allocate(b, ptr, &abi.state);
            set_identity(b, &extra, parts.identity)?;
            accumulators.push(extra);
        }
        let lifted_all: Vec<Vec<Storage>> = (0..ACCUMULATORS).map(|_| allocate(b, ptr, &abi.state)).collect();
        record_loop(b, cx, record, n, ACCUMULATORS as i64, |b, cx, i| {
            for (u, (accumulator, lifted)) in accumulators.iter().zip(&lifted_all).enumerate() {
                let index = b.ins().iadd_imm_s(i, u as i64);
                b.def_var(record, index);
                let inputs = load_record(b, abi, &column_ptrs, index);
                fold_record(b, cx, parts, &inputs, accumulator, lifted)?;
            }
            b.def_var(record, i);
            Ok(())
        })?;
        for extra in &accumulators[1..] {
            let args: Vec<Storage> = state.iter().chain(extra).copied().collect();
            inline_function(b, cx, parts.merge, &args, &state)?;
        }
    }
    record_loop(b, cx, record, n, 1, |b, cx, i| {
        let inputs = load_record(b, abi, &column_ptrs, i);
        fold_record(b, cx, parts, &inputs, &state, &lifted)
    })?;
    store_state(b, ptr, state_ptr, &abi.state, &state);
    Ok(())
}

/// Loads a struct from memory into existing storage.
fn copy_into(b: &mut FunctionBuilder<'_>, ptr: Type, base: Value, layout: &StructLayout, storage: &[Storage]) {
    for (field, store) in layout.fields.iter().zip(storage) {
        match *store {
            Storage::Scalar(var, ty) => {
                let v = b.ins().load(clif_type(ty), flags(), base, field_offset(field.offset));
                b.def_var(var, v);
            }
            Storage::Array { base: slot, ty, len } => {
                let src = b.ins().iadd_imm_s(base, i64::from(field.offset));
                copy_bytes(b, ptr, slot, src, ty.size_bytes() * len, ty.size_bytes());
            }
        }
    }
}

/// The C structs a `NAME_call` entry point takes: one field per parameter, one per result.
pub fn call_layouts(f: &nir::Function) -> (StructLayout, StructLayout) {
    let params = StructLayout::new(f.params.iter().map(|p| (f.vars[p.index()].name.clone(), f.var_ty(*p))));
    let results = StructLayout::new(f.results.iter().enumerate().map(|(i, ty)| (format!("result{i}"), *ty)));
    (params, results)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use cranelift_jit::{JITBuilder, JITModule};
    use naas_ir::ir::{Scalar, ScalarTy};
    use naas_lang::types::IntTy;

    use super::*;
    use crate::translate::tests::in_builder;

    const I64: ScalarTy = ScalarTy::Int(IntTy::I64);

    fn jit_module() -> JITModule {
        let isa = cranelift_native::builder()
            .expect("a supported host")
            .finish(cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder()));
        JITModule::new(JITBuilder::with_isa(isa.expect("host flags"), cranelift_module::default_libcall_names()))
    }

    fn internal(result: Built) -> String {
        match result {
            Err(NativeError::Internal(error)) => error.to_string(),
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    #[test]
    fn an_identity_of_another_shape_is_an_internal_error() {
        let message = in_builder(|b, _| {
            let scalar = Storage::Scalar(b.declare_var(types::I64), I64);
            let zero = Slot::Scalar(Scalar::zero(I64));
            assert_eq!(set_identity(b, &[scalar], std::slice::from_ref(&zero)), Ok(()));
            let short = set_identity(b, &[scalar, scalar], std::slice::from_ref(&zero));
            assert!(short.is_err());
            set_identity(b, &[scalar], &[Slot::Array(vec![Scalar::zero(I64)])])
        })
        .expect_err("an array identity was written into a scalar");
        assert!(message.to_string().starts_with("internal compiler error: an identity field"), "{message}");
    }

    #[test]
    fn an_entry_point_without_a_fault_parameter_is_an_internal_error() {
        let mut module = jit_module();
        let sig = module.make_signature();
        let id = module.declare_function("nothing", Linkage::Export, &sig).expect("declared");
        let mut entries = EntryBuilder::new();
        let mut sites = Vec::new();
        let result = entries.define_faulting(&mut module, id, sig, "nothing", &mut sites, |_, _, _, _| Ok(()));
        assert_eq!(internal(result), "internal compiler error: entry point `nothing` without parameters");
    }

    #[test]
    fn invalid_cranelift_ir_is_an_internal_error_not_code() {
        let mut module = jit_module();
        let sig = module.make_signature();
        let id = module.declare_function("mixed", Linkage::Export, &sig).expect("declared");
        let mut entries = EntryBuilder::new();
        let result = entries.define(&mut module, id, sig, "mixed", |b, _, _| {
            // Adding an i32 to an i64: the verifier rejects it.
            let x = b.ins().iconst(types::I32, 1);
            let y = b.ins().iconst(types::I64, 2);
            b.ins().iadd(x, y);
            Ok(())
        });
        let message = internal(result);
        assert!(message.starts_with("internal compiler error: Cranelift verification of `mixed` failed"), "{message}");
    }

    #[test]
    fn colliding_symbols_are_a_module_error() {
        let mut module = jit_module();
        let sig = module.make_signature();
        module.declare_function("NAME_call", Linkage::Export, &sig).expect("declared");
        let f = naas_ir::ir::Function {
            name: "NAME".to_string(),
            span: naas_lang::span::Span::new(0, 0),
            params: vec![],
            results: vec![],
            vars: vec![],
            body: vec![naas_ir::ir::Stmt::Return(vec![])],
            next_label: 0,
        };
        let error = EntryBuilder::new().build_call(&mut module, &f, &mut Vec::new()).expect_err("a second NAME_call");
        assert!(matches!(error, NativeError::Module(_)), "{error:?}");
    }
}
