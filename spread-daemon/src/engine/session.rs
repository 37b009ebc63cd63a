//! The session layer, daemon side (client spec §2.3, §2.6; daemon spec §7):
//! per-connection state, the handshake phases and the validation of client
//! message headers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use spread_wire::consts::*;
use spread_wire::handshake::ConnectRequest;
use spread_wire::names::{parse_private_group, Name32};
use spread_wire::Header;

use super::auth::AuthMethod;
use super::pacing::PaceState;

/// Identifies a connection: a slot index and the generation of that slot.
/// Ids are never reused while the driver may still know them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub idx: u32,
    pub gen: u32,
}

/// Transport of a client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    Tcp,
    Unix,
}

/// Where a connection is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the connect request.
    Connect,
    /// The allowed-methods list was sent; waiting for the 90-byte choice.
    AuthChoice,
    /// Running the chosen methods in order; `next` is the one to run, `ok`
    /// whether all so far succeeded.
    AuthRun { methods: Vec<AuthMethod>, next: usize, ok: bool },
    /// Operational: messages flow.
    Op,
    /// Killed: nothing is read or written any more; the slot is freed when the
    /// session's KILL comes back from the ordering layer.
    Dead,
}

impl Phase {
    pub fn is_handshake(&self) -> bool {
        matches!(self, Phase::Connect | Phase::AuthChoice | Phase::AuthRun { .. })
    }
}

/// One client connection / session.
pub struct Session {
    pub id: ConnId,
    pub kind: ConnKind,
    pub peer: Option<SocketAddr>,
    /// What the original calls the session's mailbox (its socket
    /// descriptor): given by the driver at accept time, used in invented
    /// private names and reported to the session observer.
    pub mailbox: i32,
    pub phase: Phase,
    pub req: Option<ConnectRequest>,
    /// Private name (without `#`s); empty until known.
    pub name: Vec<u8>,
    /// `#name#daemon`, NUL-padded; valid once `named`.
    pub pg: Name32,
    /// What the sender field of this session's messages must say (set with
    /// `pg`).
    pub sender: SenderName,
    /// Registered in the engine's name table.
    pub named: bool,
    /// Wants membership messages.
    pub memb: bool,
    /// Bytes read and not yet parsed.
    pub rbuf: BytesMut,
    /// Free space of the current small-frame block (see the engine docs).
    pub arena: BytesMut,
    /// Frames waiting to be written; the first one is written from `out_off`.
    pub out: VecDeque<Bytes>,
    pub out_off: usize,
    /// The last write attempt could not take everything.
    pub blocked: bool,
    /// The engine already told the driver to close this connection.
    pub closed: bool,
    pub deadline: Option<Instant>,
    /// Bytes in `out` not yet written (see [`super::queues`]).
    pub queued_bytes: usize,
    /// Counted in the connect budget (no connect request yet; see
    /// [`super::admission`]).
    pub connecting: bool,
    /// Pacing, as sender and as recipient (see [`super::pacing`]).
    pub pace: PaceState,
}

impl Session {
    pub fn new(id: ConnId, kind: ConnKind, peer: Option<SocketAddr>) -> Session {
        Session {
            id,
            kind,
            peer,
            mailbox: id.idx as i32,
            phase: Phase::Connect,
            req: None,
            name: Vec::new(),
            pg: [0; MAX_GROUP_NAME],
            sender: SenderName::NONE,
            named: false,
            memb: false,
            rbuf: BytesMut::new(),
            arena: BytesMut::new(),
            out: VecDeque::new(),
            out_off: 0,
            blocked: false,
            closed: false,
            deadline: None,
            queued_bytes: 0,
            connecting: false,
            pace: PaceState::default(),
        }
    }

    /// Number of bytes queued for writing.
    pub fn out_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Queue a frame (the engine adds its length to its total).
    pub(super) fn push_out(&mut self, b: Bytes) {
        self.queued_bytes += b.len();
        self.out.push_back(b);
    }

