//! HTTP-date parsing (RFC 9110 section 5.6.7), for `Retry-After`.
//!
//! Written here rather than pulled in as a crate because it is small and only needed to read
//! one header. Senders must use IMF-fixdate; recipients must also accept the obsolete RFC 850
//! and asctime forms:
//!
//! ```text
//! Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate
//! Sunday, 06-Nov-94 08:49:37 GMT   RFC 850
//! Sun Nov  6 08:49:37 1994         asctime
//! ```
//!
//! Names are accepted in any case and the weekday is not checked against the date: a wrong
//! weekday still says clearly when to come back.

use std::time::{Duration, SystemTime};

const SHORT_DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The instant `value` names, or `None` if it is not an HTTP-date. `now` decides the century
/// of an RFC 850 two-digit year.
pub(super) fn parse(value: &str, now: SystemTime) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let (year, month, day, time) = match parts.as_slice() {
        [weekday, day, month, year, time, zone] => {
            expect_name(weekday.strip_suffix(',')?, &SHORT_DAYS)?;
            expect_gmt(zone)?;
            (
                number(year, 4, 4)?,
                month_number(month)?,
                number(day, 2, 2)?,
                *time,
            )
        }
        [weekday, date, time, zone] => {
            expect_name(weekday.strip_suffix(',')?, &LONG_DAYS)?;
            expect_gmt(zone)?;
            let mut fields = date.split('-');
            let day = number(fields.next()?, 2, 2)?;
            let month = month_number(fields.next()?)?;
            let two_digit_year = number(fields.next()?, 2, 2)?;
            if fields.next().is_some() {
                return None;
            }
            (full_year(two_digit_year, now), month, day, *time)
        }
        [weekday, month, day, time, year] => {
            expect_name(weekday, &SHORT_DAYS)?;
            (
                number(year, 4, 4)?,
                month_number(month)?,
                number(day, 1, 2)?,
                *time,
            )
        }
        _ => return None,
    };
    let (hour, minute, second) = clock(time)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    match u64::try_from(seconds) {
        Ok(after) => SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(after)),
        Err(_) => SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs())),
    }
}

fn expect_name(text: &str, names: &[&str]) -> Option<()> {
    names
        .iter()
        .any(|name| text.eq_ignore_ascii_case(name))
        .then_some(())
}

fn expect_gmt(zone: &str) -> Option<()> {
    zone.eq_ignore_ascii_case("GMT").then_some(())
}

/// Month 1–12 from its three-letter name.
fn month_number(text: &str) -> Option<i64> {
    let index = MONTHS
        .iter()
        .position(|name| text.eq_ignore_ascii_case(name))?;
    i64::try_from(index).ok().map(|index| index + 1)
}

/// A decimal of `min`–`max` ASCII digits (no sign, which `str::parse` would accept).
fn number(text: &str, min: usize, max: usize) -> Option<i64> {
    if !(min..=max).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `HH:MM:SS`; a leap second (`60`) is accepted and lands on the next minute.
fn clock(text: &str) -> Option<(i64, i64, i64)> {
    let mut fields = text.split(':');
    let hour = number(fields.next()?, 2, 2)?;
    let minute = number(fields.next()?, 2, 2)?;
    let second = number(fields.next()?, 2, 2)?;
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some((hour, minute, second))
}

/// RFC 9110: a two-digit year that would be more than 50 years in the future is the most
/// recent past year with those digits.
fn full_year(two_digits: i64, now: SystemTime) -> i64 {
    let now_seconds = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let this_year = year_of_day(now_seconds.div_euclid(86_400));
    let mut year = this_year - this_year.rem_euclid(100) + two_digits;
    if year > this_year + 50 {
        year -= 100;
    } else if year + 100 <= this_year + 50 {
        year += 100;
    }
    year
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The year of a day counted from 1970-01-01 (the year part of Hinnant's `civil_from_days`).
fn year_of_day(days: i64) -> i64 {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    // The era starts in March: January and February belong to the next civil year.
    let january_or_february = shifted_month >= 10;
    year_of_era + era * 400 + i64::from(january_or_february)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// 2025-06-15T00:00:00Z.
    const NOW: u64 = 1_749_945_600;

    #[test]
    fn the_three_formats() {
        // (value, seconds since the epoch)
        let table = [
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            ("sun, 06 nov 1994 08:49:37 gmt", Some(784_111_777)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(784_111_777)),
            ("Sun Nov  6 08:49:37 1994", Some(784_111_777)),
            ("Sun Nov 06 08:49:37 1994", Some(784_111_777)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(1_445_412_480)),
            ("Tue, 29 Feb 2000 12:00:00 GMT", Some(951_825_600)),
            ("Fri, 31 Dec 1999 23:59:60 GMT", Some(946_684_800)),
            ("Sat, 01 Jan 2050 00:00:00 GMT", Some(2_524_608_000)),
            // RFC 850 years: more than 50 years ahead of 2025 means the past century.
            ("Monday, 01-Jan-75 00:00:00 GMT", Some(3_313_526_400)),
            ("Monday, 01-Jan-76 00:00:00 GMT", Some(189_302_400)),
            ("Monday, 01-Jan-00 00:00:00 GMT", Some(946_684_800)),
        ];
        for (value, seconds) in table {
            assert_eq!(parse(value, at(NOW)), seconds.map(at), "{value:?}");
        }
        let before_epoch = parse("Mon, 01 Jan 1900 00:00:00 GMT", at(NOW)).unwrap();
        assert!(before_epoch < SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn invalid_dates() {
        let invalid = [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06-Nov-94-1 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov  6 08:49:37 1994 GMT",
        ];
        for value in invalid {
            assert_eq!(parse(value, at(NOW)), None, "{value:?}");
        }
    }

    #[test]
    fn years_of_days() {
        assert_eq!(year_of_day(0), 1970);
        assert_eq!(year_of_day(-1), 1969);
        assert_eq!(year_of_day(365), 1971);
        assert_eq!(year_of_day(10_956), 1999);
        assert_eq!(year_of_day(10_957), 2000);
        assert_eq!(year_of_day(days_from_civil(2024, 12, 31)), 2024);
        assert_eq!(year_of_day(days_from_civil(2025, 1, 1)), 2025);
        assert_eq!(year_of_day(days_from_civil(2025, 2, 28)), 2025);
        assert_eq!(year_of_day(days_from_civil(2025, 3, 1)), 2025);
    }
}
