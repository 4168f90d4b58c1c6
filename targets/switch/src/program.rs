//! Pipeline programs: per-key state in register arrays indexed by a hash slot, one stateful-ALU
//! operation ("atom") per register word, scheduled over stages. Also their readable text form,
//! the resource report, and the encoding of IR states into register words and back.

use naas_ir::decompose::MergeOp;
use naas_ir::interp::Slot;
use naas_ir::ir::{Scalar, VarTy};
use naas_lang::types::{FloatTy, IntTy};
use naas_lang::{bail_internal, InternalError};
use serde::Serialize;

use crate::network::counted;
use crate::profile::TargetProfile;

/// How the scalars of a state field are represented in register words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Two's complement, sign- or zero-extended to whole words.
    Int(IntTy),
    /// 0 or 1 in one word.
    Bool,
    /// A float carried as the i64 `round(x * scale)`.
    FixedPoint { float: FloatTy, scale: u64 },
}

impl Encoding {
    /// Bits of the integer the encoding stores.
    pub fn bits(self) -> u32 {
        match self {
            Encoding::Int(ty) => ty.bits(),
            Encoding::Bool => 1,
            Encoding::FixedPoint { .. } => 64,
        }
    }

    /// True when the stored integer is signed (the most significant word compares signed).
    pub fn signed(self) -> bool {
        match self {
            Encoding::Int(ty) => ty.signed(),
            Encoding::Bool => false,
            Encoding::FixedPoint { .. } => true,
        }
    }
}

/// Where one state field lives.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldMap {
    pub name: String,
    pub ty: String,
    pub var_ty: VarTy,
    pub merge: MergeOp,
    pub encoding: Encoding,
    /// Scalars in the field (1, or the array length).
    pub elems: u32,
    /// Register words per scalar (least significant first).
    pub words: u32,
    /// The register of element 0, word 0; element `e`, word `w` is at
    /// `first_register + e * words + w`.
    pub first_register: usize,
}

/// What a register array holds for each slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterRole {
    /// The key of the slot's resident, plus one (zero marks an empty slot).
    Key,
    /// Word `word` (0 = least significant) of element `elem` of state field `field`.
    Word { field: usize, elem: u32, word: u32 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Register {
    pub name: String,
    pub role: RegisterRole,
    /// Lane 0's copy: the step (pass x stages + stage) whose stage SRAM holds the array and
    /// whose ALU updates it. Every lane has its own copy, placed where its atom is.
    pub stage: u32,
}

/// The operation of a stateful ALU on its register word `r` and the entry's word `v`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomOp {
    /// `if r == 0 or r == key + 1: r = key + 1; hit = 1 else hit = 0` (hit is flag 0).
    KeyClaim,
    /// `s = r + v + carry_in; r = s mod 2^w; carry_out = s >> w`.
    Add,
    /// Compare-and-select toward the smaller value. With `flag_in` (a less significant word
    /// of a multi-word value), the decision of the more significant words is followed and
    /// only a tie compares this word. `flag_out`: 0 tie, 1 the entry won, 2 the register won.
    Min {
        signed: bool,
    },
    /// As `Min`, toward the larger value.
    Max {
        signed: bool,
    },
    Or,
    And,
    /// A latest-value pair (only as a register pair: `register` holds the primary word, e.g.
    /// a timestamp, `hi` the secondary, e.g. the value): the register keeps the
    /// lexicographically larger (`max`) or smaller (`!max`) of its pair and the entry's,
    /// comparing the primary words first and, on a tie, the secondary ones; signed as flagged.
    /// In one access, as a Tofino stateful ALU does it (spec.md 15.1, rule 8): its two
    /// comparison units evaluate `c0` = the entry's primary word wins (`>` for `max`) and
    /// `c1` = the primary words are equal; both halves take the entry's words when `c0`, and
    /// when `c1` the secondary half's second sub-ALU stores `max(r, v)` (`min` for `!max`) of
    /// the secondary words. The secondary words' order is that sub-ALU instruction's, not a
    /// third comparison.
    Latest {
        max: bool,
        signed_primary: bool,
        signed_secondary: bool,
    },
    /// One word of a compare-and-swap in a sorted insertion chain (see [`Insertion`]): the
    /// register holds one word of a chain element, the packet carries the value being
    /// inserted (`v`). The entry wins when `v` is larger (`max`) or smaller (`!max`), decided
    /// as [`AtomOp::Max`] / [`AtomOp::Min`] decide (the most significant word first, a tie
    /// passed down as a flag); when it wins the register stores `v`'s word and the packet
    /// carries the register's old word on: the larger value stays, the smaller moves down
    /// the chain (for `!max`, the smaller stays).
    Insert {
        max: bool,
        signed: bool,
    },
}

