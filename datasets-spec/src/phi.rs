//! Detectors of protected health information (PHI), run on every column of an upload
//! whatever the manifest says about it.
//!
//! Each detector is a small pure function on one cell's text (or one integer), so that it is
//! easy to test and property-test; [`scan_text_column`] and [`scan_integer_column`] run them
//! over a column in one pass and decide column-level findings. They are hand-written byte
//! scanners rather than regular expressions: a 1 GB upload has ~10⁸ cells and a cell that is
//! a plain number must cost a few nanoseconds, while the patterns themselves (checksums,
//! digit groupings, CJK surname tables) are not regular-expression shaped anyway.
//!
//! Strong detectors (ID numbers with a valid checksum, phone numbers, e-mail addresses,
//! URLs, IPs, exact addresses...) flag a column on any single cell. Weak, shape-based ones
//! (names, free text, full dates) flag a column when enough of its cells match, so that a
//! category such as "Heart Failure" is not mistaken for a name.

use serde::{Deserialize, Serialize};

use crate::values::TextColumn;

/// What kind of identifier a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhiKind {
    /// Chinese resident identity card number (18 digits with a valid ISO 7064 MOD 11-2 check
    /// character, or the 15-digit first-generation form with a valid birth date).
    ResidentId,
    /// Mainland China mobile number (11 digits, 13x-19x, optional +86).
    Mobile,
    /// Landline or fax number with an area code (Chinese `0xx-xxxxxxxx`, North American
    /// `xxx-xxx-xxxx`).
    Landline,
    /// E-mail address.
    Email,
    /// Web address.
    Url,
    /// IPv4 or IPv6 address.
    IpAddress,
    /// US social security number `ddd-dd-dddd`.
    Ssn,
    /// Chinese passport number (`E`/`G` + 8 digits) in most of a column.
    Passport,
    /// Payment card number (13-19 digits passing the Luhn check with a card prefix).
    BankCard,
    /// Mainland vehicle licence plate (province character + letter + 5-6 characters).
    LicensePlate,
    /// Most of a column looks like Chinese personal names.
    ChineseName,
    /// Most of a column looks like Latin-script personal names.
    LatinName,
    /// The column header names a personal name.
    NameHeader,
    /// The column header names another direct identifier (ID card, phone, record number...).
    IdentifierHeader,
    /// Free text (long, sentence-like cells), which can carry any identifier.
    FreeText,
    /// Full dates (day precision) in most of a column.
    FullDate,
    /// Full dates in a column whose header says birth date.
    DateOfBirth,
    /// Street-level address.
    Address,
    /// Postal code in a column whose header says postcode.
    Postcode,
    /// Ages above 89 (HIPAA Safe Harbor requires "90 or older" to be aggregated).
    AgeOver89,
    /// A text column other than the row id whose values are (nearly) all distinct.
    UniqueIdentifier,
    /// A text column other than the row id whose values are (nearly) all distinct codes
    /// shaped like medical record, insurance, accession or device numbers.
    RecordNumber,
}

impl PhiKind {
    /// All kinds, in report order.
    pub const ALL: [PhiKind; 22] = [
        PhiKind::ResidentId,
        PhiKind::Mobile,
        PhiKind::Landline,
        PhiKind::Email,
        PhiKind::Url,
        PhiKind::IpAddress,
        PhiKind::Ssn,
        PhiKind::Passport,
        PhiKind::BankCard,
        PhiKind::LicensePlate,
        PhiKind::ChineseName,
        PhiKind::LatinName,
        PhiKind::NameHeader,
        PhiKind::IdentifierHeader,
        PhiKind::FreeText,
        PhiKind::FullDate,
        PhiKind::DateOfBirth,
        PhiKind::Address,
        PhiKind::Postcode,
        PhiKind::AgeOver89,
        PhiKind::UniqueIdentifier,
        PhiKind::RecordNumber,
    ];

    /// The rule id of findings of this kind, e.g. `phi.resident_id`.
    pub fn rule(self) -> &'static str {
        match self {
            PhiKind::ResidentId => "phi.resident_id",
            PhiKind::Mobile => "phi.mobile",
            PhiKind::Landline => "phi.landline",
            PhiKind::Email => "phi.email",
            PhiKind::Url => "phi.url",
            PhiKind::IpAddress => "phi.ip_address",
            PhiKind::Ssn => "phi.ssn",
            PhiKind::Passport => "phi.passport",
            PhiKind::BankCard => "phi.bank_card",
            PhiKind::LicensePlate => "phi.license_plate",
            PhiKind::ChineseName => "phi.chinese_name",
            PhiKind::LatinName => "phi.latin_name",
            PhiKind::NameHeader => "phi.name_header",
            PhiKind::IdentifierHeader => "phi.identifier_header",
            PhiKind::FreeText => "phi.free_text",
            PhiKind::FullDate => "phi.full_date",
            PhiKind::DateOfBirth => "phi.date_of_birth",
            PhiKind::Address => "phi.address",
            PhiKind::Postcode => "phi.postcode",
            PhiKind::AgeOver89 => "phi.age_over_89",
            PhiKind::UniqueIdentifier => "phi.unique_identifier",
            PhiKind::RecordNumber => "phi.record_number",
        }
    }

    /// Whether a finding of this kind blocks the upload. Warnings are for identifiers an
    /// expert determination may keep (admission dates, ages over 89, unique codes).
    pub fn is_error(self) -> bool {
        !matches!(
            self,
            PhiKind::FullDate | PhiKind::AgeOver89 | PhiKind::UniqueIdentifier
        )
    }

    /// A human description (never includes values).
    pub fn describe(self) -> &'static str {
        match self {
            PhiKind::ResidentId => "Chinese resident ID numbers (checksum-valid)",
            PhiKind::Mobile => "mainland mobile phone numbers",
            PhiKind::Landline => "landline or fax numbers",
            PhiKind::Email => "e-mail addresses",
            PhiKind::Url => "web addresses (URLs)",
            PhiKind::IpAddress => "IP addresses",
            PhiKind::Ssn => "US social security numbers",
            PhiKind::Passport => "passport numbers",
            PhiKind::BankCard => "payment card numbers (Luhn-valid)",
            PhiKind::LicensePlate => "vehicle licence plates",
            PhiKind::ChineseName => "values shaped like Chinese personal names",
            PhiKind::LatinName => "values shaped like personal names",
            PhiKind::NameHeader => "the header names a personal name",
            PhiKind::IdentifierHeader => "the header names a direct identifier",
            PhiKind::FreeText => "free text, which can carry any identifier",
            PhiKind::FullDate => {
                "full dates (day precision); HIPAA Safe Harbor keeps only the year"
            }
            PhiKind::DateOfBirth => "full dates of birth",
            PhiKind::Address => "street-level addresses",
            PhiKind::Postcode => "postal codes",
            PhiKind::AgeOver89 => "ages over 89 (aggregate them as 90 or older)",
            PhiKind::UniqueIdentifier => {
                "distinct values in (nearly) every row, like an identifier"
            }
            PhiKind::RecordNumber => {
                "distinct codes in (nearly) every row, shaped like record, insurance, accession \
                 or device numbers"
            }
        }
    }
}

/// One column-level PHI detection: how many rows and which (the first `cap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhiHit {
    /// The kind.
    pub kind: PhiKind,
    /// Rows whose value matched (0 for header-only findings).
    pub rows: u64,
    /// The first matching 0-based row indices, at most the cap.
    pub row_indices: Vec<u64>,
}

// ---------------------------------------------------------------------------------------
// Cell-level detectors
// ---------------------------------------------------------------------------------------

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID.
pub fn resident_id_check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    Some(ID_CHECK[(sum % 11) as usize])
}

pub(crate) fn valid_ymd(year: u32, month: u32, day: u32) -> bool {
    (1..=12).contains(&month)
        && day >= 1
        && u32::from(crate::dates::days_in_month(year as i32, month as u8)) >= day
}

pub(crate) fn number(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |acc, d| acc * 10 + u32::from(d.wrapping_sub(b'0')))
}

/// An 18-character resident ID: province code 11-82, a valid birth date 1900-2099, and
/// the MOD 11-2 check character (`X` may be lower case).
pub fn is_resident_id_18(text: &[u8]) -> bool {
    if text.len() != 18 || !text[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let province = number(&text[..2]);
    if !(11..=82).contains(&province) {
        return false;
    }
    let year = number(&text[6..10]);
    if !(1900..=2099).contains(&year)
        || !valid_ymd(year, number(&text[10..12]), number(&text[12..14]))
    {
        return false;
    }
    resident_id_check_char(&text[..17]) == Some(text[17].to_ascii_uppercase())
}

/// A 15-digit first-generation resident ID: province code 11-82 and a valid birth date
/// `YYMMDD` (19YY).
pub fn is_resident_id_15(text: &[u8]) -> bool {
    if text.len() != 15 || !text.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let province = number(&text[..2]);
    (11..=82).contains(&province)
        && valid_ymd(
            1900 + number(&text[6..8]),
            number(&text[8..10]),
            number(&text[10..12]),
        )
}

/// 11 digits of a mainland mobile number (13x-19x).
pub fn is_mobile_digits(digits: &[u8]) -> bool {
    digits.len() == 11 && digits[0] == b'1' && (b'3'..=b'9').contains(&digits[1])
}

/// Luhn checksum.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (index, digit) in digits.iter().rev().enumerate() {
        let mut value = u32::from(digit - b'0');
        if index % 2 == 1 {
            value *= 2;
            if value > 9 {
                value -= 9;
            }
        }
        sum += value;
    }
    sum.is_multiple_of(10)
}

