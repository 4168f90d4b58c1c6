//! The host JIT: compiles an aggregate's entry points with cranelift-jit and exposes them
//! through a safe API that validates every buffer before native code sees it.
//!
//! This is the only module with `unsafe` code: calling JIT-compiled functions. Each call site
//! states why it is sound.

#![allow(unsafe_code, reason = "calling JIT-compiled code requires it; every use is justified inline")]

use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use naas_ir::decompose::AggregatePlan;
use naas_ir::interp::Slot;
use naas_ir::ir::Scalar;
use naas_lang::InternalError;

use crate::abi::{AggregateAbi, FaultRecord, FaultSite, NativeFault};
use crate::entry::EntryBuilder;
use crate::error::NativeError;
use crate::values::{decode, encode, for_each_scalar, AlignedBytes, Column};

type InitFn = unsafe extern "C" fn(*mut u8);
type FoldFn = unsafe extern "C" fn(*mut u8, *const *const u8, u64, *mut FaultRecord) -> u32;
type FoldKeyedFn = unsafe extern "C" fn(*mut u8, *const u32, *const *const u8, u64, *mut FaultRecord) -> u32;
type MergeFn = unsafe extern "C" fn(*mut u8, *const u8, *mut FaultRecord) -> u32;
type FinishFn = unsafe extern "C" fn(*const u8, *mut u8, *mut FaultRecord) -> u32;

/// Why a native call did not run or did not complete.
#[derive(Clone, Debug, PartialEq)]
pub enum CallError {
    /// The program faulted (division by zero, bad index, ...).
    Fault(NativeFault),
    /// The caller's buffers do not match the aggregate (wrong columns, slot out of range).
    Invalid(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Fault(fault) => write!(f, "{fault}"),
            CallError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CallError {}

/// Owns a finalised JIT module so that its code stays mapped. Nothing ever reads the module
/// through this wrapper again.
struct KeepAlive(#[allow(dead_code, reason = "held only to keep the code mapped")] JITModule);

// SAFETY: the wrapped module is never accessed after construction (no method reads the field),
// so sharing a reference across threads cannot race on its interior `RefCell`s; the code it
// keeps mapped is immutable and the entry points have no shared mutable state.
unsafe impl Sync for KeepAlive {}

/// One aggregate compiled to host machine code. It can be shared between threads: the entry
/// points are pure functions of their buffers.
pub struct JitAggregate {
    // Keeps the code alive: the function pointers below point into its memory.
    _module: KeepAlive,
    pub abi: AggregateAbi,
    pub sites: Vec<FaultSite>,
    /// The Cranelift IR of the entry points (`--emit clif`).
    pub clif: Vec<String>,
    /// True when `fold` runs on vectors (see [`crate::vector`]).
    pub vectorised: bool,
    init: InitFn,
    fold: FoldFn,
    fold_keyed: FoldKeyedFn,
    merge: MergeFn,
    finish: FinishFn,
}

impl std::fmt::Debug for JitAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitAggregate").field("abi", &self.abi).finish_non_exhaustive()
    }
}

/// The host ISA with speed optimisations.
fn host_isa() -> Result<cranelift_codegen::isa::OwnedTargetIsa, NativeError> {
    let mut flags = settings::builder();
    // Our own constant setting: Cranelift refusing it is a bug of ours.
    flags.set("opt_level", "speed").map_err(|e| InternalError::new(format!("opt_level: {e}")))?;
    let isa = cranelift_native::builder().map_err(|e| NativeError::UnsupportedHost(e.to_string()))?;
    isa.finish(settings::Flags::new(flags)).map_err(|e| NativeError::UnsupportedHost(e.to_string()))
}

impl JitAggregate {
    /// Compiles the entry points of `plan` (whose functions live in `ir`, optimised).
    pub fn compile(ir: &naas_ir::ir::Module, plan: &AggregatePlan) -> Result<JitAggregate, NativeError> {
        let abi = AggregateAbi::new(plan)?;
        let builder = JITBuilder::with_isa(host_isa()?, cranelift_module::default_libcall_names());
        let mut module = JITModule::new(builder);
        let mut entries = EntryBuilder::new();
        let mut sites = Vec::new();
        let ids = entries.build(&mut module, ir, plan, &abi, &mut sites)?;
        module.finalize_definitions().map_err(|e| NativeError::Finalize(e.to_string()))?;
        // SAFETY: each pointer comes from `finalize_definitions` for a function declared with
        // exactly the signature of the type it is transmuted to (see `EntryBuilder::build`),
        // and `_module` keeps the code mapped for as long as `self` lives.
        unsafe {
            let init = std::mem::transmute::<*const u8, InitFn>(module.get_finalized_function(ids.init));
            let fold = std::mem::transmute::<*const u8, FoldFn>(module.get_finalized_function(ids.fold));
            let fold_keyed =
                std::mem::transmute::<*const u8, FoldKeyedFn>(module.get_finalized_function(ids.fold_keyed));
            let merge = std::mem::transmute::<*const u8, MergeFn>(module.get_finalized_function(ids.merge));
            let finish = std::mem::transmute::<*const u8, FinishFn>(module.get_finalized_function(ids.finish));
            Ok(JitAggregate {
                _module: KeepAlive(module),
                abi,
                sites,
                clif: entries.clif,
                vectorised: ids.vectorised,
                init,
                fold,
                fold_keyed,
                merge,
                finish,
            })
        }
    }

