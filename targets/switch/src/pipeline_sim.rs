//! The pipeline simulator: executes a pipeline program on a slot table, one packet entry at a
//! time, with the semantics of each atom on `register_word_bits`-bit words. The network
//! simulator runs switches with it, a packet at a time; tests check it against the IR
//! interpreter's merge, and its fast paths (chains of atoms run as one step, packets run in
//! batches) against the plain ones.

use crate::program::{mask, AtomOp, PipelineProgram};
use crate::word::{fits_u32, line_aligned, Word};

/// The register arrays of one switch: `slots` rows of one word per register, each word a
/// [`Word`] (`u32` where the profile's words fit it: half the memory and cache).
///
/// Only slots that have been used take memory, so a table costs memory (and cache) for the
/// keys it holds rather than for every slot it could hold: a simulated Tofino table has 81,920
/// slots, and a network of a hundred switches whose tables hold a thousand keys each would
/// otherwise miss the cache on nearly every entry. Rows are padded to a whole cache line when
/// they fit one, and stored in one of two ways:
/// - *dense*: the row of slot `s` is row `s` of one array, grown to the highest slot used. One
///   memory access finds and reads a row. Tables stay dense while that array is small
///   ([`DENSE_BYTES`]), which is always the case for the dense key identifiers of
///   [`crate::network::SlotIndex::Direct`];
/// - *sparse*: once a slot beyond that is used (hashed slots of a large table), rows are stored
///   in the order of first use, and a small open-addressing index maps a slot to its row (one
///   8-byte cell per used slot, at most half full: the slot plus one in the high half, the row
///   number in the low half).
///
/// None of this is visible: a slot never used reads as empty. A row's state words mean
/// something only while its key register is set; claiming an empty row resets them to the
/// identity first (what the control plane's reset of a cleared slot does on a switch).
#[derive(Clone, Debug)]
pub struct SlotTable<W = u64> {
    slots: usize,
    registers: usize,
    /// Words from one row's start to the next (`registers`, rounded up to a power of two when
    /// a row fits a cache line, so that rows do not straddle cache lines).
    row_width: usize,
    /// `None` while dense; else `len` (a power of two) cells, 0 for a free one.
    index: Option<Vec<u64>>,
    /// The rows, `row_width` words each, from `rows[origin]` on (cache-line aligned).
    rows: Vec<W>,
    origin: usize,
    /// Rows in use: in a dense table, the highest slot used plus one.
    used: usize,
    identity: Vec<W>,
    /// Metadata flags between stages (scratch: every flag is written before it is read).
    flags: Vec<u64>,
}

/// The largest array of rows a dense table grows to (1 MiB: 16,384 rows of 8 64-bit words).
pub const DENSE_BYTES: usize = 1 << 20;

