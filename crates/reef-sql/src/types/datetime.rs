//! Date, timestamp and interval arithmetic, parsing and formatting.
//!
//! Dates are days since 1970-01-01 and timestamps are microseconds since
//! 1970-01-01 00:00:00, on the proleptic Gregorian calendar; the session
//! time zone is UTC, so `timestamptz` values print with a `+00` offset.
//! Text forms follow PostgreSQL's `DateStyle = ISO, MDY` and
//! `IntervalStyle = postgres`. Calendar conversions go through chrono, which
//! bounds the supported range to about ±262,000 years (PostgreSQL's own range
//! is 4713 BC to 294276 AD; values outside the overlap are rejected).

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::Interval;
use crate::error::{sqlstate, Result, SqlError};

/// Microseconds in a second.
pub const USECS_PER_SEC: i64 = 1_000_000;
/// Microseconds in a minute.
pub const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
/// Microseconds in an hour.
pub const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
/// Microseconds in a day.
pub const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// chrono's day number (from 0001-01-01 = day 1) of 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// Broken-down calendar fields of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTimeFields {
    /// Proleptic Gregorian year; 0 is 1 BC, -1 is 2 BC.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of month, 1 to 31.
    pub day: u32,
    /// Hour, 0 to 23.
    pub hour: u32,
    /// Minute, 0 to 59.
    pub minute: u32,
    /// Second, 0 to 59.
    pub second: u32,
    /// Microseconds within the second.
    pub micros: u32,
}

/// The date for a day number, or None outside chrono's range.
fn naive(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_CE_DAYS)?)
}

/// The day number (days since 1970-01-01) of a calendar date, or None if the
/// date does not exist.
pub fn ymd_to_days(year: i32, month: u32, day: u32) -> Option<i32> {
    let d = NaiveDate::from_ymd_opt(year, month, day)?;
    Some(d.num_days_from_ce() - UNIX_EPOCH_CE_DAYS)
}

/// The calendar date (year, month, day) of a day number.
pub fn days_to_ymd(days: i32) -> Result<(i32, u32, u32)> {
    let d = naive(days)
        .ok_or_else(|| SqlError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "date out of range"))?;
    Ok((d.year(), d.month(), d.day()))
}

/// True if a year of the proleptic Gregorian calendar is a leap year.
pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The number of days in a month.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// Splits a timestamp into calendar fields.
pub fn timestamp_to_fields(ts: i64) -> Result<DateTimeFields> {
    let days = ts.div_euclid(USECS_PER_DAY);
    let time = ts.rem_euclid(USECS_PER_DAY);
    let days = i32::try_from(days).map_err(|_| timestamp_out_of_range())?;
    let (year, month, day) = days_to_ymd(days).map_err(|_| timestamp_out_of_range())?;
    Ok(DateTimeFields {
        year,
        month,
        day,
        hour: (time / USECS_PER_HOUR) as u32,
        minute: (time % USECS_PER_HOUR / USECS_PER_MINUTE) as u32,
        second: (time % USECS_PER_MINUTE / USECS_PER_SEC) as u32,
        micros: (time % USECS_PER_SEC) as u32,
    })
}

/// Builds a timestamp from calendar fields.
pub fn fields_to_timestamp(f: &DateTimeFields) -> Result<i64> {
    let days = ymd_to_days(f.year, f.month, f.day).ok_or_else(timestamp_out_of_range)?;
    let time = f.hour as i64 * USECS_PER_HOUR
        + f.minute as i64 * USECS_PER_MINUTE
        + f.second as i64 * USECS_PER_SEC
        + f.micros as i64;
    (days as i64)
        .checked_mul(USECS_PER_DAY)
        .and_then(|d| d.checked_add(time))
        .ok_or_else(timestamp_out_of_range)
}

/// The error for a timestamp outside the supported range.
pub fn timestamp_out_of_range() -> SqlError {
    SqlError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "timestamp out of range")
}

/// The error for a date outside the supported range.
pub fn date_out_of_range() -> SqlError {
    SqlError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "date out of range")
}

/// The error for an interval outside the representable range.
pub fn interval_out_of_range() -> SqlError {
    SqlError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "interval out of range")
}

/// Converts a date to the timestamp of its midnight.
pub fn date_to_timestamp(days: i32) -> i64 {
    days as i64 * USECS_PER_DAY
}

/// Converts a timestamp to its date, dropping the time of day.
pub fn timestamp_to_date(ts: i64) -> Result<i32> {
    i32::try_from(ts.div_euclid(USECS_PER_DAY)).map_err(|_| date_out_of_range())
}

/// Checks that a timestamp is within the range chrono can represent.
pub fn check_timestamp(ts: i64) -> Result<i64> {
    timestamp_to_fields(ts)?;
    Ok(ts)
}

// ---------------------------------------------------------------------------
// Formatting.

fn push_year(out: &mut String, year: i32) {
    use std::fmt::Write;
    let y = if year <= 0 { 1 - year } else { year };
    let _ = write!(out, "{y:04}");
}

/// Appends a date in ISO form (`2024-01-02`, `0044-03-15 BC`).
pub fn format_date_into(days: i32, out: &mut String) {
    use std::fmt::Write;
    match days_to_ymd(days) {
        Ok((y, m, d)) => {
            push_year(out, y);
            let _ = write!(out, "-{m:02}-{d:02}");
            if y <= 0 {
                out.push_str(" BC");
            }
        }
        Err(_) => out.push_str("<date out of range>"),
    }
}

/// Appends seconds and a trimmed fraction (`05`, `05.5`, `05.123456`).
fn push_seconds(out: &mut String, sec: u64, micros: u64) {
    use std::fmt::Write;
    let _ = write!(out, "{sec:02}");
    if micros != 0 {
        let mut frac = format!("{micros:06}");
        while frac.ends_with('0') {
            frac.pop();
        }
        out.push('.');
        out.push_str(&frac);
    }
}

/// Appends a timestamp in ISO form (`2024-01-02 03:04:05.123456`).
pub fn format_timestamp_into(ts: i64, out: &mut String) {
    use std::fmt::Write;
    match timestamp_to_fields(ts) {
        Ok(f) => {
            push_year(out, f.year);
            let _ = write!(
                out,
                "-{:02}-{:02} {:02}:{:02}:",
                f.month, f.day, f.hour, f.minute
            );
            push_seconds(out, f.second as u64, f.micros as u64);
            if f.year <= 0 {
                out.push_str(" BC");
            }
        }
        Err(_) => out.push_str("<timestamp out of range>"),
    }
}

