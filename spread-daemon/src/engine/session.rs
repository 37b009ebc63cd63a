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
    pub phase: Phase,
    pub req: Option<ConnectRequest>,
    /// Private name (without `#`s); empty until known.
    pub name: Vec<u8>,
    /// `#name#daemon`, NUL-padded; valid once `named`.
    pub pg: Name32,
    /// Registered in the engine's name table.
    pub named: bool,
    /// Wants membership messages.
    pub memb: bool,
    /// Bytes read and not yet parsed.
    pub rbuf: BytesMut,
    /// Frames waiting to be written; the first one is written from `out_off`.
    pub out: VecDeque<Bytes>,
    pub out_off: usize,
    /// The last write attempt could not take everything.
    pub blocked: bool,
    /// The engine already told the driver to close this connection.
    pub closed: bool,
    pub deadline: Option<Instant>,
}

impl Session {
    pub fn new(id: ConnId, kind: ConnKind, peer: Option<SocketAddr>) -> Session {
        Session {
            id,
            kind,
            peer,
            phase: Phase::Connect,
            req: None,
            name: Vec::new(),
            pg: [0; MAX_GROUP_NAME],
            named: false,
            memb: false,
            rbuf: BytesMut::new(),
            out: VecDeque::new(),
            out_off: 0,
            blocked: false,
            closed: false,
            deadline: None,
        }
    }

    /// Number of bytes queued for writing.
    pub fn out_bytes(&self) -> usize {
        self.out.iter().map(|b| b.len()).sum::<usize>() - self.out_off
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

/// Validate a client message header (client spec §2.6 step 2). `h` is decoded
/// (integers swapped if foreign) and `type_` already carries this daemon's
/// marker; `hint` is raw.
pub fn validate_header(h: &Header, session_name: &[u8], daemon_name: &[u8]) -> Result<(), BadHeader> {
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
    let mut sender = h.sender;
    sender[MAX_GROUP_NAME - 1] = 0;
    match parse_private_group(&sender) {
        Some((p, d)) if d == daemon_name && p == session_name => {}
        _ => return Err(BadHeader::Sender),
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
}