    /// `n` bytes were written: drop what they finished.
    pub(super) fn consume_out(&mut self, n: usize) {
        let mut n = n.min(self.queued_bytes);
        self.queued_bytes -= n;
        while n > 0 {
            let Some(front) = self.out.front() else { break };
            let rest = front.len() - self.out_off;
            if n >= rest {
                n -= rest;
                self.out.pop_front();
                self.out_off = 0;
            } else {
                self.out_off += n;
                n = 0;
            }
        }
    }

    /// Take everything queued, the first frame from `out_off`; returns the
    /// frames and their byte count.
    pub(super) fn take_out(&mut self) -> (Vec<Bytes>, usize) {
        let off = std::mem::take(&mut self.out_off);
        let v = self.out.drain(..).enumerate().map(|(i, b)| if i == 0 { b.slice(off..) } else { b }).collect();
        (v, std::mem::take(&mut self.queued_bytes))
    }
}

/// Count of set bits of `t` in `[first, last)`.
#[inline]
fn bits(t: u32, first: u32, last: u32) -> u32 {
    let mask = ((1u64 << last) - (1u64 << first)) as u32;
    (t & mask).count_ones()
}

/// Why a client header was refused (`Sess_validate_read_header`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadHeader {
    Type,
    Sender,
    NumGroups,
    Hint,
    DataLen,
}

/// The sender name a session's messages must carry, prepared once per
/// session so that checking a header is one short compare.
///
/// A header's sender field (byte 31 taken as NUL) is accepted when its bytes
/// up to the first NUL split as `#priv#proc` with `priv` the session's name
/// and `proc` this daemon's name, both non-empty, within their length limits
/// and of valid characters (`parse_private_group`). Whether a session's name
/// and the daemon's name pass those rules does not depend on the message, so
/// it is decided here once (`valid`); what remains per message is: the field
/// starts with the `len` bytes of `#priv#proc` and ends there (a NUL, or the
/// end of the 31 usable bytes). Bytes after that NUL are not looked at, as
/// before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderName {
    pg: Name32,
    len: u8,
    valid: bool,
}

impl SenderName {
    /// Matches no sender field.
    pub const NONE: SenderName = SenderName { pg: [0; MAX_GROUP_NAME], len: 0, valid: false };

    /// The sender name of session `session_name` on daemon `daemon_name`.
    pub fn new(session_name: &[u8], daemon_name: &[u8]) -> SenderName {
        let pg = spread_wire::names::private_group(session_name, daemon_name);
        // `pg` is truncated at 31 bytes; then its daemon part differs from
        // `daemon_name` and nothing is ever accepted, as the full parse says.
        let valid = matches!(parse_private_group(&pg), Some((p, d)) if p == session_name && d == daemon_name);
        let len = spread_wire::names::name_bytes(&pg).len() as u8;
        SenderName { pg, len, valid }
    }

    /// Whether a header's 32-byte sender field names this session.
    #[inline]
    pub fn matches(&self, field: &Name32) -> bool {
        let l = self.len as usize;
        // l <= 31: pg holds at most 31 name bytes.
        self.valid && field[..l] == self.pg[..l] && (l >= MAX_GROUP_NAME - 1 || field[l] == 0)
    }
}

/// Validate a client message header (client spec §2.6 step 2). `h` is decoded
/// (integers swapped if foreign) and `type_` already carries this daemon's
/// marker; `hint` is raw.
pub fn validate_header(h: &Header, session_name: &[u8], daemon_name: &[u8]) -> Result<(), BadHeader> {
    validate_header_with(h, &SenderName::new(session_name, daemon_name))
}

