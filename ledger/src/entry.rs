//! Ledger entries: typed events and their canonical bytes.
//!
//! An entry says *who* ([`Entry::actor`]) did *what* ([`Event`]) *when* ([`Entry::time`]),
//! naming the objects involved by identifier and their contents by SHA-256 digest. It
//! never holds raw data: a dataset is its manifest and content digests, a score is the
//! released (already noised) value with the ε it cost.
//!
//! # Canonical encoding, version 1
//!
//! The leaf of the Merkle tree is the entry's canonical text, UTF-8, one field per line:
//!
//! ```text
//! medarena-ledger-entry/v1
//! index 7
//! time 2026-11-01T09:30:00.250Z
//! actor hospital:st-marys
//! event dataset.registered
//! dataset ds-cardio-2026
//! hospital st-marys
//! manifest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! content sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752
//! ```
//!
//! Rules, all checked when decoding (decode then re-encode gives the same bytes, or the
//! bytes are refused):
//!
//! - The first line is exactly `medarena-ledger-entry/v1`. Every line is `name SP value`
//!   and ends with a single LF (also the last one); there are no empty lines, no CR, no
//!   other control characters, and no line is repeated.
//! - Then, in this order: `index` (the leaf index, decimal without leading zeros),
//!   `time` (RFC 3339 UTC with exactly three fractional digits and `Z`), `actor` (an
//!   [`Id`]), `event` (the event kind, e.g. `run.finished`), then the fields of that kind
//!   in the order of the table below.
//! - Value types: [`Id`] = 1 to 128 characters of `A-Z a-z 0-9 . _ : @ / + -`;
//!   [`Digest`] = `sha256:` and 64 lower-case hex digits; integers are decimal without
//!   sign or leading zeros; [`Number`] = a finite decimal written as the shortest text
//!   that reads back to the same IEEE 754 double, without exponent (`0.5`, `1`, `-3.25`),
//!   never `-0`; enumerations are the lower-case words listed below.
//! - Extension events ([`Extension`]): kind `x.` followed by `a-z 0-9 . _ -`; fields
//!   named `a-z 0-9 _` (starting with a letter) in strictly increasing byte order; values
//!   are 1 to 1024 bytes of UTF-8 without control characters nor leading or trailing
//!   space.
//! - At most [`MAX_ENTRY_BYTES`] bytes in all.
//!
//! | event | fields, in order |
//! |---|---|
//! | `dataset.registered` | dataset, hospital, manifest (digest), content (digest) |
//! | `dataset.validated` | dataset, report (digest), outcome (`passed` / `failed`) |
//! | `dataset.approved` | dataset, competition |
//! | `participant.admitted` | competition, participant, tier |
//! | `agreement.accepted` | competition, participant, agreement, text (digest) |
//! | `submission.received` | competition, team, submission, module (digest) |
//! | `run.started` | run, submission, dataset, split, seed (integer) |
//! | `run.finished` | run, status (`ok` / `failed` / `over-limit`), outputs (digest) |
//! | `score.released` | competition, submission, split, metric, value (number), epsilon (number) |
//! | `aggregate.released` | competition, team, analysis, release (digest), epsilon (number) |
//! | `budget.charged` | competition, team, epsilon (number), remaining (number) |
//! | `competition.closed` | competition |
//! | `leaderboard.published` | competition, phase, leaderboard (digest) |
//!
//! Version 1 is frozen: a new field or kind is a new event kind (or an extension), never
//! a change to an existing one, so every leaf ever written keeps its hash.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The first line of every version-1 entry.
pub const ENTRY_HEADER: &str = "medarena-ledger-entry/v1";

/// The largest canonical entry accepted, in bytes. Entries hold identifiers and digests
/// only, so anything near this size is a mistake.
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;

const MAX_ID_BYTES: usize = 128;
const MAX_NAME_BYTES: usize = 64;
const MAX_VALUE_BYTES: usize = 1024;
/// 9999-12-31T23:59:59.999Z: RFC 3339 has four-digit years.
const MAX_TIMESTAMP_MILLIS: u64 = 253_402_300_799_999;
const HEADER_FIELDS: [&str; 4] = ["index", "time", "actor", "event"];

/// Why a value, an entry or its bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// A value that breaks its type's rules (see the module docs).
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidValue {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// Canonical bytes that do not follow the encoding, at a 1-based line.
    #[error("entry line {line}: {reason}")]
    Format { line: usize, reason: String },
    /// Bytes over [`MAX_ENTRY_BYTES`].
    #[error("entry is {0} bytes, more than the {MAX_ENTRY_BYTES} allowed")]
    TooLarge(usize),
}

fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> EntryError {
    let mut shown: String = value.chars().take(80).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    EntryError::InvalidValue {
        what,
        value: shown.escape_debug().to_string(),
        reason: reason.into(),
    }
}

/// One value type of the canonical encoding: written as one line's value, and read back
/// only from its canonical text.
trait FieldText: Sized {
    const WHAT: &'static str;
    fn write_text(&self, out: &mut String);
    fn parse_text(text: &str) -> Result<Self, EntryError>;
}

macro_rules! string_serde {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut text = String::new();
                self.write_text(&mut text);
                serializer.serialize_str(&text)
            }
        }
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                <$type>::parse_text(&text).map_err(serde::de::Error::custom)
            }
        }
        impl FromStr for $type {
            type Err = EntryError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                <$type>::parse_text(text)
            }
        }
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut text = String::new();
                self.write_text(&mut text);
                f.write_str(&text)
            }
        }
    };
}

/// An identifier: an account, a hospital, a dataset, a competition, a run, a tier...
/// 1 to 128 characters of `A-Z a-z 0-9 . _ : @ / + -`, so that it can never carry a
/// line break, a space or free text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    pub fn new(text: impl Into<String>) -> Result<Id, EntryError> {
        Id::parse_text(&text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FieldText for Id {
    const WHAT: &'static str = "identifier";
    fn write_text(&self, out: &mut String) {
        out.push_str(&self.0);
    }
    fn parse_text(text: &str) -> Result<Self, EntryError> {
        if text.is_empty() || text.len() > MAX_ID_BYTES {
            return Err(invalid(Self::WHAT, text, "must be 1 to 128 characters"));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._:@/+-".contains(*c)))
        {
            return Err(invalid(
                Self::WHAT,
                text,
                format!(
                    "character {:?} is not allowed (only A-Z a-z 0-9 . _ : @ / + -)",
                    bad
                ),
            ));
        }
        Ok(Id(text.to_owned()))
    }
}
string_serde!(Id);

/// The SHA-256 digest of some content (a manifest, a data file, a module, a report),
/// written `sha256:<64 lower-case hex digits>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `content`.
    pub fn of(content: &[u8]) -> Digest {
        Digest(Sha256::digest(content).into())
    }
}

impl FieldText for Digest {
    const WHAT: &'static str = "digest";
    fn write_text(&self, out: &mut String) {
        out.push_str("sha256:");
        out.push_str(&hex::encode(self.0));
    }
    fn parse_text(text: &str) -> Result<Self, EntryError> {
        let hex_digits = text
            .strip_prefix("sha256:")
            .ok_or_else(|| invalid(Self::WHAT, text, "must start with `sha256:`"))?;
        if hex_digits.len() != 64
            || !hex_digits
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid(
                Self::WHAT,
                text,
                "must be `sha256:` and 64 lower-case hex digits",
            ));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut bytes)
            .map_err(|error| invalid(Self::WHAT, text, error.to_string()))?;
        Ok(Digest(bytes))
    }
}
string_serde!(Digest);

/// A point in time, to the millisecond, UTC, between 1970 and the end of year 9999.
/// Written as RFC 3339 with three fractional digits: `2026-11-01T09:30:00.250Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(u64);

impl Timestamp {
    pub fn from_unix_millis(millis: u64) -> Result<Timestamp, EntryError> {
        if millis > MAX_TIMESTAMP_MILLIS {
            return Err(invalid(
                "timestamp",
                &millis.to_string(),
                "is after the year 9999",
            ));
        }
        Ok(Timestamp(millis))
    }

    /// The current time of this machine's clock (truncated to the millisecond).
    pub fn now() -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_millis())
            .unwrap_or(0);
        Timestamp(
            u64::try_from(millis)
                .unwrap_or(u64::MAX)
                .min(MAX_TIMESTAMP_MILLIS),
        )
    }

    pub fn unix_millis(&self) -> u64 {
        self.0
    }
}

