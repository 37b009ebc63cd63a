//! Client-protocol frames for the tests: sizing, building, raw handshakes and
//! the comparison masks for the fields the transcripts' README lists as
//! varying from run to run.

use std::time::Instant;

use crate::net::{Conn, ReadEnd};

pub const HEADER_LEN: usize = 48;
pub const REG_MEMB_MESS: u32 = 0x1000;
pub const TRANSITION_MESS: u32 = 0x2000;
pub const REJECT_MESS: u32 = 0x0040_0000;
pub const JOIN_MESS: u32 = 0x0001_0000;
pub const LEAVE_MESS: u32 = 0x0002_0000;
pub const KILL_MESS: u32 = 0x0004_0000;
pub const AGREED_MESS: u32 = 0x10;
pub const SAFE_MESS: u32 = 0x20;
pub const CAUSED_BY_JOIN: u32 = 0x100;
pub const CAUSED_BY_NETWORK: u32 = 0x800;
pub const MARKER: u32 = 0x8000_0080;

fn rd(b: &[u8], at: usize, le: bool) -> u32 {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if le {
        u32::from_le_bytes(w)
    } else {
        u32::from_be_bytes(w)
    }
}

/// Decoded header fields (in the frame's own byte order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub le: bool,
    pub type_: u32,
    pub sender: [u8; 32],
    pub num_groups: i32,
    pub hint: u32,
    pub data_len: i32,
}

/// Decodes the 48-byte header at the start of `b`.
pub fn head(b: &[u8]) -> Option<Head> {
    if b.len() < HEADER_LEN {
        return None;
    }
    // the marker bits sit in byte 0 (bit 7) and byte 3 (bit 7) of a LE word
    let le = b[0] & 0x80 != 0 && b[3] & 0x80 != 0;
    let mut sender = [0u8; 32];
    sender.copy_from_slice(&b[4..36]);
    Some(Head {
        le,
        type_: rd(b, 0, le),
        sender,
        num_groups: rd(b, 36, le) as i32,
        hint: rd(b, 40, le),
        data_len: rd(b, 44, le) as i32,
    })
}

/// Bytes after the header of a daemon→client frame (groups + body, plus 4
/// for a reject's `old_type`); `None` when unsizable (negative fields).
pub fn rest_len(b: &[u8]) -> Option<usize> {
    let h = head(b)?;
    if h.num_groups < 0 || h.data_len < 0 {
        return None;
    }
    let extra = if h.type_ & REJECT_MESS != 0 { 4 } else { 0 };
    Some(extra + 32 * h.num_groups as usize + h.data_len as usize)
}

/// Offset of the body in a daemon→client frame.
pub fn body_offset(b: &[u8]) -> Option<usize> {
    let h = head(b)?;
    let extra = if h.type_ & REJECT_MESS != 0 { 4 } else { 0 };
    Some(HEADER_LEN + extra + 32 * usize::try_from(h.num_groups).ok()?)
}

/// A 32-byte NUL-padded name field.
pub fn name32(s: &[u8]) -> [u8; 32] {
    let mut n = [0u8; 32];
    let k = s.len().min(31);
    n[..k].copy_from_slice(&s[..k]);
    n
}

/// Text of a NUL-terminated name field.
pub fn name_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Builds a little-endian client→daemon message.
pub fn message(service: u32, sender: &[u8], groups: &[&[u8]], mess_type: i16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + 32 * groups.len() + body.len());
    v.extend_from_slice(&(service | MARKER).to_le_bytes());
    v.extend_from_slice(&name32(sender));
    v.extend_from_slice(&(groups.len() as u32).to_le_bytes());
    let hint = (((mess_type as u16 as u32) << 8) & 0x00ff_ff00) | MARKER;
    v.extend_from_slice(&hint.to_le_bytes());
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    for g in groups {
        v.extend_from_slice(&name32(g));
    }
    v.extend_from_slice(body);
    v
}

/// Builds a header with arbitrary raw field values (for malformed frames).
pub fn raw_header(type_: u32, sender: &[u8], num_groups: u32, hint: u32, data_len: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN);
    v.extend_from_slice(&type_.to_le_bytes());
    v.extend_from_slice(&name32(sender));
    v.extend_from_slice(&num_groups.to_le_bytes());
    v.extend_from_slice(&hint.to_le_bytes());
    v.extend_from_slice(&data_len.to_le_bytes());
    v
}

/// The 5.0.1 connect request bytes.
pub fn connect_request(name: &[u8], membership: bool, priority: bool) -> Vec<u8> {
    let flags = (membership as u8) | if priority { 0x10 } else { 0 };
    let mut v = vec![5, 0, 1, flags, name.len() as u8];
    v.extend_from_slice(name);
    v
}

/// The 90-byte auth choice "NULL".
pub fn auth_choice_null() -> Vec<u8> {
    let mut v = vec![0u8; 90];
    v[..4].copy_from_slice(b"NULL");
    v
}

