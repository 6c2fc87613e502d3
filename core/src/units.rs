//! Sizes and durations as people write and read them: parsed from settings and flags, and sizes
//! shown in the CLI and the web app the same way.
//!
//! Sizes: `500GB`, `1.5 TiB`, `750000000`. Decimal units (kB, MB, GB, TB) are powers of 1000,
//! binary units (KiB, MiB, GiB, TiB) powers of 1024; units are case-insensitive; a plain number is
//! bytes. Durations: `30s`, `5m`, `24h`, `7d`, `250ms`; a plain number is seconds. Sizes are shown
//! in binary units with one decimal ([`format_bytes`]).

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid size {0:?}: expected a number and an optional unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)")]
pub struct SizeError(String);

/// Parse a size in bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let err = || SizeError(text.to_owned());
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(err()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(err());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| err())?
    };
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(err)?;
    if !fraction.is_empty() {
        // Exact integer arithmetic on up to 9 fractional digits, rounded down to whole bytes.
        if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let digits: u64 = fraction.parse().map_err(|_| err())?;
        let scale = 10u64.pow(u32::try_from(fraction.len()).map_err(|_| err())?);
        let part = u128::from(digits) * u128::from(multiplier) / u128::from(scale);
        bytes = bytes
            .checked_add(u64::try_from(part).map_err(|_| err())?)
            .ok_or_else(err)?;
    }
    Ok(bytes)
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid duration {0:?}: expected a whole number and an optional unit (ms, s, m, h, d)")]
pub struct DurationError(String);

/// Parse a duration.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_owned());
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| err())?;
    let seconds = |factor: u64| n.checked_mul(factor).map(Duration::from_secs).ok_or_else(err);
    match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" | "min" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => Err(err()),
    }
}

/// `1536` → `"1.5 KiB"`; below 1 KiB the exact count (`"999 B"`).
#[allow(clippy::cast_precision_loss)] // one decimal shown; f64 is exact far past that
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(10 << 30), "10.0 GiB");
        assert_eq!(format_bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7 d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        // Tried: empty, a fraction, a negative, an unknown unit, overflow. Must hold: an error.
        for bad in ["", "1.5h", "-3s", "3 fortnights", "99999999999999999999d", "h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn units_and_fractions() {
        assert_eq!(parse_size("750000000"), Ok(750_000_000));
        assert_eq!(parse_size("500GB"), Ok(500_000_000_000));
        assert_eq!(parse_size("500 gb"), Ok(500_000_000_000));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("1.5 TiB"), Ok(3 << 39));
        assert_eq!(parse_size("0.5k"), Ok(500));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
    }

    #[test]
    fn nonsense_is_refused() {
        // Tried: no number, an unknown unit, a negative, overflow, two dots. Must hold: SizeError.
        for bad in [
            "",
            "GB",
            "10 parsecs",
            "-5GB",
            "99999999999TiB",
            "1.2.3GB",
            ".",
            "1.0000000001GB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
