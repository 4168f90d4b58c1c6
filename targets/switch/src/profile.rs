//! Target profiles: the resources of the modelled switch pipeline (stages, stateful ALUs,
//! register words and memory, packet budget), read from TOML. The built-in default is
//! `profiles/tofino1.toml`, whose comments cite the public source of every number.

use serde::{Deserialize, Serialize};

/// The text of the built-in Tofino 1 profile.
pub const TOFINO1_TOML: &str = include_str!("../profiles/tofino1.toml");

/// The text of the built-in Tofino 2 profile.
pub const TOFINO2_TOML: &str = include_str!("../profiles/tofino2.toml");

/// Why a profile was rejected. Both render as the CLI prints them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The text is not TOML, or has a missing, mistyped or unknown key (the TOML parser's
    /// message, which names the key).
    #[error("invalid target profile: {0}")]
    Syntax(String),
    /// The numbers do not describe a machine the lowering can target.
    #[error("invalid target profile `{profile}`: {message}")]
    Invalid {
        /// The profile's `name`.
        profile: String,
        /// Which field is out of range, and its allowed range.
        message: String,
    },
}

/// The machine a pipeline program is lowered for and checked against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetProfile {
    /// A name for reports.
    pub name: String,
    /// Match-action stages a packet passes through, in order.
    pub stages: u32,
    /// Stateful ALUs per stage; each reads, modifies and writes one register array once per
    /// packet entry.
    pub stateful_alus_per_stage: u32,
    /// Width of a register word: 8, 16, 32 or 64.
    pub register_word_bits: u32,
    /// Register SRAM available in each stage.
    pub register_sram_bytes_per_stage: u64,
    /// Data fields a packet may carry into the pipeline.
    pub max_packet_fields: u32,
    /// Width of one packet field: 8, 16, 32 or 64.
    pub packet_field_bits: u32,
    /// Header bytes of every packet (Ethernet, IP, UDP, aggregation header).
    pub packet_header_bytes: u32,
    /// Width of a key identifier; at most `register_word_bits` (one register holds a key).
    pub key_bits: u32,
    /// Whether a stateful ALU can update a pair of words of one register entry in one access
    /// (two ALU halves sharing one predicate; spec.md section 15.1 says which pairs).
    pub register_pair: bool,
    /// Bits of the packet header vector: everything a pass through the pipeline can carry.
    /// The packet's headers (`packet_header_bytes`) take their share; the rest bounds the
    /// entry fields one pass brings into the pipeline.
    pub phv_bits_per_pass: u32,
}

impl Default for TargetProfile {
    /// The Tofino 1 profile: the values of `profiles/tofino1.toml` (whose comments cite their
    /// sources), written out so that the default needs no parsing and cannot fail; a unit test
    /// checks that the file parses to exactly these values.
    fn default() -> TargetProfile {
        TargetProfile {
            name: "tofino1".to_string(),
            stages: 12,
            stateful_alus_per_stage: 4,
            register_word_bits: 32,
            register_sram_bytes_per_stage: 1_310_720,
            max_packet_fields: 364,
            packet_field_bits: 32,
            packet_header_bytes: 58,
            key_bits: 32,
            register_pair: true,
            phv_bits_per_pass: 4096,
        }
    }
}

/// The most fields a profile's packets may carry: 16 KiB of 32-bit fields, more than any
/// Ethernet jumbo frame (the simulator keeps a packet-sized buffer per packet in flight).
pub const MAX_PACKET_FIELDS: u32 = 4_096;

impl TargetProfile {
    /// A built-in profile by name (`tofino1`, `tofino2`).
    pub fn builtin(name: &str) -> Option<TargetProfile> {
        let text = match name {
            "tofino1" => TOFINO1_TOML,
            "tofino2" => TOFINO2_TOML,
            _ => return None,
        };
        TargetProfile::from_toml(text).ok()
    }

    /// Parses and validates a profile. Errors name the offending key.
    pub fn from_toml(text: &str) -> Result<TargetProfile, ProfileError> {
        let profile: TargetProfile = toml::from_str(text).map_err(|error| ProfileError::Syntax(error.to_string()))?;
        profile.validate()?;
        Ok(profile)
    }