/// An e-mail address somewhere in the text: `local@domain.tld`.
pub fn contains_email(text: &[u8]) -> bool {
    for at in memchr::memchr_iter(b'@', text) {
        let local_ok = at > 0 && is_email_local(text[at - 1]);
        let domain: Vec<u8> = text[at + 1..]
            .iter()
            .copied()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
            .collect();
        let domain = domain.strip_suffix(b".").unwrap_or(&domain);
        if let Some(dot) = domain.iter().rposition(|b| *b == b'.') {
            let tld = &domain[dot + 1..];
            if local_ok && dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
                return true;
            }
        }
    }
    false
}

fn is_email_local(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// A URL: a scheme followed by `://`, or a `www.` host.
pub fn contains_url(text: &[u8]) -> bool {
    if let Some(found) = memchr::memmem::find(text, b"://") {
        let scheme = &text[..found];
        let scheme_len = scheme
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if scheme_len >= 2 && found + 3 < text.len() {
            return true;
        }
    }
    let lower_www =
        memchr::memmem::find(text, b"www.").or_else(|| memchr::memmem::find(text, b"WWW."));
    matches!(lower_www, Some(i) if i + 5 < text.len() && (i == 0 || !text[i - 1].is_ascii_alphanumeric()))
}

/// A whole token that parses as an IPv4 (dotted quad) or IPv6 address.
pub fn is_ip_address(token: &str) -> bool {
    let token = token.trim_matches(|c: char| matches!(c, '[' | ']' | '(' | ')' | ',' | ';'));
    if token.len() < 7 {
        return false;
    }
    if token.bytes().filter(|b| *b == b'.').count() == 3 {
        return token.parse::<std::net::Ipv4Addr>().is_ok();
    }
    token.bytes().filter(|b| *b == b':').count() >= 2 && token.parse::<std::net::Ipv6Addr>().is_ok()
}

/// A digit sequence with its grouping, e.g. `138-1234-5678` → groups [3, 4, 4]. Fixed-size
/// buffers: this runs on every cell with a digit, and no identifier is longer.
#[derive(Debug, Default)]
struct DigitToken {
    digit_buffer: [u8; 24],
    digit_count: usize,
    group_buffer: [usize; 6],
    group_count: usize,
    overflow: bool,
    plus: bool,
    trailing_x: bool,
}

impl DigitToken {
    fn digits(&self) -> &[u8] {
        &self.digit_buffer[..self.digit_count]
    }

    fn groups(&self) -> &[usize] {
        &self.group_buffer[..self.group_count]
    }

    fn push_digit(&mut self, digit: u8) {
        if self.digit_count < self.digit_buffer.len() {
            self.digit_buffer[self.digit_count] = digit;
            self.digit_count += 1;
        } else {
            self.overflow = true;
        }
    }

    fn push_group(&mut self, length: usize) {
        if self.group_count < self.group_buffer.len() {
            self.group_buffer[self.group_count] = length;
            self.group_count += 1;
        } else {
            self.overflow = true;
        }
    }
}

/// Splits a text into digit tokens: digits joined by single `-`, ` ` or `)` separators
/// (phone numbers are written in groups), with a leading `+` noted. Tokens longer than any
/// identifier are skipped.
fn digit_tokens(text: &[u8], mut visit: impl FnMut(&DigitToken)) {
    let mut index = 0;
    while index < text.len() {
        if !text[index].is_ascii_digit() {
            index += 1;
            continue;
        }
        let mut token = DigitToken {
            plus: index > 0 && text[index - 1] == b'+',
            ..DigitToken::default()
        };
        let mut group = 0;
        while index < text.len() {
            let byte = text[index];
            if byte.is_ascii_digit() {
                token.push_digit(byte);
                group += 1;
                index += 1;
            } else if matches!(byte, b'-' | b' ' | b')')
                && index + 1 < text.len()
                && (text[index + 1].is_ascii_digit()
                    || (byte == b')'
                        && text[index + 1] == b' '
                        && text.get(index + 2).is_some_and(u8::is_ascii_digit)))
            {
                token.push_group(group);
                group = 0;
                index += if byte == b')' && text[index + 1] == b' ' {
                    2
                } else {
                    1
                };
            } else {
                token.trailing_x = matches!(byte, b'X' | b'x');
                break;
            }
        }
        token.push_group(group);
        if !token.overflow {
            visit(&token);
        }
    }
}

/// Cell-level matches, as bit flags of [`PhiKind`] positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CellHits(u32);

impl CellHits {
    pub(crate) fn set(&mut self, kind: PhiKind) {
        self.0 |= 1 << kind as u32;
    }

    /// Whether a kind matched.
    pub fn has(self, kind: PhiKind) -> bool {
        self.0 & (1 << kind as u32) != 0
    }

    /// Whether nothing matched.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Runs every cell-level detector on one cell.
pub fn classify_cell(cell: &str) -> CellHits {
    let mut hits = CellHits::default();
    let bytes = cell.as_bytes();
    // Fast path: short plain numbers and codes, most cells of a medical table.
    if bytes.len() <= 8
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return hits;
    }
    // Fast path: short codes of letters and digits (record ids, categories). Without a
    // separator, `@`, `.`, `:`, space or non-ASCII text, only a passport number or a long
    // enough digit run (11+: mobile, ID, card numbers) can match.
    if bytes.len() < 24 && bytes.iter().all(u8::is_ascii_alphanumeric) {
        let mut run = 0;
        let mut longest = 0;
        for byte in bytes {
            run = if byte.is_ascii_digit() { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        if longest < 11 {
            if is_passport(bytes) {
                hits.set(PhiKind::Passport);
            }
            // One word: a given name or surname from the lists, in any case.
            if longest == 0 && crate::names::is_listed_name(cell) {
                hits.set(PhiKind::LatinName);
            }
            return hits;
        }
    }
    let has_digit = bytes.iter().any(u8::is_ascii_digit);
    if has_digit {
        classify_digits(bytes, &mut hits);
    }
    if memchr::memchr(b'@', bytes).is_some() && contains_email(bytes) {
        hits.set(PhiKind::Email);
    }
    if (memchr::memchr(b'/', bytes).is_some() || memchr::memchr(b'.', bytes).is_some())
        && contains_url(bytes)
    {
        hits.set(PhiKind::Url);
    }
    if has_digit || memchr::memchr(b':', bytes).is_some() {
        if bytes.contains(&b' ') {
            if cell.split_whitespace().any(is_ip_address) {
                hits.set(PhiKind::IpAddress);
            }
        } else if is_ip_address(cell) {
            hits.set(PhiKind::IpAddress);
        }
    }
    if has_digit && (6..=40).contains(&bytes.len()) && is_full_date(cell) {
        hits.set(PhiKind::FullDate);
    }
    if bytes.is_ascii() {
        let name_shaped =
            bytes[0].is_ascii_uppercase() && (bytes.contains(&b' ') || bytes.contains(&b','));
        if !has_digit
            && ((name_shaped && is_latin_name(cell)) || crate::names::is_listed_name(cell))
        {
            hits.set(PhiKind::LatinName);
        }
        if has_digit && is_latin_street_address(cell) {
            hits.set(PhiKind::Address);
        }
        if is_passport(bytes) {
            hits.set(PhiKind::Passport);
        }
    } else {
        if is_chinese_name(cell) {
            hits.set(PhiKind::ChineseName);
        }
        if is_chinese_address(cell) {
            hits.set(PhiKind::Address);
        }
        if is_license_plate(cell) {
            hits.set(PhiKind::LicensePlate);
        }
    }
    if is_free_text(cell) {
        hits.set(PhiKind::FreeText);
    }
    hits
}

pub(crate) fn classify_digits(bytes: &[u8], hits: &mut CellHits) {
    digit_tokens(bytes, |token| {
        let digits = token.digits();
        let groups = token.groups();
        let single = groups.len() == 1;
        // Resident IDs are written without separators.
        if single {
            if digits.len() == 17 && token.trailing_x {
                let mut id = digits.to_vec();
                id.push(b'X');
                if is_resident_id_18(&id) {
                    hits.set(PhiKind::ResidentId);
                }
            } else if (digits.len() == 18 && is_resident_id_18(digits))
                || (digits.len() == 15 && is_resident_id_15(digits))
            {
                hits.set(PhiKind::ResidentId);
            }
        }
        // Mobile: 11 digits, optionally after 86 / 0086.
        let national = digits
            .strip_prefix(b"0086")
            .filter(|rest| rest.len() == 11)
            .or_else(|| digits.strip_prefix(b"86").filter(|rest| rest.len() == 11))
            .unwrap_or(digits);
        if is_mobile_digits(national) && (single || groups.iter().all(|g| *g >= 2)) {
            hits.set(PhiKind::Mobile);
        }
        // Landline: area code 0xx/0xxx then 7-8 digits, separated or parenthesised.
        if digits.first() == Some(&b'0')
            && groups.len() >= 2
            && (3..=4).contains(&groups[0])
            && (7..=8).contains(&groups[1])
            && groups.len() <= 3
        {
            hits.set(PhiKind::Landline);
        }
        if token.plus && digits.starts_with(b"86") && groups.len() >= 2 {
            // +86 10 12345678
            let rest: usize = groups[1..].iter().sum();
            if (9..=11).contains(&rest) {
                hits.set(PhiKind::Landline);
            }
        }
        // North American ddd-ddd-dddd / (ddd) ddd-dddd.
        if groups == [3, 3, 4] && !token.plus {
            hits.set(PhiKind::Landline);
        }
        if groups == [3, 2, 4] {
            hits.set(PhiKind::Ssn);
        }
        if single && (13..=19).contains(&digits.len()) && luhn_valid(digits) {
            let card_prefix = digits.starts_with(b"62")
                || digits[0] == b'4'
                || (51..=55).contains(&number(&digits[..2]))
                || digits.starts_with(b"34")
                || digits.starts_with(b"37");
            if card_prefix && !hits.has(PhiKind::ResidentId) {
                hits.set(PhiKind::BankCard);
            }
        }
    });
}

/// A full date: `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD`, `YYYY年M月D日`, `DD/MM/YYYY` or
/// `MM/DD/YYYY` (with an optional time after it).
pub fn is_full_date(cell: &str) -> bool {
    full_date_year(cell).is_some()
}

/// The year of a full date ([`is_full_date`]).
pub fn full_date_year(cell: &str) -> Option<u32> {
    let cell = cell.trim();
    let head = cell.split([' ', 'T']).next().unwrap_or_default();
    if let Some(rest) = head.strip_suffix('日') {
        let parts: Vec<&str> = rest.split(['年', '月']).collect();
        return (parts.len() == 3 && date_parts(parts[0], parts[1], parts[2]))
            .then(|| number(parts[0].as_bytes()));
    }
    // Two separators or nothing to split: most cells stop here, without allocating.
    if head
        .bytes()
        .filter(|b| matches!(b, b'-' | b'/' | b'.'))
        .count()
        != 2
    {
        return None;
    }
    let parts: Vec<&str> = head.split(['-', '/', '.']).collect();
    let full = if parts[0].len() == 4 {
        date_parts(parts[0], parts[1], parts[2]).then_some(parts[0])
    } else if parts[2].len() == 4 && head.contains('/') {
        (date_parts(parts[2], parts[1], parts[0]) || date_parts(parts[2], parts[0], parts[1]))
            .then_some(parts[2])
    } else {
        None
    };
    full.map(|year| number(year.as_bytes()))
}

fn date_parts(year: &str, month: &str, day: &str) -> bool {
    let numeric = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    numeric(year, 4)
        && year.len() == 4
        && numeric(month, 2)
        && numeric(day, 2)
        && valid_ymd(
            number(year.as_bytes()),
            number(month.as_bytes()),
            number(day.as_bytes()),
        )
        && (1850..=2100).contains(&number(year.as_bytes()))
}

/// The 100 most common Chinese single-character surnames (simplified; 百家姓 by frequency).
const CHINESE_SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";
const COMPOUND_SURNAMES: [&str; 16] = [
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "轩辕", "令狐", "端木",
];

fn is_cjk(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

/// A cell of 2-4 CJK characters starting with a common surname (`·` allowed, for
/// transliterated names).
pub fn is_chinese_name(cell: &str) -> bool {
    let cell = cell.trim();
    let count = cell.chars().count();
    if !(2..=4).contains(&count) || !cell.chars().all(|c| is_cjk(c) || c == '*') {
        return false;
    }
    let first = cell.chars().next().unwrap_or(' ');
    let masked = cell.chars().skip(1).all(|c| c == '*');
    (CHINESE_SURNAMES.contains(first) || COMPOUND_SURNAMES.iter().any(|s| cell.starts_with(s)))
        && !masked
}

/// 2-3 capitalised words (`Mary Smith`, `O'Neil`, `Smith, John`), nothing else, of which
/// one at least is a listed given name or surname ([`crate::names`]): the shape alone also
/// fits `Heart Failure` and `Royal Free`, and with one listed word `Priya Gupta` still reads
/// as a name when `Priya` is not listed.
pub fn is_latin_name(cell: &str) -> bool {
    let words: Vec<&str> = cell.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    if !(2..=3).contains(&words.len()) {
        return false;
    }
    words.iter().all(|word| {
        let mut chars = word.chars();
        chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && word.len() >= 2
            && chars.all(|c| c.is_ascii_lowercase() || matches!(c, '\'' | '-' | '.'))
    }) && words.iter().any(|word| crate::names::is_listed_word(word))
}

/// The column-level rule for names: most cells are name-shaped, and the name values vary as
/// names do. A category of listed words (`White`, `Black`; `May`, `June`; `Grace Clinic`)
/// repeats a few values; names, even first names alone, are mostly distinct in a small table
/// and take dozens of values in a large one.
pub(crate) fn is_name_column(non_null: u64, name_rows: u64, distinct_names: u64) -> bool {
    name_rows > 0
        && name_rows * 2 >= non_null
        && distinct_names >= 3
        && (distinct_names * 2 >= name_rows || distinct_names >= MANY_NAMES)
}

/// Distinct listed names that make a column of names whatever its size: more than any
/// category of name-like words (months, colours, ethnicities) has.
const MANY_NAMES: u64 = 40;

/// A Chinese street-level address: a house/unit number (`12号`, `3栋`, `501室`) and a
/// street or locality marker.
pub fn is_chinese_address(cell: &str) -> bool {
    let mut numbered = false;
    let mut previous_digit = false;
    for c in cell.chars() {
        if previous_digit && matches!(c, '号' | '栋' | '幢' | '室' | '弄' | '单' | '楼') {
            numbered = true;
        }
        previous_digit = c.is_ascii_digit() || ('０'..='９').contains(&c);
    }
    numbered
        && cell
            .chars()
            .any(|c| matches!(c, '路' | '街' | '道' | '巷' | '村' | '区' | '县' | '镇'))
}

const STREET_SUFFIXES: [&str; 18] = [
    "street",
    "st",
    "road",
    "rd",
    "avenue",
    "ave",
    "lane",
    "ln",
    "boulevard",
    "blvd",
    "drive",
    "dr",
    "court",
    "ct",
    "way",
    "place",
    "pl",
    "terrace",
];

/// A Latin-script street address: a house number, a name, a street suffix.
pub fn is_latin_street_address(cell: &str) -> bool {
    // Fewer than three words (most cells): no address, and no allocation.
    if cell.split_whitespace().nth(2).is_none() {
        return false;
    }
    let words: Vec<&str> = cell.split_whitespace().collect();
    words.windows(3).any(|w| {
        w[0].bytes().all(|b| b.is_ascii_digit())
            && w[1].chars().next().is_some_and(|c| c.is_ascii_uppercase())
    }) && words.iter().skip(2).any(|w| {
        let w = w.trim_end_matches([',', '.']).to_ascii_lowercase();
        STREET_SUFFIXES.contains(&w.as_str())
    })
}

/// A Chinese passport number: `E`/`G`/`D`/`S`/`P` + 8 digits, or `E` + letter + 7 digits.
pub fn is_passport(bytes: &[u8]) -> bool {
    bytes.len() == 9
        && matches!(bytes[0], b'E' | b'G' | b'D' | b'S' | b'P')
        && (bytes[1..].iter().all(u8::is_ascii_digit)
            || (bytes[0] == b'E'
                && bytes[1].is_ascii_uppercase()
                && bytes[2..].iter().all(u8::is_ascii_digit)))
}

const PLATE_PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// A mainland licence plate such as `京A12345` or `粤B·D12345` (new-energy, 6 characters).
pub fn is_license_plate(cell: &str) -> bool {
    let cell: String = cell
        .trim()
        .chars()
        .filter(|c| *c != '·' && *c != ' ')
        .collect();
    let mut chars = cell.chars();
    let (Some(province), Some(letter)) = (chars.next(), chars.next()) else {
        return false;
    };
    let rest: Vec<char> = chars.collect();
    PLATE_PROVINCES.contains(province)
        && letter.is_ascii_uppercase()
        && (5..=6).contains(&rest.len())
        && rest
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && rest.iter().any(char::is_ascii_digit)
}

/// Sentence-like text: at least 6 words, or at least 20 CJK characters.
pub fn is_free_text(cell: &str) -> bool {
    if cell.len() < 24 {
        return false;
    }
    if cell
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count()
        >= 6
    {
        return true;
    }
    cell.chars().filter(|c| is_cjk(*c)).count() >= 20
}

// ---------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------

/// What a column header says about the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderHints {
    /// Names a personal name.
    pub name: bool,
    /// Names another direct identifier.
    pub identifier: bool,
    /// Says birth date.
    pub birth: bool,
    /// Says postcode.
    pub postcode: bool,
    /// Says age.
    pub age: bool,
    /// Names a fact about a person that a stranger may know: age, sex, ethnicity, birth,
    /// residence, occupation, marital status (a quasi-identifier when not declared).
    pub demographic: bool,
}

/// A header cut into lower-case tokens: ASCII words split at `_`, `-`, `.`, spaces and any
/// other punctuation, at lower-to-upper case changes (`patientDOB` → `patient`, `dob`) and
/// at letter/digit changes (`addr2` → `addr`, `2`); a run of CJK characters is one token
/// (matched by substring, since Chinese headers are not spaced).
pub fn header_tokens(header: &str) -> Vec<String> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Lower,
        Upper,
        Digit,
        Cjk,
        Other,
    }
    let class = |c: char| {
        if c.is_ascii_lowercase() {
            Class::Lower
        } else if c.is_ascii_uppercase() {
            Class::Upper
        } else if c.is_ascii_digit() {
            Class::Digit
        } else if is_cjk(c) {
            Class::Cjk
        } else if c.is_alphabetic() {
            Class::Lower
        } else {
            Class::Other
        }
    };
    let chars: Vec<char> = header.trim().chars().collect();
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut previous = Class::Other;
    for (i, &c) in chars.iter().enumerate() {
        let this = class(c);
        let next = chars.get(i + 1).map_or(Class::Other, |n| class(*n));
        let boundary = match (previous, this) {
            (_, Class::Other) => true,
            (Class::Other, _) => false,
            (Class::Lower, Class::Upper) => true,
            // `DOBDate` → `dob`, `date`: an upper-case run ends before its last letter
            // when a lower-case letter follows.
            (Class::Upper, Class::Upper) => next == Class::Lower,
            (a, b) => a != b && !(a == Class::Upper && b == Class::Lower),
        };
        if boundary && !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
        if this != Class::Other {
            current.extend(c.to_lowercase());
        }
        previous = this;
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Words that make a header a personal name (`pt_first_name`, `surname`, `xingming`).
const NAME_WORDS: [&str; 14] = [
    "name",
    "names",
    "nm",
    "surname",
    "forename",
    "firstname",
    "lastname",
    "fullname",
    "givenname",
    "familyname",
    "maidenname",
    "middlename",
    "nickname",
    "xingming",
];
/// Pinyin abbreviations of Chinese hospital systems for a patient's name (患者姓名 `hzxm`,
/// 病人姓名 `brxm`, 姓名 `xm`), which only count as whole tokens.
const NAME_PINYIN: [&str; 5] = ["xm", "hzxm", "brxm", "jzxm", "mingzi"];
/// Words that make a `name` someone else's or something else's (`drug_name`, `ward_name`).
const NOT_PERSON: [&str; 48] = [
    "drug",
    "drugs",
    "medication",
    "medicine",
    "med",
    "meds",
    "product",
    "brand",
    "generic",
    "ward",
    "unit",
    "hospital",
    "clinic",
    "site",
    "center",
    "centre",
    "facility",
    "department",
    "dept",
    "test",
    "lab",
    "assay",
    "procedure",
    "diagnosis",
    "dx",
    "disease",
    "device",
    "study",
    "trial",
    "file",
    "column",
    "field",
    "category",
    "class",
    "group",
    "code",
    "organism",
    "specimen",
    "vaccine",
    "insurer",
    "plan",
    "payer",
    "company",
    "employer",
    "project",
    "variable",
    "item",
    "scale",
];
/// Chinese header parts naming a personal name (`药品名称` does not contain them).
const NAME_CJK: [&str; 3] = ["姓名", "名字", "姓氏"];

const BIRTH_WORDS: [&str; 7] = [
    "dob",
    "birth",
    "birthday",
    "birthdate",
    "bday",
    "born",
    "csrq",
];
const BIRTH_CJK: [&str; 3] = ["出生", "生日", "诞辰"];

/// Words that name a direct identifier on their own.
const IDENTIFIER_WORDS: [&str; 27] = [
    "ssn",
    "mrn",
    "passport",
    "phone",
    "telephone",
    "tel",
    "mobile",
    "cellphone",
    "fax",
    "email",
    "mail",
    "address",
    "addr",
    "street",
    "idcard",
    "sfz",
    "sfzh",
    "vin",
    "ip",
    "url",
    "website",
    "iban",
    "plate",
    "license",
    "licence",
    "fingerprint",
    "photo",
];
/// Words that name a direct identifier next to a number word (`insurance_no`,
/// `device_serial`, `member_id`).
const IDENTIFIER_WITH_NUMBER: [&str; 12] = [
    "insurance",
    "policy",
    "member",
    "beneficiary",
    "account",
    "bank",
    "card",
    "device",
    "serial",
    "national",
    "social",
    "health",
];
const NUMBER_WORDS: [&str; 7] = ["number", "no", "num", "nr", "id", "code", "serial"];
/// A record's *number* is the hospital's (`medical_record_number`, `record_no`); a
/// `record_id` is usually the export's own pseudonymous key.
const RECORD_NUMBER_WORDS: [&str; 5] = ["number", "no", "num", "nr", "medical"];
const IDENTIFIER_CJK: [&str; 24] = [
    "身份证",
    "证件号",
    "护照",
    "电话",
    "手机",
    "传真",
    "邮箱",
    "电子邮件",
    "地址",
    "住址",
    "病历号",
    "住院号",
    "门诊号",
    "医保号",
    "医保卡",
    "社保",
    "银行卡",
    "账号",
    "驾驶证",
    "车牌",
    "指纹",
    "照片",
    "人脸",
    "网址",
];

const POSTCODE_WORDS: [&str; 6] = ["zip", "zipcode", "postcode", "postal", "postalcode", "yb"];
const POSTCODE_CJK: [&str; 2] = ["邮编", "邮政编码"];
/// Words of a demographic header (with `age`, birth and postcode words).
/// (`xb`, `nl`, `mz`: the pinyin initials of 性别, 年龄, 民族 in Chinese hospital exports.)
const DEMOGRAPHIC_WORDS: [&str; 32] = [
    "sex",
    "gender",
    "ethnicity",
    "ethnic",
    "race",
    "nationality",
    "citizenship",
    "nation",
    "occupation",
    "job",
    "profession",
    "employer",
    "employment",
    "marital",
    "married",
    "religion",
    "education",
    "region",
    "province",
    "city",
    "county",
    "district",
    "town",
    "village",
    "residence",
    "country",
    "hometown",
    "birthplace",
    "language",
    "xb",
    "nl",
    "mz",
];
const DEMOGRAPHIC_CJK: [&str; 16] = [
    "年龄",
    "性别",
    "民族",
    "国籍",
    "籍贯",
    "职业",
    "工作单位",
    "婚姻",
    "宗教",
    "学历",
    "文化程度",
    "地区",
    "省",
    "城市",
    "区县",
    "居住",
];

/// `age` with one of these is a generalised age, not an age in years.
const AGE_GROUPED: [&str; 8] = [
    "band", "group", "range", "category", "cat", "bracket", "bin", "class",
];

/// Reads a header for hints. A name hint is a name word without a qualifier that makes it
/// a thing's name; the other hints look for their words among the tokens, or for their
/// Chinese terms inside a CJK token.
pub fn header_hints(header: &str) -> HeaderHints {
    let tokens = header_tokens(header);
    let has = |words: &[&str]| tokens.iter().any(|t| words.contains(&t.as_str()));
    let cjk_has = |terms: &[&str]| {
        tokens
            .iter()
            .any(|t| t.chars().any(is_cjk) && terms.iter().any(|term| t.contains(term)))
    };
    let cjk_whole = |terms: &[&str]| tokens.iter().any(|t| terms.contains(&t.as_str()));
    let name = (has(&NAME_WORDS) && !has(&NOT_PERSON))
        || has(&NAME_PINYIN)
        || cjk_has(&NAME_CJK)
        || cjk_whole(&["姓", "名"]);
    let identifier = !name
        && (has(&IDENTIFIER_WORDS)
            || (has(&IDENTIFIER_WITH_NUMBER) && has(&NUMBER_WORDS))
            || (has(&["record"]) && has(&RECORD_NUMBER_WORDS))
            || cjk_has(&IDENTIFIER_CJK));
    HeaderHints {
        name,
        identifier,
        birth: has(&BIRTH_WORDS) || cjk_has(&BIRTH_CJK),
        postcode: has(&POSTCODE_WORDS) || cjk_has(&POSTCODE_CJK),
        age: (has(&["age"]) && !has(&AGE_GROUPED)) || cjk_whole(&["年龄"]),
        demographic: has(&["age", "dob", "yob"])
            || has(&BIRTH_WORDS)
            || has(&POSTCODE_WORDS)
            || has(&DEMOGRAPHIC_WORDS)
            || cjk_has(&DEMOGRAPHIC_CJK)
            || cjk_has(&BIRTH_CJK)
            || cjk_has(&POSTCODE_CJK),
    }
}

// ---------------------------------------------------------------------------------------
// Column scans
// ---------------------------------------------------------------------------------------

struct Tally {
    rows: u64,
    indices: Vec<u64>,
}

struct Tallies {
    cap: usize,
    by_kind: Vec<Tally>,
}

impl Tallies {
    fn new(cap: usize) -> Tallies {
        Tallies {
            cap,
            by_kind: PhiKind::ALL
                .iter()
                .map(|_| Tally {
                    rows: 0,
                    indices: Vec::new(),
                })
                .collect(),
        }
    }

    #[inline]
    fn add_index(&mut self, kind: usize, row: usize) {
        let tally = &mut self.by_kind[kind];
        tally.rows += 1;
        if tally.indices.len() < self.cap {
            tally.indices.push(row as u64);
        }
    }

    fn add(&mut self, kind: PhiKind, row: usize) {
        self.add_index(kind as usize, row);
    }

    fn rows(&self, kind: PhiKind) -> u64 {
        self.by_kind[kind as usize].rows
    }

    fn hit(&mut self, kind: PhiKind) -> PhiHit {
        let tally = &mut self.by_kind[kind as usize];
        PhiHit {
            kind,
            rows: tally.rows,
            row_indices: std::mem::take(&mut tally.indices),
        }
    }
}

/// What the scan of a column should know beyond its cells.
#[derive(Debug, Clone, Copy, Default)]
pub struct ColumnContext {
    /// The column is the declared row id (distinct values expected).
    pub is_row_id: bool,
    /// Most row numbers to keep per finding.
    pub row_cap: usize,
}

/// Most distinct name-shaped values a column scan remembers (enough to tell names, which
/// rarely repeat, from a category that looks like one).
const MAX_NAME_VALUES: usize = 100_000;

/// The years of a column's full dates, to tell dates of birth by their spread: a
/// population's births span its ages (decades), while the events of a collection period
/// (admissions, tests) span a few years.
#[derive(Default)]
pub(crate) struct YearSpread {
    /// Dates per year from [`YearSpread::FIRST`], allocated at the first date.
    counts: Vec<u64>,
    total: u64,
}

impl YearSpread {
    const FIRST: u32 = 1850;
    const LAST: u32 = 2100;
    /// The middle 80 % of dates spans at least this many years: the ages of adults.
    const BIRTH_SPAN: u32 = 40;
    /// Fewest dates to judge a spread by.
    const FEWEST: u64 = 20;

    pub(crate) fn add(&mut self, year: u32) {
        if !(Self::FIRST..=Self::LAST).contains(&year) {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; (Self::LAST - Self::FIRST + 1) as usize];
        }
        self.counts[(year - Self::FIRST) as usize] += 1;
        self.total += 1;
    }

    /// The year below which a share `fraction` of the dates fall.
    fn quantile(&self, fraction: f64) -> u32 {
        let target = (self.total as f64 * fraction).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (offset, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= target {
                return Self::FIRST + offset as u32;
            }
        }
        Self::LAST
    }

    /// Whether the dates spread as births do.
    pub(crate) fn looks_like_births(&self) -> bool {
        self.total >= Self::FEWEST && self.quantile(0.9) - self.quantile(0.1) >= Self::BIRTH_SPAN
    }
}

/// Most distinct full dates a column scan reads the year of.
const MAX_DATE_VALUES: u64 = 100_000;

/// A column scan in progress: the tallies of every kind, fed cell by cell in row order
/// (possibly batch by batch), and the column-level decisions at the end. The caller keeps
/// whatever needs the values themselves (distinct values, name values), so that it can
/// classify each distinct value once.
pub(crate) struct PhiTallies {
    hints: HeaderHints,
    tallies: Tallies,
    non_null: u64,
    name_values: usize,
    /// Years of the distinct full dates of a text column, of every date of a typed one.
    years: YearSpread,
}

impl PhiTallies {
    pub(crate) fn new(header: &str, cap: usize) -> PhiTallies {
        PhiTallies {
            hints: header_hints(header),
            tallies: Tallies::new(cap),
            non_null: 0,
            name_values: 0,
            years: YearSpread::default(),
        }
    }

    /// Everything the scan flags in one text, as [`CellHits`] bits: the cell-level detectors,
    /// and postcodes and ages over 89 where the header says so. Depends on the text only.
    pub(crate) fn text_bits(&self, cell: &str) -> u32 {
        let mut hits = classify_cell(cell);
        if self.hints.postcode && is_postcode(cell) {
            hits.set(PhiKind::Postcode);
        }
        if self.hints.age && cell.trim().parse::<f64>().is_ok_and(|age| age > 89.0) {
            hits.set(PhiKind::AgeOver89);
        }
        hits.0
    }

    /// Whether bits from [`PhiTallies::text_bits`] include a name shape.
    #[inline]
    pub(crate) fn is_name(bits: u32) -> bool {
        let hits = CellHits(bits);
        hits.has(PhiKind::ChineseName) || hits.has(PhiKind::LatinName)
    }

    /// One non-null text cell and its bits.
    #[inline]
    pub(crate) fn record_text(&mut self, row: usize, bits: u32) {
        self.non_null += 1;
        let mut rest = bits;
        while rest != 0 {
            self.tallies.add_index(rest.trailing_zeros() as usize, row);
            rest &= rest - 1;
        }
    }

    /// Whether another distinct name-shaped value should be counted (call
    /// [`PhiTallies::count_name_value`] when the value is new).
    #[inline]
    pub(crate) fn wants_name_values(&self) -> bool {
        self.name_values < MAX_NAME_VALUES
    }

    /// A distinct name-shaped value not seen before.
    #[inline]
    pub(crate) fn count_name_value(&mut self) {
        self.name_values += 1;
    }

    /// Whether bits from [`PhiTallies::text_bits`] include a full date whose year should be
    /// read (call [`PhiTallies::count_date_value`] when the value is new).
    #[inline]
    pub(crate) fn wants_date_value(&self, bits: u32) -> bool {
        CellHits(bits).has(PhiKind::FullDate) && self.years.total < MAX_DATE_VALUES
    }

    /// A distinct full date not seen before.
    pub(crate) fn count_date_value(&mut self, cell: &str) {
        if let Some(year) = full_date_year(cell) {
            self.years.add(year);
        }
    }

    /// Whether the header says age or postcode (integer scans then look at every value).
    pub(crate) fn integer_hints(&self) -> bool {
        self.hints.age || self.hints.postcode
    }

    /// One non-null integer cell.
    #[inline]
    pub(crate) fn record_integer(&mut self, row: usize, value: i64) {
        if value >= 10_000_000_000 {
            let digits = value.to_string();
            let hits = {
                let mut hits = CellHits::default();
                classify_digits(digits.as_bytes(), &mut hits);
                hits
            };
            for kind in [PhiKind::ResidentId, PhiKind::Mobile, PhiKind::BankCard] {
                if hits.has(kind) {
                    self.tallies.add(kind, row);
                }
            }
        }
        if self.hints.age && value > 89 {
            self.tallies.add(PhiKind::AgeOver89, row);
        }
        if self.hints.postcode && (10_000..=999_999).contains(&value) {
            self.tallies.add(PhiKind::Postcode, row);
        }
    }

    /// Column-level decisions of a text column. `distinct` is the number of distinct
    /// non-null values and up to 100 of them, when they were tracked to the end (they are
    /// not for the row id, nor once more than a tenth of the rows repeat).
    pub(crate) fn text_hits<S: AsRef<str>>(mut self, distinct: Option<(u64, &[S])>) -> Vec<PhiHit> {
        let tallies = &mut self.tallies;
        let non_null = self.non_null;
        let hints = self.hints;
        let mut hits = Vec::new();
        let strong = [
            PhiKind::ResidentId,
            PhiKind::Mobile,
            PhiKind::Landline,
            PhiKind::Email,
            PhiKind::Url,
            PhiKind::IpAddress,
            PhiKind::Ssn,
            PhiKind::BankCard,
            PhiKind::LicensePlate,
            PhiKind::Address,
            PhiKind::Postcode,
            PhiKind::AgeOver89,
        ];
        for kind in strong {
            if tallies.rows(kind) > 0 {
                hits.push(tallies.hit(kind));
            }
        }
        let most = |count: u64| count > 0 && count * 2 >= non_null;
        let names = tallies.rows(PhiKind::ChineseName) + tallies.rows(PhiKind::LatinName);
        if is_name_column(non_null, names, self.name_values as u64) {
            let kind = if tallies.rows(PhiKind::ChineseName) >= tallies.rows(PhiKind::LatinName) {
                PhiKind::ChineseName
            } else {
                PhiKind::LatinName
            };
            hits.push(tallies.hit(kind));
        }
        if most(tallies.rows(PhiKind::Passport)) {
            hits.push(tallies.hit(PhiKind::Passport));
        }
        if tallies.rows(PhiKind::FreeText) > 0 && tallies.rows(PhiKind::FreeText) * 4 >= non_null {
            hits.push(tallies.hit(PhiKind::FreeText));
        }
        if most(tallies.rows(PhiKind::FullDate)) {
            let mut hit = tallies.hit(PhiKind::FullDate);
            if hints.birth || self.years.looks_like_births() {
                hit.kind = PhiKind::DateOfBirth;
            }
            hits.push(hit);
        }
        hits.extend(header_findings(hints));
        if let Some((count, sample)) = distinct
            && non_null >= 20
            && count * 10 >= non_null * 9
            && let Some(kind) = distinct_column_kind(sample.iter().map(AsRef::as_ref))
        {
            hits.push(PhiHit {
                kind,
                rows: non_null,
                row_indices: Vec::new(),
            });
        }
        hits
    }

    /// Column-level decisions of an integer (or float) column.
    pub(crate) fn integer_hits(mut self) -> Vec<PhiHit> {
        let mut hits: Vec<PhiHit> = [
            PhiKind::ResidentId,
            PhiKind::Mobile,
            PhiKind::BankCard,
            PhiKind::AgeOver89,
            PhiKind::Postcode,
        ]
        .into_iter()
        .filter(|kind| self.tallies.rows(*kind) > 0)
        .collect::<Vec<_>>()
        .into_iter()
        .map(|kind| self.tallies.hit(kind))
        .collect();
        hits.extend(header_findings(self.hints));
        hits
    }

    /// Header hints only (columns of other types).
    pub(crate) fn header_hits(self) -> Vec<PhiHit> {
        header_findings(self.hints)
    }

    /// One present value of a typed date column (`Date32`, `Date64`, timestamps): a full
    /// date, unless the manifest declares a coarser precision (then the caller skips it).
    pub(crate) fn record_typed_date(&mut self, row: usize, year: i32) {
        self.non_null += 1;
        self.tallies.add(PhiKind::FullDate, row);
        if let Ok(year) = u32::try_from(year) {
            self.years.add(year);
        }
    }

    /// Column-level decisions of a typed date column: full dates in most rows (a date of
    /// birth under a birth header), and the header's hints.
    pub(crate) fn date_hits(mut self) -> Vec<PhiHit> {
        let mut hits = Vec::new();
        let full = self.tallies.rows(PhiKind::FullDate);
        if full > 0 && full * 2 >= self.non_null {
            let mut hit = self.tallies.hit(PhiKind::FullDate);
            if self.hints.birth || self.years.looks_like_births() {
                hit.kind = PhiKind::DateOfBirth;
            }
            hits.push(hit);
        }
        hits.extend(header_findings(self.hints));
        hits
    }
}

/// Scans a typed date column: `day_precision` is false when the manifest declares the
/// column's dates as months or years (stored as their first day), which are not full dates.
pub fn scan_date_column(
    header: &str,
    years: impl Iterator<Item = Option<i32>>,
    context: ColumnContext,
    day_precision: bool,
) -> Vec<PhiHit> {
    let mut tallies = PhiTallies::new(header, context.row_cap);
    if day_precision {
        for (row, year) in years.enumerate() {
            if let Some(year) = year {
                tallies.record_typed_date(row, year);
            }
        }
    }
    tallies.date_hits()
}

/// The year of each row of a typed date column (`None` where null or unreadable).
pub fn typed_date_years(column: &dyn arrow::array::Array) -> Vec<Option<i32>> {
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Date32Type};
    match arrow::compute::cast(column, &DataType::Date32) {
        Ok(days) => days
            .as_primitive::<Date32Type>()
            .iter()
            .map(|days| days.map(year_of_days))
            .collect(),
        Err(_) => (0..column.len())
            .map(|row| column.is_valid(row).then_some(0))
            .collect(),
    }
}

/// The proleptic Gregorian year of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`; a dependency for one year is not worth it).
fn year_of_days(days: i32) -> i32 {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let year = year_of_era + era * 400 + i64::from(month_index >= 10);
    i32::try_from(year).unwrap_or(0)
}

/// Whether a typed date column of `manifest` holds full dates: yes, unless its field
/// declares a month or year precision (stored as the first day of the period).
pub(crate) fn typed_dates_are_days(manifest: &crate::manifest::Manifest, name: &str) -> bool {
    manifest
        .field(name)
        .and_then(|field| field.precision)
        .is_none_or(|precision| precision == crate::manifest::DatePrecision::Day)
}

/// Whether a storage type holds typed dates (or date-times).
pub fn is_date_type(data_type: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType;
    matches!(
        data_type,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
    )
}

/// Scans a text column: header hints, every cell, then column-level decisions.
pub fn scan_text_column(
    header: &str,
    column: &TextColumn<'_>,
    context: ColumnContext,
) -> Vec<PhiHit> {
    let mut check = crate::check::TextCheck::new(
        Some(PhiTallies::new(header, context.row_cap)),
        !context.is_row_id,
        None,
        column.len(),
    );
    check.feed(column, 0);
    check.finish().0
}

fn header_findings(hints: HeaderHints) -> Vec<PhiHit> {
    let mut hits = Vec::new();
    for (flag, kind) in [
        (hints.name, PhiKind::NameHeader),
        (hints.identifier, PhiKind::IdentifierHeader),
    ] {
        if flag {
            hits.push(PhiHit {
                kind,
                rows: 0,
                row_indices: Vec::new(),
            });
        }
    }
    hits
}

/// Whether a cell is shaped like a record, insurance, accession or device number: 6 to 24
/// characters of letters, digits and `- _ / . #` with at least 4 digits, of which digits-only
/// codes need 7 (shorter ones are counts and measurements); never a decimal number or a
/// full date.
pub fn is_record_code(cell: &str) -> bool {
    let cell = cell.trim();
    let bytes = cell.as_bytes();
    if !(6..=24).contains(&bytes.len())
        || !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/.#".contains(b))
    {
        return false;
    }
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    let letters = bytes.iter().filter(|b| b.is_ascii_alphabetic()).count();
    if digits < 4 || (letters == 0 && digits < 7) {
        return false;
    }
    let decimal = letters == 0 && bytes.contains(&b'.') && cell.parse::<f64>().is_ok();
    !decimal && !is_full_date(cell) && !is_icd10_code(bytes)
}

/// An ICD-10 code (`I50.9`, `E11.65`, `S72.0011`): a letter, two digits, an optional digit or
/// letter, then optionally a dot and up to four more. Diagnoses, not identifiers.
fn is_icd10_code(bytes: &[u8]) -> bool {
    let (head, tail) = match bytes.iter().position(|b| *b == b'.') {
        Some(dot) => (&bytes[..dot], Some(&bytes[dot + 1..])),
        None => (bytes, None),
    };
    let head_ok = (3..=4).contains(&head.len())
        && head[0].is_ascii_uppercase()
        && head[1].is_ascii_digit()
        && head[2].is_ascii_digit()
        && head.get(3).is_none_or(u8::is_ascii_alphanumeric);
    head_ok
        && tail
            .is_none_or(|t| (1..=4).contains(&t.len()) && t.iter().all(u8::is_ascii_alphanumeric))
}

/// The column-level decision on a text column whose values are (nearly) all distinct,
/// from its first distinct values: codes shaped like record numbers are an error
/// (`phi.record_number`); other text a warning (`phi.unique_identifier`); numbers
/// (measurements are often distinct too) nothing.
pub(crate) fn distinct_column_kind<'a>(
    sample: impl Iterator<Item = &'a str> + Clone,
) -> Option<PhiKind> {
    let sample = sample.take(100);
    let (total, numbers, codes) = sample.fold((0, 0, 0), |(t, n, c), value| {
        let code = is_record_code(value);
        (
            t + 1,
            // Full dates are reported as dates, not as identifiers too.
            n + usize::from(!code && (is_measurement(value) || is_full_date(value))),
            c + usize::from(code),
        )
    });
    if total > 0 && codes * 10 >= total * 9 {
        Some(PhiKind::RecordNumber)
    } else if numbers == total {
        None
    } else {
        Some(PhiKind::UniqueIdentifier)
    }
}

