//! The datagram format of aggregation over UDP (spec §18.2): a fixed header that names the
//! aggregation, the job, the link and the sequence number, then (key id, state words) entries,
//! an acknowledgement, an end of stream or a job's set-up. Decoding checks everything before
//! returning anything, so a malformed, truncated or foreign datagram is a [`DecodeError`], never
//! a panic and never a partial merge.
//!
//! Layout (all integers little-endian):
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `NAAU` |
//! | 4 | 1 | version, 1 |
//! | 5 | 1 | kind: 1 data, 2 ack, 3 end of stream, 4 set-up |
//! | 6 | 1 | encoding of the state words: 0 host, 1 switch |
//! | 7 | 1 | reserved, zero |
//! | 8 | 8 | aggregation fingerprint |
//! | 16 | 8 | job id |
//! | 24 | 4 | link id |
//! | 28 | 4 | sequence number (an ack: the cumulative number) |
//! | 32 | 2 | entry count |
//! | 34 | 2 | state words per entry |
//! | 36 | 4 | payload length in bytes |
//! | 40 | 4 | CRC-32 (IEEE) of bytes 0..40 and of the payload |
//! | 44 | ... | payload |
//!
//! A data payload holds `count` entries of a key id (u64) and `words` state words (u64 each);
//! an ack's payload is the 64-bit selective bitmap; end of stream has none; a set-up's is JSON.

/// The magic of a datagram (the shuffle buffers of `naas_runtime::wire` start with `NAAS`).
pub const MAGIC: [u8; 4] = *b"NAAU";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 44;
/// The largest datagram this protocol sends or accepts: the most a UDP datagram over IPv4 can
/// carry.
pub const MAX_DATAGRAM: usize = 65_507;
/// The payload a data datagram is filled to (an entry larger than this travels alone): a
/// datagram then fits a 1,500-byte Ethernet frame with its IP and UDP headers.
pub const TARGET_PAYLOAD: usize = 1_500 - 20 - 8 - HEADER_LEN;
/// The link id of a job's set-up and of its acknowledgement.
pub const SETUP_LINK: u32 = u32::MAX;

/// What a datagram is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Data = 1,
    Ack = 2,
    Eos = 3,
    Setup = 4,
}

/// How the state words of the entries are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The host state (the C layout of `naasc compile --emit header`), in 8-byte words, the
    /// last one zero-padded: merged by the JIT-compiled `merge`.
    Host = 0,
    /// The pipeline program's register words: merged by a switch's pipeline.
    Switch = 1,
}

/// The header fields a receiver checks and a sender fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub encoding: Encoding,
    pub fingerprint: u64,
    pub job: u64,
    pub link: u32,
    pub seq: u32,
    pub count: u16,
    pub words: u16,
}

/// A decoded datagram: its header and its payload, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub header: Header,
    pub payload: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Entry `i`'s key and state words (the decoder checked that `count` entries are there).
    pub fn entries(&self) -> impl Iterator<Item = (u64, impl Iterator<Item = u64> + 'a)> + 'a {
        let stride = 8 * (1 + usize::from(self.header.words));
        self.payload.chunks_exact(stride).map(|entry| {
            let mut words = entry.chunks_exact(8).map(word);
            let key = words.next().unwrap_or(0);
            (key, words)
        })
    }

    /// An ack's selective bitmap (0 when absent).
    pub fn sack(&self) -> u64 {
        if self.payload.len() == 8 {
            word(self.payload)
        } else {
            0
        }
    }
}

fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(w)
}

/// Why a datagram was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a datagram of {len} bytes is shorter than the {HEADER_LEN}-byte header")]
    TooShort { len: usize },
    #[error("a datagram of {len} bytes is longer than the largest, {MAX_DATAGRAM}")]
    TooLong { len: usize },
    #[error("the datagram does not start with the magic `NAAU`")]
    BadMagic,
    #[error("protocol version {0} is not supported (this is {VERSION})")]
    UnsupportedVersion(u8),
    #[error("unknown datagram kind {0}")]
    UnknownKind(u8),
    #[error("unknown state encoding {0}")]
    UnknownEncoding(u8),
    #[error("the reserved header byte is not zero")]
    Reserved,
    #[error("the header declares a {declared}-byte payload, the datagram holds {actual}")]
    LengthMismatch { declared: u32, actual: usize },
    #[error("checksum mismatch (declared {declared:#010x}, computed {computed:#010x}): the datagram is corrupt")]
    Checksum { declared: u32, computed: u32 },
    #[error("{count} entries of {words} state words need {needed} payload bytes, the datagram has {actual}")]
    EntriesMismatch { count: u16, words: u16, needed: usize, actual: usize },
    #[error("an acknowledgement's payload is {0} bytes (the bitmap is 8)")]
    BadAck(usize),
}

