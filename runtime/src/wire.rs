//! The wire format of a shuffle: one buffer carries (key, partial state) entries of one
//! aggregation. It is versioned, names the aggregation's state layout, and is length- and
//! checksum-checked, so a malformed, truncated or foreign buffer is an error before any
//! state is merged.
//!
//! Layout (all integers little-endian):
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `NAAS` |
//! | 4 | 1 | version, 1 |
//! | 5 | 3 | reserved, zero |
//! | 8 | 8 | aggregation fingerprint ([`crate::Aggregation::fingerprint`]) |
//! | 16 | 4 | state size in bytes |
//! | 20 | 4 | entry count |
//! | 24 | 4 | payload length in bytes |
//! | 28 | 4 | CRC-32 (IEEE) of bytes 0..28 and of the payload |
//! | 32 | ... | payload: per entry, key length (u32), key bytes, state bytes |
//!
//! States are the C layout of `naasc compile --emit header` on a little-endian host.

pub const MAGIC: [u8; 4] = *b"NAAS";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 32;
/// The longest key a buffer may carry.
pub const MAX_KEY_LEN: usize = 1 << 20;

/// Why a buffer was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    TooShort {
        len: usize,
    },
    BadMagic,
    UnsupportedVersion(u8),
    ReservedBits,
    WrongAggregation {
        expected: u64,
        found: u64,
    },
    WrongStateSize {
        expected: u32,
        found: u32,
    },
    LengthMismatch {
        declared: u64,
        actual: u64,
    },
    Checksum {
        declared: u32,
        computed: u32,
    },
    /// Entry `entry` runs past the end of the payload.
    Truncated {
        entry: u32,
    },
    KeyTooLong {
        entry: u32,
        len: u64,
    },
    /// The payload holds bytes after the declared entries.
    TrailingBytes {
        count: u64,
    },
    /// A buffer would exceed the format's 4 GiB payload or 4 G entries.
    TooLarge,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::TooShort { len } => {
                write!(f, "buffer of {len} bytes is shorter than the {HEADER_LEN}-byte header")
            }
            WireError::BadMagic => write!(f, "buffer does not start with the magic `NAAS`"),
            WireError::UnsupportedVersion(v) => {
                write!(f, "wire format version {v} is not supported (this is {VERSION})")
            }
            WireError::ReservedBits => write!(f, "reserved header bytes are not zero"),
            WireError::WrongAggregation { expected, found } => write!(
                f,
                "buffer holds states of another aggregation (fingerprint {found:#018x}, expected {expected:#018x})"
            ),
            WireError::WrongStateSize { expected, found } => {
                write!(f, "buffer declares {found}-byte states, this aggregation's are {expected} bytes")
            }
            WireError::LengthMismatch { declared, actual } => {
                write!(f, "header declares a {declared}-byte payload, the buffer holds {actual}")
            }
            WireError::Checksum { declared, computed } => {
                write!(
                    f,
                    "checksum mismatch (declared {declared:#010x}, computed {computed:#010x}): the buffer is corrupt"
                )
            }
            WireError::Truncated { entry } => write!(f, "entry {entry} runs past the end of the payload"),
            WireError::KeyTooLong { entry, len } => {
                write!(f, "entry {entry} declares a {len}-byte key (at most {MAX_KEY_LEN})")
            }
            WireError::TrailingBytes { count } => write!(f, "{count} bytes follow the last declared entry"),
            WireError::TooLarge => write!(f, "a buffer holds at most 4 GiB of payload and 4 G entries"),
        }
    }
}

impl std::error::Error for WireError {}

/// Builds one buffer.
#[derive(Clone, Debug)]
pub struct WireWriter {
    buf: Vec<u8>,
    count: u32,
    state_size: u32,
}