/// Appends a `timestamptz` in ISO form with the session offset (`+00`).
pub fn format_timestamptz_into(ts: i64, out: &mut String) {
    match timestamp_to_fields(ts) {
        Ok(f) => {
            let bc = f.year <= 0;
            format_timestamp_into(ts, out);
            if bc {
                out.truncate(out.len() - 3);
                out.push_str("+00 BC");
            } else {
                out.push_str("+00");
            }
        }
        Err(_) => out.push_str("<timestamp out of range>"),
    }
}

/// Appends an interval in PostgreSQL's `postgres` style
/// (`1 year 2 mons 3 days 04:05:06`, `-1 days +02:00:00`).
pub fn format_interval_into(iv: &Interval, out: &mut String) {
    use std::fmt::Write;
    let year = iv.months / 12;
    let mon = iv.months % 12;
    let mut is_zero = true;
    let mut is_before = false;
    for (value, unit) in [(year, "year"), (mon, "mon"), (iv.days, "day")] {
        if value == 0 {
            continue;
        }
        if !is_zero {
            out.push(' ');
        }
        if is_before && value > 0 {
            out.push('+');
        }
        let _ = write!(out, "{value} {unit}{}", if value != 1 { "s" } else { "" });
        is_before = value < 0;
        is_zero = false;
    }
    let t = iv.micros;
    if is_zero || t != 0 {
        let minus = t < 0;
        let abs = t.unsigned_abs();
        let hours = abs / USECS_PER_HOUR as u64;
        let minutes = abs % USECS_PER_HOUR as u64 / USECS_PER_MINUTE as u64;
        let secs = abs % USECS_PER_MINUTE as u64 / USECS_PER_SEC as u64;
        let micros = abs % USECS_PER_SEC as u64;
        if !is_zero {
            out.push(' ');
        }
        if minus {
            out.push('-');
        } else if is_before {
            out.push('+');
        }
        let _ = write!(out, "{hours:02}:{minutes:02}:");
        push_seconds(out, secs, micros);
    }
}

// ---------------------------------------------------------------------------
// Parsing.

fn bad_syntax(ty: &str, input: &str) -> SqlError {
    SqlError::new(
        sqlstate::INVALID_DATETIME_FORMAT,
        format!("invalid input syntax for type {ty}: \"{input}\""),
    )
}

fn field_out_of_range(input: &str) -> SqlError {
    SqlError::new(
        sqlstate::DATETIME_FIELD_OVERFLOW,
        format!("date/time field value out of range: \"{input}\""),
    )
}

fn month_from_name(word: &str) -> Option<u32> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let i = NAMES
        .iter()
        .position(|n| *n == word)
        .or_else(|| FULL.iter().position(|n| *n == word));
    match i {
        Some(i) => Some(i as u32 + 1),
        None if word == "sept" => Some(9),
        None => None,
    }
}

fn is_weekday_name(word: &str) -> bool {
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    const FULL: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    DAYS.contains(&word)
        || FULL.contains(&word)
        || matches!(word, "tues" | "wednes" | "thur" | "thurs")
}

/// The current time in microseconds since the Unix epoch, from the system clock.
pub fn clock_now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Special date words: `epoch`, `today`, `tomorrow`, `yesterday`, `now`.
fn special_date(word: &str, ty: &str, input: &str) -> Result<Option<i64>> {
    let today = || clock_now().div_euclid(USECS_PER_DAY) * USECS_PER_DAY;
    Ok(Some(match word {
        "epoch" => 0,
        "now" => clock_now(),
        "today" => today(),
        "tomorrow" => today() + USECS_PER_DAY,
        "yesterday" => today() - USECS_PER_DAY,
        "infinity" | "+infinity" | "-infinity" => {
            return Err(SqlError::unsupported(format!(
                "infinite {ty} values are not supported: \"{input}\""
            )))
        }
        _ => return Ok(None),
    }))
}

/// The pieces of a date/time string, split into date fields, a time and a
/// time zone offset.
#[derive(Default)]
struct DateTimeParts<'a> {
    date_fields: Vec<&'a str>,
    month_name: Option<u32>,
    bc: bool,
    time: Option<&'a str>,
    pm: Option<bool>,
    tz_offset_secs: Option<i64>,
}

/// Parses a time zone offset such as `+02`, `-0730`, `+05:30`, `Z`, `UTC`.
fn parse_tz(tz: &str) -> Option<i64> {
    let lower = tz.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "z" | "utc" | "gmt" | "zulu" | "ut" | "+00" | "-00"
    ) {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let num = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    let (h, m, s) = match parts.as_slice() {
        [hm] if hm.len() <= 2 => (num(hm)?, 0, 0),
        [hm] if hm.len() == 4 => (num(&hm[..2])?, num(&hm[2..])?, 0),
        [h, m] => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        _ => return None,
    };
    if h > 15 || m > 59 || s > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60 + s))
}

/// Splits a date/time string into parts. `ty` names the type for errors.
fn split_datetime<'a>(input: &'a str, lower: &'a str, ty: &str) -> Result<DateTimeParts<'a>> {
    let mut parts = DateTimeParts::default();
    // Split on whitespace, and on a 'T' between an ISO date and a time.
    let mut tokens: Vec<&str> = Vec::new();
    for tok in lower.split_ascii_whitespace() {
        if let Some(pos) = tok.find('t') {
            let (d, t) = (&tok[..pos], &tok[pos + 1..]);
            if !d.is_empty()
                && d.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
                && t.bytes().next().is_some_and(|b| b.is_ascii_digit())
            {
                tokens.push(d);
                tokens.push(t);
                continue;
            }
        }
        tokens.push(tok);
    }
    let _ = input;
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i].trim_end_matches(',');
        i += 1;
        if tok.is_empty() {
            continue;
        }
        if tok.contains(':')
            && parts.time.is_none()
            && tok.bytes().next().is_some_and(|b| b.is_ascii_digit())
        {
            // The time, perhaps with an attached zone ("03:04:05+02", "03:04:05z").
            let cut = tok.find(['+', '-', 'z']);
            match cut {
                Some(c) => {
                    parts.time = Some(&tok[..c]);
                    parts.tz_offset_secs =
                        Some(parse_tz(&tok[c..]).ok_or_else(|| bad_syntax(ty, input))?);
                }
                None => parts.time = Some(tok),
            }
            continue;
        }
        if parts.time.is_some() && (tok.starts_with('+') || tok.starts_with('-')) {
            parts.tz_offset_secs = Some(parse_tz(tok).ok_or_else(|| bad_syntax(ty, input))?);
            continue;
        }
        match tok {
            "bc" | "b.c." => parts.bc = true,
            "ad" | "a.d." => {}
            "am" | "a.m." => parts.pm = Some(false),
            "pm" | "p.m." => parts.pm = Some(true),
            "z" | "utc" | "gmt" | "zulu" | "ut" => parts.tz_offset_secs = Some(0),
            _ if tok.bytes().all(|b| b.is_ascii_alphabetic() || b == b'.') => {
                if let Some(m) = month_from_name(tok.trim_end_matches('.')) {
                    if parts.month_name.is_some() {
                        return Err(bad_syntax(ty, input));
                    }
                    parts.month_name = Some(m);
                } else if !is_weekday_name(tok.trim_end_matches('.')) {
                    return Err(bad_syntax(ty, input));
                }
            }
            _ => {
                // A date token, which may itself contain '-', '/' or '.' separators
                // and a month name ("1999-jan-08").
                for f in tok.split(['-', '/', '.']) {
                    if f.is_empty() {
                        return Err(bad_syntax(ty, input));
                    }
                    if f.bytes().all(|b| b.is_ascii_digit()) {
                        parts.date_fields.push(f);
                    } else if let Some(m) = month_from_name(f) {
                        if parts.month_name.is_some() {
                            return Err(bad_syntax(ty, input));
                        }
                        parts.month_name = Some(m);
                    } else {
                        return Err(bad_syntax(ty, input));
                    }
                }
            }
        }
    }
    Ok(parts)
}