/// Serialises a datagram into `out` (cleared first).
pub fn encode(header: &Header, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, header.kind as u8, header.encoding as u8, 0]);
    out.extend_from_slice(&header.fingerprint.to_le_bytes());
    out.extend_from_slice(&header.job.to_le_bytes());
    out.extend_from_slice(&header.link.to_le_bytes());
    out.extend_from_slice(&header.seq.to_le_bytes());
    out.extend_from_slice(&header.count.to_le_bytes());
    out.extend_from_slice(&header.words.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    seal(out);
}

/// Writes the checksum of a datagram whose other fields are in place.
pub fn seal(datagram: &mut [u8]) {
    let crc = checksum(&datagram[..40], &datagram[HEADER_LEN..]);
    datagram[40..44].copy_from_slice(&crc.to_le_bytes());
}

/// Sets the sequence number of an encoded datagram (and re-seals it): a sender numbers a
/// packet when the window lets it go, not when it is filled.
pub fn set_seq(datagram: &mut [u8], seq: u32) {
    datagram[28..32].copy_from_slice(&seq.to_le_bytes());
    seal(datagram);
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Checks a whole datagram and returns its header and payload. Whether it belongs to this
/// job and aggregation is the receiver's check (it knows which it serves).
pub fn decode(buf: &[u8]) -> Result<Datagram<'_>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::TooShort { len: buf.len() });
    }
    if buf.len() > MAX_DATAGRAM {
        return Err(DecodeError::TooLong { len: buf.len() });
    }
    if buf[0..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if buf[4] != VERSION {
        return Err(DecodeError::UnsupportedVersion(buf[4]));
    }
    let kind = match buf[5] {
        1 => Kind::Data,
        2 => Kind::Ack,
        3 => Kind::Eos,
        4 => Kind::Setup,
        other => return Err(DecodeError::UnknownKind(other)),
    };
    let encoding = match buf[6] {
        0 => Encoding::Host,
        1 => Encoding::Switch,
        other => return Err(DecodeError::UnknownEncoding(other)),
    };
    if buf[7] != 0 {
        return Err(DecodeError::Reserved);
    }
    let payload = &buf[HEADER_LEN..];
    let declared = u32_at(buf, 36);
    if declared as usize != payload.len() {
        return Err(DecodeError::LengthMismatch { declared, actual: payload.len() });
    }
    let crc = u32_at(buf, 40);
    let computed = checksum(&buf[..40], payload);
    if crc != computed {
        return Err(DecodeError::Checksum { declared: crc, computed });
    }
    let header = Header {
        kind,
        encoding,
        fingerprint: word(&buf[8..16]),
        job: word(&buf[16..24]),
        link: u32_at(buf, 24),
        seq: u32_at(buf, 28),
        count: u16_at(buf, 32),
        words: u16_at(buf, 34),
    };
    match kind {
        Kind::Data | Kind::Eos => {
            let needed = usize::from(header.count) * 8 * (1 + usize::from(header.words));
            if needed != payload.len() {
                return Err(DecodeError::EntriesMismatch {
                    count: header.count,
                    words: header.words,
                    needed,
                    actual: payload.len(),
                });
            }
        }
        Kind::Ack if payload.len() != 8 => return Err(DecodeError::BadAck(payload.len())),
        Kind::Ack | Kind::Setup => {}
    }
    Ok(Datagram { header, payload })
}

/// Appends one entry (key id, then state words) to a data payload.
pub fn push_entry(payload: &mut Vec<u8>, key: u64, words: &[u64]) {
    payload.extend_from_slice(&key.to_le_bytes());
    for word in words {
        payload.extend_from_slice(&word.to_le_bytes());
    }
}

/// A host state's bytes as 8-byte words, the last one zero-padded.
pub fn bytes_to_words(bytes: &[u8], out: &mut Vec<u64>) {
    out.clear();
    out.extend(bytes.chunks(8).map(|chunk| {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        u64::from_le_bytes(w)
    }));
}

