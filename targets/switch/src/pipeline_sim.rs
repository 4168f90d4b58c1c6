//! The pipeline simulator: executes a pipeline program on a slot table, one packet entry at a
//! time, with the semantics of each atom on `register_word_bits`-bit words. The network
//! simulator runs switches with it; tests check it against the IR interpreter's merge.

use crate::program::{mask, AtomOp, PipelineProgram};

/// The register arrays of one switch: `slots` rows of one word per register (row-major, so
/// one entry touches one cache line or two).
#[derive(Clone, Debug)]
pub struct SlotTable {
    registers: usize,
    words: Vec<u64>,
    empty_row: Vec<u64>,
    /// Metadata flags between stages (scratch: every flag is written before it is read).
    flags: Vec<u64>,
}

impl SlotTable {
    /// A table of `slots` empty slots: key register 0, state registers at the identity.
    pub fn new(program: &PipelineProgram, slots: usize) -> SlotTable {
        let mut empty_row = vec![0u64];
        empty_row.extend_from_slice(&program.identity_words);
        let registers = empty_row.len();
        let mut words = Vec::with_capacity(slots.max(1) * registers);
        for _ in 0..slots.max(1) {
            words.extend_from_slice(&empty_row);
        }
        SlotTable { registers, words, empty_row, flags: vec![0; program.flags as usize + 1] }
    }

    pub fn slots(&self) -> usize {
        self.words.len() / self.registers
    }

    /// The slot's resident key and state words, if the slot is occupied.
    pub fn resident(&self, slot: usize) -> Option<(u64, &[u64])> {
        let row = &self.words[slot * self.registers..(slot + 1) * self.registers];
        (row[0] != 0).then(|| (row[0] - 1, &row[1..]))
    }

    /// Sets a slot to hold `key` with `state` (tests use it to start from a given state).
    pub fn install(&mut self, slot: usize, key: u64, state: &[u64]) {
        let row = &mut self.words[slot * self.registers..(slot + 1) * self.registers];
        row[0] = key + 1;
        row[1..].copy_from_slice(state);
    }

    /// Empties a slot (the control plane does this after reading it out).
    pub fn clear(&mut self, slot: usize) {
        let registers = self.registers;
        self.words[slot * registers..(slot + 1) * registers].copy_from_slice(&self.empty_row);
    }
}

/// What happened to an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Merged into (or installed in) the slot.
    Merged,
    /// The slot holds another key: the entry must be forwarded unmerged.
    Collision,
}

const ADD: u8 = 0;
const MIN_S: u8 = 1;
const MIN_U: u8 = 2;
const MAX_S: u8 = 3;
const MAX_U: u8 = 4;
const OR: u8 = 5;
const AND: u8 = 6;

/// An atom in the simulator's compact form. Flag 0 (the key claim's hit) is never an input
/// of another atom, so 0 means "no flag" in `flag_in` and `flag_out`.
#[derive(Clone, Copy, Debug)]
struct Op {
    kind: u8,
    register: u32,
    flag_in: u32,
    flag_out: u32,
}

/// A pipeline program prepared for fast execution: its atoms in stage order, the key claim
/// (always the only atom of stage 0) first.
#[derive(Clone, Debug)]
pub struct PipelineSim {
    ops: Vec<Op>,
    word_bits: u32,
}

impl PipelineSim {
    pub fn new(program: &PipelineProgram) -> PipelineSim {
        let ops = program
            .stages
            .iter()
            .flat_map(|stage| stage.atoms.iter())
            .filter_map(|atom| {
                let kind = match atom.op {
                    AtomOp::KeyClaim => return None,
                    AtomOp::Add => ADD,
                    AtomOp::Min { signed: true } => MIN_S,
                    AtomOp::Min { signed: false } => MIN_U,
                    AtomOp::Max { signed: true } => MAX_S,
                    AtomOp::Max { signed: false } => MAX_U,
                    AtomOp::Or => OR,
                    AtomOp::And => AND,
                };
                Some(Op {
                    kind,
                    register: atom.register as u32,
                    flag_in: atom.flag_in.unwrap_or(0),
                    flag_out: atom.flag_out.unwrap_or(0),
                })
            })
            .collect();
        PipelineSim { ops, word_bits: program.profile.register_word_bits }
    }

    /// Runs one entry (`key`, state words `entry`) through the pipeline on `slot`.
    pub fn execute(&self, table: &mut SlotTable, slot: usize, key: u64, entry: &[u64]) -> Outcome {
        let w = self.word_bits;
        let m = mask(w);
        let registers = table.registers;
        let row = &mut table.words[slot * registers..(slot + 1) * registers];
        let flags = &mut table.flags;
        // Stage 0: the key claim. Every other atom is guarded by its hit flag, so a miss
        // changes nothing else.
        if row[0] != 0 && row[0] != key + 1 {
            return Outcome::Collision;
        }
        row[0] = key + 1;
        for op in &self.ops {
            let register = op.register as usize;
            let r = row[register];
            let v = entry[register - 1];
            let flag_in = if op.flag_in != 0 { flags[op.flag_in as usize] } else { 0 };
            let (new, flag_out) = match op.kind {
                ADD => {
                    let sum = u128::from(r) + u128::from(v) + u128::from(flag_in);
                    ((sum as u64) & m, (sum >> w) as u64)
                }
                OR => (r | v, 0),
                AND => (r & v, 0),
                kind => {
                    // Compare-and-select: 0 tie, 1 the entry wins, 2 the register wins.
                    let decision = if flag_in != 0 {
                        flag_in
                    } else {
                        let ordering = if kind == MIN_S || kind == MAX_S {
                            sign_extend(v, w).cmp(&sign_extend(r, w))
                        } else {
                            v.cmp(&r)
                        };
                        let entry_wins =
                            if kind == MIN_S || kind == MIN_U { ordering.is_lt() } else { ordering.is_gt() };
                        if ordering.is_eq() {
                            0
                        } else if entry_wins {
                            1
                        } else {
                            2
                        }
                    };
                    (if decision == 1 { v } else { r }, decision)
                }
            };
            row[register] = new;
            if op.flag_out != 0 {
                flags[op.flag_out as usize] = flag_out;
            }
        }
        Outcome::Merged
    }
}

fn sign_extend(x: u64, w: u32) -> i64 {
    let shift = 64 - w;
    ((x << shift) as i64) >> shift
}
