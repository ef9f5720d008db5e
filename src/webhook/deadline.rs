//! The review's deadline: the configured one, shortened by the API server's `?timeout=`.

use std::time::Duration;

/// The review's deadline: the configured one, shortened so that the answer is sent before the API
/// server gives up at the `?timeout=` it sends (a tenth of it, at least 0.5 s, is left for the
/// answer to travel).
pub(crate) fn review_deadline(configured: Duration, query: Option<&str>) -> Duration {
    let given = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("timeout="))
        .and_then(parse_go_duration);
    match given {
        Some(t) => {
            let margin = (t / 10).max(Duration::from_millis(500));
            configured.min(t.saturating_sub(margin))
        }
        None => configured,
    }
}

/// A Go `time.Duration` string as kube-apiserver writes `?timeout=` (`10s`, `1m30s`, `500ms`).
/// `None` for anything else, or a duration over an hour.
fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, after) = rest.split_at(digits);
        let n: u64 = number.parse().ok()?;
        let unit_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(unit_len);
        let part = match unit {
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = after;
    }
    (total <= Duration::from_secs(3600)).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_servers_timeout_bounds_the_review_deadline() {
        let eight = Duration::from_secs(8);
        let d = |q: &str| review_deadline(eight, Some(q));
        assert_eq!(d("timeout=10s"), Duration::from_secs(8));
        assert_eq!(d("timeout=5s"), Duration::from_millis(4500));
        assert_eq!(d("timeout=1s"), Duration::from_millis(500));
        assert_eq!(d("x=1&timeout=30s"), eight);
        assert_eq!(d("timeout=1m30s"), eight);
        assert_eq!(d("timeout=2500ms"), Duration::from_millis(2000));
        assert_eq!(d("timeout=100ms"), Duration::ZERO);
        for ignored in [
            "timeout=",
            "timeout=10",
            "timeout=-1s",
            "timeout=1.5s",
            "timeout=99999999999999999999h",
            "timeout=2h",
        ] {
            assert_eq!(d(ignored), eight, "{ignored}");
        }
        assert_eq!(review_deadline(eight, None), eight);
    }
}