fn two_digit_year(field: &str, y: i32) -> i32 {
    if field.len() <= 2 {
        if y < 70 {
            y + 2000
        } else {
            y + 1900
        }
    } else {
        y
    }
}

/// Resolves date fields to a day number.
fn resolve_date(parts: &DateTimeParts<'_>, ty: &str, input: &str) -> Result<i32> {
    let num = |s: &str| -> Result<i64> { s.parse::<i64>().map_err(|_| field_out_of_range(input)) };
    let f = &parts.date_fields;
    let (mut year, month, day): (i64, i64, i64) = match (parts.month_name, f.len()) {
        (Some(m), 2) => {
            // "jan 8 1999", "8 jan 1999", "1999 jan 8": the field of three or more
            // digits (or above 31) is the year.
            let (a, b) = (f[0], f[1]);
            if a.len() >= 3 || num(a)? > 31 {
                (two_digit_year(a, num(a)? as i32) as i64, m as i64, num(b)?)
            } else {
                (two_digit_year(b, num(b)? as i32) as i64, m as i64, num(a)?)
            }
        }
        (None, 1) if f[0].len() == 8 => (num(&f[0][..4])?, num(&f[0][4..6])?, num(&f[0][6..])?),
        (None, 1) if f[0].len() == 6 => (
            two_digit_year(&f[0][..2], num(&f[0][..2])? as i32) as i64,
            num(&f[0][2..4])?,
            num(&f[0][4..])?,
        ),
        (None, 3) if f[0].len() >= 3 => (num(f[0])?, num(f[1])?, num(f[2])?),
        (None, 3) => (
            two_digit_year(f[2], num(f[2])? as i32) as i64,
            num(f[0])?,
            num(f[1])?,
        ),
        _ => return Err(bad_syntax(ty, input)),
    };
    if parts.bc {
        if year <= 0 {
            return Err(bad_syntax(ty, input));
        }
        year = 1 - year;
    } else if year == 0 {
        return Err(bad_syntax(ty, input));
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(field_out_of_range(input));
    }
    let year = i32::try_from(year).map_err(|_| field_out_of_range(input))?;
    if day as u32 > days_in_month(year, month as u32) {
        return Err(field_out_of_range(input));
    }
    ymd_to_days(year, month as u32, day as u32).ok_or_else(|| {
        SqlError::new(
            sqlstate::DATETIME_FIELD_OVERFLOW,
            format!("date out of range: \"{input}\""),
        )
    })
}

/// Parses `HH:MM[:SS[.ffffff]]` into microseconds since midnight (up to 24:00:00).
fn resolve_time(time: &str, pm: Option<bool>, ty: &str, input: &str) -> Result<i64> {
    let mut it = time.split(':');
    let h = it.next().ok_or_else(|| bad_syntax(ty, input))?;
    let m = it.next().ok_or_else(|| bad_syntax(ty, input))?;
    let s = it.next();
    if it.next().is_some() {
        return Err(bad_syntax(ty, input));
    }
    let int = |f: &str| -> Result<i64> {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_syntax(ty, input));
        }
        Ok(f.parse::<i64>().unwrap_or(0))
    };
    let mut hour = int(h)?;
    let minute = int(m)?;
    let (sec, micros) = match s {
        None => (0, 0),
        Some(s) => {
            let (whole, frac) = match s.split_once('.') {
                Some((w, f)) => (w, f),
                None => (s, ""),
            };
            let sec = int(whole)?;
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_syntax(ty, input));
            }
            (sec, parse_fraction_micros(frac))
        }
    };
    if let Some(pm) = pm {
        if !(1..=12).contains(&hour) {
            return Err(field_out_of_range(input));
        }
        if hour == 12 {
            hour = 0;
        }
        if pm {
            hour += 12;
        }
    }
    if hour > 24
        || minute > 59
        || sec > 60
        || (hour == 24 && (minute != 0 || sec != 0 || micros != 0))
    {
        return Err(field_out_of_range(input));
    }
    Ok(hour * USECS_PER_HOUR + minute * USECS_PER_MINUTE + sec * USECS_PER_SEC + micros)
}

/// Converts fraction digits (after the point) to microseconds, rounding
/// half up at the seventh digit.
fn parse_fraction_micros(frac: &str) -> i64 {
    let mut micros: i64 = 0;
    let bytes = frac.as_bytes();
    for i in 0..6 {
        micros = micros * 10 + bytes.get(i).map_or(0, |b| (b - b'0') as i64);
    }
    if bytes.get(6).is_some_and(|b| *b >= b'5') {
        micros += 1;
    }
    micros
}

/// Parses a `date`.
pub fn parse_date(input: &str) -> Result<i32> {
    let lower = input.trim().to_ascii_lowercase();
    if let Some(ts) = special_date(&lower, "date", input)? {
        return timestamp_to_date(ts);
    }
    let parts = split_datetime(input, &lower, "date")?;
    if parts.time.is_some() && parts.date_fields.is_empty() {
        return Err(bad_syntax("date", input));
    }
    resolve_date(&parts, "date", input)
}