/// The first `len` bytes of `words`.
pub fn words_to_bytes(words: impl Iterator<Item = u64>, len: usize, out: &mut Vec<u8>) {
    out.clear();
    for word in words {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.truncate(len);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use proptest::prelude::*;

    fn header(kind: Kind, count: u16, words: u16) -> Header {
        Header {
            kind,
            encoding: Encoding::Switch,
            fingerprint: 0x1234_5678_9abc_def0,
            job: 77,
            link: 3,
            seq: 9,
            count,
            words,
        }
    }

    fn data(entries: &[(u64, Vec<u64>)], words: u16) -> Vec<u8> {
        let mut payload = Vec::new();
        for (key, state) in entries {
            push_entry(&mut payload, *key, state);
        }
        let mut out = Vec::new();
        encode(&header(Kind::Data, entries.len() as u16, words), &payload, &mut out);
        out
    }

    fn entries_strategy() -> impl Strategy<Value = (u16, Vec<(u64, Vec<u64>)>)> {
        (0u16..6).prop_flat_map(|words| {
            (
                Just(words),
                proptest::collection::vec(
                    (any::<u64>(), proptest::collection::vec(any::<u64>(), words as usize)),
                    0..20,
                ),
            )
        })
    }

    proptest! {
        #![proptest_config(naas_test_support::proptest_config(40))]
        #[test]
        fn data_round_trips((words, entries) in entries_strategy()) {
            let buf = data(&entries, words);
            let datagram = decode(&buf).unwrap();
            prop_assert_eq!(datagram.header, header(Kind::Data, entries.len() as u16, words));
            let decoded: Vec<(u64, Vec<u64>)> = datagram.entries().map(|(k, w)| (k, w.collect())).collect();
            prop_assert_eq!(decoded, entries);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(datagram) = decode(&bytes) {
                // Whatever passed the checks can be read to its end.
                let _ = datagram.entries().map(|(_, w)| w.count()).sum::<usize>();
            }
        }

        #[test]
        fn every_truncation_and_single_byte_corruption_is_rejected(
            (words, entries) in entries_strategy(),
            cut in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let buf = data(&entries, words);
            prop_assert!(decode(&buf[..cut.index(buf.len())]).is_err());
            let mut corrupt = buf.clone();
            let at = at.index(corrupt.len());
            corrupt[at] ^= flip;
            prop_assert!(decode(&corrupt).is_err());
        }
    }

    #[test]
    fn acks_and_setups_round_trip_and_names_what_is_wrong() {
        let mut out = Vec::new();
        encode(&header(Kind::Ack, 0, 0), &0xf0u64.to_le_bytes(), &mut out);
        let ack = decode(&out).unwrap();
        assert_eq!((ack.header.kind, ack.sack()), (Kind::Ack, 0xf0));
        encode(&header(Kind::Ack, 0, 0), &[1, 2], &mut out);
        assert_eq!(decode(&out).unwrap_err(), DecodeError::BadAck(2));
        encode(&header(Kind::Setup, 0, 0), b"{}", &mut out);
        assert_eq!(decode(&out).unwrap().payload, b"{}");
        assert_eq!(decode(&out[..10]).unwrap_err(), DecodeError::TooShort { len: 10 });
        let mut newer = out.clone();
        newer[4] = 2;
        assert_eq!(decode(&newer).unwrap_err(), DecodeError::UnsupportedVersion(2));
        // A lying entry count, re-sealed so the checksum passes.
        let mut lying = data(&[(1, vec![2])], 1);
        lying[32] = 2;
        seal(&mut lying);
        assert!(matches!(decode(&lying).unwrap_err(), DecodeError::EntriesMismatch { count: 2, .. }));
        let mut numbered = data(&[(1, vec![2])], 1);
        set_seq(&mut numbered, 41);
        assert_eq!(decode(&numbered).unwrap().header.seq, 41);
    }

    #[test]
    fn host_states_survive_the_word_encoding() {
        let bytes: Vec<u8> = (1..=13).collect();
        let mut words = Vec::new();
        bytes_to_words(&bytes, &mut words);
        assert_eq!(words.len(), 2);
        let mut back = Vec::new();
        words_to_bytes(words.into_iter(), bytes.len(), &mut back);
        assert_eq!(back, bytes);
    }
}