/// Comparison units of one stateful ALU the model lets an atom use: Tofino 1 has two
/// (`STATEFUL_CMP_UNITS = 2` for Tofino in p4lang/p4c's `backends/tofino/bf-asm/target.h`;
/// Tofino 2 has four, the model uses two on both). Each evaluates one relation of a register
/// word with a packet word, and an ALU's predicates are Boolean functions of their results.
pub const COMPARISON_UNITS: u32 = 2;

impl AtomOp {
    /// Whether the operation may be one half of a register pair: a word-wise `add`, `or` or
    /// `and`, which needs no predicate (so the pair's one predicate is free) and, as a single
    /// word, no carry or flag between the halves.
    pub fn pairable(self) -> bool {
        matches!(self, AtomOp::Add | AtomOp::Or | AtomOp::And)
    }

    fn text(self) -> &'static str {
        match self {
            AtomOp::KeyClaim => "claim",
            AtomOp::Add => "add",
            AtomOp::Min { signed: true } => "min.s",
            AtomOp::Min { signed: false } => "min.u",
            AtomOp::Max { signed: true } => "max.s",
            AtomOp::Max { signed: false } => "max.u",
            AtomOp::Or => "or",
            AtomOp::And => "and",
            AtomOp::Latest { max: true, .. } => "latest.max",
            AtomOp::Latest { max: false, .. } => "latest.min",
            AtomOp::Insert { max: true, signed: true } => "cas.max.s",
            AtomOp::Insert { max: true, signed: false } => "cas.max.u",
            AtomOp::Insert { max: false, signed: true } => "cas.min.s",
            AtomOp::Insert { max: false, signed: false } => "cas.min.u",
        }
    }
}

/// One stateful-ALU operation: one access to one register array. Every atom but the key
/// claim runs only when the key claim of its lane hit (its lane's flag 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Atom {
    pub register: usize,
    pub op: AtomOp,
    /// A metadata flag produced by an atom of an earlier stage (carry or comparison).
    pub flag_in: Option<u32>,
    /// The metadata flag this atom produces for a later stage.
    pub flag_out: Option<u32>,
    /// The lane (entry position in the packet) whose copy of the registers this atom updates;
    /// registers, flags and entry words are numbered within the lane.
    pub lane: u32,
    /// With register pairs: the other half of a pair entry, updated in the same access by
    /// the other ALU half (`hi.0` is its register, `hi.1` its operation; predicate-free
    /// halves only, see [`AtomOp::pairable`]).
    pub hi: Option<(usize, AtomOp)>,
}

impl Atom {
    /// Relations the atom's comparison units evaluate in its one access (at most
    /// [`COMPARISON_UNITS`], which the model's rules check): the key claim's two (`r == 0`,
    /// `r == key + 1`); a comparison that passes a three-way flag (tie, entry wins, register
    /// wins) two (`>` and `==`, or `<` and `==`), one that passes none one (the lower word of
    /// a multi-word comparison runs the action its table chose from the flag, comparing only
    /// on a tie); a latest-value pair two (the primary words' `>` and `==`; the secondary
    /// words' order is a sub-ALU's `max`/`min`); a carry one (whether the sum wrapped);
    /// word-wise `add`, `or`, `and` without flags none.
    pub fn comparisons(&self) -> u32 {
        match self.op {
            AtomOp::KeyClaim | AtomOp::Latest { .. } => 2,
            AtomOp::Min { .. } | AtomOp::Max { .. } | AtomOp::Insert { .. } => {
                if self.flag_out.is_some() {
                    2
                } else {
                    1
                }
            }
            AtomOp::Add | AtomOp::Or | AtomOp::And => u32::from(self.flag_out.is_some()),
        }
    }

