//! Evidence codes: a leaf hash in a form a person can read aloud, type or paste.
//!
//! The 32 bytes of the leaf hash are written in Crockford's base32 (digits and capital
//! letters without I, L, O, U), 52 characters, then one check character computed with
//! the Luhn mod 32 algorithm over the 52 symbols, and grouped by five with `-`:
//!
//! ```text
//! 5QH2K-8W0ZP-...-R4T
//! ```
//!
//! Reading is forgiving: lower case, spaces, missing or extra dashes are accepted, and
//! the look-alikes `I`/`L` read as `1` and `O` as `0`. The check character catches every
//! single mistyped character and most swaps of two neighbours before a lookup is made.

use std::fmt;
use std::str::FromStr;

use data_encoding::{Encoding, Specification};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Hash;

const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DATA_SYMBOLS: usize = 52;
const GROUP: usize = 5;

/// A leaf hash written for people (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvidenceCode(Hash);

/// A text that is not an evidence code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceCodeError {
    #[error("evidence code `{code}` has {found} characters, expected 53 (without dashes)")]
    Length { code: String, found: usize },
    #[error("evidence code `{code}` contains `{character}`, which is not a base32 character")]
    Character { code: String, character: char },
    #[error("evidence code `{code}` fails its check character: a character is mistyped")]
    Check { code: String },
}

fn crockford() -> Encoding {
    let mut spec = Specification::new();
    spec.symbols.push_str(ALPHABET);
    spec.translate.from.push_str("abcdefghjkmnpqrstvwxyzILOilo");
    spec.translate.to.push_str("ABCDEFGHJKMNPQRSTVWXYZ110110");
    // Only `spec.symbols` and `translate` are set, which the crate documents as valid.
    spec.encoding()
        .unwrap_or_else(|_| unreachable!("the Crockford specification is valid"))
}

fn symbol_value(symbol: u8) -> Option<u32> {
    ALPHABET.bytes().position(|s| s == symbol).map(|p| p as u32)
}

/// The Luhn mod N check symbol (N = 32) for `symbols`, all upper-case alphabet members.
fn check_symbol(symbols: &[u8]) -> u8 {
    let mut sum = 0u32;
    let mut factor = 2u32;
    for &symbol in symbols.iter().rev() {
        let addend = factor * symbol_value(symbol).unwrap_or(0);
        sum += addend / 32 + addend % 32;
        factor = if factor == 2 { 1 } else { 2 };
    }
    let check = (32 - sum % 32) % 32;
    ALPHABET.as_bytes()[check as usize]
}

impl EvidenceCode {
    pub fn from_leaf_hash(hash: Hash) -> EvidenceCode {
        EvidenceCode(hash)
    }

    pub fn leaf_hash(&self) -> Hash {
        self.0
    }

    /// Reads a code, forgiving case, dashes, spaces and look-alike letters.
    pub fn parse(text: &str) -> Result<EvidenceCode, EvidenceCodeError> {
        let mut symbols = Vec::with_capacity(DATA_SYMBOLS + 1);
        for character in text.chars() {
            if character == '-' || character.is_whitespace() {
                continue;
            }
            let upper = match character.to_ascii_uppercase() {
                'I' | 'L' => '1',
                'O' => '0',
                other => other,
            };
            if !upper.is_ascii() || symbol_value(upper as u8).is_none() {
                return Err(EvidenceCodeError::Character {
                    code: text.to_owned(),
                    character,
                });
            }
            symbols.push(upper as u8);
        }
        if symbols.len() != DATA_SYMBOLS + 1 {
            return Err(EvidenceCodeError::Length {
                code: text.to_owned(),
                found: symbols.len(),
            });
        }
        let (data, check) = symbols.split_at(DATA_SYMBOLS);
        if check_symbol(data) != check[0] {
            return Err(EvidenceCodeError::Check {
                code: text.to_owned(),
            });
        }
        // 52 symbols carry 260 bits; the decoder refuses non-zero padding bits, so a code
        // whose check passes by accident but whose last symbol is impossible is refused.
        let bytes = crockford()
            .decode(data)
            .map_err(|_| EvidenceCodeError::Check {
                code: text.to_owned(),
            })?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| EvidenceCodeError::Length {
            code: text.to_owned(),
            found: DATA_SYMBOLS,
        })?;
        Ok(EvidenceCode(Hash(hash)))
    }
}