/// Does a full 5.0.1 handshake as a raw client; returns the private group.
pub fn raw_handshake(c: &mut Conn, name: &[u8], membership: bool, deadline: Instant) -> Result<String, String> {
    c.write_all(&connect_request(name, membership, false)).map_err(|e| format!("send connect: {e}"))?;
    let first = c.read_exact_by(1, deadline).map_err(|e| format!("auth list: {e:?}"))?;
    if (first[0] as i8) < 0 {
        return Err(format!("rejected with byte {:02x}", first[0]));
    }
    c.read_exact_by(first[0] as usize, deadline).map_err(|e| format!("auth list body: {e:?}"))?;
    c.write_all(&auth_choice_null()).map_err(|e| format!("send auth choice: {e}"))?;
    let acc = c.read_exact_by(5, deadline).map_err(|e| format!("accept: {e:?}"))?;
    if acc[0] != 1 {
        return Err(format!("not accepted: {:02x?}", acc));
    }
    let pg = c.read_exact_by(acc[4] as usize, deadline).map_err(|e| format!("accept name: {e:?}"))?;
    Ok(String::from_utf8_lossy(&pg).into_owned())
}

/// Reads one daemon→client message; an error string on EOF/timeout.
pub fn read_msg(c: &mut Conn, deadline: Instant) -> Result<Vec<u8>, String> {
    c.read_message_by(deadline).map_err(|e| match e {
        ReadEnd::Eof(p) => format!("EOF after {} bytes", p.len()),
        ReadEnd::Reset(p) => format!("RST after {} bytes", p.len()),
        ReadEnd::Timeout(p) => format!("timeout after {} bytes", p.len()),
        ReadEnd::Error(s) => s,
    })
}

/// For membership and transitional frames, the gid time field (body bytes
/// 4..8) as (offset in frame, value); `None` for other frames.
pub fn gid_time_field(frame: &[u8]) -> Option<(usize, u32)> {
    let h = head(frame)?;
    if h.type_ & REJECT_MESS != 0 || h.type_ & (REG_MEMB_MESS | TRANSITION_MESS) == 0 {
        return None;
    }
    let off = body_offset(frame)?;
    if frame.len() < off + 8 {
        return None;
    }
    Some((off + 4, rd(frame, off + 4, h.le)))
}

/// A copy of a daemon→client frame with the gid time zeroed.
pub fn mask_gid_time(frame: &[u8]) -> Vec<u8> {
    let mut v = frame.to_vec();
    if let Some((at, _)) = gid_time_field(frame) {
        v[at..at + 4].fill(0);
    }
    v
}

/// A recorded client KILL frame as ours must send it: group field bytes
/// after the first NUL are zero (the original sent stack garbage there).
pub fn expected_kill(recorded: &[u8]) -> Vec<u8> {
    let mut v = recorded.to_vec();
    if v.len() >= HEADER_LEN + 32 {
        let g = &mut v[HEADER_LEN..HEADER_LEN + 32];
        if let Some(nul) = g.iter().position(|&c| c == 0) {
            g[nul..].fill(0);
        }
    }
    v
}

/// Is `name` of the daemon-invented form `#r<digits>-<digits>#<daemon>`?
pub fn is_random_private_name(name: &str, daemon: &str) -> bool {
    let Some(rest) = name.strip_prefix("#r") else { return false };
    let Some(rest) = rest.strip_suffix(&format!("#{daemon}")) else { return false };
    let mut parts = rest.splitn(2, '-');
    let a = parts.next().unwrap_or("");
    let b = parts.next().unwrap_or("");
    !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit())
}

/// A membership-aware client of a daemon for the ring tests: the 5.0.1
/// handshake done, its private group known.
pub struct Member {
    pub c: Conn,
    pub pg: String,
}

impl Member {
    /// Log in on `c` as `name` (with group membership), within `limit`.
    pub fn login(mut c: Conn, name: &str, limit: std::time::Duration) -> Member {
        let pg = raw_handshake(&mut c, name.as_bytes(), true, Instant::now() + limit).expect("handshake");
        Member { c, pg }
    }

    /// Multicast `body` to `group` with `service`.
    pub fn send(&mut self, service: u32, group: &str, body: &[u8]) {
        let f = message(service, self.pg.as_bytes(), &[group.as_bytes()], 0, body);
        self.c.write_all(&f).expect("send");
    }

    /// Messages until one satisfies `f` (each read bounded by `limit`);
    /// returns it.
    pub fn until_within(
        &mut self,
        what: &str,
        limit: std::time::Duration,
        mut f: impl FnMut(&Head, &[u8]) -> bool,
    ) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        loop {
            let m = read_msg(&mut self.c, deadline).unwrap_or_else(|e| panic!("{}: waiting for {what}: {e}", self.pg));
            let h = head(&m).expect("frame");
            if f(&h, &m) {
                return m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_recorded_join_bytes() {
        // e: mal1's JOIN of g1 (raw_client_log)
        let j = message(JOIN_MESS, b"#mal1#d1", &[b"g1"], 0, b"");
        assert_eq!(
            crate::hex::encode(&j),
            "80000180236d616c312364310000000000000000000000000000000000000000000000000100000080000080000000006731000000000000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(rest_len(&j), Some(32));
    }

    #[test]
    fn masks_and_names() {
        let k = crate::hex::decode("8000048023616c696365236431000000000000000000000000000000000000000000000001000000800000800000000023616c69636523643100000000000000ff030000000000000000000000000000").unwrap();
        let e = expected_kill(&k);
        assert!(e[48 + 9..].iter().all(|&b| b == 0));
        assert_eq!(&e[..48 + 9], &k[..48 + 9]);
        assert!(is_random_private_name("#r3539-9#d1", "d1"));
        assert!(!is_random_private_name("#alice#d1", "d1"));
    }
}
