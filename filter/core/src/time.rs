//! UTC calendar arithmetic on Unix time, by hand so no date crate is linked into the wasm binary:
//! budget periods (day and month boundaries), key expiry dates, and the timestamps formats put on
//! the wire (RFC 3339 both ways, SigV4's `x-amz-date`).

pub const SECS_PER_DAY: u64 = 86_400;

/// Unix seconds are clamped here (9999-12-31T23:59:59Z) so the day arithmetic below can never
/// overflow, whatever a host clock or a config file says.
pub const MAX_UNIX_SECS: u64 = 253_402_300_799;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
/// Callers validate `month` (1..=12) and `day`; years are bounded by the callers to 0..=9999.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number since 1970-01-01.
pub fn civil_from_days(days: u64) -> (i64, u32, u32) {
    let z = i64::try_from(days.min(MAX_UNIX_SECS / SECS_PER_DAY)).unwrap_or(0) + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if month <= 2 { y + 1 } else { y }, month, day)
}

pub fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Index of the UTC calendar month containing `unix_s` (year * 12 + month - 1).
pub fn month_index(unix_s: u64) -> u64 {
    let (y, m, _) = civil_from_days(unix_s / SECS_PER_DAY);
    u64::try_from(y * 12 + i64::from(m) - 1).unwrap_or(0)
}

/// Unix seconds at which the UTC month after the one containing `unix_s` begins.
pub fn next_month_start(unix_s: u64) -> u64 {
    let (y, m, _) = civil_from_days(unix_s / SECS_PER_DAY);
    let (y, m) = if m >= 12 { (y + 1, 1) } else { (y, m + 1) };
    u64::try_from(days_from_civil(y, m, 1)).unwrap_or(0) * SECS_PER_DAY
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d) = civil_from_days(secs / SECS_PER_DAY);
    let rem = secs % SECS_PER_DAY;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix seconds as SigV4's `YYYYMMDD'T'HHMMSS'Z'`.
pub fn amz_date(secs: u64) -> String {
    let (y, m, d) = civil_from_days(secs / SECS_PER_DAY);
    let rem = secs % SECS_PER_DAY;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let year = i64::from(year);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = b.get(19..)?;
    if let Some((b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = frac.get(n..)?;
    }
    let offset: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if rest.len() == 6 && rest.get(3) == Some(&b':') => {
            let oh = digits(rest, 1, 2)?;
            let om = digits(rest, 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * SECS_PER_DAY as i64 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    u64::try_from(secs).ok().filter(|s| *s <= MAX_UNIX_SECS)
}

/// `n` ASCII digits at `at`, as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let field = b.get(at..at.checked_add(n)?)?;
    field.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_across_leap_years_and_centuries() {
        for days in [
            0u64, 59, 60, 365, 10_957, 11_016, 19_782, 20_089, 47_541, 2_932_896,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days as i64, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2027, 1, 31), 20_849);
    }

    #[test]
    fn month_boundaries() {
        // 2024-12-31T23:59:59Z and 2025-01-01T00:00:00Z.
        assert_eq!(month_index(1_735_689_599) + 1, month_index(1_735_689_600));
        assert_eq!(next_month_start(1_735_689_599), 1_735_689_600);
        // February of a leap year ends on the 29th.
        assert_eq!(next_month_start(1_706_745_600), 1_709_251_200);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert!(next_month_start(u64::MAX) > 0);
    }

    #[test]
    fn rfc3339_formats_and_parses_with_offsets_and_fractions() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_691_164_939), "2023-08-04T16:02:19Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_rfc3339("2023-08-04T16:02:19Z"), Some(1_691_164_939));
        assert_eq!(
            parse_rfc3339("2023-08-04T09:02:19.385406455-07:00"),
            Some(1_691_164_939)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00+00:00"),
            Some(951_782_400)
        );
        for bad in [
            "",
            "2023-08-04",
            "2023-13-04T00:00:00Z",
            "2023-08-04T00:00:00",
            "1969-12-31T23:59:59Z",
            "2023-08-04T00:00:00+0700",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        for secs in [0u64, 86_399, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
    }

    #[test]
    fn key_expiry_dates_are_parsed_strictly() {
        let p = parse_rfc3339;
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(p("2027-01-31T00:00:00Z"), Some(1_801_353_600));
        assert_eq!(p("2027-01-31t00:00:00.999z"), Some(1_801_353_600));
        assert_eq!(p("2027-01-31T01:30:00+01:30"), Some(1_801_353_600));
        assert_eq!(p("2027-01-30T22:00:00-02:00"), Some(1_801_353_600));
        assert_eq!(p("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in [
            "",
            "2027-01-31",
            "2027-01-31T00:00:00",
            "2027-01-31T00:00Z",
            "2027-02-29T00:00:00Z",
            "2027-13-01T00:00:00Z",
            "2027-00-01T00:00:00Z",
            "2027-01-31T24:00:00Z",
            "2027-01-31T00:60:00Z",
            "2027-01-31T00:00:00.Z",
            "2027-01-31T00:00:00+0100",
            "2027-01-31T00:00:00+24:00",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00+00:01",
            "2027-01-31T00:00:00Zjunk",
            "２０２７-01-31T00:00:00Z",
            "+027-01-31T00:00:00Z",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