/// A number, or a few small numbers among words: `37.2`, `120/80`, `metformin 500 mg`,
/// `2 x 0.5 mL`. Measurements are often distinct in a small table without identifying
/// anyone; an identifier needs more digits than three to a group (`ID 4521`) to number a
/// hospital's patients.
fn is_measurement(value: &str) -> bool {
    let value = value.trim();
    if value.parse::<f64>().is_ok() {
        return true;
    }
    let mut groups = 0;
    let mut run = 0;
    for byte in value.bytes().chain([b' ']) {
        if byte.is_ascii_digit() {
            run += 1;
        } else {
            if run > 3 {
                return false;
            }
            groups += usize::from(run > 0);
            run = 0;
        }
    }
    (1..=3).contains(&groups)
}

/// A 6-digit (China) or 5-digit / ZIP+4 (US) postal code.
pub fn is_postcode(cell: &str) -> bool {
    let cell = cell.trim().as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match cell.len() {
        5 | 6 => digits(cell),
        10 => cell[5] == b'-' && digits(&cell[..5]) && digits(&cell[6..]),
        _ => false,
    }
}

/// Scans an integer column (numbers cannot carry text identifiers, but phone and ID numbers
/// fit in 64 bits).
pub fn scan_integer_column(
    header: &str,
    values: impl Iterator<Item = Option<i64>>,
    context: ColumnContext,
) -> Vec<PhiHit> {
    let mut tallies = PhiTallies::new(header, context.row_cap);
    for (row, value) in values.enumerate() {
        if let Some(value) = value {
            tallies.record_integer(row, value);
        }
    }
    tallies.integer_hits()
}