impl WireWriter {
    pub fn new(fingerprint: u64, state_size: usize) -> WireWriter {
        let mut buf = Vec::with_capacity(HEADER_LEN + 1024);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&[VERSION, 0, 0, 0]);
        buf.extend_from_slice(&fingerprint.to_le_bytes());
        let state_size = u32::try_from(state_size).unwrap_or(u32::MAX);
        buf.extend_from_slice(&state_size.to_le_bytes());
        buf.resize(HEADER_LEN, 0);
        WireWriter { buf, count: 0, state_size }
    }

    /// Makes room for `entries` more entries whose keys take `key_bytes` bytes in all.
    pub fn reserve(&mut self, entries: usize, key_bytes: usize) {
        self.buf.reserve(entries * (4 + self.state_size as usize) + key_bytes);
    }

    /// Appends an entry; `state` must be one whole state.
    pub fn push(&mut self, key: &[u8], state: &[u8]) -> Result<(), WireError> {
        if state.len() != self.state_size as usize {
            return Err(WireError::WrongStateSize { expected: self.state_size, found: state.len() as u32 });
        }
        if key.len() > MAX_KEY_LEN {
            return Err(WireError::KeyTooLong { entry: self.count, len: key.len() as u64 });
        }
        let payload = self.buf.len() - HEADER_LEN + 4 + key.len() + state.len();
        if u32::try_from(payload).is_err() || self.count == u32::MAX {
            return Err(WireError::TooLarge);
        }
        self.buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(state);
        self.count += 1;
        Ok(())
    }

    pub fn entries(&self) -> u32 {
        self.count
    }

    /// Bytes the buffer will have.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Seals the header (count, length, checksum) and returns the buffer.
    pub fn finish(mut self) -> Vec<u8> {
        let payload = (self.buf.len() - HEADER_LEN) as u32;
        self.buf[20..24].copy_from_slice(&self.count.to_le_bytes());
        self.buf[24..28].copy_from_slice(&payload.to_le_bytes());
        let crc = checksum(&self.buf[..28], &self.buf[HEADER_LEN..]);
        self.buf[28..32].copy_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(word)
}

/// A buffer's (key, state) entries, borrowed from it.
pub type Entries<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The entries a buffer says it holds, bounded by what its length can hold: a size hint read
/// before the buffer is validated (by [`decode`]), never trusted for anything else.
pub fn entry_count_hint(buf: &[u8], state_size: usize) -> usize {
    if buf.len() < HEADER_LEN {
        return 0;
    }
    (u32_at(buf, 20) as usize).min((buf.len() - HEADER_LEN) / (4 + state_size))
}