/// Parses a `timestamp` (`with_tz` false) or `timestamptz` (`with_tz` true).
/// A zone in a `timestamp` input is ignored, as PostgreSQL does; a
/// `timestamptz` without one is taken in the session time zone (UTC).
pub fn parse_timestamp(input: &str, with_tz: bool) -> Result<i64> {
    let ty = if with_tz {
        "timestamp with time zone"
    } else {
        "timestamp without time zone"
    };
    let lower = input.trim().to_ascii_lowercase();
    if let Some(ts) = special_date(&lower, ty, input)? {
        return Ok(ts);
    }
    let parts = split_datetime(input, &lower, ty)?;
    let days = resolve_date(&parts, ty, input)?;
    let time = match parts.time {
        Some(t) => resolve_time(t, parts.pm, ty, input)?,
        None if parts.pm.is_some() => return Err(bad_syntax(ty, input)),
        None => 0,
    };
    let mut ts = (days as i64)
        .checked_mul(USECS_PER_DAY)
        .and_then(|d| d.checked_add(time))
        .ok_or_else(timestamp_out_of_range)?;
    if with_tz {
        if let Some(off) = parts.tz_offset_secs {
            ts = ts
                .checked_sub(off * USECS_PER_SEC)
                .ok_or_else(timestamp_out_of_range)?;
        }
    }
    check_timestamp(ts).map_err(|_| {
        SqlError::new(
            sqlstate::DATETIME_FIELD_OVERFLOW,
            format!("timestamp out of range: \"{input}\""),
        )
    })
}

/// Accumulates interval fields while parsing.
#[derive(Default)]
struct IntervalAcc {
    months: i64,
    days: i64,
    micros: i128,
}

impl IntervalAcc {
    fn add_months(&mut self, v: f64) {
        let whole = v.trunc();
        self.months += whole as i64;
        self.add_days((v - whole) * 30.0);
    }

    fn add_days(&mut self, v: f64) {
        let whole = v.trunc();
        self.days += whole as i64;
        self.add_micros((v - whole) * USECS_PER_DAY as f64);
    }

    fn add_micros(&mut self, v: f64) {
        self.micros += v.round() as i128;
    }

    fn add_unit(&mut self, v: f64, unit: &str) -> bool {
        match unit {
            "millennium" | "millennia" | "millenniums" | "mil" | "mils" => {
                self.add_months_years(v * 1000.0)
            }
            "century" | "centuries" | "c" | "cent" => self.add_months_years(v * 100.0),
            "decade" | "decades" | "dec" | "decs" => self.add_months_years(v * 10.0),
            "year" | "years" | "y" | "yr" | "yrs" => self.add_months_years(v),
            "month" | "months" | "mon" | "mons" => self.add_months(v),
            "week" | "weeks" | "w" => self.add_days(v * 7.0),
            "day" | "days" | "d" => self.add_days(v),
            "hour" | "hours" | "h" | "hr" | "hrs" => self.add_micros(v * USECS_PER_HOUR as f64),
            "minute" | "minutes" | "m" | "min" | "mins" => {
                self.add_micros(v * USECS_PER_MINUTE as f64)
            }
            "second" | "seconds" | "s" | "sec" | "secs" => {
                self.add_micros(v * USECS_PER_SEC as f64)
            }
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "millisecon" => {
                self.add_micros(v * 1000.0)
            }
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" => self.add_micros(v),
            _ => return false,
        }
        true
    }

    fn add_months_years(&mut self, years: f64) {
        // PostgreSQL rounds a fractional year to whole months.
        let whole = years.trunc();
        self.months += whole as i64 * 12 + ((years - whole) * 12.0).round() as i64;
    }

    fn finish(self, negate: bool, input: &str) -> Result<Interval> {
        let sign = if negate { -1 } else { 1 };
        let err = || {
            SqlError::new(
                sqlstate::DATETIME_FIELD_OVERFLOW,
                format!("interval field value out of range: \"{input}\""),
            )
        };
        Ok(Interval {
            months: i32::try_from(self.months * sign).map_err(|_| err())?,
            days: i32::try_from(self.days * sign).map_err(|_| err())?,
            micros: i64::try_from(self.micros * sign as i128).map_err(|_| err())?,
        })
    }
}

/// Parses a time-of-day-like interval field (`02:03:04.5`, `-1:30`) into
/// microseconds.
fn interval_time(tok: &str, input: &str) -> Result<i128> {
    let (neg, body) = match tok.as_bytes().first() {
        Some(b'-') => (true, &tok[1..]),
        Some(b'+') => (false, &tok[1..]),
        _ => (false, tok),
    };
    let parts: Vec<&str> = body.split(':').collect();
    let bad = || bad_syntax("interval", input);
    let int = |s: &str| -> Result<i128> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 18 {
            return Err(bad());
        }
        s.parse::<i128>().map_err(|_| bad())
    };
    let secs = |s: &str| -> Result<i128> {
        let (w, f) = s.split_once('.').unwrap_or((s, ""));
        if !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(int(w)? * USECS_PER_SEC as i128 + parse_fraction_micros(f) as i128)
    };
    let total = match parts.as_slice() {
        [h, m] if m.contains('.') => int(h)? * USECS_PER_MINUTE as i128 + secs(m)?,
        [h, m] => int(h)? * USECS_PER_HOUR as i128 + int(m)? * USECS_PER_MINUTE as i128,
        [h, m, s] => {
            int(h)? * USECS_PER_HOUR as i128 + int(m)? * USECS_PER_MINUTE as i128 + secs(s)?
        }
        _ => return Err(bad()),
    };
    Ok(if neg { -total } else { total })
}

/// Parses an ISO 8601 interval (`P1Y2M3DT4H5M6S`, `PT1.5S`, `P1W`).
fn parse_iso_interval(body: &str, input: &str) -> Result<Interval> {
    let bad = || bad_syntax("interval", input);
    let mut acc = IntervalAcc::default();
    let mut in_time = false;
    let mut rest = body;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('t') {
            if in_time {
                return Err(bad());
            }
            in_time = true;
            rest = r;
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
            .ok_or_else(bad)?;
        let v: f64 = rest[..end].parse().map_err(|_| bad())?;
        let unit = rest.as_bytes()[end];
        let unit = match (unit, in_time) {
            (b'y', false) => "year",
            (b'm', false) => "month",
            (b'w', false) => "week",
            (b'd', false) => "day",
            (b'h', true) => "hour",
            (b'm', true) => "minute",
            (b's', true) => "second",
            _ => return Err(bad()),
        };
        acc.add_unit(v, unit);
        rest = &rest[end + 1..];
    }
    acc.finish(false, input)
}