/// Scans a float column: whole numbers are checked as integers.
pub fn scan_float_column(
    header: &str,
    values: impl Iterator<Item = Option<f64>>,
    context: ColumnContext,
) -> Vec<PhiHit> {
    scan_integer_column(
        header,
        values.map(|v| v.and_then(float_as_integer)),
        context,
    )
}

/// How the integer scan reads a float: whole numbers as themselves, fractional values above
/// 89 as 90 (keeps the age check for fractional ages), the rest not at all.
#[inline]
pub(crate) fn float_as_integer(value: f64) -> Option<i64> {
    if value.fract() == 0.0 && value.abs() < 9.0e18 {
        Some(value as i64)
    } else if value > 89.0 {
        Some(90)
    } else {
        None
    }
}

/// Scans a column of another type (booleans, dates...): header hints only.
pub fn scan_header_only(header: &str) -> Vec<PhiHit> {
    header_findings(header_hints(header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with_check(first17: &str) -> String {
        let check = resident_id_check_char(first17.as_bytes()).unwrap();
        format!("{first17}{}", check as char)
    }

    #[test]
    fn resident_id_checksum() {
        // The worked example of GB 11643-1999.
        assert!(is_resident_id_18(b"11010519491231002X"));
        assert!(is_resident_id_18(b"11010519491231002x"));
        assert!(!is_resident_id_18(b"110105194912310021"));
        assert!(is_resident_id_18(
            with_check("44030419900307123").as_bytes()
        ));
        // Invalid date, invalid province.
        assert!(!is_resident_id_18(
            with_check("44030419900230123").as_bytes()
        ));
        assert!(!is_resident_id_18(
            with_check("99030419900307123").as_bytes()
        ));
        assert!(is_resident_id_15(b"110105491231002"));
        assert!(!is_resident_id_15(b"110105491331002"));
        assert!(classify_cell("11010519491231002X").has(PhiKind::ResidentId));
        assert!(classify_cell("ID: 11010519491231002X.").has(PhiKind::ResidentId));
        assert!(!classify_cell("110105194912310021").has(PhiKind::ResidentId));
    }

    #[test]
    fn phones_and_addresses() {
        for mobile in [
            "13812345678",
            "+86 138 1234 5678",
            "138-1234-5678",
            "008613812345678",
            "call 15912345678 now",
        ] {
            assert!(classify_cell(mobile).has(PhiKind::Mobile), "{mobile}");
        }
        for not_mobile in ["12812345678", "1381234567", "2021-03-15", "138123456789"] {
            assert!(
                !classify_cell(not_mobile).has(PhiKind::Mobile),
                "{not_mobile}"
            );
        }
        for landline in [
            "010-12345678",
            "0755-1234567",
            "(010) 12345678",
            "+86-10-12345678",
            "415-555-2671",
        ] {
            assert!(classify_cell(landline).has(PhiKind::Landline), "{landline}");
        }
        assert!(!classify_cell("2021-03-15").has(PhiKind::Landline));
        assert!(classify_cell("123-45-6789").has(PhiKind::Ssn));
        assert!(classify_cell("wang.li@example.cn").has(PhiKind::Email));
        assert!(!classify_cell("a@b").has(PhiKind::Email));
        assert!(classify_cell("https://x.example/p").has(PhiKind::Url));
        assert!(classify_cell("see www.example.com").has(PhiKind::Url));
        assert!(classify_cell("192.168.1.20").has(PhiKind::IpAddress));
        assert!(classify_cell("fe80::1ff:fe23:4567:890a").has(PhiKind::IpAddress));
        assert!(!classify_cell("1.2.3").has(PhiKind::IpAddress));
        assert!(classify_cell("北京市朝阳区建国路88号").has(PhiKind::Address));
        assert!(classify_cell("12 Baker Street, London").has(PhiKind::Address));
        assert!(!classify_cell("3号床").has(PhiKind::Address));
        assert!(classify_cell("京A12345").has(PhiKind::LicensePlate));
        assert!(
            classify_cell("6222021234567890123").has(PhiKind::BankCard)
                == luhn_valid(b"6222021234567890123")
        );
        assert!(classify_cell("2019-07-04").has(PhiKind::FullDate));
        assert!(classify_cell("1987年3月15日").has(PhiKind::FullDate));
        assert!(classify_cell("03/15/1987").has(PhiKind::FullDate));
        assert!(!classify_cell("2019-07").has(PhiKind::FullDate));
        assert!(classify_cell("张伟").has(PhiKind::ChineseName));
        assert!(classify_cell("欧阳娜娜").has(PhiKind::ChineseName));
        assert!(!classify_cell("张**").has(PhiKind::ChineseName));
        assert!(!classify_cell("男").has(PhiKind::ChineseName));
        assert!(classify_cell("Mary Smith").has(PhiKind::LatinName));
        assert!(!classify_cell("12.5").has(PhiKind::LatinName));
        assert!(
            classify_cell("Patient reports chest pain radiating to the left arm since Monday")
                .has(PhiKind::FreeText)
        );
        assert!(!classify_cell("40-49").has(PhiKind::Mobile));
    }

    #[test]
    fn headers() {
        assert!(header_hints("Patient Name").name);
        assert!(header_hints("patientName").name);
        assert!(header_hints("患者姓名").name);
        assert!(!header_hints("drug_name").name);
        assert!(header_hints("手机号码").identifier);
        assert!(header_hints("MRN").identifier);
        assert!(header_hints("出生日期").birth);
        assert!(header_hints("zip_code").postcode);
        assert!(!header_hints("age_band").age);
    }

    #[test]
    fn typed_dates_are_full_dates_unless_declared_coarser() {
        let context = ColumnContext {
            is_row_id: false,
            row_cap: 3,
        };
        let present = [Some(2020), Some(2021), None, Some(2020)];
        let kinds = |header: &str, days: bool| -> Vec<PhiKind> {
            scan_date_column(header, present.iter().copied(), context, days)
                .into_iter()
                .map(|hit| hit.kind)
                .collect()
        };
        assert_eq!(kinds("patient_dob", true), [PhiKind::DateOfBirth]);
        assert!(PhiKind::DateOfBirth.is_error());
        assert_eq!(kinds("admission_date", true), [PhiKind::FullDate]);
        assert!(kinds("admission_month", false).is_empty());
        let hit = &scan_date_column("dob", present.iter().copied(), context, true)[0];
        assert_eq!((hit.rows, hit.row_indices.clone()), (3, vec![0, 1, 3]));
        // Years spread over the ages of adults: births, whatever the header says.
        let births: Vec<Option<i32>> = (0..60).map(|i| Some(1930 + i)).collect();
        let hits = scan_date_column("event_date", births.into_iter(), context, true);
        assert_eq!(hits[0].kind, PhiKind::DateOfBirth);
    }

    #[test]
    fn full_dates_spread_over_decades_are_dates_of_birth() {
        let births: Vec<String> = (0..60)
            .map(|i| format!("{}-{:02}-{:02}", 1930 + i, 1 + i % 12, 1 + i % 28))
            .collect();
        let births: Vec<&str> = births.iter().map(String::as_str).collect();
        assert_eq!(scan("d1", &births), [PhiKind::DateOfBirth]);
        // Admissions over a collection period: a warning to generalise.
        let admissions: Vec<String> = (0..60)
            .map(|i| format!("{:02}/{:02}/{}", 1 + i % 12, 1 + i % 28, 2018 + i % 4))
            .collect();
        let admissions: Vec<&str> = admissions.iter().map(String::as_str).collect();
        assert_eq!(scan("d1", &admissions), [PhiKind::FullDate]);
        // Too few dates to judge by their spread.
        assert_eq!(scan("d1", &births[..10]), [PhiKind::FullDate]);
        assert_eq!(full_date_year("2021年3月5日"), Some(2021));
        assert_eq!(full_date_year("31/12/1957"), Some(1957));
        assert_eq!(full_date_year("1957-13-01"), None);
    }

    #[test]
    fn years_of_day_counts() {
        for (days, year) in [
            (0, 1970),
            (-1, 1969),
            (365, 1971),
            (10_956, 1999),
            (10_957, 2000),
            (-25_567, 1900),
            (19_722, 2023),
            (19_723, 2024),
        ] {
            assert_eq!(year_of_days(days), year, "{days}");
        }
    }

    #[test]
    fn record_codes_by_shape() {
        for code in [
            "MRN00123456",
            "A1234567",
            "INS-4839-2011",
            "SN4X8392011",
            "0012345678",
            "2021/000123",
            "HN#883920",
            "R00012",
        ] {
            assert!(is_record_code(code), "{code}");
        }
        for other in [
            "I50.9",
            "E11.65",
            "S72.0011",
            "123.456",
            "98.6",
            "12345",
            "2021-03-04",
            "Heart Failure",
            "40-49",
            "mmol/L",
            "ABCDEFG",
            "A-12",
            "3.14159265",
        ] {
            assert!(!is_record_code(other), "{other}");
        }
        // Distinct codes are an error; distinct measurements nothing; other text a warning.
        assert_eq!(
            distinct_column_kind(["A1234567", "A1234568", "A1234569"].into_iter()),
            Some(PhiKind::RecordNumber)
        );
        assert_eq!(
            distinct_column_kind(["98.6", "101.2", "99.1"].into_iter()),
            None
        );
        assert_eq!(
            distinct_column_kind(["east wing", "west wing"].into_iter()),
            Some(PhiKind::UniqueIdentifier)
        );
    }

    #[test]
    fn headers_are_read_by_tokens() {
        assert_eq!(header_tokens("pt_First-Name"), ["pt", "first", "name"]);
        assert_eq!(header_tokens("patientDOB"), ["patient", "dob"]);
        assert_eq!(header_tokens("DOBDate"), ["dob", "date"]);
        assert_eq!(header_tokens("addr2 line"), ["addr", "2", "line"]);
        assert_eq!(header_tokens("患者姓名 (full)"), ["患者姓名", "full"]);
        // Names, in every form exports use; things' names are not people's.
        for header in [
            "pt_first_name",
            "PatientLastName",
            "surname",
            "FAMILY_NAME",
            "given-name",
            "maiden name",
            "mother_name",
            "nm_first",
            "xingming",
            "HZXM",
            "姓名",
            "姓",
            "患者名字",
        ] {
            assert!(header_hints(header).name, "{header}");
        }
        for header in [
            "drug_name",
            "WardName",
            "test name",
            "hospital_name",
            "药品名称",
            "diagnosis_name",
            "site",
            "first_visit",
            "last_dose",
        ] {
            assert!(!header_hints(header).name, "{header}");
        }
        // Birth, contact, identifiers, postcodes, ages.
        for header in [
            "patient_dob",
            "DateOfBirth",
            "birth_dt",
            "出生年月日",
            "csrq",
        ] {
            assert!(header_hints(header).birth, "{header}");
        }
        for header in [
            "home_phone",
            "pt_email",
            "contactTel",
            "street_address",
            "insurance_no",
            "medical_record_number",
            "device_serial_no",
            "member_id",
            "联系电话",
            "sfzh",
            "医保卡号",
        ] {
            assert!(header_hints(header).identifier, "{header}");
        }
        for header in [
            "record_id",
            "patient_id",
            "lab_test_code",
            "icd10_code",
            "ward",
            "unit",
            "heart_rate",
            "admission_date",
            "discharge_disposition",
            "serum_sodium",
        ] {
            let hints = header_hints(header);
            assert!(!hints.identifier && !hints.name && !hints.birth, "{header}");
        }
        assert!(header_hints("patient_zip").postcode && header_hints("邮政编码").postcode);
        assert!(header_hints("AgeYears").age && header_hints("age_at_admission").age);
        assert!(!header_hints("age_group").age && !header_hints("stage").age);
    }

    fn text_column(values: &[&str]) -> arrow::array::StringArray {
        arrow::array::StringArray::from(values.to_vec())
    }

    fn scan(header: &str, values: &[&str]) -> Vec<PhiKind> {
        let array = text_column(values);
        let column = TextColumn::Utf8(&array);
        scan_text_column(
            header,
            &column,
            ColumnContext {
                is_row_id: false,
                row_cap: 10,
            },
        )
        .into_iter()
        .map(|hit| hit.kind)
        .collect()
    }

    #[test]
    fn column_level_decisions() {
        let names = ["Mary Smith", "John Doe", "Wei Zhang", "Ana Lopez"];
        assert!(scan("who", &names).contains(&PhiKind::LatinName));
        let categories: Vec<&str> = ["Heart Failure", "Chest Pain"]
            .iter()
            .cycle()
            .take(100)
            .copied()
            .collect();
        assert!(!scan("diagnosis", &categories).contains(&PhiKind::LatinName));
        let chinese = ["张伟", "王芳", "李娜", "刘洋", "陈静"];
        assert!(scan("x", &chinese).contains(&PhiKind::ChineseName));
        let bands: Vec<&str> = ["40-49", "50-59", "60-69"]
            .iter()
            .cycle()
            .take(90)
            .copied()
            .collect();
        assert!(scan("age_band", &bands).is_empty());
        assert_eq!(
            scan("dob", &["1980-01-02", "1975-12-30"]),
            vec![PhiKind::DateOfBirth]
        );
        assert!(scan("phone", &["a"]).contains(&PhiKind::IdentifierHeader));
        assert!(scan("zip", &["100020"]).contains(&PhiKind::Postcode));
        let codes: Vec<String> = (0..50).map(|i| format!("K{i:05}Q")).collect();
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        assert!(scan("code", &codes).contains(&PhiKind::RecordNumber));
        let distinct: Vec<String> = (0..50u8)
            .map(|i| format!("pt {}{}", (b'a' + i / 26) as char, (b'a' + i % 26) as char))
            .collect();
        let distinct: Vec<&str> = distinct.iter().map(String::as_str).collect();
        assert!(scan("case", &distinct).contains(&PhiKind::UniqueIdentifier));
        // Distinct measurements are not identifiers; four digits to a group may be.
        let pressures: Vec<String> = (0..50).map(|i| format!("{}/{}", 100 + i, 60 + i)).collect();
        let pressures: Vec<&str> = pressures.iter().map(String::as_str).collect();
        assert!(scan("bp", &pressures).is_empty());
        let numbered: Vec<String> = (0..50).map(|i| format!("ID {}", 4000 + i)).collect();
        let numbered: Vec<&str> = numbered.iter().map(String::as_str).collect();
        assert!(scan("case", &numbered).contains(&PhiKind::UniqueIdentifier));
        let row = scan_text_column(
            "notes",
            &TextColumn::Utf8(&text_column(&["ok", "ok", "tel 13812345678"])),
            ColumnContext {
                is_row_id: false,
                row_cap: 10,
            },
        );
        assert_eq!(row[0].kind, PhiKind::Mobile);
        assert_eq!((row[0].rows, row[0].row_indices.clone()), (1, vec![2]));
    }

    #[test]
    fn integer_columns() {
        let hits = scan_integer_column(
            "contact",
            [Some(13_812_345_678), Some(5), None].into_iter(),
            ColumnContext {
                is_row_id: false,
                row_cap: 10,
            },
        );
        assert_eq!(hits[0].kind, PhiKind::Mobile);
        let hits = scan_float_column(
            "age",
            [Some(91.0), Some(40.0)].into_iter(),
            ColumnContext {
                is_row_id: false,
                row_cap: 10,
            },
        );
        assert_eq!(hits[0].kind, PhiKind::AgeOver89);
    }

    fn arbitrary_id_body() -> impl Strategy<Value = String> {
        (
            11u32..=82,
            0u32..10_000,
            1900u32..2099,
            1u32..=12,
            1u32..=28,
            0u32..1000,
        )
            .prop_map(|(p, area, y, m, d, seq)| {
                format!("{p:02}{area:04}{y:04}{m:02}{d:02}{seq:03}")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_checksum_valid_id_is_detected(body in arbitrary_id_body()) {
            let id = with_check(&body);
            prop_assert!(is_resident_id_18(id.as_bytes()));
            prop_assert!(classify_cell(&id).has(PhiKind::ResidentId));
            let in_text = format!("no. {id}");
            prop_assert!(classify_cell(&in_text).has(PhiKind::ResidentId));
        }

        #[test]
        fn every_wrong_check_char_is_rejected(body in arbitrary_id_body(), wrong in 0usize..11) {
            let right = resident_id_check_char(body.as_bytes()).unwrap();
            let candidate = ID_CHECK[wrong];
            prop_assume!(candidate != right);
            let id = format!("{body}{}", candidate as char);
            prop_assert!(!is_resident_id_18(id.as_bytes()));
        }

        #[test]
        fn a_single_digit_error_breaks_the_checksum(body in arbitrary_id_body(), at in 0usize..17, delta in 1u8..10) {
            let id = with_check(&body);
            let mut bytes = id.into_bytes();
            bytes[at] = b'0' + (bytes[at] - b'0' + delta) % 10;
            // MOD 11-2 detects every single-digit substitution.
            prop_assert!(resident_id_check_char(&bytes[..17]) != Some(bytes[17]));
        }

        #[test]
        fn mobiles_are_detected(prefix in 3u8..=9, rest in 0u64..1_000_000_000) {
            let number = format!("1{prefix}{rest:09}");
            prop_assert!(classify_cell(&number).has(PhiKind::Mobile));
            let grouped = format!("{}-{}-{}", &number[..3], &number[3..7], &number[7..]);
            prop_assert!(classify_cell(&grouped).has(PhiKind::Mobile));
        }

        #[test]
        fn plain_numbers_are_never_phi(value in -1.0e6f64..1.0e6) {
            let text = format!("{value:.3}");
            prop_assert!(classify_cell(&text).is_empty());
        }

        #[test]
        fn classify_never_panics(text in "\\PC{0,64}") {
            let _ = classify_cell(&text);
            let _ = header_hints(&text);
        }
    }
}
