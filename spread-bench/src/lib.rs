//! Benchmark support for rspread: a small raw-protocol load client
//! ([`client`]), the spflooder/spping-style loads ([`load`]) and single-daemon
//! process management ([`daemon`]), and the runner of the C library load client
//! ([`libload`]). The `spread-bench` binary drives them
//! against our daemon and, optionally, the original 5.0.1 daemon, with the
//! same client, so the numbers compare daemons and nothing else.

pub mod client;
pub mod daemon;
pub mod libload;
pub mod load;

/// Median of a set of samples (mean of the two middle ones for even counts;
/// NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(super::median(&[]).is_nan());
    }
}