impl FieldText for Timestamp {
    const WHAT: &'static str = "timestamp";
    fn write_text(&self, out: &mut String) {
        let time = UNIX_EPOCH + Duration::from_millis(self.0);
        // In range by construction (years 1970..=9999), so formatting cannot fail.
        out.push_str(&humantime::format_rfc3339_millis(time).to_string());
    }
    fn parse_text(text: &str) -> Result<Self, EntryError> {
        let reason = "must be RFC 3339 UTC with milliseconds, like 2026-11-01T09:30:00.250Z";
        if !text.is_ascii() {
            return Err(invalid(Self::WHAT, text, reason));
        }
        let time = humantime::parse_rfc3339(text).map_err(|_| invalid(Self::WHAT, text, reason))?;
        let since = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| invalid(Self::WHAT, text, "is before 1970"))?;
        let millis = u64::try_from(since.as_millis())
            .map_err(|_| invalid(Self::WHAT, text, "is out of range"))?;
        let timestamp = Timestamp::from_unix_millis(millis)?;
        if timestamp.to_string() != text {
            return Err(invalid(Self::WHAT, text, reason));
        }
        Ok(timestamp)
    }
}
string_serde!(Timestamp);

/// A finite decimal number: a released score, an ε, a remaining budget.
///
/// Written as the shortest decimal that reads back to the same IEEE 754 double, without
/// exponent (Rust's `Display` for `f64`); `-0` is stored as `0`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Number(f64);

impl Number {
    pub fn new(value: f64) -> Result<Number, EntryError> {
        if !value.is_finite() {
            return Err(invalid("number", &value.to_string(), "must be finite"));
        }
        // Adding 0.0 turns -0.0 into +0.0 and leaves every other value alone.
        Ok(Number(value + 0.0))
    }

    pub fn value(&self) -> f64 {
        self.0
    }
}

impl FieldText for Number {
    const WHAT: &'static str = "number";
    fn write_text(&self, out: &mut String) {
        out.push_str(&self.0.to_string());
    }
    fn parse_text(text: &str) -> Result<Self, EntryError> {
        let value: f64 = text
            .parse()
            .map_err(|_| invalid(Self::WHAT, text, "is not a decimal number"))?;
        let number = Number::new(value)?;
        if number.0.to_string() != text {
            return Err(invalid(
                Self::WHAT,
                text,
                format!("is not canonical (write `{}`)", number.0),
            ));
        }
        Ok(number)
    }
}
impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Number::new(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FieldText for u64 {
    const WHAT: &'static str = "integer";
    fn write_text(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }
    fn parse_text(text: &str) -> Result<Self, EntryError> {
        match text.parse::<u64>() {
            Ok(value) if value.to_string() == text => Ok(value),
            _ => Err(invalid(
                Self::WHAT,
                text,
                "must be a decimal integer without sign or leading zeros",
            )),
        }
    }
}

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }
        impl FieldText for $name {
            const WHAT: &'static str = $what;
            fn write_text(&self, out: &mut String) {
                out.push_str(match self { $(Self::$variant => $word),+ });
            }
            fn parse_text(text: &str) -> Result<Self, EntryError> {
                match text {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(invalid(Self::WHAT, text, concat!("must be one of:", $(" `", $word, "`"),+))),
                }
            }
        }
        string_serde!($name);
    };
}

word_enum!(
    /// The outcome of a dataset's validation against its manifest and the spec.
    ValidationOutcome, "validation outcome" {
        Passed = "passed",
        Failed = "failed",
    }
);

word_enum!(
    /// The coarse status of a run: never a message that could carry data (principle 1).
    RunStatus, "run status" {
        Ok = "ok",
        Failed = "failed",
        /// Stopped at a fuel, memory or time limit.
        OverLimit = "over-limit",
    }
);

/// A field value of an [`Extension`] event: 1 to 1024 bytes of UTF-8 without control
/// characters nor leading or trailing space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldValue(String);