    /// Register words the atom's array holds per slot (2 for a pair).
    pub fn words(&self) -> u32 {
        if self.hi.is_some() {
            2
        } else {
            1
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stage {
    pub atoms: Vec<Atom>,
}

/// A sorted insertion chain: the state is one array of `k` elements kept sorted (largest
/// first for `max`, the K largest; smallest first otherwise), element `e` in the registers of
/// element `e` of the state field, each element's words in consecutive stages (most
/// significant first) and element `e + 1` after element `e`. One pass inserts one value: it
/// enters at element 0 and each element keeps the larger (smaller) of its own value and the
/// value arriving, passing the other one on; the last element's loser leaves the chain. An
/// entry (a sorted run of up to `k` values, padded with the identity element) therefore
/// takes one pass per value it carries before its padding: a mapper's one-value run one
/// pass, a switch's `k`-run `k` passes (recirculation, charged by the network simulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insertion {
    /// Elements in the chain (K).
    pub k: u32,
    /// Register words per element.
    pub words: u32,
    /// True for the K largest values, false for the K smallest.
    pub max: bool,
}

/// An aggregate's merge lowered onto a switch pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineProgram {
    pub aggregate: String,
    pub profile: TargetProfile,
    pub fields: Vec<FieldMap>,
    /// Register 0 is the key; registers 1.. hold state words, in entry order. These are the
    /// registers of one lane; every lane has a copy.
    pub registers: Vec<Register>,
    /// The steps of the schedule: step `p * profile.stages + s` is stage `s` in pass `p`.
    /// Each holds the atoms (of every lane) that run there, at most one per stateful ALU.
    pub stages: Vec<Stage>,
    /// Lanes: a packet's entry `i` is served by lane `i`'s registers.
    pub lanes: u32,
    /// Passes through the pipeline a packet makes (1 = line rate; more recirculate).
    pub passes: u32,
    /// Metadata flags used (flag 0 is the key claim's hit).
    pub flags: u32,
    /// The identity state, encoded: one word per state register (registers 1..).
    pub identity_words: Vec<u64>,
    /// The fixed-point scale floats are carried with, if any.
    pub fixed_point_scale: Option<u64>,
    /// With a sorted insertion chain (top-k / bottom-k merges), its shape: each pass inserts
    /// one value of an entry, and `passes` is the passes one insertion takes.
    pub insertion: Option<Insertion>,
}

/// Resources a pipeline program uses, for `naasc compile --target switch-sim`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResourceReport {
    pub profile: String,
    pub stages_used: u32,
    pub stages_available: u32,
    /// Stateful ALUs used in each step (pass x stages + stage), in order.
    pub stateful_alus_per_stage: Vec<u32>,
    pub stateful_alus_available_per_stage: u32,
    pub register_words_per_slot: u32,
    pub register_bytes_per_slot: u64,
    /// Lanes (entries per packet the registers serve), and the most the packet size allows.
    pub lanes: u32,
    pub packet_lane_bound: u32,
    /// Passes through the pipeline per packet, and the share of line rate left (1 / passes).
    pub passes: u32,
    pub line_rate_fraction: f64,
    /// With an insertion chain: its elements (K), and the most passes an entry takes (a run
    /// of K values: one insertion per pass). `None` otherwise.
    pub insertion_chain: Option<u32>,
    pub max_entry_passes: u32,
    /// Register pairs used (atoms that update two words in one access).
    pub register_pairs: u32,
    /// The most entry bits any pass brings into the packet header vector, and the budget.
    pub phv_entry_bits_per_pass: u64,
    pub phv_entry_bits_available: u64,
    /// Key slots per lane whose registers (all lanes') fit in every stage's SRAM.
    pub key_slots: u64,
    /// The stage whose SRAM limits `key_slots`.
    pub limiting_stage: u32,
    pub fields_per_entry: u32,
    pub max_packet_fields: u32,
    pub entries_per_packet: u32,
    pub packet_bytes: u64,
}

impl PipelineProgram {
    /// Register words in an entry (one per state register).
    pub fn state_words(&self) -> usize {
        self.registers.len() - 1
    }

    /// Packet fields one entry takes: its key and its state words.
    pub fn fields_per_entry(&self) -> u32 {
        let words = u32::try_from(self.state_words()).unwrap_or(u32::MAX);
        self.profile.fields_per_key().saturating_add(words.saturating_mul(self.profile.fields_per_word()))
    }

