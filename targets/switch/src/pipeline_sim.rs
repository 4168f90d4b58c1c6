//! The pipeline simulator: executes a pipeline program on a slot table, one packet entry at a
//! time, with the semantics of each atom on `register_word_bits`-bit words. The network
//! simulator runs switches with it, a packet at a time; tests check it against the IR
//! interpreter's merge, and its fast paths (chains of atoms run as one step, packets run in
//! batches) against the plain ones.

use crate::program::{mask, AtomOp, PipelineProgram};

/// The register arrays of one switch: `slots` rows of one word per register.
///
/// Only slots that have been used take memory, so a table costs memory (and cache) for the
/// keys it holds rather than for every slot it could hold: a simulated Tofino table has 81,920
/// slots, and a network of a hundred switches whose tables hold a thousand keys each would
/// otherwise miss the cache on nearly every entry. The used rows live in an open-addressing
/// hash table keyed by slot, each *cell* holding the slot's tag and its row side by side (for
/// `reduce.naas`, 8 words: one cache line), so finding a row and reading it is one memory
/// access. None of this is visible: a slot never used reads as empty.
#[derive(Clone, Debug)]
pub struct SlotTable {
    slots: usize,
    registers: usize,
    /// `cells` cells of `1 + registers` words from `cells[origin]` on: the slot plus one
    /// (0: a free cell), then the row. Linear probing, at most half full.
    words: Vec<u64>,
    origin: usize,
    cells: usize,
    used: usize,
    empty_row: Vec<u64>,
    /// Metadata flags between stages (scratch: every flag is written before it is read).
    flags: Vec<u64>,
}