/// Parses an `interval` in PostgreSQL's input syntax: `1 day 02:03:04`,
/// `3 months`, `1 year 2 mons`, `-1 hours`, `@ 1 minute ago`, `1-2`
/// (years-months), `P1Y2M3D` (ISO 8601) and a bare number of seconds.
pub fn parse_interval(input: &str) -> Result<Interval> {
    let bad = || bad_syntax("interval", input);
    let lower = input.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return Err(bad());
    }
    if let Some(body) = lower.strip_prefix('p') {
        return parse_iso_interval(body, input);
    }
    // Tokenise into numbers (with ':', '.', '-' inside) and words.
    let mut tokens: Vec<&str> = Vec::new();
    let b = lower.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b',' || c == b'@' {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' {
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || matches!(b[i], b':' | b'.' | b'-')) {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() {
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
        } else {
            return Err(bad());
        }
        tokens.push(&lower[start..i]);
    }
    let mut acc = IntervalAcc::default();
    let mut negate = false;
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i];
        i += 1;
        if tok == "ago" {
            if i != tokens.len() {
                return Err(bad());
            }
            negate = true;
            continue;
        }
        let first = tok.as_bytes()[0];
        if first.is_ascii_alphabetic() {
            return Err(bad());
        }
        if tok.contains(':') {
            acc.micros += interval_time(tok, input)?;
            continue;
        }
        let body = tok.strip_prefix(['+', '-']).unwrap_or(tok);
        if body.contains('-') {
            // SQL-standard year-month: "1-2".
            let neg = tok.starts_with('-');
            let (y, m) = body.split_once('-').ok_or_else(bad)?;
            let y: i64 = y.parse().map_err(|_| bad())?;
            let m: i64 = m.parse().map_err(|_| bad())?;
            if m > 11 {
                return Err(field_out_of_range(input));
            }
            let total = y * 12 + m;
            acc.months += if neg { -total } else { total };
            continue;
        }
        let v: f64 = tok.parse().map_err(|_| bad())?;
        if !v.is_finite() {
            return Err(bad());
        }
        match tokens.get(i) {
            Some(unit) if unit.as_bytes()[0].is_ascii_alphabetic() && *unit != "ago" => {
                i += 1;
                if !acc.add_unit(v, unit) {
                    return Err(bad());
                }
            }
            Some(next) if next.contains(':') => acc.add_days(v),
            _ => acc.add_unit(v, "second").then_some(()).ok_or_else(bad)?,
        }
    }
    acc.finish(negate, input)
}

// ---------------------------------------------------------------------------
// Arithmetic.

/// Adds a number of months to a timestamp, clamping the day to the end of
/// the month as PostgreSQL does (`2024-01-31 + 1 month = 2024-02-29`).
pub fn add_months(ts: i64, months: i32) -> Result<i64> {
    if months == 0 {
        return Ok(ts);
    }
    let mut f = timestamp_to_fields(ts)?;
    let total = f.year as i64 * 12 + (f.month as i64 - 1) + months as i64;
    f.year = i32::try_from(total.div_euclid(12)).map_err(|_| timestamp_out_of_range())?;
    f.month = total.rem_euclid(12) as u32 + 1;
    f.day = f.day.min(days_in_month(f.year, f.month));
    fields_to_timestamp(&f)
}

/// Adds an interval to a timestamp: months first, then days, then time.
pub fn timestamp_add_interval(ts: i64, iv: &Interval) -> Result<i64> {
    let ts = add_months(ts, iv.months)?;
    let ts = ts
        .checked_add(iv.days as i64 * USECS_PER_DAY)
        .and_then(|t| t.checked_add(iv.micros))
        .ok_or_else(timestamp_out_of_range)?;
    check_timestamp(ts)
}

/// Negates an interval, failing on overflow.
pub fn interval_neg(iv: &Interval) -> Result<Interval> {
    Ok(Interval {
        months: iv.months.checked_neg().ok_or_else(interval_out_of_range)?,
        days: iv.days.checked_neg().ok_or_else(interval_out_of_range)?,
        micros: iv.micros.checked_neg().ok_or_else(interval_out_of_range)?,
    })
}

/// Adds two intervals field by field.
pub fn interval_add(a: &Interval, b: &Interval) -> Result<Interval> {
    Ok(Interval {
        months: a
            .months
            .checked_add(b.months)
            .ok_or_else(interval_out_of_range)?,
        days: a
            .days
            .checked_add(b.days)
            .ok_or_else(interval_out_of_range)?,
        micros: a
            .micros
            .checked_add(b.micros)
            .ok_or_else(interval_out_of_range)?,
    })
}