    /// Entries the packet size allows (the packet-size bound on lanes).
    pub fn packet_lane_bound(&self) -> u32 {
        (self.profile.max_packet_fields / self.fields_per_entry().max(1)).max(1)
    }

    /// Entries a full packet carries: one per lane (lowering never makes more lanes than the
    /// packet-size bound).
    pub fn entries_per_packet(&self) -> u32 {
        self.lanes.clamp(1, self.packet_lane_bound())
    }

    /// The atoms of one lane, in step order.
    pub fn lane_atoms(&self, lane: u32) -> impl Iterator<Item = (usize, &Atom)> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(step, stage)| stage.atoms.iter().map(move |atom| (step, atom)))
            .filter(move |(_, atom)| atom.lane == lane)
    }

    /// Register words each physical stage holds per key slot, over all lanes and passes.
    pub fn words_per_stage(&self) -> Vec<u64> {
        let stages = self.profile.stages as usize;
        let mut words = vec![0u64; stages];
        for (step, stage) in self.stages.iter().enumerate() {
            words[step % stages] += stage.atoms.iter().map(|a| u64::from(a.words())).sum::<u64>();
        }
        words
    }

    /// Values an entry's run carries before its padding (the identity element, which every
    /// element of the identity state holds): the insertions, one pass each, it takes in an
    /// insertion chain. `state` holds the entry's state words, one per state register.
    pub fn run_values(&self, state: impl Fn(usize) -> u64) -> u32 {
        let Some(chain) = self.insertion else { return 1 };
        let words = chain.words as usize;
        (0..chain.k as usize)
            .rev()
            .find(|e| {
                (0..words).any(|w| state(e * words + w) != self.identity_words.get(e * words + w).copied().unwrap_or(0))
            })
            .map_or(0, |e| e as u32 + 1)
    }

    /// Passes an entry takes through the pipeline: `passes`, times the values of its run with
    /// an insertion chain (at least one pass: the key claim runs for an entry of padding too).
    pub fn entry_passes(&self, state: impl Fn(usize) -> u64) -> u32 {
        self.passes.max(1).saturating_mul(self.run_values(state).max(1))
    }

    /// The most passes an entry can take (a full run of K values with an insertion chain).
    pub fn max_entry_passes(&self) -> u32 {
        self.passes.max(1).saturating_mul(self.insertion.map_or(1, |chain| chain.k.max(1)))
    }

    /// Entry bits each pass brings into the packet header vector: every lane's key (in each
    /// pass the lane has an atom in) and the entry words its atoms read.
    pub fn phv_entry_bits(&self) -> Vec<u64> {
        let stages = self.profile.stages as usize;
        let field_bits = u64::from(self.profile.packet_field_bits);
        let key = u64::from(self.profile.fields_per_key()) * field_bits;
        let word = u64::from(self.profile.fields_per_word()) * field_bits;
        let mut bits = vec![0u64; self.passes.max(1) as usize];
        let mut seen = std::collections::HashSet::new();
        for (step, stage) in self.stages.iter().enumerate() {
            let pass = step / stages;
            for atom in &stage.atoms {
                if let Some(slot) = bits.get_mut(pass) {
                    if seen.insert((pass, atom.lane)) {
                        *slot += key;
                    }
                    if atom.op != AtomOp::KeyClaim {
                        *slot += u64::from(atom.words()) * word;
                    }
                }
            }
        }
        bits
    }

    /// Bytes on the wire of a packet carrying `entries` entries.
    pub fn packet_bytes(&self, entries: u32) -> u64 {
        let field_bytes = u64::from(self.profile.packet_field_bits / 8);
        u64::from(self.profile.packet_header_bytes)
            + u64::from(entries) * u64::from(self.fields_per_entry()) * field_bytes
    }

    /// Key slots per lane that fit: the smallest, over the physical stages, of the stage SRAM
    /// divided by the bytes its registers (every lane's, in every pass) take per slot; and the
    /// stage that sets it.
    pub fn key_slots(&self) -> (u64, u32) {
        let mut best = (u64::MAX, 0);
        for (stage, words) in self.words_per_stage().into_iter().enumerate() {
            if words == 0 {
                continue;
            }
            let slots = self.profile.register_sram_bytes_per_stage / (words * self.profile.word_bytes());
            if slots < best.0 {
                best = (slots, stage as u32);
            }
        }
        best
    }

    pub fn resource_report(&self) -> ResourceReport {
        let (key_slots, limiting_stage) = self.key_slots();
        let words = self.registers.len() as u32;
        ResourceReport {
            profile: self.profile.name.clone(),
            stages_used: self.words_per_stage().iter().filter(|w| **w > 0).count() as u32,
            stages_available: self.profile.stages,
            stateful_alus_per_stage: self.stages.iter().map(|s| s.atoms.len() as u32).collect(),
            stateful_alus_available_per_stage: self.profile.stateful_alus_per_stage,
            register_words_per_slot: words,
            register_bytes_per_slot: u64::from(words) * self.profile.word_bytes(),
            lanes: self.lanes,
            packet_lane_bound: self.packet_lane_bound(),
            passes: self.passes,
            line_rate_fraction: 1.0 / f64::from(self.passes.max(1)),
            insertion_chain: self.insertion.map(|chain| chain.k),
            max_entry_passes: self.max_entry_passes(),
            register_pairs: self.lane_atoms(0).filter(|(_, a)| a.hi.is_some()).count() as u32,
            phv_entry_bits_per_pass: self.phv_entry_bits().into_iter().max().unwrap_or(0),
            phv_entry_bits_available: self.profile.entry_phv_bits(),
            key_slots,
            limiting_stage,
            fields_per_entry: self.fields_per_entry(),
            max_packet_fields: self.profile.max_packet_fields,
            entries_per_packet: self.entries_per_packet(),
            packet_bytes: self.packet_bytes(self.entries_per_packet()),
        }
    }

    /// The pipeline program as text, for people (snapshotted in tests).
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let w = self.profile.register_word_bits;
        let (slots, _) = self.key_slots();
        let stages = self.profile.stages as usize;
        let _ = writeln!(out, "pipeline {} for {}", self.aggregate, self.profile.name);
        if let Some(scale) = self.fixed_point_scale {
            let _ = writeln!(out, "  fixed point: floats carried as i64 round(x * {scale})");
        }
        let _ = writeln!(
            out,
            "  entry: key + {} = {} of {} bits; {} per packet",
            counted(self.state_words() as u64, "state word", "state words"),
            counted(self.fields_per_entry(), "packet field", "packet fields"),
            self.profile.packet_field_bits,
            counted(self.entries_per_packet(), "entry", "entries")
        );
        let _ = writeln!(
            out,
            "  lanes: {} (entry i of a packet uses lane i's copy of the registers); {}",
            self.lanes,
            if self.passes == 1 {
                "1 pass (line rate)".to_string()
            } else {
                format!("{} passes (recirculated: 1/{} of line rate)", self.passes, self.passes)
            }
        );
        if let Some(chain) = self.insertion {
            let _ = writeln!(
                out,
                "  insertion chain: {} of {} in consecutive stages, kept sorted ({}); a pass inserts one value v of the entry's run (each element keeps the {} of itself and v and passes the other on), so an entry of n values takes n passes: a mapper's run of 1 at line rate, a switch's run of {} recirculated {} times",
                counted(chain.k, "element", "elements"),
                counted(chain.words, "word", "words"),
                if chain.max { "largest first" } else { "smallest first" },
                if chain.max { "larger" } else { "smaller" },
                chain.k,
                chain.k.saturating_sub(1)
            );
        }
        let _ = writeln!(
            out,
            "  slot = hash(key) mod {slots} in each lane; every register is an array of {slots} {w}-bit words (pairs: 2 words)"
        );
        let _ = writeln!(out, "  registers (lane 0; step = pass x {stages} + stage):");
        for (index, register) in self.registers.iter().enumerate() {
            let what = match register.role {
                RegisterRole::Key => "key + 1 (0 = empty slot)".to_string(),
                RegisterRole::Word { field, word, .. } => {
                    let map = &self.fields[field];
                    let part = if map.words > 1 { format!(", word {word} of {}", map.words) } else { String::new() };
                    // A custom field lowers only as half of a latest-value pair or as an
                    // insertion chain's element.
                    let merge = match (map.merge, self.insertion) {
                        (MergeOp::Custom, Some(chain)) => {
                            if chain.max {
                                "sorted run (largest first)"
                            } else {
                                "sorted run (smallest first)"
                            }
                        }
                        (MergeOp::Custom, None) => "latest pair",
                        (merge, _) => merge.name(),
                    };
                    format!("{} {merge}{part}", map.ty)
                }
            };
            let _ = writeln!(out, "    r{index:<3} {:<32} {what:<28} step {}", register.name, register.stage);
        }
        let _ = writeln!(
            out,
            "  identity: [{}]",
            self.identity_words.iter().map(|w| format!("{w:#x}")).collect::<Vec<_>>().join(", ")
        );
        for (step, stage) in self.stages.iter().enumerate() {
            if self.passes > 1 {
                let _ = writeln!(out, "  stage {} (pass {}):", step % stages, step / stages);
            } else {
                let _ = writeln!(out, "  stage {step}:");
            }
            for (alu, atom) in stage.atoms.iter().enumerate() {
                let lane = if self.lanes > 1 { format!("L{} ", atom.lane) } else { String::new() };
                let _ = writeln!(out, "    salu{alu}: {lane}{}", atom_text(atom, self.carried_word(atom)));
            }
        }
        out
    }

    /// Encodes a state (one slot per field) as entry words, one per state register.
    pub fn encode_state(&self, state: &[Slot]) -> Result<Vec<u64>, EncodeError> {
        let mut words = Vec::with_capacity(self.state_words());
        self.encode_state_into(state, &mut words)?;
        Ok(words)
    }

    /// [`PipelineProgram::encode_state`], appending the words to `out` (no allocation when
    /// `out` has room: the network simulator encodes straight into packets).
    pub fn encode_state_into(&self, state: &[Slot], out: &mut Vec<u64>) -> Result<(), EncodeError> {
        let start = out.len();
        out.resize(start + self.state_words(), 0);
        let words = &mut out[start..];
        for (map, slot) in self.fields.iter().zip(state) {
            let scalars: &[Scalar] = match slot {
                Slot::Scalar(s) => std::slice::from_ref(s),
                Slot::Array(items) => items,
            };
            for (elem, scalar) in scalars.iter().enumerate().take(map.elems as usize) {
                let value = match encode_scalar(map, *scalar) {
                    Ok(value) => value,
                    Err(error) => {
                        out.truncate(start);
                        return Err(error);
                    }
                };
                for word in 0..map.words {
                    let register = map.first_register + elem * map.words as usize + word as usize;
                    words[register - 1] = split_word(value, word, self.profile.register_word_bits);
                }
            }
        }
        Ok(())
    }

    /// Decodes entry words (one per state register, [`PipelineProgram::state_words`] of them)
    /// back into a state. A register beyond `words` cannot come from an entry of this program:
    /// an internal error, rather than a state padded with zeros.
    pub fn decode_state(&self, words: &[u64]) -> Result<Vec<Slot>, InternalError> {
        let w = self.profile.register_word_bits;
        let mut state = Vec::with_capacity(self.fields.len());
        for map in &self.fields {
            let mut scalars: Vec<Scalar> = Vec::with_capacity(map.elems as usize);
            for elem in 0..map.elems as usize {
                let mut raw: u64 = 0;
                for word in 0..map.words {
                    let register = map.first_register + elem * map.words as usize + word as usize;
                    let Some(&value) = register.checked_sub(1).and_then(|index| words.get(index)) else {
                        bail_internal!(
                            "register {register} of `{}` is not among the entry's {} state words",
                            self.aggregate,
                            words.len()
                        );
                    };
                    if word * w < 64 {
                        raw |= value << (word * w);
                    }
                }
                scalars.push(decode_scalar(map, raw));
            }
            state.push(match map.var_ty {
                VarTy::Scalar(_) => match scalars.first() {
                    Some(&scalar) => Slot::Scalar(scalar),
                    None => bail_internal!("state field `{}` of `{}` has no element", map.name, self.aggregate),
                },
                VarTy::Array(..) => Slot::Array(scalars),
            });
        }
        Ok(state)
    }
}