impl<W: Word> SlotTable<W> {
    /// A table of `slots` empty slots (at most 2^32 - 2).
    ///
    /// # Panics
    /// If `W` cannot hold the program's register words and keys: `u32` tables are for
    /// programs whose profile [`fits_u32`].
    pub fn new(program: &PipelineProgram, slots: usize) -> SlotTable<W> {
        assert!(
            std::mem::size_of::<W>() == 8 || fits_u32(&program.profile),
            "a table of 32-bit words for a program of {}-bit register words and {}-bit keys",
            program.profile.register_word_bits,
            program.profile.key_bits
        );
        let registers = 1 + program.identity_words.len();
        let row_width = if registers <= W::PER_LINE { registers.next_power_of_two() } else { registers };
        let mut table = SlotTable {
            slots: slots.clamp(1, u32::MAX as usize - 1),
            registers,
            row_width,
            index: None,
            rows: Vec::new(),
            origin: 0,
            used: 0,
            identity: program.identity_words.iter().map(|word| W::narrow(*word)).collect(),
            flags: vec![0; program.flags as usize + 1],
        };
        // Rows are allocated on first use: a network has up to 2^20 switches, many of which
        // see few keys (or none, on the unused paths of a leaf-spine network).
        table.reallocate_rows(0);
        table
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Moves the rows into room for `capacity` rows (zeroed beyond those in use), the first
    /// aligned to a cache line.
    fn reallocate_rows(&mut self, capacity: usize) {
        let (mut rows, origin) = line_aligned(capacity * self.row_width);
        let live = self.used * self.row_width;
        if live > 0 {
            rows[origin..origin + live].copy_from_slice(&self.rows[self.origin..self.origin + live]);
        }
        self.rows = rows;
        self.origin = origin;
    }

    /// Rows there is room for without moving them.
    fn row_capacity(&self) -> usize {
        (self.rows.len() - W::PER_LINE) / self.row_width
    }

    /// Makes `slots` usable by [`SlotTable::row_start`] without moving any row: a dense
    /// table grows to the highest of them (or turns sparse, if that is too large), a sparse
    /// one makes room for that many new rows.
    #[inline]
    fn prepare(&mut self, slots: &[usize]) {
        if self.index.is_none() {
            let high = slots.iter().max().map_or(0, |slot| slot + 1);
            if high <= self.used {
                return;
            }
            if high * self.row_width * std::mem::size_of::<W>() <= DENSE_BYTES {
                if high > self.row_capacity() {
                    self.reallocate_rows(high.next_power_of_two().max(16));
                }
                self.used = high;
                return;
            }
            self.make_sparse();
        }
        let more = slots.len();
        if self.used + more > self.row_capacity() {
            self.reallocate_rows(((self.used + more) * 2).next_power_of_two());
        }
        while let Some(index) = &self.index {
            if 2 * (self.used + more) <= index.len() {
                break;
            }
            self.grow_index();
        }
    }

    /// Turns a dense table sparse: the occupied rows, in slot order, and their index.
    fn make_sparse(&mut self) {
        let occupied = self.occupied();
        let (old, old_origin, width) = (std::mem::take(&mut self.rows), self.origin, self.row_width);
        self.used = 0;
        self.reallocate_rows((2 * occupied.len()).next_power_of_two().max(16));
        self.index = Some(vec![0; (4 * occupied.len()).next_power_of_two().max(16)]);
        for slot in occupied {
            let from = old_origin + slot * width;
            let start = self.row_start(slot);
            self.rows[start..start + width].copy_from_slice(&old[from..from + width]);
        }
    }

    /// The first index cell a slot probes (Fibonacci hashing: slots of dense keys are
    /// consecutive, and this spreads them).
    #[inline]
    fn home(cells: usize, slot: usize) -> usize {
        let bits = cells.trailing_zeros();
        ((slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// Where the slot's row starts in `rows`, if the slot has been used.
    #[inline]
    fn find(&self, slot: usize) -> Option<usize> {
        let Some(index) = &self.index else {
            return (slot < self.used).then(|| self.origin + slot * self.row_width);
        };
        Self::probe(index, slot).ok().map(|row| self.origin + row * self.row_width)
    }

    /// Looks a slot up in a sparse table's index: `Ok(row)` if it has a row, else
    /// `Err(cell)`, the free cell where its entry goes.
    #[inline]
    fn probe(index: &[u64], slot: usize) -> Result<usize, usize> {
        let tag = (slot as u64 + 1) << 32;
        let mut cell = Self::home(index.len(), slot);
        loop {
            let entry = index[cell];
            if entry & !0xffff_ffff == tag {
                return Ok((entry & 0xffff_ffff) as usize);
            }
            if entry == 0 {
                return Err(cell);
            }
            cell = (cell + 1) & (index.len() - 1);
        }
    }

    /// Where the slot's row starts in `rows`, allocating it on first use; the slot must
    /// have been prepared ([`SlotTable::prepare`]), and a start stays valid until the next
    /// `prepare`.
    #[inline]
    fn row_start(&mut self, slot: usize) -> usize {
        let Some(index) = &mut self.index else {
            return self.origin + slot * self.row_width;
        };
        let cell = match Self::probe(index, slot) {
            Ok(row) => return self.origin + row * self.row_width,
            Err(cell) => cell,
        };
        index[cell] = (slot as u64 + 1) << 32 | self.used as u64;
        let start = self.origin + self.used * self.row_width;
        self.used += 1;
        self.rows[start] = W::default();
        start
    }

    /// Asks the processor to bring the row of `slot` into the cache ahead of its use (in a
    /// sparse table, the slot's first index cell). Only a hint: nothing changes, and a slot
    /// without a row is ignored. The network simulator calls it for the next packet a switch
    /// will run while it runs the current one, so that the rows' cache misses overlap work.
    #[inline]
    pub fn prefetch(&self, slot: usize) {
        match &self.index {
            None if slot < self.used => naas_stdx::prefetch(&self.rows[self.origin + slot * self.row_width]),
            None => {}
            Some(index) => naas_stdx::prefetch(&index[Self::home(index.len(), slot)]),
        }
    }

    /// Doubles the index (the rows stay where they are).
    fn grow_index(&mut self) {
        let Some(index) = &mut self.index else { return };
        let cells = 2 * index.len();
        let old = std::mem::replace(index, vec![0; cells]);
        for entry in old.into_iter().filter(|entry| *entry != 0) {
            let mut cell = Self::home(cells, (entry >> 32) as usize - 1);
            while index[cell] != 0 {
                cell = (cell + 1) & (cells - 1);
            }
            index[cell] = entry;
        }
    }

    /// The slot's resident key and state words, if the slot is occupied.
    pub fn resident(&self, slot: usize) -> Option<(u64, &[W])> {
        let start = self.find(slot)?;
        let row = &self.rows[start..start + self.registers];
        (row[0].get() != 0).then(|| (row[0].get() - 1, &row[1..]))
    }

    /// The occupied slots, in slot order (the order a control plane reads a table out in).
    pub fn occupied(&self) -> Vec<usize> {
        let key = |row: usize| self.rows[self.origin + row * self.row_width].get();
        let Some(index) = &self.index else {
            return (0..self.used).filter(|slot| key(*slot) != 0).collect();
        };
        let mut slots: Vec<usize> = index
            .iter()
            .filter(|entry| **entry != 0 && key((**entry & 0xffff_ffff) as usize) != 0)
            .map(|entry| (entry >> 32) as usize - 1)
            .collect();
        slots.sort_unstable();
        slots
    }

    /// Sets a slot to hold `key` with `state` (tests use it to start from a given state).
    ///
    /// # Panics
    /// If `state` is not one word per state register.
    pub fn install(&mut self, slot: usize, key: u64, state: &[u64]) {
        assert_eq!(
            state.len(),
            self.registers - 1,
            "a state of {} words for {} state registers",
            state.len(),
            self.registers - 1
        );
        self.prepare(&[slot]);
        let start = self.row_start(slot);
        let row = &mut self.rows[start..start + self.registers];
        row[0] = W::narrow(key + 1);
        for (word, value) in row[1..].iter_mut().zip(state) {
            *word = W::narrow(*value);
        }
    }

    /// Stage 0, the key claim, on the row that starts at `start`: an empty row takes the
    /// key (and its state words the identity); a row holding another key collides. Every
    /// other atom is guarded by the claim's hit flag, so a collision changes nothing else.
    #[inline]
    fn claim(&mut self, start: usize, key: u64) -> Outcome {
        let resident = self.rows[start].get();
        if resident == key + 1 {
            return Outcome::Merged;
        }
        if resident != 0 {
            return Outcome::Collision;
        }
        self.rows[start] = W::narrow(key + 1);
        self.rows[start + 1..start + self.registers].copy_from_slice(&self.identity);
        Outcome::Merged
    }

    /// Empties a slot (the control plane does this after reading it out).
    pub fn clear(&mut self, slot: usize) {
        if let Some(start) = self.find(slot) {
            self.rows[start] = W::default();
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
/// A latest-value pair (`AtomOp::Latest`); its secondary register is `Op::second`.
const LATEST: u8 = 7;
/// A compare-and-swap of an insertion chain (`AtomOp::Insert`), with `mode` as for
/// [`LATEST`] (bit 0: the larger value stays; bit 1: signed) and the carried value's word in
/// `Op::second`.
const INSERT: u8 = 8;

/// An atom in the simulator's compact form. Flag 0 (the key claim's hit) is never an input
/// of another atom, so 0 means "no flag" in `flag_in` and `flag_out`.
#[derive(Clone, Copy, Debug)]
struct Op {
    kind: u8,
    register: u32,
    flag_in: u32,
    flag_out: u32,
    /// `LATEST` only: the secondary register, and the comparison (bit 0: keep the larger
    /// pair; bit 1: the primary word compares signed; bit 2: the secondary one does).
    second: u32,
    mode: u8,
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
    /// How the chain runs over a batch of entries, decided once.
    form: Form,
}

/// The chains [`run_chain_over`] has a loop of its own for: one-word chains, and a 64-bit
/// sum in two 32-bit words (the shape of every `i64`/`u64` sum and count on a 32-bit
/// profile). Signed comparisons have theirs on 32-bit words, where a word is an `i32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Add,
    Or,
    And,
    MinS32,
    MaxS32,
    MinU,
    MaxU,
    Add64In32,
    /// Anything else, entry by entry through [`run_chain`].
    General,
}

impl Form {
    fn of(kind: u8, words: u32, word_bits: u32) -> Form {
        match (kind, words, word_bits) {
            (ADD, 1, _) => Form::Add,
            (OR, 1, _) => Form::Or,
            (AND, 1, _) => Form::And,
            (MIN_S, 1, 32) => Form::MinS32,
            (MAX_S, 1, 32) => Form::MaxS32,
            (MIN_U, 1, _) => Form::MinU,
            (MAX_U, 1, _) => Form::MaxU,
            (ADD, 2, 32) => Form::Add64In32,
            _ => Form::General,
        }
    }
}

/// A pipeline program prepared for fast execution: its atoms in stage order, the key claim
/// (always the only atom of stage 0) first, and the same atoms as chains when they form them
/// (they do for every program [`crate::lower()`] produces; the atoms are the fallback).
#[derive(Clone, Debug)]
pub struct PipelineSim {
    ops: Vec<Op>,
    chains: Option<Vec<Chain>>,
    word_bits: u32,
    /// With an insertion chain: its elements, words per element, and the identity words
    /// (the run's padding), to count the values an entry inserts.
    insertion: Option<(usize, usize, Vec<u64>)>,
    /// Passes of one insertion (or of one entry without an insertion chain).
    passes: u32,
}

/// Groups atoms into chains: every flag has one consumer, which continues the chain on the
/// next register (up for adds, down for comparisons) with the same operation, and a chain's
/// value fits 64 bits. `None` when the atoms do not have that shape.
fn chains(ops: &[Op], word_bits: u32) -> Option<Vec<Chain>> {
    if ops.iter().any(|op| op.kind == LATEST || op.kind == INSERT) {
        // A pair's two words are not one value, and an insertion chain moves a value through
        // its elements: the atoms run one by one.
        return None;
    }
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
        chains.push(Chain {
            kind: root.kind,
            first: root.register,
            words,
            form: Form::of(root.kind, words, word_bits),
        });
    }
    (covered as usize == ops.len()).then_some(chains)
}

impl PipelineSim {
    pub fn new(program: &PipelineProgram) -> PipelineSim {
        // Every lane runs the same atoms on its own registers (its own slot table), so lane 0's
        // atoms are the program; a register pair is two word operations in one access, and its
        // halves are independent (no predicate, no flag between them).
        let kind_of = |op: AtomOp| match op {
            AtomOp::KeyClaim => None,
            AtomOp::Add => Some(ADD),
            AtomOp::Min { signed: true } => Some(MIN_S),
            AtomOp::Min { signed: false } => Some(MIN_U),
            AtomOp::Max { signed: true } => Some(MAX_S),
            AtomOp::Max { signed: false } => Some(MAX_U),
            AtomOp::Or => Some(OR),
            AtomOp::And => Some(AND),
            AtomOp::Latest { .. } => Some(LATEST),
            AtomOp::Insert { .. } => Some(INSERT),
        };
        let mut ops: Vec<Op> = Vec::new();
        for (_, atom) in program.lane_atoms(0) {
            let Some(kind) = kind_of(atom.op) else { continue };
            let mut op = Op {
                kind,
                register: atom.register as u32,
                flag_in: atom.flag_in.unwrap_or(0),
                flag_out: atom.flag_out.unwrap_or(0),
                second: 0,
                mode: 0,
            };
            if let AtomOp::Latest { max, signed_primary, signed_secondary } = atom.op {
                op.second = atom.hi.map_or(0, |(register, _)| register as u32);
                op.mode = u8::from(max) | u8::from(signed_primary) << 1 | u8::from(signed_secondary) << 2;
                ops.push(op);
                continue;
            }
            if let AtomOp::Insert { max, signed } = atom.op {
                // The carried value's word is the word of its element the register holds.
                op.second = match program.registers.get(atom.register).map(|r| r.role) {
                    Some(crate::program::RegisterRole::Word { word, .. }) => word,
                    _ => 0,
                };
                op.mode = u8::from(max) | u8::from(signed) << 1;
                ops.push(op);
                continue;
            }
            ops.push(op);
            if let Some((register, op)) = atom.hi {
                if let Some(kind) = kind_of(op) {
                    ops.push(Op { kind, register: register as u32, flag_in: 0, flag_out: 0, second: 0, mode: 0 });
                }
            }
        }
        let word_bits = program.profile.register_word_bits;
        let insertion =
            program.insertion.map(|chain| (chain.k as usize, chain.words as usize, program.identity_words.clone()));
        PipelineSim { chains: chains(&ops, word_bits), ops, word_bits, insertion, passes: program.passes.max(1) }
    }

    /// Values an entry's run inserts (see [`PipelineProgram::run_values`]); 1 without an
    /// insertion chain. `state` is the entry's state words.
    fn run_values<W: Word>(&self, state: &[W]) -> usize {
        let Some((k, words, identity)) = &self.insertion else { return 1 };
        (0..*k)
            .rev()
            .find(|e| {
                (0..*words).any(|w| state.get(e * words + w).map(|x| x.get()) != identity.get(e * words + w).copied())
            })
            .map_or(0, |e| e + 1)
    }

    /// Passes the packet whose entries are `data` (`stride` fields each: key, then state
    /// words) takes through the pipeline: the program's passes, times the most values any of
    /// its entries inserts when the program has an insertion chain (the lanes insert in
    /// parallel, each into its own chain). A switch charges them (recirculation).
    pub fn packet_passes<W: Word>(&self, data: &[W], stride: usize) -> u32 {
        if self.insertion.is_none() {
            return self.passes;
        }
        let values = data.chunks_exact(stride.max(1)).map(|entry| self.run_values(&entry[1..])).max().unwrap_or(1);
        self.passes.saturating_mul(u32::try_from(values.max(1)).unwrap_or(u32::MAX))
    }

    /// Runs one entry (`key`, state words `entry`) through the pipeline on `slot`.
    pub fn execute(&self, table: &mut SlotTable<u64>, slot: usize, key: u64, entry: &[u64]) -> Outcome {
        table.prepare(&[slot]);
        let start = table.row_start(slot);
        self.execute_row(table, start, key, entry)
    }

    /// Runs the entries of a packet (`stride` fields each: the key, then the state words) in
    /// order, entry `i` with key `k` on slot `slot(i, k)` (the network simulator maps entry
    /// `i` to lane `i`'s part of the table). Appends the index of every entry that
    /// collides to `collisions` and returns how many merged.
    ///
    /// Same result as calling [`PipelineSim::execute`] on each entry in turn, computed stage
    /// by stage for a batch of entries, as a switch's pipeline does (an entry's key claim in
    /// stage 0 before its state atoms; one entry after another within each atom):
    /// - the rows of the batch are located and their key registers read by the claims first
    ///   (a row's cache miss is not in the way of the next entry's claim; the network
    ///   simulator also asks for the rows ahead, see [`SlotTable::prefetch`]);
    /// - then every chain of atoms runs over the batch's claimed rows in one loop, which
    ///   decides what the chain does once per batch rather than once per entry.
    ///
    /// Claims decide alone whether an entry merges (they read only key registers), and each
    /// chain updates its own registers in entry order, so the rows end as if each entry had
    /// run through every stage before the next.
    pub fn execute_packet<W: Word>(
        &self,
        table: &mut SlotTable<W>,
        data: &[W],
        stride: usize,
        slot: impl Fn(usize, u64) -> usize,
        collisions: &mut Vec<u32>,
    ) -> u64 {
        const BATCH: usize = 16;
        let mut slots = [0usize; BATCH];
        // The claimed entries of the batch: where their row and their entry start.
        let mut claimed = [(0usize, 0usize); BATCH];
        let mut merged = 0;
        for (batch, chunk) in data.chunks(stride * BATCH).enumerate() {
            let entries = chunk.chunks_exact(stride);
            let count = entries.len();
            let mut high = 0;
            for (i, (slot_i, entry)) in slots.iter_mut().zip(entries.clone()).enumerate() {
                *slot_i = slot(batch * BATCH + i, entry[0].get());
                high = high.max(*slot_i + 1);
            }
            // Room first, so that no row moves while the batch holds its position (nothing to
            // do in a dense table that already reaches every slot of the batch).
            if table.index.is_some() || high > table.used {
                table.prepare(&slots[..count]);
            }
            let mut claims = 0;
            for (i, (slot_i, entry)) in slots.iter().zip(entries).enumerate() {
                let start = table.row_start(*slot_i);
                match table.claim(start, entry[0].get()) {
                    Outcome::Merged => {
                        claimed[claims] = (start, i * stride);
                        claims += 1;
                    }
                    Outcome::Collision => collisions.push((batch * BATCH + i) as u32),
                }
            }
            let claimed = &claimed[..claims];
            match &self.chains {
                Some(chains) => {
                    for chain in chains {
                        run_chain_over(*chain, &mut table.rows, claimed, chunk, self.word_bits);
                    }
                }
                None => {
                    for (start, at) in claimed {
                        self.run_atoms(table, *start, &chunk[*at + 1..*at + stride]);
                    }
                }
            }
            merged += claims as u64;
        }
        merged
    }

    /// Runs one entry on the row that starts at `start` in `table.rows`.
    #[inline]
    fn execute_row<W: Word>(&self, table: &mut SlotTable<W>, start: usize, key: u64, entry: &[W]) -> Outcome {
        if table.claim(start, key) == Outcome::Collision {
            return Outcome::Collision;
        }
        match &self.chains {
            Some(chains) => {
                let row = &mut table.rows[start..start + table.registers];
                for chain in chains {
                    run_chain(*chain, row, entry, self.word_bits);
                }
            }
            None => self.run_atoms(table, start, entry),
        }
        Outcome::Merged
    }

    /// Runs the state atoms one by one (the fallback when they do not form chains) on a
    /// claimed row.
    fn run_atoms<W: Word>(&self, table: &mut SlotTable<W>, start: usize, entry: &[W]) {
        if self.insertion.is_some() {
            self.run_insertions(table, start, entry);
            return;
        }
        let w = self.word_bits;
        let m = mask(w);
        let row = &mut table.rows[start..start + table.registers];
        let flags = &mut table.flags;
        for op in &self.ops {
            let register = op.register as usize;
            let r = row[register].get();
            let v = entry[register - 1].get();
            let flag_in = if op.flag_in != 0 { flags[op.flag_in as usize] } else { 0 };
            let (new, flag_out) = match op.kind {
                LATEST => {
                    let second = op.second as usize;
                    let (rs, vs) = (row[second].get(), entry[second - 1].get());
                    let order = |signed: bool, v: u64, r: u64| {
                        if signed {
                            sign_extend(v, w).cmp(&sign_extend(r, w))
                        } else {
                            v.cmp(&r)
                        }
                    };
                    // As the stateful ALU does it in one access (spec.md 15.1, rule 8): two
                    // comparison units on the primary words, `c0` (the entry's wins) and `c1`
                    // (equal); on `c0` both halves take the entry's words, on `c1` the
                    // secondary half keeps the max (min) of its words, a sub-ALU instruction.
                    let keep_larger = op.mode & 1 != 0;
                    let primary = order(op.mode & 2 != 0, v, r);
                    let c0 = if keep_larger { primary.is_gt() } else { primary.is_lt() };
                    let c1 = primary.is_eq();
                    if c0 {
                        row[second] = W::narrow(vs);
                    } else if c1 {
                        let secondary = order(op.mode & 4 != 0, vs, rs);
                        let entry = if keep_larger { secondary.is_gt() } else { secondary.is_lt() };
                        row[second] = W::narrow(if entry { vs } else { rs });
                    }
                    (if c0 { v } else { r }, 0)
                }
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
            row[register] = W::narrow(new);
            if op.flag_out != 0 {
                flags[op.flag_out as usize] = flag_out;
            }
        }
    }
}

impl PipelineSim {
    /// Inserts the values of an entry's run into the insertion chain of a claimed row, one
    /// value per pass (`run_values` of them: the padding after them would change nothing).
    /// Each atom compares and swaps one word of one element with the same word of the
    /// carried value `v`: the most significant word decides (signed for a signed type) and
    /// passes its decision (0 tie, 1 the entry wins, 2 the register wins) to the next word,
    /// which follows it or, on a tie, compares unsigned; when the entry wins, the register
    /// takes `v`'s word and `v` carries the register's old word on to the next element.
    fn run_insertions<W: Word>(&self, table: &mut SlotTable<W>, start: usize, entry: &[W]) {
        let Some((_, words, _)) = &self.insertion else { return };
        let w = self.word_bits;
        let row = &mut table.rows[start..start + table.registers];
        let flags = &mut table.flags;
        let mut carried = [0u64; 64];
        for value in 0..self.run_values(entry) {
            for (word, slot) in carried.iter_mut().enumerate().take(*words) {
                *slot = entry.get(value * words + word).map_or(0, |x| x.get());
            }
            for op in &self.ops {
                let register = op.register as usize;
                let word = op.second as usize;
                let (r, v) = (row[register].get(), carried[word]);
                let above = if op.flag_in != 0 { flags[op.flag_in as usize] } else { 0 };
                let decision = if above != 0 {
                    above
                } else {
                    let ordering = if op.mode & 2 != 0 { sign_extend(v, w).cmp(&sign_extend(r, w)) } else { v.cmp(&r) };
                    let entry_wins = if op.mode & 1 != 0 { ordering.is_gt() } else { ordering.is_lt() };
                    if ordering.is_eq() {
                        0
                    } else if entry_wins {
                        1
                    } else {
                        2
                    }
                };
                if decision == 1 {
                    row[register] = W::narrow(v);
                    carried[word] = r;
                }
                if op.flag_out != 0 {
                    flags[op.flag_out as usize] = decision;
                }
            }
        }
    }
}

/// Runs one chain for a batch of claimed entries, in order: `claimed` holds each entry's
/// row start in `rows` and where the entry starts in `data` (register `r` of a row is
/// `rows[start + r]`, its entry word `data[at + r]`, as the key comes first in both). The
/// chain's [`Form`] says which loop runs it.
#[inline(always)]
fn run_chain_over<W: Word>(chain: Chain, rows: &mut [W], claimed: &[(usize, usize)], data: &[W], w: u32) {
    let first = chain.first as usize;
    match chain.form {
        Form::Add => {
            let m = mask(w);
            each_word(rows, claimed, data, first, |r, v| r.wrapping_add(v) & m);
        }
        Form::Or => each_word(rows, claimed, data, first, |r, v| r | v),
        Form::And => each_word(rows, claimed, data, first, |r, v| r & v),
        Form::MinS32 => each_word(rows, claimed, data, first, |r, v| select((v as i32) < (r as i32), v, r)),
        Form::MaxS32 => each_word(rows, claimed, data, first, |r, v| select((v as i32) > (r as i32), v, r)),
        Form::MinU => each_word(rows, claimed, data, first, |r, v| select(v < r, v, r)),
        Form::MaxU => each_word(rows, claimed, data, first, |r, v| select(v > r, v, r)),
        Form::Add64In32 => {
            for &(start, at) in claimed {
                let (row, entry) = (&mut rows[start + first..start + first + 2], &data[at + first..at + first + 2]);
                let sum = (row[0].get() | row[1].get() << 32).wrapping_add(entry[0].get() | entry[1].get() << 32);
                row[0] = W::narrow(sum & 0xffff_ffff);
                row[1] = W::narrow(sum >> 32);
            }
        }
        Form::General => {
            for &(start, at) in claimed {
                run_chain(chain, &mut rows[start..], &data[at + 1..], w);
            }
        }
    }
}

/// Runs a one-word chain on register `first` of each claimed row: `r = f(r, v)`.
#[inline(always)]
fn each_word<W: Word>(
    rows: &mut [W],
    claimed: &[(usize, usize)],
    data: &[W],
    first: usize,
    f: impl Fn(u64, u64) -> u64,
) {
    for &(start, at) in claimed {
        let (r, v) = (rows[start + first].get(), data[at + first].get());
        rows[start + first] = W::narrow(f(r, v));
    }
}

/// Runs one chain on a row (`row[r]` is register `r`; `entry[r - 1]` its entry word).
#[inline]
fn run_chain<W: Word>(chain: Chain, row: &mut [W], entry: &[W], w: u32) {
    let first = chain.first as usize;
    if chain.words == 1 {
        let (r, v) = (row[first].get(), entry[first - 1].get());
        row[first] = W::narrow(match chain.kind {
            ADD => r.wrapping_add(v) & mask(w),
            OR => r | v,
            AND => r & v,
            MIN_S => select(sign_extend(v, w) < sign_extend(r, w), v, r),
            MAX_S => select(sign_extend(v, w) > sign_extend(r, w), v, r),
            MIN_U => select(v < r, v, r),
            _ => select(v > r, v, r),
        });
        return;
    }
    if chain.words == 2 && chain.kind == ADD {
        // The common wide case (a 64-bit sum in 32-bit words), without loops.
        let sum = (row[first].get() | row[first + 1].get() << w)
            .wrapping_add(entry[first - 1].get() | entry[first].get() << w);
        row[first] = W::narrow(sum & mask(w));
        row[first + 1] = W::narrow((sum >> w) & mask(w));
        return;
    }
    let words = chain.words as usize;
    let bits = w * chain.words;
    if chain.kind == ADD {
        // Registers `first..first + words`, least significant first.
        let (mut r, mut v) = (0u64, 0u64);
        for k in 0..words {
            r |= row[first + k].get() << (k as u32 * w);
            v |= entry[first + k - 1].get() << (k as u32 * w);
        }
        let sum = r.wrapping_add(v);
        for k in 0..words {
            row[first + k] = W::narrow((sum >> (k as u32 * w)) & mask(w));
        }
        return;
    }
    // Registers `first, first - 1, ...`, most significant first.
    let (mut r, mut v) = (0u64, 0u64);
    for k in 0..words {
        let shift = (words - 1 - k) as u32 * w;
        r |= row[first - k].get() << shift;
        v |= entry[first - k - 1].get() << shift;
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
    use naas_stdx::Rng;

    /// A sparse table (slots spread over a large range) behaves as a dense one: the same
    /// entries on slot `s` of a dense table and on slot `s * SPREAD` of a table that turns
    /// sparse part way (its first slots are small) give the same outcomes, rows and
    /// occupied slots, through growth of the rows and of the index, clears and installs.
    #[test]
    fn sparse_tables_behave_as_dense_ones() {
        const SPREAD: usize = 1_000_003;
        let source = include_str!("../../../examples/reduce.naas");
        let (program, _) = naas_lang::frontend(source, &naas_lang::check::CheckOptions::default()).unwrap();
        let compiled = naas_ir::compile(&program, naas_ir::laws::LawOptions::default()).unwrap();
        let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
        let sim = PipelineSim::new(&program);
        let mut rng = Rng::new(17);
        let (mut dense, mut sparse) = (SlotTable::new(&program, 5_000), SlotTable::new(&program, 1 << 32));
        let far = |slot: usize| if slot < 3 { slot } else { slot * SPREAD };
        for round in 0..20_000 {
            let slot = rng.below(3_000);
            let key = rng.below(4_000) as u64;
            let words: Vec<u64> = (0..program.state_words()).map(|_| rng.next_u64() & 0xffff_ffff).collect();
            match round % 97 {
                0 => {
                    dense.clear(slot);
                    sparse.clear(far(slot));
                }
                1 => {
                    dense.install(slot, key, &words);
                    sparse.install(far(slot), key, &words);
                }
                _ => assert_eq!(
                    sim.execute(&mut dense, slot, key, &words),
                    sim.execute(&mut sparse, far(slot), key, &words)
                ),
            }
            if round % 1_000 == 0 || round == 19_999 {
                let occupied: Vec<usize> = dense.occupied().into_iter().map(far).collect();
                let mut sparse_occupied = sparse.occupied();
                sparse_occupied.sort_unstable_by_key(|slot| if *slot < 3 { *slot } else { *slot / SPREAD });
                assert_eq!(occupied, sparse_occupied);
                for slot in 0..3_000 {
                    assert_eq!(dense.resident(slot), sparse.resident(far(slot)));
                }
            }
        }
        assert!(sparse.index.is_some() && dense.index.is_none());
        assert!(dense.occupied().len() > 2_000);
    }

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