/// Rounds to microsecond precision in seconds, as PostgreSQL's TSROUND.
fn tsround(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Multiplies an interval by a factor, cascading fractional months to days
/// and fractional days to time as PostgreSQL's `interval_mul` does.
pub fn interval_mul(iv: &Interval, factor: f64) -> Result<Interval> {
    if factor.is_nan() {
        return Err(interval_out_of_range());
    }
    let month_d = iv.months as f64 * factor;
    let day_d = iv.days as f64 * factor;
    if !(i32::MIN as f64..=i32::MAX as f64).contains(&month_d.trunc())
        || !(i32::MIN as f64..=i32::MAX as f64).contains(&day_d.trunc())
    {
        return Err(interval_out_of_range());
    }
    let months = month_d.trunc() as i32;
    let mut days = day_d.trunc() as i32;
    let month_remainder_days = tsround((month_d - months as f64) * 30.0);
    let mut sec_remainder = tsround(
        (day_d - days as f64 + month_remainder_days - month_remainder_days.trunc()) * 86_400.0,
    );
    if sec_remainder.abs() >= 86_400.0 {
        let extra = (sec_remainder / 86_400.0).trunc();
        days = days
            .checked_add(extra as i32)
            .ok_or_else(interval_out_of_range)?;
        sec_remainder -= extra * 86_400.0;
    }
    days = days
        .checked_add(month_remainder_days.trunc() as i32)
        .ok_or_else(interval_out_of_range)?;
    let micros = (iv.micros as f64 * factor + sec_remainder * 1e6).round();
    if !(i64::MIN as f64..i64::MAX as f64).contains(&micros) {
        return Err(interval_out_of_range());
    }
    Ok(Interval {
        months,
        days,
        micros: micros as i64,
    })
}

/// Subtracts timestamps, giving days and time as PostgreSQL's
/// `timestamp_mi` (with `justify_hours`) does.
pub fn timestamp_diff(a: i64, b: i64) -> Result<Interval> {
    let diff = a.checked_sub(b).ok_or_else(interval_out_of_range)?;
    let days = diff / USECS_PER_DAY;
    let micros = diff % USECS_PER_DAY;
    Ok(Interval {
        months: 0,
        days: i32::try_from(days).map_err(|_| interval_out_of_range())?,
        micros,
    })
}

/// PostgreSQL's `age(a, b)`: a symbolic difference in years, months and days.
pub fn age(a: i64, b: i64) -> Result<Interval> {
    let f1 = timestamp_to_fields(a)?;
    let f2 = timestamp_to_fields(b)?;
    let mut usec = f1.micros as i64 - f2.micros as i64;
    let mut sec = f1.second as i64 - f2.second as i64;
    let mut min = f1.minute as i64 - f2.minute as i64;
    let mut hour = f1.hour as i64 - f2.hour as i64;
    let mut mday = f1.day as i64 - f2.day as i64;
    let mut mon = f1.month as i64 - f2.month as i64;
    let mut year = f1.year as i64 - f2.year as i64;
    let flip = a < b;
    if flip {
        usec = -usec;
        sec = -sec;
        min = -min;
        hour = -hour;
        mday = -mday;
        mon = -mon;
        year = -year;
    }
    while usec < 0 {
        usec += USECS_PER_SEC;
        sec -= 1;
    }
    while sec < 0 {
        sec += 60;
        min -= 1;
    }
    while min < 0 {
        min += 60;
        hour -= 1;
    }
    while hour < 0 {
        hour += 24;
        mday -= 1;
    }
    while mday < 0 {
        let (y, m) = if flip {
            (f1.year, f1.month)
        } else {
            (f2.year, f2.month)
        };
        mday += days_in_month(y, m) as i64;
        mon -= 1;
    }
    while mon < 0 {
        mon += 12;
        year -= 1;
    }
    if flip {
        usec = -usec;
        sec = -sec;
        min = -min;
        hour = -hour;
        mday = -mday;
        mon = -mon;
        year = -year;
    }
    Ok(Interval {
        months: i32::try_from(year * 12 + mon).map_err(|_| interval_out_of_range())?,
        days: mday as i32,
        micros: hour * USECS_PER_HOUR + min * USECS_PER_MINUTE + sec * USECS_PER_SEC + usec,
    })
}

// ---------------------------------------------------------------------------
// EXTRACT and date_trunc.

/// The source of an EXTRACT, which decides the valid fields and error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractSource {
    /// A `date`.
    Date,
    /// A `timestamp`.
    Timestamp,
    /// A `timestamptz`.
    TimestampTz,
}

impl ExtractSource {
    fn type_name(self) -> &'static str {
        match self {
            ExtractSource::Date => "date",
            ExtractSource::Timestamp => "timestamp without time zone",
            ExtractSource::TimestampTz => "timestamp with time zone",
        }
    }
}

fn unit_not_recognized(field: &str, ty: &str) -> SqlError {
    SqlError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        format!("unit \"{field}\" not recognized for type {ty}"),
    )
}

fn unit_not_supported(field: &str, ty: &str) -> SqlError {
    SqlError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("unit \"{field}\" not supported for type {ty}"),
    )
}

/// Canonical field names, mapping PostgreSQL's abbreviations and plurals.
fn canonical_field(field: &str) -> Option<&'static str> {
    Some(match field {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => "microseconds",
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => "milliseconds",
        "second" | "seconds" | "s" | "sec" | "secs" => "second",
        "minute" | "minutes" | "m" | "min" | "mins" => "minute",
        "hour" | "hours" | "h" | "hr" | "hrs" => "hour",
        "day" | "days" | "d" => "day",
        "week" | "weeks" | "w" => "week",
        "month" | "months" | "mon" | "mons" => "month",
        "quarter" | "qtr" => "quarter",
        "year" | "years" | "y" | "yr" | "yrs" => "year",
        "decade" | "decades" | "dec" | "decs" => "decade",
        "century" | "centuries" | "c" | "cent" => "century",
        "millennium" | "millennia" | "millenniums" | "mil" | "mils" => "millennium",
        "dow" => "dow",
        "isodow" => "isodow",
        "doy" => "doy",
        "epoch" => "epoch",
        "julian" | "j" => "julian",
        "isoyear" => "isoyear",
        "timezone" => "timezone",
        "timezone_hour" => "timezone_hour",
        "timezone_minute" => "timezone_minute",
        _ => return None,
    })
}

/// The Julian day number of a date.
fn julian_day(days: i32) -> i64 {
    days as i64 + 2_440_588
}

/// EXTRACT(field FROM date/timestamp) with PostgreSQL 15's numeric result
/// (`second` has scale 6, `milliseconds` scale 3, `epoch` scale 6).
pub fn extract(field: &str, source: ExtractSource, value: i64) -> Result<Decimal> {
    let ty = source.type_name();
    let lower = field.to_ascii_lowercase();
    let name = canonical_field(&lower).ok_or_else(|| unit_not_recognized(field, ty))?;
    let ts = match source {
        ExtractSource::Date => {
            if matches!(
                name,
                "microseconds"
                    | "milliseconds"
                    | "second"
                    | "minute"
                    | "hour"
                    | "timezone"
                    | "timezone_hour"
                    | "timezone_minute"
            ) {
                return Err(unit_not_supported(field, ty));
            }
            date_to_timestamp(value as i32)
        }
        _ => value,
    };
    if source == ExtractSource::Timestamp
        && matches!(name, "timezone" | "timezone_hour" | "timezone_minute")
    {
        return Err(unit_not_supported(field, ty));
    }
    let f = timestamp_to_fields(ts)?;
    let date =
        NaiveDate::from_ymd_opt(f.year, f.month, f.day).ok_or_else(timestamp_out_of_range)?;
    let sec_micros = f.second as i64 * USECS_PER_SEC + f.micros as i64;
    let year_display = |y: i32| if y <= 0 { y as i64 - 1 } else { y as i64 };
    Ok(match name {
        "microseconds" => Decimal::from(sec_micros),
        "milliseconds" => Decimal::new(sec_micros, 3),
        "second" => Decimal::new(sec_micros, 6),
        "minute" => Decimal::from(f.minute),
        "hour" => Decimal::from(f.hour),
        "day" => Decimal::from(f.day),
        "month" => Decimal::from(f.month),
        "quarter" => Decimal::from((f.month - 1) / 3 + 1),
        "week" => Decimal::from(date.iso_week().week()),
        "year" => Decimal::from(year_display(f.year)),
        "isoyear" => Decimal::from(year_display(date.iso_week().year())),
        "decade" => Decimal::from((f.year as i64).div_euclid(10)),
        "century" => Decimal::from(if f.year > 0 {
            (f.year as i64 + 99) / 100
        } else {
            -((99 - f.year as i64) / 100)
        }),
        "millennium" => Decimal::from(if f.year > 0 {
            (f.year as i64 + 999) / 1000
        } else {
            -((999 - f.year as i64) / 1000)
        }),
        "dow" => Decimal::from(date.weekday().num_days_from_sunday()),
        "isodow" => Decimal::from(date.weekday().number_from_monday()),
        "doy" => Decimal::from(date.ordinal()),
        "epoch" => match source {
            ExtractSource::Date => Decimal::from(ts / USECS_PER_SEC),
            _ => Decimal::from_i128_with_scale(ts as i128, 6),
        },
        "julian" => match source {
            ExtractSource::Date => Decimal::from(julian_day(value as i32)),
            _ => {
                let day = julian_day(timestamp_to_date(ts)?);
                let time = ts.rem_euclid(USECS_PER_DAY);
                let frac =
                    super::ops::numeric_div(&Decimal::from(time), &Decimal::from(USECS_PER_DAY))?;
                Decimal::from(day) + frac
            }
        },
        "timezone" | "timezone_hour" | "timezone_minute" => Decimal::ZERO,
        _ => return Err(unit_not_supported(field, ty)),
    })
}