impl PipelineProgram {
    /// For an insertion atom, the word of the carried value `v` it compares and swaps (the
    /// word of its element that its register holds).
    fn carried_word(&self, atom: &Atom) -> u32 {
        match self.registers.get(atom.register).map(|r| r.role) {
            Some(RegisterRole::Word { word, .. }) => word,
            _ => 0,
        }
    }
}

/// One atom as the pipeline text shows it (registers, entry words and flags of its lane);
/// `carried` is the word of the inserted value an insertion atom works on.
fn atom_text(atom: &Atom, carried: u32) -> String {
    let r = atom.register;
    match (atom.op, atom.hi) {
        (op @ AtomOp::Insert { .. }, _) => {
            let flag_in = atom.flag_in.map(|f| format!(", f{f}")).unwrap_or_default();
            let flag_out = atom.flag_out.map(|f| format!(" -> f{f}")).unwrap_or_default();
            format!("(r{r}, v.w{carried}) = {}(r{r}, v.w{carried}{flag_in}){flag_out}   if f0   [entry wins: r{r} takes v.w{carried}, v.w{carried} takes the old r{r}]", op.text())
        }
        (AtomOp::KeyClaim, _) => format!("r{r} = claim(r{r}, key) -> f0 (hit)"),
        (op @ AtomOp::Latest { max, signed_primary, signed_secondary }, Some((h, _))) => {
            let (p, s) = (r - 1, h - 1);
            let (wins, keep) = if max { (">", "max") } else { ("<", "min") };
            let sign = |signed: bool| if signed { "s" } else { "u" };
            format!(
                "(r{r}, r{h}) = {}((r{r}, r{h}), (e{p}, e{s}))   if f0   [c0 = e{p} {wins}.{} r{r}, c1 = e{p} == r{r}; if c0: r{r} = e{p}, r{h} = e{s}; if c1: r{h} = {keep}.{}(r{h}, e{s})]",
                op.text(),
                sign(signed_primary),
                sign(signed_secondary)
            )
        }
        (op, Some((h, hi))) => {
            format!("(r{r}, r{h}) = pair({}(r{r}, e{}), {}(r{h}, e{}))   if f0", op.text(), r - 1, hi.text(), h - 1)
        }
        (op, None) => {
            let flag_in = atom.flag_in.map(|f| format!(", f{f}")).unwrap_or_default();
            let flag_out = atom.flag_out.map(|f| format!(" -> f{f}")).unwrap_or_default();
            format!("r{r} = {}(r{r}, e{}{flag_in}){flag_out}   if f0", op.text(), r - 1)
        }
    }
}