/// [`validate_header`] with the session's prepared [`SenderName`].
#[inline]
pub fn validate_header_with(h: &Header, sender: &SenderName) -> Result<(), BadHeader> {
    let t = h.type_;
    let tb = bits(t, 0, 6);
    let mb = bits(t, 16, 19);
    if tb > 1 || mb > 1 || tb + mb != 1 {
        return Err(BadHeader::Type);
    }
    // The original forwards GROUPS_MESS from clients into its groups layer
    // and aborts there; refuse it instead.
    if t & GROUPS_MESS != 0 {
        return Err(BadHeader::Type);
    }
    // A REJECT_MESS bit would be delivered as is, and every receiving
    // library would then read the 4 bytes a reject frame carries out of the
    // next frame: one client could break the framing of a whole group (found
    // by `fuzz/` client_frames). Only daemons make reject frames.
    if t & REJECT_MESS != 0 {
        return Err(BadHeader::Type);
    }
    if !sender.matches(&h.sender) {
        return Err(BadHeader::Sender);
    }
    if h.num_groups < 0 || h.num_groups as usize > MAX_GROUPS_PER_MESSAGE {
        return Err(BadHeader::NumGroups);
    }
    if h.hint & !(0x8000_0080 | 0x00ff_ff00) != 0 {
        return Err(BadHeader::Hint);
    }
    if h.data_len < 0 || h.data_len as usize > MAX_MESSAGE_BODY_LEN {
        return Err(BadHeader::DataLen);
    }
    if h.data_len as usize + MAX_GROUP_NAME * h.num_groups as usize > MAX_DAEMON_BODY_AND_GROUPS {
        return Err(BadHeader::DataLen);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::endian::ARCH_ENDIAN;
    use spread_wire::names::name32;

    fn h(t: u32) -> Header {
        Header { type_: t | ARCH_ENDIAN, sender: name32(b"#bob#d1"), num_groups: 1, hint: ARCH_ENDIAN, data_len: 4 }
    }

    #[test]
    fn validation() {
        let ok = |x: &Header| validate_header(x, b"bob", b"d1");
        assert_eq!(ok(&h(AGREED_MESS)), Ok(()));
        assert_eq!(ok(&h(AGREED_MESS | SELF_DISCARD | DROP_RECV | SUBGROUP_CAST)), Ok(()));
        assert_eq!(ok(&h(JOIN_MESS)), Ok(()));
        assert_eq!(ok(&h(RELIABLE_MESS | AGREED_MESS)), Err(BadHeader::Type));
        assert_eq!(ok(&h(0)), Err(BadHeader::Type));
        assert_eq!(ok(&h(JOIN_MESS | LEAVE_MESS)), Err(BadHeader::Type));
        assert_eq!(ok(&h(JOIN_MESS | AGREED_MESS)), Err(BadHeader::Type));
        assert_eq!(ok(&h(GROUPS_MESS | AGREED_MESS)), Err(BadHeader::Type));
        // The fuzzer's finding: FIFO | REJECT_MESS from a client.
        assert_eq!(ok(&h(FIFO_MESS | REJECT_MESS)), Err(BadHeader::Type));
        let mut x = h(AGREED_MESS);
        x.sender = name32(b"#alice#d1");
        assert_eq!(ok(&x), Err(BadHeader::Sender));
        x.sender = name32(b"#bob#d2");
        assert_eq!(ok(&x), Err(BadHeader::Sender));
        let mut x = h(AGREED_MESS);
        x.num_groups = 101;
        assert_eq!(ok(&x), Err(BadHeader::NumGroups));
        x.num_groups = -1;
        assert_eq!(ok(&x), Err(BadHeader::NumGroups));
        let mut x = h(AGREED_MESS);
        x.hint = 0x8000_0781;
        assert_eq!(ok(&x), Err(BadHeader::Hint));
        let mut x = h(AGREED_MESS);
        x.data_len = 144_001;
        x.num_groups = 0;
        assert_eq!(ok(&x), Err(BadHeader::DataLen));
        x.data_len = 143_952;
        assert_eq!(ok(&x), Ok(()));
        x.num_groups = 1;
        x.data_len = 143_952 - 32;
        assert_eq!(ok(&x), Ok(()));
        x.data_len += 1;
        assert_eq!(ok(&x), Err(BadHeader::DataLen));
    }

    /// The sender rule spelled out with the full parse, for comparison.
    fn sender_by_parse(field: &Name32, session_name: &[u8], daemon_name: &[u8]) -> bool {
        let mut f = *field;
        f[MAX_GROUP_NAME - 1] = 0;
        matches!(parse_private_group(&f), Some((p, d)) if p == session_name && d == daemon_name)
    }

    fn field(s: &[u8]) -> Name32 {
        let mut f = [0u8; MAX_GROUP_NAME];
        f[..s.len()].copy_from_slice(s);
        f
    }

    #[test]
    fn sender_near_misses() {
        let ok = |f: &[u8]| {
            let mut x = h(AGREED_MESS);
            x.sender = field(f);
            validate_header(&x, b"bob", b"d1")
        };
        assert_eq!(ok(b"#bob#d1"), Ok(()));
        // Bytes after the terminating NUL do not count.
        assert_eq!(ok(b"#bob#d1\0xyz"), Ok(()));
        for near in [
            &b"#bob#d12"[..],
            b"#bob#d",
            b"#bo#d1",
            b"#bobb#d1",
            b"bob#d1",
            b"#bob#d1#",
            b"#bob##d1",
            b"##bob#d1",
            b"#Bob#d1",
            b"#bob d1",
            b"",
            b"#",
            b"#bob#",
            b"#bob#d1 ",
        ] {
            assert_eq!(ok(near), Err(BadHeader::Sender), "{:?}", String::from_utf8_lossy(near));
        }
    }

    #[test]
    fn sender_check_equals_full_parse() {
        // Names at and past the length limits: 10-character session name with
        // a 19-character daemon name fills all 31 bytes.
        let cases: [(&[u8], &[u8]); 7] = [
            (b"bob", b"d1"),
            (b"abcdefghij", b"d1"),
            (b"abcdefghij", b"abcdefghijklmnopqrs"),
            (b"abcdefghijk", b"d1"),
            (b"abcdefghij", b"abcdefghijklmnopqrst"),
            (b"b#b", b"d1"),
            (b"", b"d1"),
        ];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let alphabet = b"#bdaj1s\0t\x7f\x23 ";
        for (name, daemon) in cases {
            let sn = SenderName::new(name, daemon);
            let mut base = [0u8; MAX_GROUP_NAME];
            let full = [&b"#"[..], name, b"#", daemon].concat();
            let n = full.len().min(MAX_GROUP_NAME);
            base[..n].copy_from_slice(&full[..n]);
            assert_eq!(sn.matches(&base), sender_by_parse(&base, name, daemon));
            // Bounded: a few thousand mutations of 1-3 bytes each.
            for _ in 0..4000 {
                let mut f = base;
                for _ in 0..1 + next() % 3 {
                    let i = (next() % MAX_GROUP_NAME as u64) as usize;
                    f[i] = alphabet[(next() % alphabet.len() as u64) as usize];
                }
                assert_eq!(
                    sn.matches(&f),
                    sender_by_parse(&f, name, daemon),
                    "{name:?} {daemon:?} {:?}",
                    String::from_utf8_lossy(&f)
                );
            }
        }
        assert!(
            SenderName::new(b"abcdefghij", b"abcdefghijklmnopqrs").matches(&field(b"#abcdefghij#abcdefghijklmnopqrs"))
        );
        assert!(!SenderName::new(b"abcdefghij", b"abcdefghijklmnopqrst")
            .matches(&field(b"#abcdefghij#abcdefghijklmnopqrs")));
        assert!(!SenderName::NONE.matches(&[0; MAX_GROUP_NAME]));
    }
}