impl FieldValue {
    pub fn new(text: impl Into<String>) -> Result<FieldValue, EntryError> {
        FieldValue::parse_text(&text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FieldText for FieldValue {
    const WHAT: &'static str = "field value";
    fn write_text(&self, out: &mut String) {
        out.push_str(&self.0);
    }
    fn parse_text(text: &str) -> Result<Self, EntryError> {
        if text.is_empty() || text.len() > MAX_VALUE_BYTES {
            return Err(invalid(Self::WHAT, text, "must be 1 to 1024 bytes"));
        }
        if text.chars().any(char::is_control) {
            return Err(invalid(
                Self::WHAT,
                text,
                "must not contain control characters",
            ));
        }
        if text.trim() != text {
            return Err(invalid(
                Self::WHAT,
                text,
                "must not start or end with white space",
            ));
        }
        Ok(FieldValue(text.to_owned()))
    }
}
string_serde!(FieldValue);

/// An event kind the platform adds after version 1 was frozen: a kind `x.<name>` and
/// named text fields, encoded in field-name order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extension {
    kind: String,
    fields: BTreeMap<String, FieldValue>,
}

impl Extension {
    /// `kind` is `x.` followed by `a-z 0-9 . _ -` (at most 64 bytes in all); field names
    /// are `a-z 0-9 _` starting with a letter, other than `index`, `time`, `actor`,
    /// `event`.
    pub fn new(
        kind: impl Into<String>,
        fields: impl IntoIterator<Item = (String, FieldValue)>,
    ) -> Result<Extension, EntryError> {
        let kind = kind.into();
        let name_ok = kind.strip_prefix("x.").is_some_and(|rest| {
            rest.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
        if !name_ok || kind.len() > MAX_NAME_BYTES {
            return Err(invalid(
                "extension kind",
                &kind,
                "must be `x.` then a-z 0-9 . _ - (at most 64 bytes)",
            ));
        }
        let mut map = BTreeMap::new();
        for (name, value) in fields {
            check_field_name(&name)?;
            if map.insert(name.clone(), value).is_some() {
                return Err(invalid("extension field name", &name, "appears twice"));
            }
        }
        Ok(Extension { kind, fields: map })
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn fields(&self) -> &BTreeMap<String, FieldValue> {
        &self.fields
    }
}

fn check_field_name(name: &str) -> Result<(), EntryError> {
    let ok = name.len() <= MAX_NAME_BYTES
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(invalid(
            "extension field name",
            name,
            "must be a-z 0-9 _ starting with a letter (at most 64 bytes)",
        ));
    }
    if HEADER_FIELDS.contains(&name) {
        return Err(invalid(
            "extension field name",
            name,
            "is reserved for the entry header",
        ));
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Extension {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            kind: String,
            fields: BTreeMap<String, FieldValue>,
        }
        let raw = Raw::deserialize(deserializer)?;
        Extension::new(raw.kind, raw.fields).map_err(serde::de::Error::custom)
    }
}

/// Writes `name SP value LF` lines.
struct LineWriter(String);

impl LineWriter {
    fn field<T: FieldText>(&mut self, name: &str, value: &T) {
        self.0.push_str(name);
        self.0.push(' ');
        value.write_text(&mut self.0);
        self.0.push('\n');
    }
}

/// Reads `name SP value` lines in a fixed order, naming the line of any mistake.
struct LineReader<'a> {
    lines: std::iter::Peekable<std::iter::Enumerate<std::str::Split<'a, char>>>,
}

impl<'a> LineReader<'a> {
    fn format_error(line: usize, reason: impl Into<String>) -> EntryError {
        EntryError::Format {
            line,
            reason: reason.into(),
        }
    }

    fn next_line(&mut self, expected: &str) -> Result<(usize, &'a str, &'a str), EntryError> {
        let Some((number, line)) = self.lines.next() else {
            return Err(Self::format_error(
                0,
                format!("entry ends before its `{expected}` line"),
            ));
        };
        let (name, value) = line.split_once(' ').ok_or_else(|| {
            Self::format_error(
                number + 1,
                format!("expected `{expected} <value>`, found {line:?}"),
            )
        })?;
        Ok((number + 1, name, value))
    }

    fn field<T: FieldText>(&mut self, name: &str) -> Result<T, EntryError> {
        let (number, found, value) = self.next_line(name)?;
        if found != name {
            return Err(Self::format_error(
                number,
                format!("expected field `{name}`, found `{found}`"),
            ));
        }
        T::parse_text(value).map_err(|error| Self::format_error(number, format!("{name}: {error}")))
    }

    fn rest(&mut self) -> Result<Vec<(usize, &'a str, &'a str)>, EntryError> {
        let mut rest = Vec::new();
        while self.lines.peek().is_some() {
            rest.push(self.next_line("field")?);
        }
        Ok(rest)
    }

    fn finish(&mut self) -> Result<(), EntryError> {
        match self.lines.next() {
            None => Ok(()),
            Some((number, line)) => Err(Self::format_error(
                number + 1,
                format!("unexpected extra line {line:?}"),
            )),
        }
    }
}

macro_rules! events {
    ($(
        $(#[$meta:meta])*
        $variant:ident = $kind:literal { $($field:ident : $type:ty),+ $(,)? }
    )+) => {
        /// What happened. The kinds of version 1 are fixed (see the module docs for their
        /// fields); anything else is an [`Extension`].
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "event")]
        pub enum Event {
            $(
                $(#[$meta])*
                #[serde(rename = $kind)]
                $variant { $($field: $type),+ },
            )+
            /// An event kind added after version 1 (`x.<name>`).
            #[serde(rename = "extension")]
            Extension(Extension),
        }

        impl Event {
            /// The kind as written on the entry's `event` line.
            pub fn kind(&self) -> &str {
                match self {
                    $(Event::$variant { .. } => $kind,)+
                    Event::Extension(extension) => extension.kind(),
                }
            }

            fn write_fields(&self, writer: &mut LineWriter) {
                match self {
                    $(Event::$variant { $($field),+ } => {
                        $(writer.field(stringify!($field), $field);)+
                    })+
                    Event::Extension(extension) => {
                        for (name, value) in &extension.fields {
                            writer.field(name, value);
                        }
                    }
                }
            }

            fn read_fields(kind: &str, line: usize, reader: &mut LineReader<'_>) -> Result<Event, EntryError> {
                match kind {
                    $($kind => Ok(Event::$variant { $($field: reader.field(stringify!($field))?),+ }),)+
                    _ if kind.starts_with("x.") => {
                        let mut fields = Vec::new();
                        let mut previous: Option<&str> = None;
                        for (number, name, value) in reader.rest()? {
                            if previous.is_some_and(|previous| previous >= name) {
                                return Err(LineReader::format_error(number, format!(
                                    "extension field `{name}` is out of order or repeated (fields are sorted by name)"
                                )));
                            }
                            previous = Some(name);
                            let value = FieldValue::parse_text(value)
                                .map_err(|error| LineReader::format_error(number, format!("{name}: {error}")))?;
                            fields.push((name.to_owned(), value));
                        }
                        Extension::new(kind, fields)
                            .map(Event::Extension)
                            .map_err(|error| LineReader::format_error(line, error.to_string()))
                    }
                    _ => Err(LineReader::format_error(line, format!("unknown event kind `{kind}`"))),
                }
            }
        }
    };
}

events! {
    /// A hospital uploaded a dataset; `manifest` and `content` digest what was stored.
    DatasetRegistered = "dataset.registered" { dataset: Id, hospital: Id, manifest: Digest, content: Digest }
    /// A dataset was checked against its manifest and the spec; `report` digests the report.
    DatasetValidated = "dataset.validated" { dataset: Id, report: Digest, outcome: ValidationOutcome }
    /// An organizer approved a dataset for a competition.
    DatasetApproved = "dataset.approved" { dataset: Id, competition: Id }
    /// An organizer admitted a participant (a team or a person) at a tier.
    ParticipantAdmitted = "participant.admitted" { competition: Id, participant: Id, tier: Id }
    /// A participant accepted a data-use agreement; `text` digests its exact wording.
    AgreementAccepted = "agreement.accepted" { competition: Id, participant: Id, agreement: Id, text: Digest }
    /// A team submitted a WebAssembly module.
    SubmissionReceived = "submission.received" { competition: Id, team: Id, submission: Id, module: Digest }
    /// A run of a submission on a dataset split began; `seed` is the seed the host gave it.
    RunStarted = "run.started" { run: Id, submission: Id, dataset: Id, split: Id, seed: u64 }
    /// A run ended; `outputs` digests what the sandbox returned to the host.
    RunFinished = "run.finished" { run: Id, status: RunStatus, outputs: Digest }
    /// A score left the platform: the released (noisy) value and the ε it cost.
    ScoreReleased = "score.released" { competition: Id, submission: Id, split: Id, metric: Id, value: Number, epsilon: Number }
    /// A differentially private aggregate left the platform; `release` digests the values.
    AggregateReleased = "aggregate.released" { competition: Id, team: Id, analysis: Id, release: Digest, epsilon: Number }
    /// A team's privacy budget was charged `epsilon`, leaving `remaining`.
    BudgetCharged = "budget.charged" { competition: Id, team: Id, epsilon: Number, remaining: Number }
    /// A competition stopped accepting submissions.
    CompetitionClosed = "competition.closed" { competition: Id }
    /// A leaderboard was published; `leaderboard` digests its exact published form.
    LeaderboardPublished = "leaderboard.published" { competition: Id, phase: Id, leaderboard: Digest }
}

/// An entry before the ledger gives it its index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEntry {
    pub time: Timestamp,
    pub actor: Id,
    #[serde(flatten)]
    pub event: Event,
}

impl NewEntry {
    pub fn new(time: Timestamp, actor: Id, event: Event) -> NewEntry {
        NewEntry { time, actor, event }
    }

    /// The same entry at `index` of the log.
    pub fn at_index(self, index: u64) -> Entry {
        Entry {
            index,
            time: self.time,
            actor: self.actor,
            event: self.event,
        }
    }
}

/// An entry of the log: the leaf at `index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub time: Timestamp,
    pub actor: Id,
    #[serde(flatten)]
    pub event: Event,
}

impl Entry {
    /// The canonical text (see the module docs): the bytes of the Merkle leaf.
    pub fn to_canonical(&self) -> String {
        let mut writer = LineWriter(String::with_capacity(256));
        writer.0.push_str(ENTRY_HEADER);
        writer.0.push('\n');
        writer.field("index", &self.index);
        writer.field("time", &self.time);
        writer.field("actor", &self.actor);
        writer.0.push_str("event ");
        writer.0.push_str(self.event.kind());
        writer.0.push('\n');
        self.event.write_fields(&mut writer);
        writer.0
    }

