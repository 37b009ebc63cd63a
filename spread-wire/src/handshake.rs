//! The connection handshake (client spec §2.3), both sides, no I/O.
//!
//! ```text
//! C→D  maj min [patch] flags L name[L]        (patch only from libraries ≥ 3.15)
//! D→C  reject byte (<0)  |  n list[n]          ("NULL " …; not sent to libraries < 3.16)
//! C→D  90 bytes: 3 × 30-byte NUL-padded method names
//! D→C  reject byte  |  01 maj min [patch] N name[N]   (patch only to libraries ≥ 3.15)
//! ```

use crate::consts::*;
use crate::names::valid_name_char;

/// Size of the auth-choice block.
pub const AUTH_CHOICE_LEN: usize = MAX_AUTH_NAME * MAX_AUTH_METHODS;

/// Flag bit: the client wants membership messages.
pub const FLAG_MEMBERSHIP: u8 = 0x01;
/// Flag bit: priority ≥ 1 (stored by the daemon, never used).
pub const FLAG_PRIORITY: u8 = 0x10;

/// Library version as one number, `maj*10000 + min*100 + patch` (signed bytes).
#[inline]
pub fn version_number(major: i8, minor: i8, patch: i8) -> i32 {
    major as i32 * 10000 + minor as i32 * 100 + patch as i32
}

/// The connect request a 5.0.1 library sends: `05 00 01 flags L name`.
/// `name` longer than 10 bytes is truncated to 10 (as the library does).
pub fn encode_connect_request(group_membership: bool, priority: i32, name: &[u8]) -> Vec<u8> {
    let name = &name[..name.len().min(MAX_PRIVATE_NAME)];
    let mut flags = 0u8;
    if group_membership {
        flags |= FLAG_MEMBERSHIP;
    }
    if priority >= 1 {
        flags |= FLAG_PRIORITY;
    }
    let mut v = Vec::with_capacity(5 + name.len());
    v.extend_from_slice(&[SP_MAJOR_VERSION, SP_MINOR_VERSION, SP_PATCH_VERSION, flags, name.len() as u8]);
    v.extend_from_slice(name);
    v
}

/// A connect request as the daemon parsed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    pub major: i8,
    pub minor: i8,
    /// 0 for libraries ≤ 3.14 (they send only two version bytes).
    pub patch: i8,
    pub flags: u8,
    /// Empty: the daemon must invent a name.
    pub name: Vec<u8>,
}

impl ConnectRequest {
    pub fn version(&self) -> i32 {
        version_number(self.major, self.minor, self.patch)
    }
    /// `flags % 2 == 1` on a signed char.
    pub fn wants_membership(&self) -> bool {
        (self.flags as i8) % 2 != 0
    }
    /// `flags / 16` on a signed char.
    pub fn priority(&self) -> i32 {
        (self.flags as i8) as i32 / 16
    }
    /// Libraries before 3.16 do no auth negotiation.
    pub fn negotiates_auth(&self) -> bool {
        self.version() >= 31600
    }
    /// Libraries from 3.15 get a patch byte in the accept reply.
    pub fn gets_patch_byte(&self) -> bool {
        self.version() >= 31500
    }
}

/// Outcome of parsing the bytes received so far from a new connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectParse {
    /// Need more bytes.
    Incomplete,
    /// Send this reject byte and close. `consumed` bytes were read by then.
    Reject { code: i32, consumed: usize },
    /// A complete request of `consumed` bytes.
    Done { req: ConnectRequest, consumed: usize },
}

/// Daemon side of C1 (`session.c:Sess_accept_continue`): parse as much as is
/// there. Name uniqueness is the caller's business.
pub fn parse_connect_request(b: &[u8]) -> ConnectParse {
    if b.len() < 2 {
        return ConnectParse::Incomplete;
    }
    let (v0, v1) = (b[0] as i8, b[1] as i8);
    let mut pos = 2;
    let mut v2 = 0i8;
    if v0 as i32 * 10000 + v1 as i32 * 100 > 31400 {
        if b.len() < 3 {
            return ConnectParse::Incomplete;
        }
        v2 = b[2] as i8;
        pos = 3;
    }
    if version_number(v0, v1, v2) < 30100 {
        return ConnectParse::Reject { code: REJECT_VERSION, consumed: pos };
    }
    if b.len() < pos + 2 {
        return ConnectParse::Incomplete;
    }
    let flags = b[pos];
    let len = b[pos + 1] as i8;
    pos += 2;
    if !(0..=MAX_PRIVATE_NAME as i8).contains(&len) {
        return ConnectParse::Reject { code: REJECT_ILLEGAL_NAME, consumed: pos };
    }
    let len = len as usize;
    if b.len() < pos + len {
        return ConnectParse::Incomplete;
    }
    let name = &b[pos..pos + len];
    pos += len;
    if !name.iter().all(|&c| valid_name_char(c)) {
        return ConnectParse::Reject { code: REJECT_ILLEGAL_NAME, consumed: pos };
    }
    ConnectParse::Done {
        req: ConnectRequest { major: v0, minor: v1, patch: v2, flags, name: name.to_vec() },
        consumed: pos,
    }
}