fn split_word(value: u64, word: u32, w: u32) -> u64 {
    let shift = word * w;
    if shift >= 64 {
        // Words above bit 63 hold the sign extension.
        return if (value as i64) < 0 { mask(w) } else { 0 };
    }
    (value >> shift) & mask(w)
}

/// The low `w` bits set.
pub fn mask(w: u32) -> u64 {
    if w >= 64 {
        u64::MAX
    } else {
        (1u64 << w) - 1
    }
}

/// Why a state value has no register encoding.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// A float whose fixed-point image `round(x * scale)` does not fit an i64.
    #[error(
        "state field `{field}`: {value} does not fit in fixed point with scale {scale} (|x| must stay below {bound:e})"
    )]
    FixedPointRange {
        field: String,
        /// The value, shortened for the message.
        value: String,
        scale: u64,
        /// The largest magnitude that fits: `i64::MAX / scale`.
        bound: f64,
    },
    /// A value of another type than the field's (a caller passed a state of another layout).
    #[error("state field `{field}`: value {value} does not match its type {ty}")]
    TypeMismatch {
        field: String,
        /// The value, shortened for the message.
        value: String,
        ty: String,
    },
}

fn encode_scalar(map: &FieldMap, scalar: Scalar) -> Result<u64, EncodeError> {
    match (map.encoding, scalar) {
        (Encoding::Int(_), Scalar::Int(_, v)) => Ok(v as u64),
        (Encoding::Bool, Scalar::Bool(b)) => Ok(u64::from(b)),
        (Encoding::FixedPoint { scale, .. }, Scalar::Float(_, x)) => {
            // The identities of min and max (+inf, -inf) saturate to the integer extremes.
            if x.is_infinite() {
                return Ok(if x > 0.0 { i64::MAX as u64 } else { i64::MIN as u64 });
            }
            let scaled = (x * scale as f64).round();
            // i64::MAX as f64 rounds up to 2^63, so the upper test is `<`.
            if scaled.is_nan() || scaled < i64::MIN as f64 || scaled >= i64::MAX as f64 {
                Err(EncodeError::FixedPointRange {
                    field: map.name.clone(),
                    value: short_float(x),
                    scale,
                    bound: i64::MAX as f64 / scale as f64,
                })
            } else {
                Ok(scaled as i64 as u64)
            }
        }
        (_, other) => Err(EncodeError::TypeMismatch {
            field: map.name.clone(),
            value: naas_stdx::excerpt(&other.to_string(), 24).into_owned(),
            ty: map.ty.clone(),
        }),
    }
}