/// Validates a whole buffer for the aggregation with this fingerprint and state size, and
/// returns its entries. Nothing is returned unless every check passes.
pub fn decode(buf: &[u8], fingerprint: u64, state_size: usize) -> Result<Entries<'_>, WireError> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::TooShort { len: buf.len() });
    }
    if buf[0..4] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if buf[4] != VERSION {
        return Err(WireError::UnsupportedVersion(buf[4]));
    }
    if buf[5..8] != [0, 0, 0] {
        return Err(WireError::ReservedBits);
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&buf[8..16]);
    let found = u64::from_le_bytes(word);
    if found != fingerprint {
        return Err(WireError::WrongAggregation { expected: fingerprint, found });
    }
    let declared_size = u32_at(buf, 16);
    if declared_size as usize != state_size {
        return Err(WireError::WrongStateSize { expected: state_size as u32, found: declared_size });
    }
    let count = u32_at(buf, 20);
    let declared = u32_at(buf, 24);
    let payload = &buf[HEADER_LEN..];
    if declared as usize != payload.len() {
        return Err(WireError::LengthMismatch { declared: u64::from(declared), actual: payload.len() as u64 });
    }
    let crc = u32_at(buf, 28);
    let computed = checksum(&buf[..28], payload);
    if crc != computed {
        return Err(WireError::Checksum { declared: crc, computed });
    }
    // Every entry takes at least 4 + state_size bytes: bound the allocation by the payload.
    let mut entries = Vec::with_capacity((count as usize).min(payload.len() / (4 + state_size)));
    let mut at = 0usize;
    for entry in 0..count {
        if payload.len() - at < 4 {
            return Err(WireError::Truncated { entry });
        }
        let key_len = u32_at(payload, at) as usize;
        if key_len > MAX_KEY_LEN {
            return Err(WireError::KeyTooLong { entry, len: key_len as u64 });
        }
        at += 4;
        if payload.len() - at < key_len + state_size {
            return Err(WireError::Truncated { entry });
        }
        let key = &payload[at..at + key_len];
        let state = &payload[at + key_len..at + key_len + state_size];
        at += key_len + state_size;
        entries.push((key, state));
    }
    if at != payload.len() {
        return Err(WireError::TrailingBytes { count: (payload.len() - at) as u64 });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// The size hint is the header's count when the buffer is whole, and never more than the
    /// buffer's length can hold, whatever the header says.
    #[test]
    fn the_entry_count_hint_is_bounded_by_the_length() {
        let mut writer = WireWriter::new(7, 8);
        for i in 0..100u64 {
            writer.push(format!("k{i}").as_bytes(), &i.to_le_bytes()).unwrap();
        }
        let buf = writer.finish();
        assert_eq!(entry_count_hint(&buf, 8), 100);
        assert_eq!(entry_count_hint(&buf[..HEADER_LEN - 1], 8), 0);
        let mut lying = buf[..HEADER_LEN + 24].to_vec();
        lying[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(entry_count_hint(&lying, 8), 2);
    }
    use proptest::prelude::*;

    const FP: u64 = 0x1234_5678_9abc_def0;

    fn buffer(entries: &[(Vec<u8>, Vec<u8>)], size: usize) -> Vec<u8> {
        let mut writer = WireWriter::new(FP, size);
        for (key, state) in entries {
            writer.push(key, state).unwrap();
        }
        writer.finish()
    }

    type Owned = Vec<(Vec<u8>, Vec<u8>)>;

    fn entries_strategy() -> impl Strategy<Value = (usize, Owned)> {
        (1usize..40).prop_flat_map(|size| {
            (
                Just(size),
                proptest::collection::vec(
                    (proptest::collection::vec(any::<u8>(), 0..20), proptest::collection::vec(any::<u8>(), size)),
                    0..12,
                ),
            )
        })
    }

    proptest! {
        // Cheap cases: proptest's default count when `PROPTEST_CASES` is unset, and about as
        // many under CI's 10,000.
        #![proptest_config(naas_test_support::proptest_config(40))]
        #[test]
        fn round_trips((size, entries) in entries_strategy()) {
            let buf = buffer(&entries, size);
            let decoded = decode(&buf, FP, size).unwrap();
            let decoded: Vec<(Vec<u8>, Vec<u8>)> = decoded.iter().map(|(k, s)| (k.to_vec(), s.to_vec())).collect();
            prop_assert_eq!(decoded, entries);
        }

        #[test]
        fn every_truncation_is_rejected((size, entries) in entries_strategy(), cut in any::<prop::sample::Index>()) {
            let buf = buffer(&entries, size);
            let cut = cut.index(buf.len());
            prop_assert!(decode(&buf[..cut], FP, size).is_err());
        }

        #[test]
        fn every_single_byte_corruption_is_rejected(
            (size, entries) in entries_strategy(),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut buf = buffer(&entries, size);
            let at = at.index(buf.len());
            buf[at] ^= flip;
            prop_assert!(decode(&buf, FP, size).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), size in 1usize..40) {
            let _ = decode(&bytes, FP, size);
        }
    }

    #[test]
    fn names_what_is_wrong() {
        let buf = buffer(&[(b"k".to_vec(), vec![1, 2, 3, 4])], 4);
        assert_eq!(decode(&buf, FP ^ 1, 4).unwrap_err(), WireError::WrongAggregation { expected: FP ^ 1, found: FP });
        assert_eq!(decode(&buf, FP, 8).unwrap_err(), WireError::WrongStateSize { expected: 8, found: 4 });
        assert_eq!(decode(&buf[..10], FP, 4).unwrap_err(), WireError::TooShort { len: 10 });
        let mut newer = buf.clone();
        newer[4] = 2;
        assert_eq!(decode(&newer, FP, 4).unwrap_err(), WireError::UnsupportedVersion(2));
        assert_eq!(decode(&buf, FP, 4).unwrap(), vec![(&b"k"[..], &[1u8, 2, 3, 4][..])]);
    }

    #[test]
    fn a_lying_entry_count_is_caught_even_with_a_valid_checksum() {
        // Re-seal a buffer whose count says 2 but whose payload holds 1 entry.
        let mut buf = buffer(&[(b"k".to_vec(), vec![9; 4])], 4);
        buf[20..24].copy_from_slice(&2u32.to_le_bytes());
        let crc = checksum(&buf[..28], &buf[HEADER_LEN..]);
        buf[28..32].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&buf, FP, 4).unwrap_err(), WireError::Truncated { entry: 1 });
        buf[20..24].copy_from_slice(&0u32.to_le_bytes());
        let crc = checksum(&buf[..28], &buf[HEADER_LEN..]);
        buf[28..32].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&buf, FP, 4).unwrap_err(), WireError::TrailingBytes { count: 9 });
    }
}