impl fmt::Display for EvidenceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut symbols = crockford().encode(&self.0.0).into_bytes();
        symbols.push(check_symbol(&symbols));
        for (number, group) in symbols.chunks(GROUP).enumerate() {
            if number > 0 {
                f.write_str("-")?;
            }
            // Alphabet symbols are ASCII.
            f.write_str(std::str::from_utf8(group).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for EvidenceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EvidenceCode({self})")
    }
}

impl FromStr for EvidenceCode {
    type Err = EvidenceCodeError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EvidenceCode::parse(text)
    }
}

impl Serialize for EvidenceCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EvidenceCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        EvidenceCode::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code_of(seed: &[u8]) -> EvidenceCode {
        EvidenceCode::from_leaf_hash(Hash::of_leaf(seed))
    }

    #[test]
    fn layout_is_eleven_groups() {
        let text = EvidenceCode::from_leaf_hash(Hash([0; 32])).to_string();
        assert_eq!(
            text,
            "00000-00000-00000-00000-00000-00000-00000-00000-00000-00000-000"
        );
        let text = code_of(b"a").to_string();
        assert_eq!(text.len(), 53 + 10);
        assert!(text.split('-').take(10).all(|group| group.len() == 5));
    }

    #[test]
    fn reading_forgives_case_spacing_and_look_alikes() {
        let code = code_of(b"receipt");
        let text = code.to_string();
        assert_eq!(EvidenceCode::parse(&text).unwrap(), code);
        assert_eq!(EvidenceCode::parse(&text.to_lowercase()).unwrap(), code);
        assert_eq!(EvidenceCode::parse(&text.replace('-', " ")).unwrap(), code);
        assert_eq!(EvidenceCode::parse(&text.replace('-', "")).unwrap(), code);
        let look_alike = text.replace('1', "l").replace('0', "O");
        assert_eq!(EvidenceCode::parse(&look_alike).unwrap(), code);
        assert!(matches!(
            EvidenceCode::parse("ABC"),
            Err(EvidenceCodeError::Length { .. })
        ));
        assert!(matches!(
            EvidenceCode::parse(&text.replacen(&text[0..1], "U", 1)),
            Err(EvidenceCodeError::Character { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn round_trips(bytes in any::<[u8; 32]>()) {
            let code = EvidenceCode::from_leaf_hash(Hash(bytes));
            prop_assert_eq!(EvidenceCode::parse(&code.to_string()).unwrap(), code);
        }

        #[test]
        fn every_single_substitution_is_caught(bytes in any::<[u8; 32]>(), position in 0usize..53, replacement in 0usize..32) {
            let text: Vec<u8> = EvidenceCode::from_leaf_hash(Hash(bytes))
                .to_string()
                .bytes()
                .filter(|&b| b != b'-')
                .collect();
            let new_symbol = ALPHABET.as_bytes()[replacement];
            prop_assume!(text[position] != new_symbol);
            let mut typo = text.clone();
            typo[position] = new_symbol;
            let typo = String::from_utf8(typo).unwrap();
            prop_assert!(EvidenceCode::parse(&typo).is_err(), "{} accepted", typo);
        }

        #[test]
        fn neighbour_swaps_of_distinct_symbols_are_caught(bytes in any::<[u8; 32]>(), position in 0usize..52) {
            let mut text: Vec<u8> = EvidenceCode::from_leaf_hash(Hash(bytes))
                .to_string()
                .bytes()
                .filter(|&b| b != b'-')
                .collect();
            let (a, b) = (symbol_value(text[position]).unwrap(), symbol_value(text[position + 1]).unwrap());
            // Luhn mod N misses exactly the swaps of a pair whose doubled digit sums agree;
            // for N = 32 that is the pair (0, 31) in either order.
            prop_assume!(a != b && !(a.min(b) == 0 && a.max(b) == 31));
            text.swap(position, position + 1);
            let swapped = String::from_utf8(text).unwrap();
            prop_assert!(EvidenceCode::parse(&swapped).is_err(), "{} accepted", swapped);
        }
    }
}