    /// Checks that the numbers describe a machine the lowering can target (the network
    /// simulator checks them again, as a profile's fields are public).
    pub fn validate(&self) -> Result<(), ProfileError> {
        let widths = [8, 16, 32, 64];
        let fail = |message: String| Err(ProfileError::Invalid { profile: self.name.clone(), message });
        if self.stages == 0 || self.stages > 1024 {
            return fail(format!("`stages` must be between 1 and 1024, not {}", self.stages));
        }
        if self.stateful_alus_per_stage == 0 || self.stateful_alus_per_stage > 1024 {
            return fail(format!(
                "`stateful_alus_per_stage` must be between 1 and 1024, not {}",
                self.stateful_alus_per_stage
            ));
        }
        if !widths.contains(&self.register_word_bits) {
            return fail(format!("`register_word_bits` must be 8, 16, 32 or 64, not {}", self.register_word_bits));
        }
        if !widths.contains(&self.packet_field_bits) {
            return fail(format!("`packet_field_bits` must be 8, 16, 32 or 64, not {}", self.packet_field_bits));
        }
        if self.key_bits == 0 || self.key_bits > self.register_word_bits {
            return fail(format!(
                "`key_bits` must be between 1 and `register_word_bits` ({}), not {}",
                self.register_word_bits, self.key_bits
            ));
        }
        if self.max_packet_fields < 2 || self.max_packet_fields > MAX_PACKET_FIELDS {
            return fail(format!(
                "`max_packet_fields` must be between 2 and {MAX_PACKET_FIELDS}, not {}",
                self.max_packet_fields
            ));
        }
        let header_bits = u64::from(self.packet_header_bytes) * 8;
        let one_entry = u64::from(self.fields_per_key() + self.fields_per_word()) * u64::from(self.packet_field_bits);
        if u64::from(self.phv_bits_per_pass) < header_bits + one_entry {
            return fail(format!(
                "`phv_bits_per_pass` ({}) must hold the headers ({header_bits} bits) and a key with one word ({one_entry} bits)",
                self.phv_bits_per_pass
            ));
        }
        if self.register_sram_bytes_per_stage < u64::from(self.register_word_bits / 8) {
            return fail("`register_sram_bytes_per_stage` holds not even one register word".to_string());
        }
        Ok(())
    }

    /// Bytes of one register word.
    pub fn word_bytes(&self) -> u64 {
        u64::from(self.register_word_bits / 8)
    }

    /// Packet fields one register word occupies.
    pub fn fields_per_word(&self) -> u32 {
        self.register_word_bits.div_ceil(self.packet_field_bits)
    }

    /// Packet fields a key occupies.
    pub fn fields_per_key(&self) -> u32 {
        self.key_bits.div_ceil(self.packet_field_bits)
    }

    /// Bits of the packet header vector left for entry fields in one pass: the PHV less the
    /// packet's headers (which the parser also places in it).
    pub fn entry_phv_bits(&self) -> u64 {
        u64::from(self.phv_bits_per_pass).saturating_sub(u64::from(self.packet_header_bytes) * 8)
    }

    /// Register words a stateful ALU updates in one access: 2 with register pairs, else 1.
    pub fn words_per_alu(&self) -> u32 {
        if self.register_pair {
            2
        } else {
            1
        }
    }

    /// The largest key identifier (keys are stored plus one, zero marks an empty slot).
    pub fn max_key(&self) -> u64 {
        let all = if self.key_bits >= 64 { u64::MAX } else { (1u64 << self.key_bits) - 1 };
        all - 1
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn builtin_profile_parses_and_is_the_default() {
        let parsed = TargetProfile::from_toml(TOFINO1_TOML).unwrap();
        assert_eq!(parsed, TargetProfile::default());
        assert_eq!(parsed.stages, 12);
        assert_eq!(parsed.register_sram_bytes_per_stage, 1_310_720);
        let tofino2 = TargetProfile::from_toml(TOFINO2_TOML).unwrap();
        assert_eq!(tofino2.stages, 20);
        assert_eq!(TargetProfile::builtin("tofino2"), Some(tofino2));
        assert_eq!(TargetProfile::builtin("tofino1"), Some(parsed));
        assert_eq!(TargetProfile::builtin("tofino9"), None);
    }

    #[test]
    fn a_phv_without_room_for_an_entry_is_rejected() {
        let error =
            TargetProfile::from_toml(&TOFINO1_TOML.replace("phv_bits_per_pass = 4096", "phv_bits_per_pass = 480"))
                .unwrap_err()
                .to_string();
        assert!(error.contains("`phv_bits_per_pass` (480) must hold the headers (464 bits)"), "{error}");
    }

    #[test]
    fn bad_profiles_are_clear_errors() {
        let error = TargetProfile::from_toml("name = 3").unwrap_err().to_string();
        assert!(error.starts_with("invalid target profile:"), "{error}");
        let error =
            TargetProfile::from_toml(&TOFINO1_TOML.replace("stages = 12", "stages = 0")).unwrap_err().to_string();
        assert!(error.contains("`stages` must be between 1 and 1024, not 0"), "{error}");
        let error =
            TargetProfile::from_toml(&TOFINO1_TOML.replace("register_word_bits = 32", "register_word_bits = 24"))
                .unwrap_err()
                .to_string();
        assert!(error.contains("`register_word_bits` must be 8, 16, 32 or 64, not 24"), "{error}");
        let error = TargetProfile::from_toml(&format!("{TOFINO1_TOML}\nbogus = 1\n")).unwrap_err().to_string();
        assert!(error.contains("unknown field `bogus`"), "{error}");
        let error =
            TargetProfile::from_toml(&TOFINO1_TOML.replace("key_bits = 32", "key_bits = 40")).unwrap_err().to_string();
        assert!(error.contains("`key_bits`"), "{error}");
        let error =
            TargetProfile::from_toml(&TOFINO1_TOML.replace("max_packet_fields = 364", "max_packet_fields = 5000"))
                .unwrap_err()
                .to_string();
        assert!(error.contains("`max_packet_fields` must be between 2 and 4096"), "{error}");
    }
}
