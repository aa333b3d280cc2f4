//! UTC calendar arithmetic on unix time, by hand so no date crate is linked into the wasm binary.
//! Budget periods use it for day and month boundaries; `auth` uses it for key expiry dates.

pub(crate) const SECS_PER_DAY: u64 = 86_400;

/// Unix seconds are clamped here (9999-12-31T23:59:59Z) so the day arithmetic below can never
/// overflow, whatever a host clock or a config file says.
pub(crate) const MAX_UNIX_SECS: u64 = 253_402_300_799;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
/// Callers validate `month` (1..=12) and `day`; years are bounded by the callers to 0..=9999.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number since 1970-01-01.
pub(crate) fn civil_from_days(days: u64) -> (i64, u32, u32) {
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

pub(crate) fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Index of the UTC calendar month containing `unix_s` (year * 12 + month - 1).
pub(crate) fn month_index(unix_s: u64) -> u64 {
    let (y, m, _) = civil_from_days(unix_s / SECS_PER_DAY);
    u64::try_from(y * 12 + i64::from(m) - 1).unwrap_or(0)
}

/// Unix seconds at which the UTC month after the one containing `unix_s` begins.
pub(crate) fn next_month_start(unix_s: u64) -> u64 {
    let (y, m, _) = civil_from_days(unix_s / SECS_PER_DAY);
    let (y, m) = if m >= 12 { (y + 1, 1) } else { (y, m + 1) };
    u64::try_from(days_from_civil(y, m, 1)).unwrap_or(0) * SECS_PER_DAY
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
}