/// D→C allowed-methods list: `n` then each name followed by a space.
pub fn encode_auth_list(methods: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for m in methods {
        body.extend_from_slice(m);
        body.push(b' ');
    }
    let mut v = Vec::with_capacity(1 + body.len());
    v.push(body.len() as u8);
    v.extend_from_slice(&body);
    v
}

/// Split an allowed-methods list body on single spaces (the library's
/// `valid_auth_method` tokenisation).
pub fn auth_list_tokens(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&c| c == b' ').filter(|t| !t.is_empty())
}

/// C→D auth choice: slot i holds the i-th method name, NUL-padded.
pub fn encode_auth_choice(methods: &[&[u8]]) -> [u8; AUTH_CHOICE_LEN] {
    let mut out = [0u8; AUTH_CHOICE_LEN];
    for (i, m) in methods.iter().take(MAX_AUTH_METHODS).enumerate() {
        let n = m.len().min(MAX_AUTH_NAME);
        out[i * MAX_AUTH_NAME..i * MAX_AUTH_NAME + n].copy_from_slice(&m[..n]);
    }
    out
}

/// Daemon side of C3: the requested method names, slot by slot until an empty
/// slot (bounded at 3 slots — 5.0.1 reads past its buffer there).
pub fn parse_auth_choice(b: &[u8; AUTH_CHOICE_LEN]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    for i in 0..MAX_AUTH_METHODS {
        let slot = &b[i * MAX_AUTH_NAME..(i + 1) * MAX_AUTH_NAME];
        if slot[0] == 0 {
            break;
        }
        let n = slot.iter().position(|&c| c == 0).unwrap_or(MAX_AUTH_NAME);
        v.push(&slot[..n]);
    }
    v
}

/// D→C accept: `01 5 0 [1] N name`.
pub fn encode_accept(req: &ConnectRequest, private_group: &[u8]) -> Vec<u8> {
    let n = private_group.len().min(MAX_GROUP_NAME - 1);
    let mut v = Vec::with_capacity(5 + n);
    v.push(ACCEPT_SESSION as u8);
    v.push(SP_MAJOR_VERSION);
    v.push(SP_MINOR_VERSION);
    if req.gets_patch_byte() {
        v.push(SP_PATCH_VERSION);
    }
    v.push(n as u8);
    v.extend_from_slice(&private_group[..n]);
    v
}

/// One reject byte (two's complement of the code).
#[inline]
pub fn reject_byte(code: i32) -> u8 {
    code as i8 as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tv1_connect_request() {
        assert_eq!(encode_connect_request(true, 0, b"user1"), b"\x05\x00\x01\x01\x05user1");
        assert_eq!(encode_connect_request(false, 1, b"user2")[3], 0x10);
        assert_eq!(encode_connect_request(true, 5, b"abcdefghijklmnop").len(), 15);
        assert_eq!(encode_auth_list(&[b"NULL"]), b"\x05NULL ");
        let c = encode_auth_choice(&[b"NULL"]);
        assert_eq!(&c[..4], b"NULL");
        assert!(c[4..].iter().all(|&b| b == 0));
        assert_eq!(parse_auth_choice(&c), vec![&b"NULL"[..]]);
    }

    #[test]
    fn daemon_parse() {
        let r = parse_connect_request(b"\x05\x00\x01\x01\x05user1");
        match r {
            ConnectParse::Done { req, consumed } => {
                assert_eq!(consumed, 10);
                assert_eq!(req.name, b"user1");
                assert!(req.wants_membership());
                assert!(req.negotiates_auth());
                assert_eq!(encode_accept(&req, b"#user1#localhost"), b"\x01\x05\x00\x01\x10#user1#localhost");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_connect_request(b"\x05\x00\x01\x01"), ConnectParse::Incomplete);
        // 2.9.9
        assert_eq!(parse_connect_request(b"\x02\x09"), ConnectParse::Reject { code: REJECT_VERSION, consumed: 2 });
        // name length 11
        assert!(matches!(
            parse_connect_request(b"\x05\x00\x01\x00\x0b"),
            ConnectParse::Reject { code: REJECT_ILLEGAL_NAME, .. }
        ));
        // "a b"
        assert!(matches!(
            parse_connect_request(b"\x05\x00\x01\x00\x03a b"),
            ConnectParse::Reject { code: REJECT_ILLEGAL_NAME, .. }
        ));
        // legacy 3.14: two version bytes, no patch byte in the accept
        match parse_connect_request(b"\x03\x0e\x01\x05leg14") {
            ConnectParse::Done { req, .. } => {
                assert!(!req.negotiates_auth());
                assert_eq!(encode_accept(&req, b"#leg14#d1"), b"\x01\x05\x00\x09#leg14#d1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(reject_byte(REJECT_NOT_UNIQUE), 0xfa);
    }
}
