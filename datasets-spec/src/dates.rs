//! ISO 8601 calendar dates of declared precision (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`).
//!
//! Hand-written rather than pulled from chrono: we need exactly these three forms, the
//! precision a text carries, and day numbers for bounds; nothing else.

use crate::manifest::DatePrecision;

/// A date that may stop at the year or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialDate {
    /// Calendar year (0001-9999).
    pub year: i32,
    /// Month 1-12, if given.
    pub month: Option<u8>,
    /// Day of month, if given (always with a month).
    pub day: Option<u8>,
}

impl PartialDate {
    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; `None` for anything else or an impossible date.
    pub fn parse(text: &str) -> Option<PartialDate> {
        let bytes = text.as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = bytes.get(range)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
        };
        let year = digits(0..4)?;
        if year == 0 {
            return None;
        }
        let (month, day) = match bytes.len() {
            4 => (None, None),
            7 if bytes[4] == b'-' => (Some(digits(5..7)?), None),
            10 if bytes[4] == b'-' && bytes[7] == b'-' => {
                (Some(digits(5..7)?), Some(digits(8..10)?))
            }
            _ => return None,
        };
        let year = year as i32;
        if let Some(month) = month
            && !(1..=12).contains(&month)
        {
            return None;
        }
        if let (Some(month), Some(day)) = (month, day)
            && (day == 0 || day > days_in_month(year, month as u8) as u32)
        {
            return None;
        }
        Some(PartialDate {
            year,
            month: month.map(|m| m as u8),
            day: day.map(|d| d as u8),
        })
    }

    /// The finest part this date carries.
    pub fn precision(&self) -> DatePrecision {
        match (self.month, self.day) {
            (_, Some(_)) => DatePrecision::Day,
            (Some(_), None) => DatePrecision::Month,
            _ => DatePrecision::Year,
        }
    }

    /// Days since 1970-01-01 of the first day covered.
    pub fn first_day(&self) -> i32 {
        days_from_civil(self.year, self.month.unwrap_or(1), self.day.unwrap_or(1))
    }

    /// Days since 1970-01-01 of the last day covered.
    pub fn last_day(&self) -> i32 {
        let month = self.month.unwrap_or(12);
        let day = self.day.unwrap_or_else(|| days_in_month(self.year, month));
        days_from_civil(self.year, month, day)
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in a month of a year.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i32 {
    let (month, day) = (i32::from(month), i32::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// (year, month, day) of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i32) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = year_of_era + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

/// Formats a day number at a precision.
pub fn format_day(days: i32, precision: DatePrecision) -> String {
    let (year, month, day) = civil_from_days(days);
    match precision {
        DatePrecision::Year => format!("{year:04}"),
        DatePrecision::Month => format!("{year:04}-{month:02}"),
        DatePrecision::Day => format!("{year:04}-{month:02}-{day:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_three_forms_and_rejects_the_rest() {
        assert_eq!(
            PartialDate::parse("2021").unwrap().precision(),
            DatePrecision::Year
        );
        assert_eq!(
            PartialDate::parse("2021-03").unwrap().precision(),
            DatePrecision::Month
        );
        assert_eq!(
            PartialDate::parse("2020-02-29").unwrap().precision(),
            DatePrecision::Day
        );
        for bad in [
            "2021-02-29",
            "2021-13",
            "21-03",
            "2021/03/01",
            "2021-3",
            "",
            "0000",
            "2021-03-00",
        ] {
            assert!(PartialDate::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            PartialDate::parse("2021-02").unwrap().last_day(),
            days_from_civil(2021, 2, 28)
        );
    }

    proptest! {
        #[test]
        fn civil_round_trips(days in -200_000i32..200_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
