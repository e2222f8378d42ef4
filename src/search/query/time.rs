//! `search::query::time`: the durations (`longer:`, `shorter:`, `>>30s`) and dates
//! (`after:`, `before:`) of the query language, in seconds. No clock and no time zone:
//! dates are UTC, computed from the calendar alone.

/// Seconds of `90`, `90s`, `1.5m`, `2m30s`, `1h`, `1h30m`, `1:30`, `1:02:03`.
pub(super) fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    let ok = |x: f64| (x.is_finite() && x >= 0.0).then_some(x);
    if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let mut total = 0.0;
        for (i, p) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let v: f64 = if last {
                p.parse().ok()?
            } else {
                p.parse::<u64>().ok()? as f64
            };
            if i > 0 && v >= 60.0 {
                return None;
            }
            total = total * 60.0 + v;
        }
        return ok(total);
    }
    if let Ok(v) = s.parse::<f64>() {
        return ok(v);
    }
    let mut total = 0.0;
    let mut num = String::new();
    let mut seen = false;
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
        } else {
            let unit = match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return None,
            };
            total += num.parse::<f64>().ok()? * unit;
            num.clear();
            seen = true;
        }
    }
    if !num.is_empty() || !seen {
        return None;
    }
    ok(total)
}

/// Unix seconds at the start of `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or
/// `YYYY-MM-DDTHH:MM[:SS]` (UTC; a space may stand for the T).
pub(super) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut it = date.split('-');
    let year: i64 = it.next().filter(|y| y.len() == 4)?.parse().ok()?;
    let month: i64 = match it.next() {
        Some(m) => m.parse().ok().filter(|m| (1..=12).contains(m))?,
        None => 1,
    };
    let day: i64 = match it.next() {
        Some(d) => d
            .parse()
            .ok()
            .filter(|d| (1..=days_in_month(year, month)).contains(d))?,
        None => 1,
    };
    if it.next().is_some() {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    if let Some(t) = time {
        let parts: Vec<&str> = t.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        let h: i64 = parts[0].parse().ok().filter(|h| (0..24).contains(h))?;
        let m: i64 = parts[1].parse().ok().filter(|m| (0..60).contains(m))?;
        let sec: i64 = match parts.get(2) {
            Some(x) => x.parse().ok().filter(|x| (0..60).contains(x))?,
            None => 0,
        };
        secs += h * 3600 + m * 60 + sec;
    }
    Some(secs)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
