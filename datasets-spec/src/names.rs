//! Personal names by value, from public name lists shipped with the crate
//! (`data/names/`, sources and licences in its README): a cell of one to three words, in
//! any case, each a given name or surname from the 1990 US Census tables, or a pinyin
//! name (a Chinese surname's pinyin and given-name syllables, `zhang wei`, `Wang Xiaoming`).
//!
//! A cell alone says little (`Rose`, `Brown`, `May` are words too); the PHI scan counts a
//! column as names only when most of its values are name-like *and* varied, so that
//! categories (`White`, `Black`, ward names) are not names.

use std::collections::HashSet;
use std::sync::LazyLock;

fn list(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

static GIVEN: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| list(include_str!("../data/names/given-names.txt")));
static SURNAMES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| list(include_str!("../data/names/surnames.txt")));
static PINYIN_SURNAMES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| list(include_str!("../data/names/pinyin-surnames.txt")));
static PINYIN_SYLLABLES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| list(include_str!("../data/names/pinyin-syllables.txt")));

/// Whether `word` (lower case) is one or two pinyin syllables (`wei`, `xiaoming`).
fn is_pinyin_given(word: &str) -> bool {
    PINYIN_SYLLABLES.contains(word)
        || (1..word.len()).any(|cut| {
            word.is_char_boundary(cut)
                && PINYIN_SYLLABLES.contains(&word[..cut])
                && PINYIN_SYLLABLES.contains(&word[cut..])
        })
}

/// Whether one word (any case, an apostrophe ignored: `O'Neil`) is a listed given name or
/// surname.
pub fn is_listed_word(word: &str) -> bool {
    let lower: String = word
        .chars()
        .filter(|&c| c != '\'')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    GIVEN.contains(lower.as_str()) || SURNAMES.contains(lower.as_str())
}

/// Whether a cell reads as a personal name by the lists (see the module docs).
pub fn is_listed_name(cell: &str) -> bool {
    let cell = cell.trim();
    if !(2..=40).contains(&cell.len()) || !cell.is_ascii() {
        return false;
    }
    let lower = cell.to_ascii_lowercase();
    let all: Vec<String> = lower
        .split([' ', ',', '.', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('\'', ""))
        .collect();
    // Initials (`Robert J. Brown`) say nothing either way.
    let initials = all.iter().filter(|w| w.len() == 1).count();
    let words: Vec<String> = all.into_iter().filter(|w| w.len() > 1).collect();
    if !(1..=3).contains(&words.len())
        || initials > 1
        || !words
            .iter()
            .all(|w| w.len() >= 2 && w.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return false;
    }
    let listed = |w: &String| GIVEN.contains(w.as_str()) || SURNAMES.contains(w.as_str());
    if words.iter().all(listed) {
        return true;
    }
    // `zhang wei`, `Wang Xiao-Ming` (the hyphen split it into syllables), `Xiaoming Li`.
    words.len() >= 2
        && words.iter().any(|w| PINYIN_SURNAMES.contains(w.as_str()))
        && words
            .iter()
            .all(|w| PINYIN_SURNAMES.contains(w.as_str()) || is_pinyin_given(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_case_and_form() {
        for name in [
            "mary",
            "SMITH",
            "Garcia",
            "john smith",
            "Smith, John",
            "o'neil",
            "zhang wei",
            "Wang Xiaoming",
            "Li Xiao-Ming",
            "chan tai man",
            "Robert J. Brown",
        ] {
            assert!(is_listed_name(name), "{name}");
        }
        for other in [
            "aspirin",
            "Heart Failure",
            "mmol/L",
            "I50.9",
            "warfarin sodium",
            "negative",
            "positive",
            "a",
            "NSTEMI",
            "hypertension",
            "张伟",
            "x1",
        ] {
            assert!(!is_listed_name(other), "{other}");
        }
    }

    #[test]
    fn the_lists_are_loaded() {
        assert!(GIVEN.len() > 5000 && SURNAMES.len() == 5000);
        assert!(PINYIN_SURNAMES.contains("zeng") && PINYIN_SYLLABLES.len() > 400);
    }
}
