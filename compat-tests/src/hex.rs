//! Hex helpers (no dependency needed for this).

/// Decodes a hex string; `None` on odd length or a non-hex digit.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    b.chunks(2).map(|p| Some(nib(p[0])? << 4 | nib(p[1])?)).collect()
}

/// Lower-case hex of `b`.
pub fn encode(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Hex of at most `max` bytes, with a marker when cut.
pub fn short(b: &[u8], max: usize) -> String {
    if b.len() <= max {
        encode(b)
    } else {
        format!("{}…(+{} bytes)", encode(&b[..max]), b.len() - max)
    }
}

/// A readable description of where two byte strings first differ.
pub fn diff(expected: &[u8], got: &[u8]) -> String {
    let first = expected.iter().zip(got.iter()).position(|(a, b)| a != b);
    let at = first.unwrap_or(expected.len().min(got.len()));
    let lo = at.saturating_sub(8);
    let hi_e = (at + 24).min(expected.len());
    let hi_g = (at + 24).min(got.len());
    format!(
        "lengths expected {} got {}; first difference at byte {}: expected [{}..] {} / got [{}..] {}",
        expected.len(),
        got.len(),
        at,
        lo,
        encode(expected.get(lo..hi_e).unwrap_or(&[])),
        lo,
        encode(got.get(lo..hi_g).unwrap_or(&[]))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejects() {
        assert_eq!(decode("00ff7a"), Some(vec![0, 255, 0x7a]));
        assert_eq!(encode(&[0, 255, 0x7a]), "00ff7a");
        assert_eq!(decode("0"), None);
        assert_eq!(decode("zz"), None);
        assert!(diff(b"abc", b"abd").contains("first difference at byte 2"));
    }
}