/// A float for a message: in full when short, else in scientific notation (`1e300` rather
/// than its 301 digits).
fn short_float(x: f64) -> String {
    let full = x.to_string();
    if full.len() <= 24 {
        full
    } else {
        format!("{x:e}")
    }
}

fn decode_scalar(map: &FieldMap, raw: u64) -> Scalar {
    match map.encoding {
        Encoding::Int(ty) => Scalar::Int(ty, naas_lang::ops::wrap(ty, i128::from(raw))),
        Encoding::Bool => Scalar::Bool(raw & 1 != 0),
        Encoding::FixedPoint { float, scale } => {
            Scalar::Float(float, naas_lang::ops::float_round(float, (raw as i64) as f64 / scale as f64))
        }
    }
}

impl ResourceReport {
    /// The report as `naasc compile --target switch-sim` prints it.
    pub fn text(&self) -> String {
        let alus: Vec<String> = self
            .stateful_alus_per_stage
            .iter()
            .enumerate()
            .map(|(stage, used)| format!("{stage}:{used}/{}", self.stateful_alus_available_per_stage))
            .collect();
        let total: u32 = self.stateful_alus_per_stage.iter().sum();
        let mut rate = if self.passes == 1 {
            "at line rate".to_string()
        } else {
            format!("recirculated: {:.3} of line rate", self.line_rate_fraction)
        };
        if let Some(k) = self.insertion_chain {
            rate = format!(
                "{rate} per inserted value; an entry's run of n values takes n times that, up to {} for a run of {k} (1/{} of line rate)",
                counted(self.max_entry_passes, "pass", "passes"),
                self.max_entry_passes
            );
        }
        format!(
            "resources on {profile}:\n  stages used          {used} of {avail} per pass\n  stateful ALUs        {total} of {cap} ({alus})\n  register pairs       {pairs} per lane\n  register bytes/slot  {bytes} ({words}: key + state) per lane\n  lanes                {lanes} (the packet size allows {bound}; fewer lanes leave more SRAM per lane: `--lanes N`)\n  key slots per lane   {slots} (stage {limit}'s register memory fills first)\n  passes               {passes} ({rate})\n  PHV per pass         {phv} of {phv_cap} bits of entry fields\n  fields per packet    {fields} per entry, {entries} per packet of {max} fields ({pbytes} bytes)\n",
            profile = self.profile,
            used = self.stages_used,
            avail = self.stages_available,
            cap = u64::from(self.stages_available)
                * u64::from(self.stateful_alus_available_per_stage)
                * u64::from(self.passes),
            alus = alus.join(" "),
            pairs = self.register_pairs,
            bytes = self.register_bytes_per_slot,
            words = counted(self.register_words_per_slot, "word", "words"),
            lanes = self.lanes,
            bound = self.packet_lane_bound,
            slots = self.key_slots,
            limit = self.limiting_stage,
            passes = self.passes,
            phv = self.phv_entry_bits_per_pass,
            phv_cap = self.phv_entry_bits_available,
            fields = self.fields_per_entry,
            entries = counted(self.entries_per_packet, "entry", "entries"),
            max = self.max_packet_fields,
            pbytes = self.packet_bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::{lower, LowerOptions};

    /// Entry words round-trip through the encoding, and an entry with fewer words than the
    /// layout is an internal error, not a state padded with zeros.
    #[test]
    fn decoding_needs_every_state_word() {
        let compiled = naas_test_support::compile_example("reduce");
        let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
        let words = program.encode_state(&compiled.aggregates[0].identity).unwrap();
        let decoded = program.decode_state(&words).unwrap();
        assert!(decoded.iter().zip(&compiled.aggregates[0].identity).all(|(a, b)| a.same(b)));
        let error = program.decode_state(&words[..words.len() - 1]).unwrap_err();
        assert_eq!(
            error.message,
            format!(
                "register {} of `delay_stats` is not among the entry's {} state words",
                words.len(),
                words.len() - 1
            )
        );
    }
}
