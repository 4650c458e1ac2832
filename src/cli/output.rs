//! Output helpers: times as ISO 8601 UTC for people (JSON carries Unix seconds), and JSON
//! printing for panels.

/// `2026-11-30T08:20:13Z` for a Unix time.
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = mailmfa::calendar::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Prints a JSON value on one line of stdout.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// `utc(t)` or `-`.
pub fn utc_or_dash(t: Option<u64>) -> String {
    t.map(utc).unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