/// EXTRACT(field FROM interval) with PostgreSQL 15's numeric result.
pub fn extract_interval(field: &str, iv: &Interval) -> Result<Decimal> {
    let ty = "interval";
    let lower = field.to_ascii_lowercase();
    let name = canonical_field(&lower).ok_or_else(|| unit_not_recognized(field, ty))?;
    let sec_micros = iv.micros % USECS_PER_MINUTE;
    Ok(match name {
        "microseconds" => Decimal::from(sec_micros),
        "milliseconds" => Decimal::new(sec_micros, 3),
        "second" => Decimal::new(sec_micros, 6),
        "minute" => Decimal::from(iv.micros % USECS_PER_HOUR / USECS_PER_MINUTE),
        "hour" => Decimal::from(iv.micros / USECS_PER_HOUR),
        "day" => Decimal::from(iv.days),
        "month" => Decimal::from(iv.months % 12),
        "quarter" => Decimal::from((iv.months % 12) / 3 + 1),
        "year" => Decimal::from(iv.months / 12),
        "decade" => Decimal::from(iv.months / 120),
        "century" => Decimal::from(iv.months / 1200),
        "millennium" => Decimal::from(iv.months / 12000),
        "epoch" => {
            // Years count as 365.25 days, months as 30 days.
            let day_secs: i128 = ((iv.months % 12) as i128 * 30 + iv.days as i128) * 86_400;
            let year_micros: i128 = (iv.months / 12) as i128 * 36_525 * 86_400 * 10_000;
            let micros = year_micros + day_secs * 1_000_000 + iv.micros as i128;
            Decimal::try_from_i128_with_scale(micros, 6).map_err(|_| interval_out_of_range())?
        }
        _ => return Err(unit_not_supported(field, ty)),
    })
}