    /// Reads canonical bytes, refusing anything that is not exactly what
    /// [`Entry::to_canonical`] would write.
    pub fn from_canonical(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|error| {
            let line = 1 + bytes[..error.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            LineReader::format_error(line, "is not valid UTF-8")
        })?;
        let body = text.strip_suffix('\n').ok_or_else(|| {
            LineReader::format_error(
                text.lines().count().max(1),
                "the last line must end with a line feed",
            )
        })?;
        if let Some((number, _)) = body
            .split('\n')
            .enumerate()
            .find(|(_, line)| line.chars().any(char::is_control))
        {
            return Err(LineReader::format_error(
                number + 1,
                "contains a control character (CR, tab, ...)",
            ));
        }
        let mut reader = LineReader {
            lines: body.split('\n').enumerate().peekable(),
        };
        match reader.lines.next() {
            Some((_, ENTRY_HEADER)) => {}
            Some((_, other)) => {
                return Err(LineReader::format_error(
                    1,
                    format!("expected `{ENTRY_HEADER}`, found {other:?}"),
                ));
            }
            None => return Err(LineReader::format_error(1, "empty entry")),
        }
        let index = reader.field("index")?;
        let time = reader.field("time")?;
        let actor = reader.field("actor")?;
        let (line, name, kind) = reader.next_line("event")?;
        if name != "event" {
            return Err(LineReader::format_error(
                line,
                format!("expected field `event`, found `{name}`"),
            ));
        }
        let event = Event::read_fields(kind, line, &mut reader)?;
        reader.finish()?;
        let entry = Entry {
            index,
            time,
            actor,
            event,
        };
        // Every value was read from its canonical text in canonical order, so this holds;
        // it stays as a guard against a future field type that forgets to check.
        if entry.to_canonical().as_bytes() != bytes {
            return Err(LineReader::format_error(0, "is not in canonical form"));
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn id(text: &str) -> Id {
        Id::new(text).unwrap()
    }

    fn sample_events() -> Vec<Event> {
        let digest = Digest::of(b"content");
        let number = |v: f64| Number::new(v).unwrap();
        vec![
            Event::DatasetRegistered {
                dataset: id("ds-1"),
                hospital: id("st-marys"),
                manifest: Digest::of(b"manifest"),
                content: digest,
            },
            Event::DatasetValidated {
                dataset: id("ds-1"),
                report: digest,
                outcome: ValidationOutcome::Failed,
            },
            Event::DatasetApproved {
                dataset: id("ds-1"),
                competition: id("sepsis-2026"),
            },
            Event::ParticipantAdmitted {
                competition: id("sepsis-2026"),
                participant: id("team:alpha"),
                tier: id("standard"),
            },
            Event::AgreementAccepted {
                competition: id("sepsis-2026"),
                participant: id("team:alpha"),
                agreement: id("dua-v3"),
                text: digest,
            },
            Event::SubmissionReceived {
                competition: id("sepsis-2026"),
                team: id("team:alpha"),
                submission: id("sub-17"),
                module: digest,
            },
            Event::RunStarted {
                run: id("run-9"),
                submission: id("sub-17"),
                dataset: id("ds-1"),
                split: id("public"),
                seed: 18_446_744_073_709_551_615,
            },
            Event::RunFinished {
                run: id("run-9"),
                status: RunStatus::OverLimit,
                outputs: digest,
            },
            Event::ScoreReleased {
                competition: id("sepsis-2026"),
                submission: id("sub-17"),
                split: id("public"),
                metric: id("auroc"),
                value: number(0.8125),
                epsilon: number(0.1),
            },
            Event::AggregateReleased {
                competition: id("sepsis-2026"),
                team: id("team:alpha"),
                analysis: id("an-3"),
                release: digest,
                epsilon: number(1.0),
            },
            Event::BudgetCharged {
                competition: id("sepsis-2026"),
                team: id("team:alpha"),
                epsilon: number(0.25),
                remaining: number(-0.0),
            },
            Event::CompetitionClosed {
                competition: id("sepsis-2026"),
            },
            Event::LeaderboardPublished {
                competition: id("sepsis-2026"),
                phase: id("private"),
                leaderboard: digest,
            },
            Event::Extension(
                Extension::new(
                    "x.model.card-published",
                    [
                        ("zeta".to_owned(), FieldValue::new("last").unwrap()),
                        (
                            "card".to_owned(),
                            FieldValue::new("sha256 of a card, é ok").unwrap(),
                        ),
                    ],
                )
                .unwrap(),
            ),
        ]
    }

    fn sample_entry(index: u64, event: Event) -> Entry {
        Entry {
            index,
            time: Timestamp::from_unix_millis(1_793_525_400_250).unwrap(),
            actor: id("hospital:st-marys"),
            event,
        }
    }

    #[test]
    fn documented_example_is_exactly_the_encoding() {
        let entry = sample_entry(
            7,
            Event::DatasetRegistered {
                dataset: id("ds-cardio-2026"),
                hospital: id("st-marys"),
                manifest: Digest::parse_text(
                    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                )
                .unwrap(),
                content: Digest::parse_text(
                    "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
                )
                .unwrap(),
            },
        );
        let expected = "medarena-ledger-entry/v1\nindex 7\ntime 2026-11-01T09:30:00.250Z\n\
actor hospital:st-marys\nevent dataset.registered\ndataset ds-cardio-2026\nhospital st-marys\n\
manifest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n\
content sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\n";
        assert_eq!(entry.to_canonical(), expected);
        // The leaf hash is frozen with the encoding: changing either breaks old receipts.
        assert_eq!(
            crate::Hash::of_leaf(expected.as_bytes()).to_hex(),
            hex::encode(sha2::Sha256::digest(
                [b"\0".as_slice(), expected.as_bytes()].concat()
            ))
        );
    }

    #[test]
    fn every_kind_round_trips_through_bytes_and_json() {
        for (index, event) in sample_events().into_iter().enumerate() {
            let entry = sample_entry(index as u64, event);
            let text = entry.to_canonical();
            assert_eq!(
                Entry::from_canonical(text.as_bytes()).unwrap(),
                entry,
                "{text}"
            );
            let json = serde_json::to_string(&entry).unwrap();
            assert_eq!(
                serde_json::from_str::<Entry>(&json).unwrap(),
                entry,
                "{json}"
            );
        }
    }

    #[test]
    fn negative_zero_is_stored_as_zero() {
        let entry = sample_entry(0, sample_events().swap_remove(10));
        assert!(entry.to_canonical().contains("\nremaining 0\n"));
    }

    #[test]
    fn non_canonical_bytes_are_refused_with_their_line() {
        let entry = sample_entry(3, sample_events().swap_remove(8));
        let text = entry.to_canonical();
        let cases: Vec<(String, usize)> = vec![
            (text.replace("index 3", "index 03"), 2),
            (text.replace("index 3", "index +3"), 2),
            (text.replace(".250Z", "Z"), 3),
            (text.replace("value 0.8125", "value 0.81250"), 10),
            (text.replace("epsilon 0.1", "epsilon 1e-1"), 11),
            (text.replace("epsilon 0.1", "epsilon NaN"), 11),
            (text.replace("metric auroc\n", ""), 9),
            (
                text.replace("split public\nmetric auroc", "metric auroc\nsplit public"),
                8,
            ),
            (text.replace("\nvalue", "\r\nvalue"), 9),
            (
                text.replace("actor hospital:st-marys", "actor hospital st-marys"),
                4,
            ),
            (
                text.replace("medarena-ledger-entry/v1", "medarena-ledger-entry/v2"),
                1,
            ),
            (
                text.replace("event score.released", "event score.leaked"),
                5,
            ),
            (format!("{text}extra 1\n"), 12),
        ];
        for (bad, line) in cases {
            match Entry::from_canonical(bad.as_bytes()) {
                Err(EntryError::Format { line: got, .. }) => assert_eq!(got, line, "{bad}"),
                other => panic!("accepted or wrong error {other:?} for\n{bad}"),
            }
        }
        assert!(Entry::from_canonical(text.trim_end().as_bytes()).is_err());
        assert!(Entry::from_canonical(&[0xff, 0xfe]).is_err());
        assert!(matches!(
            Entry::from_canonical(&vec![b'a'; MAX_ENTRY_BYTES + 1]),
            Err(EntryError::TooLarge(_))
        ));
    }

    #[test]
    fn extension_fields_must_be_sorted_and_valid() {
        let entry = sample_entry(0, sample_events().pop().unwrap());
        let text = entry.to_canonical();
        assert!(
            text.ends_with(
                "event x.model.card-published\ncard sha256 of a card, é ok\nzeta last\n"
            )
        );
        let swapped = text.replace(
            "card sha256 of a card, é ok\nzeta last\n",
            "zeta last\ncard sha256 of a card, é ok\n",
        );
        assert!(Entry::from_canonical(swapped.as_bytes()).is_err());
        assert!(Extension::new("model", []).is_err());
        assert!(Extension::new("x.Model", []).is_err());
        assert!(
            Extension::new("x.ok", [("Bad".to_owned(), FieldValue::new("v").unwrap())]).is_err()
        );
        assert!(
            Extension::new("x.ok", [("time".to_owned(), FieldValue::new("v").unwrap())]).is_err()
        );
        assert!(FieldValue::new(" padded").is_err());
        assert!(FieldValue::new("line\nbreak").is_err());
        assert!(FieldValue::new("").is_err());
    }

    #[test]
    fn values_are_checked_at_construction() {
        assert!(Id::new("").is_err());
        assert!(Id::new("has space").is_err());
        assert!(Id::new("x".repeat(129)).is_err());
        assert!(Id::new("team:alpha/sub-1@v2+x").is_ok());
        assert!(Number::new(f64::INFINITY).is_err());
        assert!(Timestamp::from_unix_millis(MAX_TIMESTAMP_MILLIS).is_ok());
        assert!(Timestamp::from_unix_millis(MAX_TIMESTAMP_MILLIS + 1).is_err());
        assert_eq!(
            Timestamp::from_unix_millis(MAX_TIMESTAMP_MILLIS)
                .unwrap()
                .to_string(),
            "9999-12-31T23:59:59.999Z"
        );
        assert!(Digest::parse_text(&format!("sha256:{}", "A".repeat(64))).is_err());
        let error = Id::new("bad id").unwrap_err().to_string();
        assert!(error.contains("bad id") && error.contains("' '"), "{error}");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn numbers_round_trip(value in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let number = Number::new(value).unwrap();
            let mut text = String::new();
            number.write_text(&mut text);
            prop_assert_eq!(Number::parse_text(&text).unwrap(), number);
        }

        #[test]
        fn timestamps_round_trip(millis in 0..=MAX_TIMESTAMP_MILLIS) {
            let time = Timestamp::from_unix_millis(millis).unwrap();
            prop_assert_eq!(Timestamp::parse_text(&time.to_string()).unwrap(), time);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Entry::from_canonical(&bytes);
        }

        #[test]
        fn mutated_entries_never_decode_to_other_bytes(position in 0usize..400, byte in any::<u8>()) {
            let entry = Entry {
                index: 12,
                time: Timestamp::from_unix_millis(1_000).unwrap(),
                actor: Id::new("team:alpha").unwrap(),
                event: Event::BudgetCharged {
                    competition: Id::new("c1").unwrap(),
                    team: Id::new("team:alpha").unwrap(),
                    epsilon: Number::new(0.5).unwrap(),
                    remaining: Number::new(2.0).unwrap(),
                },
            };
            let mut bytes = entry.to_canonical().into_bytes();
            let position = position % bytes.len();
            bytes[position] = byte;
            // Whatever decodes must re-encode to exactly the bytes it came from.
            if let Ok(decoded) = Entry::from_canonical(&bytes) {
                prop_assert_eq!(decoded.to_canonical().into_bytes(), bytes);
            }
        }
    }
}