impl SlotTable {
    /// A table of `slots` empty slots (at most 2^32 - 2): key register 0, state registers at
    /// the identity.
    pub fn new(program: &PipelineProgram, slots: usize) -> SlotTable {
        let mut empty_row = vec![0u64];
        empty_row.extend_from_slice(&program.identity_words);
        let mut table = SlotTable {
            slots: slots.clamp(1, u32::MAX as usize - 1),
            registers: empty_row.len(),
            words: Vec::new(),
            origin: 0,
            cells: 0,
            used: 0,
            empty_row,
            flags: vec![0; program.flags as usize + 1],
        };
        table.allocate(16);
        table
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Replaces the cells by `cells` free ones, the first aligned to a cache line.
    fn allocate(&mut self, cells: usize) {
        let width = 1 + self.registers;
        self.words = vec![0; cells * width + 8];
        let misalignment = (self.words.as_ptr() as usize / 8) % 8;
        self.origin = (8 - misalignment) % 8;
        self.cells = cells;
    }

    /// The first cell a slot probes (Fibonacci hashing: slots of dense keys are consecutive,
    /// and this spreads them).
    #[inline]
    fn home(&self, slot: usize) -> usize {
        let bits = self.cells.trailing_zeros();
        ((slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// Where a cell starts in `words`.
    #[inline]
    fn cell_start(&self, cell: usize) -> usize {
        self.origin + cell * (1 + self.registers)
    }

    /// Where the slot's row starts in `words`, if the slot has been used.
    #[inline]
    fn find(&self, slot: usize) -> Option<usize> {
        let mut cell = self.home(slot);
        loop {
            let at = self.cell_start(cell);
            let tag = self.words[at];
            if tag == slot as u64 + 1 {
                return Some(at + 1);
            }
            if tag == 0 {
                return None;
            }
            cell = (cell + 1) & (self.cells - 1);
        }
    }

    /// Makes room for `more` new slots without moving any row.
    #[inline]
    fn reserve(&mut self, more: usize) {
        if 2 * (self.used + more) > self.cells {
            self.grow(more);
        }
    }

    /// Where the slot's row starts in `words`, allocating it (empty) on first use. Rows move
    /// only when the table grows, which [`SlotTable::reserve`] does ahead of a batch.
    #[inline]
    fn row_start(&mut self, slot: usize) -> usize {
        self.reserve(1);
        let width = 1 + self.registers;
        let mut cell = self.home(slot);
        loop {
            let at = self.cell_start(cell);
            let tag = self.words[at];
            if tag == slot as u64 + 1 {
                return at + 1;
            }
            if tag == 0 {
                self.words[at] = slot as u64 + 1;
                self.words[at + 1..at + width].copy_from_slice(&self.empty_row);
                self.used += 1;
                return at + 1;
            }
            cell = (cell + 1) & (self.cells - 1);
        }
    }

    /// Rehashes every used cell into a table at most a quarter full after `more` insertions.
    fn grow(&mut self, more: usize) {
        let width = 1 + self.registers;
        let mut cells = self.cells;
        while 4 * (self.used + more) > cells {
            cells *= 2;
        }
        let (old, origin, old_cells) = (std::mem::take(&mut self.words), self.origin, self.cells);
        self.allocate(cells);
        for cell in 0..old_cells {
            let from = origin + cell * width;
            let tag = old[from];
            if tag == 0 {
                continue;
            }
            let mut to = self.home(tag as usize - 1);
            while self.words[self.origin + to * width] != 0 {
                to = (to + 1) & (self.cells - 1);
            }
            let at = self.origin + to * width;
            self.words[at..at + width].copy_from_slice(&old[from..from + width]);
        }
    }

    /// The slot's resident key and state words, if the slot is occupied.
    pub fn resident(&self, slot: usize) -> Option<(u64, &[u64])> {
        let start = self.find(slot)?;
        let row = &self.words[start..start + self.registers];
        (row[0] != 0).then(|| (row[0] - 1, &row[1..]))
    }

    /// The occupied slots, in slot order (the order a control plane reads a table out in).
    pub fn occupied(&self) -> Vec<usize> {
        let mut slots: Vec<usize> = (0..self.cells)
            .map(|cell| self.cell_start(cell))
            .filter(|at| self.words[*at] != 0 && self.words[at + 1] != 0)
            .map(|at| self.words[at] as usize - 1)
            .collect();
        slots.sort_unstable();
        slots
    }

    /// Sets a slot to hold `key` with `state` (tests use it to start from a given state).
    pub fn install(&mut self, slot: usize, key: u64, state: &[u64]) {
        let start = self.row_start(slot);
        let row = &mut self.words[start..start + self.registers];
        row[0] = key + 1;
        row[1..].copy_from_slice(state);
    }

    /// Empties a slot (the control plane does this after reading it out).
    pub fn clear(&mut self, slot: usize) {
        if let Some(start) = self.find(slot) {
            self.words[start..start + self.registers].copy_from_slice(&self.empty_row);
        }
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

/// A chain of atoms linked by flags, run as one step on the value its registers hold
/// together: a multi-word add (carries ripple from the least significant word, `first`, up),
/// a multi-word compare-and-select (decided from the most significant word, `first`, down;
/// `kind` is that word's), or a one-word `or` / `and`. Equal to running the atoms one by one:
/// adding word by word with carries is adding the whole value modulo `2^(w * words)`, and
/// comparing from the top word down (signed on top) is comparing the whole value.
#[derive(Clone, Copy, Debug)]
struct Chain {
    kind: u8,
    first: u32,
    words: u32,
}

/// A pipeline program prepared for fast execution: its atoms in stage order, the key claim
/// (always the only atom of stage 0) first, and the same atoms as chains when they form them
/// (they do for every program [`crate::lower()`] produces; the atoms are the fallback).
#[derive(Clone, Debug)]
pub struct PipelineSim {
    ops: Vec<Op>,
    chains: Option<Vec<Chain>>,
    word_bits: u32,
}

/// Groups atoms into chains: every flag has one consumer, which continues the chain on the
/// next register (up for adds, down for comparisons) with the same operation, and a chain's
/// value fits 64 bits. `None` when the atoms do not have that shape.
fn chains(ops: &[Op], word_bits: u32) -> Option<Vec<Chain>> {
    let mut consumer: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for (index, op) in ops.iter().enumerate() {
        if op.flag_in != 0 && consumer.insert(op.flag_in, index).is_some() {
            return None;
        }
    }
    let family = |kind: u8| match kind {
        MIN_S | MIN_U => MIN_U,
        MAX_S | MAX_U => MAX_U,
        other => other,
    };
    let mut covered = 0;
    let mut chains = Vec::new();
    for root in ops.iter().filter(|op| op.flag_in == 0) {
        let mut current = *root;
        let mut words = 1;
        while current.flag_out != 0 {
            let Some(&next) = consumer.get(&current.flag_out) else { break };
            let next = ops[next];
            let step = if root.kind == ADD { current.register.checked_add(1) } else { current.register.checked_sub(1) };
            if matches!(root.kind, OR | AND) || family(next.kind) != family(root.kind) || Some(next.register) != step {
                return None;
            }
            current = next;
            words += 1;
        }
        if words * word_bits > 64 {
            return None;
        }
        covered += words;
        chains.push(Chain { kind: root.kind, first: root.register, words });
    }
    (covered as usize == ops.len()).then_some(chains)
}

impl PipelineSim {
    pub fn new(program: &PipelineProgram) -> PipelineSim {
        let ops: Vec<Op> = program
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
        let word_bits = program.profile.register_word_bits;
        PipelineSim { chains: chains(&ops, word_bits), ops, word_bits }
    }

    /// Runs one entry (`key`, state words `entry`) through the pipeline on `slot`.
    pub fn execute(&self, table: &mut SlotTable, slot: usize, key: u64, entry: &[u64]) -> Outcome {
        let start = table.row_start(slot);
        self.execute_row(table, start, key, entry)
    }

    /// Runs the entries of a packet (`stride` words each: the key, then the state words) in
    /// order, the entry with key `k` on slot `slot(k)`. Appends the index of every entry that
    /// collides to `collisions` and returns how many merged.
    ///
    /// Same result as calling [`PipelineSim::execute`] on each entry in turn, but the rows of
    /// a batch of entries are located before any of them runs, so that their cache misses
    /// overlap instead of following one another (a switch's rows are spread over memory by
    /// key, and a network has many switches). Measured on 64 tables of about 900 keys each,
    /// this takes the cost per entry from about 65 ns to about 50 ns.
    pub fn execute_packet(
        &self,
        table: &mut SlotTable,
        data: &[u64],
        stride: usize,
        slot: impl Fn(u64) -> usize,
        collisions: &mut Vec<u32>,
    ) -> u64 {
        const BATCH: usize = 16;
        let mut starts = [0usize; BATCH];
        let mut slots = [0usize; BATCH];
        let mut merged = 0;
        for (batch, chunk) in data.chunks(stride * BATCH).enumerate() {
            let entries = chunk.len() / stride;
            // Room first, so that no row moves while the batch holds its position.
            table.reserve(entries);
            for (i, slot_i) in slots.iter_mut().enumerate().take(entries) {
                *slot_i = slot(chunk[i * stride]);
            }
            for (start, slot_i) in starts.iter_mut().zip(&slots).take(entries) {
                *start = table.row_start(*slot_i);
            }
            for (i, start) in starts.iter().enumerate().take(entries) {
                let entry = &chunk[i * stride..(i + 1) * stride];
                match self.execute_row(table, *start, entry[0], &entry[1..]) {
                    Outcome::Merged => merged += 1,
                    Outcome::Collision => collisions.push((batch * BATCH + i) as u32),
                }
            }
        }
        merged
    }

    /// Runs one entry on the row that starts at `start` in `table.words`.
    #[inline]
    fn execute_row(&self, table: &mut SlotTable, start: usize, key: u64, entry: &[u64]) -> Outcome {
        let w = self.word_bits;
        let m = mask(w);
        let row = &mut table.words[start..start + table.registers];
        let flags = &mut table.flags;
        // Stage 0: the key claim. Every other atom is guarded by its hit flag, so a miss
        // changes nothing else.
        if row[0] != 0 && row[0] != key + 1 {
            return Outcome::Collision;
        }
        row[0] = key + 1;
        if let Some(chains) = &self.chains {
            for chain in chains {
                run_chain(*chain, row, entry, w);
            }
            return Outcome::Merged;
        }
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

/// Runs one chain on a row (`row[r]` is register `r`; `entry[r - 1]` its entry word).
#[inline]
fn run_chain(chain: Chain, row: &mut [u64], entry: &[u64], w: u32) {
    let first = chain.first as usize;
    if chain.words == 1 {
        let (r, v) = (row[first], entry[first - 1]);
        row[first] = match chain.kind {
            ADD => r.wrapping_add(v) & mask(w),
            OR => r | v,
            AND => r & v,
            MIN_S => select(sign_extend(v, w) < sign_extend(r, w), v, r),
            MAX_S => select(sign_extend(v, w) > sign_extend(r, w), v, r),
            MIN_U => select(v < r, v, r),
            _ => select(v > r, v, r),
        };
        return;
    }
    if chain.words == 2 && chain.kind == ADD {
        // The common wide case (a 64-bit sum in 32-bit words), without loops.
        let sum = (row[first] | row[first + 1] << w).wrapping_add(entry[first - 1] | entry[first] << w);
        row[first] = sum & mask(w);
        row[first + 1] = (sum >> w) & mask(w);
        return;
    }
    let words = chain.words as usize;
    let bits = w * chain.words;
    if chain.kind == ADD {
        // Registers `first..first + words`, least significant first.
        let (mut r, mut v) = (0u64, 0u64);
        for k in 0..words {
            r |= row[first + k] << (k as u32 * w);
            v |= entry[first + k - 1] << (k as u32 * w);
        }
        let sum = r.wrapping_add(v);
        for k in 0..words {
            row[first + k] = (sum >> (k as u32 * w)) & mask(w);
        }
        return;
    }
    // Registers `first, first - 1, ...`, most significant first.
    let (mut r, mut v) = (0u64, 0u64);
    for k in 0..words {
        let shift = (words - 1 - k) as u32 * w;
        r |= row[first - k] << shift;
        v |= entry[first - k - 1] << shift;
    }
    let entry_wins = match chain.kind {
        MIN_S => sign_extend(v, bits) < sign_extend(r, bits),
        MAX_S => sign_extend(v, bits) > sign_extend(r, bits),
        MIN_U => v < r,
        _ => v > r,
    };
    if entry_wins {
        for k in 0..words {
            row[first - k] = entry[first - k - 1];
        }
    }
}

#[inline]
fn select(entry_wins: bool, v: u64, r: u64) -> u64 {
    if entry_wins {
        v
    } else {
        r
    }
}

fn sign_extend(x: u64, w: u32) -> i64 {
    let shift = 64 - w;
    ((x << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::{lower, LowerOptions, TargetProfile};
    use naas_ir::laws::Rng;

    /// Chains (the fast path) and atoms one by one (the fallback) give the same rows, on
    /// arbitrary register words (ties and sign bits over-represented).
    #[test]
    fn chains_equal_atoms() {
        let sources = [
            include_str!("../../../examples/reduce.naas"),
            include_str!("../../../examples/histogram.naas"),
            include_str!("../../../examples/robust_mean.naas"),
            include_str!("../tests/programs/min_max_wide.naas"),
            include_str!("../tests/programs/flags.naas"),
        ];
        let mut rng = Rng::new(5);
        let mut checked = 0;
        for source in sources {
            let (program, _) = naas_lang::frontend(source, &naas_lang::check::CheckOptions::default()).unwrap();
            let compiled = naas_ir::compile(&program, naas_ir::laws::LawOptions::default()).unwrap();
            for bits in [8, 16, 32, 64] {
                let profile = TargetProfile {
                    register_word_bits: bits,
                    stages: 64,
                    max_packet_fields: 1024,
                    key_bits: bits.min(32),
                    ..TargetProfile::default()
                };
                let Ok(program) = lower(&compiled, 0, &profile, &LowerOptions::default()) else { continue };
                let fast = PipelineSim::new(&program);
                assert!(fast.chains.is_some(), "{} on {bits}-bit words has no chains", program.aggregate);
                let slow = PipelineSim { chains: None, ..fast.clone() };
                let word = |rng: &mut Rng| match rng.below(4) {
                    0 => 0,
                    1 => mask(bits),
                    2 => 1 << (bits - 1),
                    _ => rng.next_u64() & mask(bits),
                };
                for _ in 0..500 {
                    let resident: Vec<u64> = (0..program.state_words()).map(|_| word(&mut rng)).collect();
                    let entry: Vec<u64> = (0..program.state_words()).map(|_| word(&mut rng)).collect();
                    let (mut a, mut b) = (SlotTable::new(&program, 2), SlotTable::new(&program, 2));
                    a.install(1, 3, &resident);
                    b.install(1, 3, &resident);
                    assert_eq!(fast.execute(&mut a, 1, 3, &entry), slow.execute(&mut b, 1, 3, &entry));
                    assert_eq!(a.resident(1), b.resident(1), "{} on {bits}-bit words", program.aggregate);
                    checked += 1;
                }
            }
        }
        assert!(checked >= 5 * 3 * 500);
    }
}
