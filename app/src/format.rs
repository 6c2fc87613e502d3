//! Numbers for people: sizes in binary units, rates in MB/s, durations, times.

/// A JavaScript number that holds a whole count (a size, a clock in seconds) as an integer.
/// Such numbers are exact below 2^53; negative and non-finite values become 0.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn whole(n: f64) -> u64 {
    if n.is_finite() && n > 0.0 { n.round() as u64 } else { 0 }
}

/// `1536` → `"1.5 KiB"` (the CLI shows sizes the same way).
pub fn bytes(n: u64) -> String {
    disktro_core::units::format_bytes(n)
}

/// Same, for the API's signed counters (negative shows as zero).
pub fn bytes_i(n: i64) -> String {
    bytes(u64::try_from(n).unwrap_or(0))
}

/// Megabytes (10^6) per second.
pub fn rate(bytes: u64, millis: f64) -> String {
    if millis <= 0.0 {
        return "—".to_owned();
    }
    format!("{:.1} MB/s", bytes as f64 / 1e6 / (millis / 1000.0))
}

/// `95` → `"1 min 35 s"`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "—".to_owned();
    }
    let s = whole(secs);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// How long ago a unix time was, from `now` (both seconds).
pub fn ago(then: i64, now: i64) -> String {
    let d = now.saturating_sub(then).max(0);
    match d {
        0..5 => "just now".to_owned(),
        5..120 => format!("{d} s ago"),
        120..7200 => format!("{} min ago", d / 60),
        7200..172_800 => format!("{} h ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}

/// A unix time as `YYYY-MM-DD HH:MM` UTC.
pub fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_right() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(rate(100_000_000, 1000.0), "100.0 MB/s");
        assert_eq!(duration(95.0), "1 min 35 s");
        assert_eq!(ago(100, 160), "60 s ago");
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_795_000_000), "2026-11-18 11:06 UTC");
    }
}
