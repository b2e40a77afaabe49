//! Human formatting shared by the CLI and the dashboard: thousands
//! separators and "about 2 min" durations.

/// `1234567` → `"1,234,567"`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate like `12,345` (rounded to a whole number per second).
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0".into();
    }
    thousands(per_sec.round() as i64)
}

/// `x` with at most `decimals` decimals, trailing zeros dropped:
/// `-3.25`, `47.6062`, `5`. Integer arithmetic only, so the dashboard's
/// wasm carries no float printer.
pub fn decimal(x: f64, decimals: u32) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let scale = 10_i64.pow(decimals);
    let n = (x * scale as f64).round() as i64;
    let whole = (n / scale).unsigned_abs();
    let frac = (n % scale).unsigned_abs();
    let sign = if n < 0 { "-" } else { "" };
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{:0width$}", frac, width = decimals as usize);
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// A remaining time in human units: "under 1 s", "42 s", "2 min", "1 h 5 min".
pub fn duration_approx(secs: f64) -> String {
    if !secs.is_finite() || secs < 1.0 {
        return "under 1 s".into();
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", (s + 30) / 60),
        _ => {
            let h = s / 3600;
            let m = (s % 3600 + 30) / 60;
            if m == 0 || m == 60 {
                format!("{} h", if m == 60 { h + 1 } else { h })
            } else {
                format!("{h} h {m} min")
            }
        }
    }
}

/// A byte count for operators: `812 KB`, `48 MB`, `1.5 GB` (powers of 1024).
pub fn bytes_approx(n: u64) -> String {
    const KB: f64 = 1024.0;
    let b = n as f64;
    if b < KB {
        format!("{n} B")
    } else if b < KB * KB {
        format!("{:.0} KB", b / KB)
    } else if b < KB * KB * KB {
        format!("{:.0} MB", b / KB / KB)
    } else {
        format!("{:.1} GB", b / KB / KB / KB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_and_drop_trailing_zeros() {
        assert_eq!(decimal(-3.25, 2), "-3.25");
        assert_eq!(decimal(47.606_2, 6), "47.6062");
        assert_eq!(decimal(5.0, 2), "5");
        assert_eq!(decimal(-0.5, 2), "-0.5");
        assert_eq!(decimal(-122.000_001, 6), "-122.000001");
        assert_eq!(decimal(0.004, 2), "0");
        assert_eq!(decimal(f64::NAN, 2), "—");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes_approx(900), "900 B");
        assert_eq!(bytes_approx(812 * 1024), "812 KB");
        assert_eq!(bytes_approx(48 * 1024 * 1024), "48 MB");
        assert_eq!(bytes_approx(3 * 1024 * 1024 * 1024 / 2), "1.5 GB");
    }

    #[test]
    fn separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(71_000), "71,000");
        assert_eq!(thousands(1_492_311), "1,492,311");
        assert_eq!(thousands(-12_345), "-12,345");
        assert_eq!(rate(1234.6), "1,235");
        assert_eq!(rate(f64::NAN), "0");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_approx(0.2), "under 1 s");
        assert_eq!(duration_approx(42.0), "42 s");
        assert_eq!(duration_approx(119.0), "2 min");
        assert_eq!(duration_approx(90.0), "2 min");
        assert_eq!(duration_approx(3_900.0), "1 h 5 min");
        assert_eq!(duration_approx(7_200.0), "2 h");
        assert_eq!(duration_approx(f64::INFINITY), "under 1 s");
    }
}