    /// A fresh state holding the identity.
    pub fn new_state(&self) -> AlignedBytes {
        let mut state = AlignedBytes::zeroed(self.abi.state.size as usize);
        // SAFETY: `state` is 8-byte aligned and exactly `state.size` bytes long.
        unsafe { (self.init)(state.as_mut_ptr()) };
        state
    }

    /// `states` fresh states, contiguous (a per-key table).
    pub fn new_table(&self, states: usize) -> AlignedBytes {
        let size = self.abi.state.size as usize;
        let mut table = AlignedBytes::zeroed(size * states);
        let identity = self.new_state();
        for slot in table.as_mut_bytes().chunks_exact_mut(size) {
            slot.copy_from_slice(identity.as_bytes());
        }
        table
    }

    fn check_columns(&self, columns: &[Column<'_>]) -> Result<usize, CallError> {
        if columns.len() != self.abi.columns.len() {
            return Err(CallError::Invalid(format!(
                "`{}` reads {} column(s), got {}",
                self.abi.name,
                self.abi.columns.len(),
                columns.len()
            )));
        }
        let n = columns.first().map_or(0, Column::len);
        for (column, (name, ty)) in columns.iter().zip(&self.abi.columns) {
            if column.ty() != *ty {
                return Err(CallError::Invalid(format!(
                    "column `{name}` must hold {}, got {}",
                    ty.name(),
                    column.ty().name()
                )));
            }
            if column.len() != n {
                return Err(CallError::Invalid("columns have different lengths".to_string()));
            }
        }
        Ok(n)
    }

    fn status(&self, status: u32, fault: FaultRecord) -> Result<(), CallError> {
        if status == 0 {
            return Ok(());
        }
        match self.sites.get(status as usize - 1) {
            Some(site) => Err(CallError::Fault(site.resolve(fault.record, fault.value))),
            None => Err(CallError::Invalid(format!("native code returned an unknown status {status}"))),
        }
    }

    /// Folds every record of `columns` into `state`. On a fault the state is unchanged.
    pub fn fold(&self, state: &mut AlignedBytes, columns: &[Column<'_>]) -> Result<(), CallError> {
        let n = self.check_columns(columns)?;
        self.check_state(state)?;
        let pointers: Vec<*const u8> = columns.iter().map(Column::as_ptr).collect();
        let mut fault = FaultRecord::default();
        // SAFETY: the state buffer has the state's size; there is one column pointer per
        // input, each to at least `n` elements of the right type (checked above).
        let status = unsafe { (self.fold)(state.as_mut_ptr(), pointers.as_ptr(), n as u64, &mut fault) };
        self.status(status, fault)
    }

    /// Folds record `i` into the state in slot `slots[i]` of `table`. On a fault, records
    /// before the faulting one have been applied.
    pub fn fold_keyed(&self, table: &mut AlignedBytes, slots: &[u32], columns: &[Column<'_>]) -> Result<(), CallError> {
        let n = self.check_columns(columns)?;
        if slots.len() != n {
            return Err(CallError::Invalid("one slot per record is needed".to_string()));
        }
        let size = self.abi.state.size as usize;
        let states = table.len() / size;
        if table.len() % size != 0 {
            return Err(CallError::Invalid("the table is not a whole number of states".to_string()));
        }
        if let Some(bad) = slots.iter().find(|&&s| s as usize >= states) {
            return Err(CallError::Invalid(format!("slot {bad} is outside a table of {states} states")));
        }
        let pointers: Vec<*const u8> = columns.iter().map(Column::as_ptr).collect();
        let mut fault = FaultRecord::default();
        // SAFETY: every slot indexes a whole state inside `table` (checked above); columns as in `fold`.
        let status =
            unsafe { (self.fold_keyed)(table.as_mut_ptr(), slots.as_ptr(), pointers.as_ptr(), n as u64, &mut fault) };
        self.status(status, fault)
    }

    /// `dst = merge(dst, src)`.
    pub fn merge(&self, dst: &mut AlignedBytes, src: &AlignedBytes) -> Result<(), CallError> {
        self.check_state(dst)?;
        self.check_state(src)?;
        let mut fault = FaultRecord::default();
        // SAFETY: both buffers hold one state (checked above) and do not overlap (`&mut`).
        let status = unsafe { (self.merge)(dst.as_mut_ptr(), src.as_ptr(), &mut fault) };
        self.status(status, fault)
    }

    /// `table[slots[i]] = merge(table[slots[i]], sources[i])` for every `i`, in order, where
    /// `table` is states back to back (as in [`Self::fold_keyed`]) and each source is one whole
    /// state anywhere in memory: the compiled code makes no assumption about the alignment of
    /// what it loads, so sources are read where they lie (in a wire buffer) and states are
    /// merged where they lie in the table, with no copy. A fault stops at the entry it met
    /// (its index is returned with it), whose state is unchanged.
    pub fn merge_keyed(
        &self,
        table: &mut AlignedBytes,
        slots: &[u32],
        sources: &[&[u8]],
    ) -> Result<(), (usize, CallError)> {
        let invalid = |message: String| (0, CallError::Invalid(message));
        if slots.len() != sources.len() {
            return Err(invalid("one slot per source state is needed".to_string()));
        }
        let size = self.abi.state.size as usize;
        if size == 0 || table.len() % size != 0 {
            return Err(invalid("the table is not a whole number of states".to_string()));
        }
        let states = table.len() / size;
        if let Some(bad) = slots.iter().find(|&&s| s as usize >= states) {
            return Err(invalid(format!("slot {bad} is outside a table of {states} states")));
        }
        if let Some(bad) = sources.iter().find(|s| s.len() != size) {
            return Err(invalid(format!("a state of `{}` is {size} bytes, got {}", self.abi.name, bad.len())));
        }
        let base = table.as_mut_ptr();
        for (i, (&slot, source)) in slots.iter().zip(sources).enumerate() {
            let mut fault = FaultRecord::default();
            // SAFETY: `slot` indexes a whole state inside `table` and `source` is one whole
            // state (both checked above); they do not overlap, since `table` is borrowed
            // mutably. The code's loads and stores do not require alignment (`flags`).
            let status = unsafe { (self.merge)(base.add(slot as usize * size), source.as_ptr(), &mut fault) };
            self.status(status, fault).map_err(|error| (i, error))?;
        }
        Ok(())
    }

    /// The result of a state, one slot per result field.
    pub fn finish(&self, state: &AlignedBytes) -> Result<Vec<Slot>, CallError> {
        self.check_state(state)?;
        let mut out = AlignedBytes::zeroed(self.abi.result.size as usize);
        let mut fault = FaultRecord::default();
        // SAFETY: `state` holds one state and `out` is exactly one result record.
        let status = unsafe { (self.finish)(state.as_ptr(), out.as_mut_ptr(), &mut fault) };
        self.status(status, fault)?;
        Ok(decode(out.as_bytes(), &self.abi.result))
    }

    /// The result of a state, one scalar at a time (array elements in order) to `each`,
    /// without allocating: `record` is scratch space for the result record, reused between
    /// calls (any length; it is resized once).
    ///
    /// `state` may lie anywhere (in a table of states): the compiled code does not assume
    /// the alignment of what it loads.
    pub fn finish_each(
        &self,
        state: &[u8],
        record: &mut AlignedBytes,
        each: impl FnMut(Scalar),
    ) -> Result<(), CallError> {
        if state.len() != self.abi.state.size as usize {
            return Err(CallError::Invalid(format!(
                "a state of `{}` is {} bytes, got {}",
                self.abi.name,
                self.abi.state.size,
                state.len()
            )));
        }
        if record.len() != self.abi.result.size as usize {
            *record = AlignedBytes::zeroed(self.abi.result.size as usize);
        }
        let mut fault = FaultRecord::default();
        // SAFETY: `state` holds one state and `record` is exactly one result record.
        let status = unsafe { (self.finish)(state.as_ptr(), record.as_mut_ptr(), &mut fault) };
        self.status(status, fault)?;
        for_each_scalar(record.as_bytes(), &self.abi.result, each);
        Ok(())
    }

    fn check_state(&self, state: &AlignedBytes) -> Result<(), CallError> {
        if state.len() == self.abi.state.size as usize {
            Ok(())
        } else {
            Err(CallError::Invalid(format!(
                "a state of `{}` is {} bytes, got {}",
                self.abi.name,
                self.abi.state.size,
                state.len()
            )))
        }
    }

    /// The fields of a state as slots (for comparison with the interpreter).
    pub fn state_slots(&self, state: &AlignedBytes) -> Vec<Slot> {
        decode(state.as_bytes(), &self.abi.state)
    }

    /// A state holding the given field values.
    pub fn state_from_slots(&self, slots: &[Slot]) -> AlignedBytes {
        let mut state = AlignedBytes::zeroed(self.abi.state.size as usize);
        encode(state.as_mut_bytes(), &self.abi.state, slots);
        state
    }
}

type CallFn = unsafe extern "C" fn(*const u8, *mut u8, *mut FaultRecord) -> u32;

/// IR functions compiled one by one with a generic calling convention (arguments and results
/// in C structs): used to run the same `# run:` tests as the interpreter.
pub struct JitFunctions {
    _module: KeepAlive,
    functions: std::collections::HashMap<String, CompiledCall>,
}

struct CompiledCall {
    entry: CallFn,
    params: crate::abi::StructLayout,
    results: crate::abi::StructLayout,
    sites: Vec<FaultSite>,
}

impl JitFunctions {
    /// Compiles every function of an optimised (call-free) IR module.
    pub fn compile(ir: &naas_ir::ir::Module) -> Result<JitFunctions, NativeError> {
        let builder = JITBuilder::with_isa(host_isa()?, cranelift_module::default_libcall_names());
        let mut module = JITModule::new(builder);
        let mut entries = EntryBuilder::new();
        let mut pending = Vec::new();
        for function in &ir.functions {
            let mut sites = Vec::new();
            let id = entries.build_call(&mut module, function, &mut sites)?;
            let (params, results) = crate::entry::call_layouts(function);
            pending.push((function.name.clone(), id, params, results, sites));
        }
        module.finalize_definitions().map_err(|e| NativeError::Finalize(e.to_string()))?;
        let mut functions = std::collections::HashMap::new();
        for (name, id, params, results, sites) in pending {
            // SAFETY: declared by `build_call` with exactly the `CallFn` signature; `_module`
            // keeps the code alive as long as `self`.
            let entry = unsafe { std::mem::transmute::<*const u8, CallFn>(module.get_finalized_function(id)) };
            functions.insert(name, CompiledCall { entry, params, results, sites });
        }
        Ok(JitFunctions { _module: KeepAlive(module), functions })
    }

    /// Calls a compiled function with one slot per parameter.
    pub fn call(&self, name: &str, args: &[Slot]) -> Result<Vec<Slot>, CallError> {
        let function = self.functions.get(name).ok_or_else(|| CallError::Invalid(format!("no function `{name}`")))?;
        if args.len() != function.params.fields.len() {
            return Err(CallError::Invalid(format!("`{name}` takes {} arguments", function.params.fields.len())));
        }
        let mut input = AlignedBytes::zeroed(function.params.size as usize);
        encode(input.as_mut_bytes(), &function.params, args);
        let mut output = AlignedBytes::zeroed(function.results.size as usize);
        let mut fault = FaultRecord::default();
        // SAFETY: both buffers have exactly the sizes of the structs the entry point reads and
        // writes (`call_layouts`), and are 8-byte aligned.
        let status = unsafe { (function.entry)(input.as_ptr(), output.as_mut_ptr(), &mut fault) };
        if status != 0 {
            return match function.sites.get(status as usize - 1) {
                Some(site) => Err(CallError::Fault(site.resolve(fault.record, fault.value))),
                None => Err(CallError::Invalid(format!("unknown status {status}"))),
            };
        }
        Ok(decode(output.as_bytes(), &function.results))
    }
}
