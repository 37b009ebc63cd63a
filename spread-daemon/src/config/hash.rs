//! The one-at-a-time hash used for automatic VirtualIDs (§1.6) and the
//! configuration hash (§1.7), and the canonical address text that enters it.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Bob Jenkins' one-at-a-time hash as the 5.0.1 daemon computes it: the seed
/// is the number of bytes hashed and every byte is added as a *signed* char
/// (x86 semantics), all arithmetic modulo 2^32.
pub fn oaat(bytes: &[u8]) -> u32 {
    let mut h = bytes.len() as u32;
    for &b in bytes {
        h = h.wrapping_add(b as i8 as i32 as u32);
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
    }
    h = h.wrapping_add(h << 3);
    h ^= h >> 11;
    h = h.wrapping_add(h << 15);
    h
}

/// The automatic VirtualID of a daemon name: the hash over the name plus its
/// terminating NUL; the reserved values 0 and 0xFFFFFFFF are replaced by
/// `hashed_len << 16` (or 0x10000 if that is 0).
pub fn vid_of_name(name: &str) -> u32 {
    vid_of_bytes(name.as_bytes())
}

/// [`vid_of_name`] over the raw bytes of a name.
pub fn vid_of_bytes(name: &[u8]) -> u32 {
    let mut buf = Vec::with_capacity(name.len() + 1);
    buf.extend_from_slice(name);
    buf.push(0);
    let h = oaat(&buf);
    if h == 0 || h == u32::MAX {
        let alt = (buf.len() as u32) << 16;
        if alt == 0 {
            0x1_0000
        } else {
            alt
        }
    } else {
        h
    }
}

/// Canonical address text of the hash string: IPv4 dotted decimal, IPv6 as
/// eight groups of four lower-case hex digits without `::` compression.
/// Never carries a port or a scope.
pub fn canon_addr(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(39);
            for (i, seg) in v6.segments().iter().enumerate() {
                if i > 0 {
                    s.push(':');
                }
                let _ = write!(s, "{seg:04x}");
            }
            s
        }
    }
}

/// Inputs of one segment for [`conf_string`].
pub struct SegmentText<'a> {
    pub port: u16,
    pub addrs: Vec<IpAddr>,
    /// (name bytes, address, vid) in file order.
    pub daemons: Vec<(&'a [u8], IpAddr, u32)>,
}

/// The exact bytes whose hash (with a trailing NUL) is the configuration hash.
pub fn conf_bytes(segments: &[SegmentText<'_>], exclude_seg_addrs: bool, accelerated: bool) -> Vec<u8> {
    let mut s: Vec<u8> = Vec::new();
    for seg in segments {
        s.extend_from_slice(format!("Segment: port = {};", seg.port).as_bytes());
        if !exclude_seg_addrs {
            for a in &seg.addrs {
                s.extend_from_slice(format!(" [{}]", canon_addr(a)).as_bytes());
            }
        }
        s.push(b'\n');
        for (name, addr, vid) in &seg.daemons {
            s.extend_from_slice(b"\t'");
            s.extend_from_slice(name);
            s.extend_from_slice(format!("' [{}] [{}]\n", canon_addr(addr), vid).as_bytes());
        }
        s.push(b'\n');
    }
    let proto = if accelerated { "Accelerated Ring" } else { "Original Ring" };
    s.extend_from_slice(format!("Version: 5\nProtocol: {proto}\n").as_bytes());
    s
}

/// [`conf_bytes`] as text (lossy for names that are not UTF-8).
pub fn conf_string(segments: &[SegmentText<'_>], exclude_seg_addrs: bool, accelerated: bool) -> String {
    String::from_utf8_lossy(&conf_bytes(segments, exclude_seg_addrs, accelerated)).into_owned()
}

/// Hash of configuration bytes, including a terminating NUL.
pub fn conf_hash_of_bytes(text: &[u8]) -> u32 {
    let mut buf = Vec::with_capacity(text.len() + 1);
    buf.extend_from_slice(text);
    buf.push(0);
    oaat(&buf)
}

/// Hash of a configuration string, including its terminating NUL.
pub fn conf_hash_of(text: &str) -> u32 {
    conf_hash_of_bytes(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vid_vectors() {
        assert_eq!(vid_of_name("localhost"), 482_711_334);
        assert_eq!(vid_of_name("da"), 0x86F6_3E38);
        assert_eq!(vid_of_name("db"), 0x42B3_B6DC);
        assert_eq!(vid_of_name("d1"), 1_552_775_919);
        assert_eq!(vid_of_name("d2"), 348_480_928);
        assert_eq!(vid_of_name("d3"), 4_014_350_958);
    }

    #[test]
    fn signed_bytes_matter() {
        // A byte >= 0x80 is added as a negative value: the result must differ
        // from the unsigned interpretation.
        let signed = oaat(&[0xC3, 0xA9, 0]);
        let mut h: u32 = 3;
        for b in [0xC3u8, 0xA9, 0] {
            h = h.wrapping_add(b as u32);
            h = h.wrapping_add(h << 10);
            h ^= h >> 6;
        }
        h = h.wrapping_add(h << 3);
        h ^= h >> 11;
        h = h.wrapping_add(h << 15);
        assert_ne!(signed, h);
    }

    #[test]
    fn spec_hash_vector() {
        let seg = SegmentText {
            port: 34803,
            addrs: vec!["127.0.0.255".parse().unwrap()],
            daemons: vec![(b"localhost", "127.0.0.1".parse().unwrap(), vid_of_name("localhost"))],
        };
        let s = conf_string(std::slice::from_ref(&seg), false, false);
        assert_eq!(
            s,
            "Segment: port = 34803; [127.0.0.255]\n\t'localhost' [127.0.0.1] [482711334]\n\nVersion: 5\nProtocol: Original Ring\n"
        );
        assert_eq!(s.len(), 110);
        assert_eq!(conf_hash_of(&s), 2_631_608_298);
        let s = conf_string(std::slice::from_ref(&seg), false, true);
        assert_eq!(conf_hash_of(&s), 1_476_493_733);
    }

    #[test]
    fn canon_v6() {
        let ip: IpAddr = "ff02::1:2:3".parse().unwrap();
        assert_eq!(canon_addr(&ip), "ff02:0000:0000:0000:0000:0001:0002:0003");
    }
}