/// `date_trunc(field, timestamp)`: truncates to the start of the unit.
pub fn date_trunc(field: &str, ts: i64, with_tz: bool) -> Result<i64> {
    let ty = if with_tz {
        "timestamp with time zone"
    } else {
        "timestamp without time zone"
    };
    let lower = field.to_ascii_lowercase();
    let name = canonical_field(&lower).ok_or_else(|| unit_not_recognized(field, ty))?;
    let mut f = timestamp_to_fields(ts)?;
    match name {
        "microseconds" => return Ok(ts),
        "milliseconds" => f.micros -= f.micros % 1000,
        "second" => f.micros = 0,
        "minute" => (f.second, f.micros) = (0, 0),
        "hour" => (f.minute, f.second, f.micros) = (0, 0, 0),
        "day" => (f.hour, f.minute, f.second, f.micros) = (0, 0, 0, 0),
        "week" => {
            let days = timestamp_to_date(ts)?;
            let date = naive(days).ok_or_else(timestamp_out_of_range)?;
            let back = date.weekday().num_days_from_monday() as i32;
            return Ok(date_to_timestamp(days - back));
        }
        "month" => (f.day, f.hour, f.minute, f.second, f.micros) = (1, 0, 0, 0, 0),
        "quarter" => {
            f.month = (f.month - 1) / 3 * 3 + 1;
            (f.day, f.hour, f.minute, f.second, f.micros) = (1, 0, 0, 0, 0);
        }
        "year" | "decade" | "century" | "millennium" => {
            f.year = match name {
                "year" => f.year,
                "decade" => f.year - f.year.rem_euclid(10),
                "century" if f.year > 0 => ((f.year + 99) / 100) * 100 - 99,
                "century" => -((99 - (f.year - 1)) / 100) * 100 + 1,
                "millennium" if f.year > 0 => ((f.year + 999) / 1000) * 1000 - 999,
                _ => -((999 - (f.year - 1)) / 1000) * 1000 + 1,
            };
            (f.month, f.day, f.hour, f.minute, f.second, f.micros) = (1, 1, 0, 0, 0, 0);
        }
        _ => return Err(unit_not_supported(field, ty)),
    }
    fields_to_timestamp(&f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        parse_timestamp(s, false).unwrap()
    }

    fn fmt_iv(s: &str) -> String {
        let mut out = String::new();
        format_interval_into(&parse_interval(s).unwrap(), &mut out);
        out
    }

    #[test]
    fn dates_parse_in_many_forms() {
        let want = ymd_to_days(1999, 1, 8).unwrap();
        for s in [
            "1999-01-08",
            "1/8/1999",
            "19990108",
            "January 8, 1999",
            "Jan 8 1999",
            "8 jan 1999",
            "1999-Jan-08",
            "1/8/99",
        ] {
            assert_eq!(parse_date(s).unwrap(), want, "{s}");
        }
        assert_eq!(parse_date("epoch").unwrap(), 0);
        assert_eq!(parse_date("2024-02-30").unwrap_err().code, "22008");
        assert_eq!(parse_date("2024-13-01").unwrap_err().code, "22008");
        assert_eq!(
            parse_date("garbage").unwrap_err().message,
            "invalid input syntax for type date: \"garbage\""
        );
        let mut out = String::new();
        format_date_into(parse_date("0044-03-15 BC").unwrap(), &mut out);
        assert_eq!(out, "0044-03-15 BC");
    }

    #[test]
    fn timestamps_parse_and_format() {
        let mut out = String::new();
        format_timestamp_into(ts("2024-01-02 03:04:05.123456"), &mut out);
        assert_eq!(out, "2024-01-02 03:04:05.123456");
        out.clear();
        format_timestamp_into(ts("2024-01-02 24:00:00"), &mut out);
        assert_eq!(out, "2024-01-03 00:00:00");
        out.clear();
        format_timestamptz_into(
            parse_timestamp("2024-01-02 03:04:05.5+02", true).unwrap(),
            &mut out,
        );
        assert_eq!(out, "2024-01-02 01:04:05.5+00");
        out.clear();
        format_timestamptz_into(
            parse_timestamp("2024-01-02T03:04:05Z", true).unwrap(),
            &mut out,
        );
        assert_eq!(out, "2024-01-02 03:04:05+00");
        assert_eq!(ts("2024-01-02 03:04"), ts("2024-01-02 03:04:00"));
        assert_eq!(ts("2024-01-02 03:04:05 pm"), ts("2024-01-02 15:04:05"));
        assert_eq!(ts("epoch"), 0);
        assert_eq!(
            parse_timestamp("2024-01-02 25:00", false).unwrap_err().code,
            "22008"
        );
    }

    #[test]
    fn intervals_match_postgresql_output() {
        let cases = [
            ("1 day 02:03:04", "1 day 02:03:04"),
            ("3 months", "3 mons"),
            ("-1 hours", "-01:00:00"),
            ("@ 1 minute ago", "-00:01:00"),
            ("P1Y2M3DT4H5M6S", "1 year 2 mons 3 days 04:05:06"),
            ("1.5 days", "1 day 12:00:00"),
            ("1.5 months", "1 mon 15 days"),
            ("1.5 years", "1 year 6 mons"),
            ("5", "00:00:05"),
            ("1 02:03:04", "1 day 02:03:04"),
            ("-1 day +02:00", "-1 days +02:00:00"),
            ("1 year -2 days", "1 year -2 days"),
            ("-1 year -2 mons", "-1 years -2 mons"),
            ("00:00:00.5", "00:00:00.5"),
            ("100 hours", "100:00:00"),
            ("1 week", "7 days"),
            ("0", "00:00:00"),
            ("-00:00:01.5", "-00:00:01.5"),
            ("1-2", "1 year 2 mons"),
            ("2 days ago", "-2 days"),
            ("1day", "1 day"),
        ];
        for (input, want) in cases {
            assert_eq!(fmt_iv(input), want, "{input}");
        }
        assert_eq!(parse_interval("1 fortnight").unwrap_err().code, "22007");
    }

    #[test]
    fn interval_arithmetic_matches_postgresql() {
        let jan31 = date_to_timestamp(parse_date("2024-01-31").unwrap());
        let mon = parse_interval("1 month").unwrap();
        assert_eq!(
            timestamp_add_interval(jan31, &mon).unwrap(),
            ts("2024-02-29")
        );
        let diff = timestamp_diff(ts("2024-03-01"), ts("2024-01-01 12:00")).unwrap();
        let mut out = String::new();
        format_interval_into(&diff, &mut out);
        assert_eq!(out, "59 days 12:00:00");
        let check = |iv: Interval, want: &str| {
            let mut out = String::new();
            format_interval_into(&iv, &mut out);
            assert_eq!(out, want);
        };
        check(
            interval_mul(&parse_interval("1 day").unwrap(), 1.5).unwrap(),
            "1 day 12:00:00",
        );
        check(
            interval_mul(&parse_interval("1 mon").unwrap(), 0.5).unwrap(),
            "15 days",
        );
        check(
            interval_mul(&parse_interval("1 hour").unwrap(), 1.0 / 3.0).unwrap(),
            "00:20:00",
        );
        check(
            interval_mul(&parse_interval("1 year 2 mons").unwrap(), 2.0).unwrap(),
            "2 years 4 mons",
        );
        check(
            age(ts("2024-03-01"), ts("2023-01-15 12:00")).unwrap(),
            "1 year 1 mon 16 days 12:00:00",
        );
    }

    #[test]
    fn extract_and_trunc_match_postgresql() {
        let t = ts("2024-02-03 04:05:06.5");
        let e = |f: &str| extract(f, ExtractSource::Timestamp, t).unwrap().to_string();
        assert_eq!(e("year"), "2024");
        assert_eq!(e("second"), "6.500000");
        assert_eq!(e("epoch"), "1706933106.500000");
        assert_eq!(e("millisecond"), "6500.000");
        let d = parse_date("2024-02-03").unwrap() as i64;
        assert_eq!(
            extract("dow", ExtractSource::Date, d).unwrap().to_string(),
            "6"
        );
        assert_eq!(
            extract("doy", ExtractSource::Date, d).unwrap().to_string(),
            "34"
        );
        assert_eq!(
            extract(
                "julian",
                ExtractSource::Date,
                parse_date("2024-01-01").unwrap() as i64
            )
            .unwrap()
            .to_string(),
            "2460311"
        );
        assert_eq!(
            extract("century", ExtractSource::Date, d)
                .unwrap()
                .to_string(),
            "21"
        );
        assert_eq!(
            extract("hour", ExtractSource::Date, d).unwrap_err().message,
            "unit \"hour\" not supported for type date"
        );
        assert_eq!(
            extract("fortnight", ExtractSource::Date, d)
                .unwrap_err()
                .code,
            "22023"
        );
        let iv = parse_interval("1 year 14 mons").unwrap();
        assert_eq!(extract_interval("month", &iv).unwrap().to_string(), "2");
        let iv = parse_interval("1 day 1 sec").unwrap();
        assert_eq!(
            extract_interval("epoch", &iv).unwrap().to_string(),
            "86401.000000"
        );
        let iv = parse_interval("1 year").unwrap();
        assert_eq!(
            extract_interval("epoch", &iv).unwrap().to_string(),
            "31557600.000000"
        );
        assert_eq!(
            date_trunc("month", ts("2024-02-03 04:05:06"), false).unwrap(),
            ts("2024-02-01")
        );
        assert_eq!(
            date_trunc("week", ts("2024-02-03 04:05:06"), false).unwrap(),
            ts("2024-01-29")
        );
        assert_eq!(
            date_trunc("quarter", ts("2024-05-03"), false).unwrap(),
            ts("2024-04-01")
        );
        assert_eq!(
            date_trunc("century", ts("2024-05-03"), false).unwrap(),
            ts("2001-01-01")
        );
    }
}
