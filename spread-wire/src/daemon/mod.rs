//! Daemon⇄daemon UDP datagrams (daemon spec §3).
//!
//! Two 40-byte header layouts exist: the *packet header* (everything sent to a
//! daemon's port P: data, ALIVE/JOIN/REFER, HURRY, monitor/control) and the
//! *token header* (everything sent to port P+1: the regular token, FORM1,
//! FORM2). Every integer is in the sender's byte order; the `type` word's marker
//! bits (§3.1) tell which, so decoding starts by reading them.
//!
//! Conventions of this module family:
//! * decoders take the whole datagram (or body) as `&[u8]`, check every length
//!   before reading, and return a value or an [`Error`]; they never panic and
//!   allocate no more than the input bytes can fill;
//! * decoders are *strict*: the datagram length must be exactly header + the
//!   declared body length, and a body must be consumed exactly; whatever decodes
//!   re-encodes to the same bytes, except for the bytes the C daemon leaves
//!   uninitialised (§12 item 6), which the encoders write as zeros;
//! * a decoded `type_` field never holds the marker bits (they are a property
//!   of the [`Order`] returned alongside); encoders add the marker of the order
//!   they write;
//! * encoders append to a `Vec<u8>` and recompute the length fields
//!   (`data_len`, `rtr_len`, counts, the first fragment header) from the body,
//!   so these need not be kept in step by hand; on error nothing is appended.
//!
//! Modules: [`data`] (data packets, fragments, messages), [`token`] (token header,
//! regular token), [`memb`] (ALIVE, JOIN, REFER, FORM1, FORM2), [`groups`] (the
//! GROUPS state-exchange message body), [`control`] (monitor packets).

use std::fmt;

use crate::consts::ENDIAN_RESERVED;
use crate::endian::{order_of_marker_bytes, Order};

pub mod control;
pub mod data;
pub mod groups;
pub mod memb;
pub mod token;

pub use control::{ControlBody, ControlPacket, Status};
pub use data::{DataPacket, Fragment, Message};
pub use groups::{DaemonRecord, GroupRecord, GroupsMessage};
pub use memb::{
    AlivePacket, Form1Token, Form2Token, JoinPacket, MemberList, ReferPacket, RepInfo, RepList, RepType, RingRecord,
};
pub use token::{RegularToken, RetransRequest, Token, TokenHeader, TokenKind};

// ---- the `type` word (§3.2, §9.1) -------------------------------------------
pub const UNRELIABLE_TYPE: u32 = 0x0000_0001;
pub const RELIABLE_TYPE: u32 = 0x0000_0002;
pub const FIFO_TYPE: u32 = 0x0000_0004;
pub const AGREED_TYPE: u32 = 0x0000_0008;
pub const SAFE_TYPE: u32 = 0x0000_0010;
/// Mask of the data services.
pub const REGULAR_TYPE: u32 = 0x0000_001f;
/// "The receiving segment leader must re-broadcast this in its segment".
pub const ROUTED_TYPE: u32 = 0x0000_0020;
pub const HURRY_TYPE: u32 = 0x0000_0040;
pub const ALIVE_TYPE: u32 = 0x0000_0100;
pub const JOIN_TYPE: u32 = 0x0000_0200;
pub const REFER_TYPE: u32 = 0x0000_0400;
pub const MEMBERSHIP_TYPE: u32 = 0x0000_0700;
pub const FORM1_TYPE: u32 = 0x0000_1000;
pub const FORM2_TYPE: u32 = 0x0000_2000;
pub const FORM_TYPE: u32 = 0x0000_3000;
/// Token round counter mod 16 (bits 16..19).
pub const ARQ_TYPE: u32 = 0x000f_0000;
/// Token retransmission counter (bits 20..23).
pub const RETRANS_TYPE: u32 = 0x00f0_0000;
pub const STATUS_TYPE: u32 = 0x0100_0000;
pub const PARTITION_TYPE: u32 = 0x0200_0000;
pub const FC_TYPE: u32 = 0x0400_0000;
pub const RELOAD_TYPE: u32 = 0x0800_0000;
pub const CONTROL_TYPE: u32 = 0x0f00_0000;
/// Every bit that only a port-P packet carries (used to tell packets from
/// tokens without knowing the port).
pub const PACKET_ONLY_BITS: u32 = CONTROL_TYPE | MEMBERSHIP_TYPE | HURRY_TYPE | ROUTED_TYPE | REGULAR_TYPE;

// ---- sizes (§3.13, §9.2) ----------------------------------------------------
pub const PACKET_HEADER_LEN: usize = 40;
pub const TOKEN_HEADER_LEN: usize = 40;
/// Largest datagram on port P (`MAX_PACKET_SIZE`).
pub const MAX_PACKET_SIZE: usize = 1472;
/// Largest packet body (`sizeof(packet_body)`), also the size of a message element.
pub const PACKET_BODY_MAX: usize = MAX_PACKET_SIZE - PACKET_HEADER_LEN;
/// Largest token body (`sizeof(token_body)`): 65535 − IP 20 − UDP 8 − 40.
pub const TOKEN_BODY_MAX: usize = 65_535 - 20 - 8 - TOKEN_HEADER_LEN;
pub const MAX_PROCS_RING: usize = 128;
pub const MAX_REPS: usize = 25;
pub const MEMBERSHIP_ID_LEN: usize = 8;

/// What went wrong while decoding (or, for [`Error::TooLarge`], encoding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The input ends before `what` (`need` bytes from the cursor, `have` left).
    Truncated { what: &'static str, need: usize, have: usize },
    /// The marker bits of the `type` word are neither both set nor both clear.
    BadMarker([u8; 4]),
    /// A declared length disagrees with the bytes present.
    LengthMismatch { what: &'static str, declared: usize, actual: usize },
    /// A count or flag outside what the original can send.
    BadValue { what: &'static str, value: i64 },
    /// A packet `type` that no receiver handles (§3.4 step 11: "unknown packet type").
    UnknownType(u32),
    /// The datagram's `type` says it is not of the kind the caller asked for.
    WrongKind { expected: &'static str, type_: u32 },
    /// More than the wire format (or the C receive buffer) can hold.
    TooLarge { what: &'static str, len: usize, max: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what, need, have } => write!(f, "truncated at {what}: need {need} bytes, have {have}"),
            Error::BadMarker(b) => write!(f, "mixed endian marker in type bytes {b:02x?}"),
            Error::LengthMismatch { what, declared, actual } => {
                write!(f, "{what}: declared {declared} bytes, found {actual}")
            }
            Error::BadValue { what, value } => write!(f, "bad {what}: {value}"),
            Error::UnknownType(t) => write!(f, "unknown packet type 0x{t:08x}"),
            Error::WrongKind { expected, type_ } => write!(f, "expected {expected}, type is 0x{type_:08x}"),
            Error::TooLarge { what, len, max } => write!(f, "{what} too large: {len} > {max}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// A checked cursor over a byte slice in one byte order. Every read names the
/// field it reads, for the error.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    order: Order,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(order: Order, buf: &'a [u8]) -> Reader<'a> {
        Reader { order, buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8]> {
        let have = self.remaining();
        if n > have {
            return Err(Error::Truncated { what, need: n, have });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(what, 1)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16> {
        let o = self.order;
        Ok(o.read_u16(self.take(what, 2)?))
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16> {
        Ok(self.u16(what)? as i16)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        let o = self.order;
        Ok(o.read_u32(self.take(what, 4)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(self.u32(what)? as i32)
    }

    /// An i16 count in `0..=max`.
    pub(crate) fn count16(&mut self, what: &'static str, max: usize) -> Result<usize> {
        let v = self.i16(what)?;
        check_count(what, v as i64, max)
    }

    /// `n` i32 values; the length is checked before anything is allocated.
    pub(crate) fn i32s(&mut self, what: &'static str, n: usize) -> Result<Vec<i32>> {
        let bytes = self.take(what, n.checked_mul(4).ok_or(Error::BadValue { what, value: n as i64 })?)?;
        let o = self.order;
        Ok(bytes.chunks_exact(4).map(|c| o.read_i32(c)).collect())
    }

    pub(crate) fn membership_id(&mut self, what: &'static str) -> Result<MembershipId> {
        Ok(MembershipId { proc_id: self.i32(what)?, time: self.i32(what)? })
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::LengthMismatch { what, declared: self.pos, actual: self.buf.len() });
        }
        Ok(())
    }
}

pub(crate) fn check_count(what: &'static str, v: i64, max: usize) -> Result<usize> {
    if v < 0 || v as u64 > max as u64 {
        return Err(Error::BadValue { what, value: v });
    }
    Ok(v as usize)
}

/// A count as the i16 the wire holds, or `TooLarge`.
pub(crate) fn to_i16(what: &'static str, n: usize, max: usize) -> Result<i16> {
    if n > max || n > i16::MAX as usize {
        return Err(Error::TooLarge { what, len: n, max: max.min(i16::MAX as usize) });
    }
    Ok(n as i16)
}

/// The byte order a datagram (or message) was written in, from the marker bits
/// of its first word (§3.1).
pub fn order_of(b: &[u8]) -> Result<Order> {
    let Some(w) = b.get(..4) else {
        return Err(Error::Truncated { what: "type", need: 4, have: b.len() });
    };
    order_of_marker_bytes(w).ok_or(Error::BadMarker([w[0], w[1], w[2], w[3]]))
}

/// A ring (configuration) id, or another `(proc_id, time)` pair of the same
/// shape: a FORM attempt id, `(−1, −1)` for "unknown", a REFER's (VID, rep type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MembershipId {
    pub proc_id: i32,
    pub time: i32,
}

impl MembershipId {
    pub fn encode(&self, order: Order, out: &mut Vec<u8>) {
        order.push_i32(out, self.proc_id);
        order.push_i32(out, self.time);
    }
}

/// `fragment_header` (§3.6): index (k for element k of n, −n for the last) and length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragmentHeader {
    pub index: i16,
    pub len: i16,
}

/// Data service of a data packet (§3.2 bits 0..4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Unreliable,
    Reliable,
    Fifo,
    Agreed,
    Safe,
}

impl Service {
    /// The service of a `type` word: its highest service bit (the C protocol
    /// compares `type & REGULAR_TYPE` numerically, §4.6), `None` if it has none.
    pub fn of_type(t: u32) -> Option<Service> {
        let r = t & REGULAR_TYPE;
        Some(if r & SAFE_TYPE != 0 {
            Service::Safe
        } else if r & AGREED_TYPE != 0 {
            Service::Agreed
        } else if r & FIFO_TYPE != 0 {
            Service::Fifo
        } else if r & RELIABLE_TYPE != 0 {
            Service::Reliable
        } else if r & UNRELIABLE_TYPE != 0 {
            Service::Unreliable
        } else {
            return None;
        })
    }

    pub const fn type_bit(self) -> u32 {
        match self {
            Service::Unreliable => UNRELIABLE_TYPE,
            Service::Reliable => RELIABLE_TYPE,
            Service::Fifo => FIFO_TYPE,
            Service::Agreed => AGREED_TYPE,
            Service::Safe => SAFE_TYPE,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Service::Unreliable => "UNRELIABLE",
            Service::Reliable => "RELIABLE",
            Service::Fifo => "FIFO",
            Service::Agreed => "AGREED",
            Service::Safe => "SAFE",
        }
    }
}

/// Membership packet kinds (§3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MembershipKind {
    Alive,
    Join,
    Refer,
}

/// Monitor/control packet kinds (§8.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlKind {
    Status,
    Partition,
    FlowControl,
    Reload,
}

/// What a port-P packet is, decided from its `type` word in the order the C
/// receiver tests the bits (§3.4 step 7 and 11): control first (PARTITION
/// before the rest, `network.c` handles it itself, then STATUS, FC, RELOAD),
/// then membership (ALIVE, JOIN, REFER), HURRY, and finally the data services.
/// The ROUTED bit does not change the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    Control(ControlKind),
    Membership(MembershipKind),
    Hurry,
    Data(Service),
}

impl PacketKind {
    /// Classify a `type` word (marker bits are ignored); `None` for a type that
    /// the C daemon drops as unknown.
    pub fn of_type(t: u32) -> Option<PacketKind> {
        if t & CONTROL_TYPE != 0 {
            let k = if t & PARTITION_TYPE != 0 {
                ControlKind::Partition
            } else if t & STATUS_TYPE != 0 {
                ControlKind::Status
            } else if t & FC_TYPE != 0 {
                ControlKind::FlowControl
            } else {
                ControlKind::Reload
            };
            return Some(PacketKind::Control(k));
        }
        if t & MEMBERSHIP_TYPE != 0 {
            let k = if t & ALIVE_TYPE != 0 {
                MembershipKind::Alive
            } else if t & JOIN_TYPE != 0 {
                MembershipKind::Join
            } else {
                MembershipKind::Refer
            };
            return Some(PacketKind::Membership(k));
        }
        if t & HURRY_TYPE != 0 {
            return Some(PacketKind::Hurry);
        }
        Service::of_type(t).map(PacketKind::Data)
    }
}

/// `packet_header` (§3.3), integers as values. `type_` has no marker bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PacketHeader {
    pub type_: u32,
    /// VID of the daemon that physically sent the datagram.
    pub transmiter_id: i32,
    /// VID of the originator.
    pub proc_id: i32,
    /// Ring id (data); REFER: (referred rep VID, rep type).
    pub memb_id: MembershipId,
    /// Ring sequence number (data); STATUS query: the monitor's reply port.
    pub seq: i32,
    pub token_round: i32,
    pub conf_hash: u32,
    /// Body length. The packet encoders overwrite it with the real body length.
    pub data_len: u16,
    /// Kept as raw bytes: the C receiver never swaps this field (§3.4, §12 item 11).
    pub padding: [u8; 2],
    /// Header of the first fragment (data packets); 0 in other packets as sent
    /// by 5.0.1, carried through unchanged.
    pub first_frag: FragmentHeader,
}

impl PacketHeader {
    /// Decode the first 40 bytes of `b` in `order` (no length or type checks
    /// beyond "40 bytes are there").
    pub fn decode_in(order: Order, b: &[u8]) -> Result<PacketHeader> {
        let mut r = Reader::new(order, b);
        let type_ = r.u32("packet type")? & !ENDIAN_RESERVED;
        let transmiter_id = r.i32("transmiter_id")?;
        let proc_id = r.i32("proc_id")?;
        let memb_id = r.membership_id("memb_id")?;
        let seq = r.i32("seq")?;
        let token_round = r.i32("token_round")?;
        let conf_hash = r.u32("conf_hash")?;
        let data_len = r.u16("data_len")?;
        let p = r.take("padding", 2)?;
        let padding = [p[0], p[1]];
        let first_frag = FragmentHeader { index: r.i16("fragment_index")?, len: r.i16("fragment_len")? };
        Ok(PacketHeader {
            type_,
            transmiter_id,
            proc_id,
            memb_id,
            seq,
            token_round,
            conf_hash,
            data_len,
            padding,
            first_frag,
        })
    }

    /// Decode the header of a datagram: the order from the marker, then the
    /// fields. Checks nothing about the body.
    pub fn decode(b: &[u8]) -> Result<(Order, PacketHeader)> {
        let order = order_of(b)?;
        Ok((order, PacketHeader::decode_in(order, b)?))
    }

    /// Append the 40 header bytes exactly as the fields say (marker of `order` added).
    pub fn encode(&self, order: Order, out: &mut Vec<u8>) {
        order.push_u32(out, (self.type_ & !ENDIAN_RESERVED) | order.marker());
        order.push_i32(out, self.transmiter_id);
        order.push_i32(out, self.proc_id);
        self.memb_id.encode(order, out);
        order.push_i32(out, self.seq);
        order.push_i32(out, self.token_round);
        order.push_u32(out, self.conf_hash);
        order.push_u16(out, self.data_len);
        out.extend_from_slice(&self.padding);
        order.push_i16(out, self.first_frag.index);
        order.push_i16(out, self.first_frag.len);
    }

    pub fn kind(&self) -> Option<PacketKind> {
        PacketKind::of_type(self.type_)
    }

    pub fn is_routed(&self) -> bool {
        self.type_ & ROUTED_TYPE != 0
    }
}

/// Split a datagram into its header and a body of exactly `data_len` bytes.
fn packet_parts(b: &[u8]) -> Result<(Order, PacketHeader, &[u8])> {
    if b.len() > MAX_PACKET_SIZE {
        return Err(Error::TooLarge { what: "packet datagram", len: b.len(), max: MAX_PACKET_SIZE });
    }
    let (order, h) = PacketHeader::decode(b)?;
    let body = &b[PACKET_HEADER_LEN..];
    if body.len() != h.data_len as usize {
        return Err(Error::LengthMismatch {
            what: "packet data_len",
            declared: h.data_len as usize,
            actual: body.len(),
        });
    }
    Ok((order, h, body))
}

/// Write `header` with `data_len` (and, when given, the first fragment header)
/// replaced, then `body`.
pub(crate) fn encode_packet(
    header: &PacketHeader,
    first_frag: Option<FragmentHeader>,
    body: &[u8],
    order: Order,
    out: &mut Vec<u8>,
) -> Result<()> {
    if body.len() > PACKET_BODY_MAX {
        return Err(Error::TooLarge { what: "packet body", len: body.len(), max: PACKET_BODY_MAX });
    }
    let mut h = *header;
    h.data_len = body.len() as u16;
    if let Some(f) = first_frag {
        h.first_frag = f;
    }
    h.encode(order, out);
    out.extend_from_slice(body);
    Ok(())
}

/// Everything that arrives on a daemon's port P, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Data(DataPacket),
    Alive(AlivePacket),
    Join(JoinPacket),
    Refer(ReferPacket),
    /// Header only (§3.9); receivers use `proc_id`.
    Hurry(PacketHeader),
    Control(ControlPacket),
}

impl Packet {
    /// Decode a port-P datagram. The length must be exactly `40 + data_len`
    /// (§3.4 step 3) and at most [`MAX_PACKET_SIZE`].
    pub fn decode(b: &[u8]) -> Result<(Order, Packet)> {
        let (order, h, body) = packet_parts(b)?;
        let kind = h.kind().ok_or(Error::UnknownType(h.type_))?;
        let p = match kind {
            PacketKind::Data(_) => Packet::Data(DataPacket::decode_body(order, h, body)?),
            PacketKind::Membership(MembershipKind::Alive) => Packet::Alive(AlivePacket::decode_body(order, h, body)?),
            PacketKind::Membership(MembershipKind::Join) => Packet::Join(JoinPacket::decode_body(order, h, body)?),
            PacketKind::Membership(MembershipKind::Refer) => Packet::Refer(ReferPacket::decode_body(h, body)?),
            PacketKind::Hurry => {
                expect_empty("HURRY body", body)?;
                Packet::Hurry(h)
            }
            PacketKind::Control(k) => Packet::Control(ControlPacket::decode_body(order, h, k, body)?),
        };
        Ok((order, p))
    }

    /// Append the datagram in `order`.
    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Packet::Data(p) => p.encode(order, out),
            Packet::Alive(p) => p.encode(order, out),
            Packet::Join(p) => p.encode(order, out),
            Packet::Refer(p) => p.encode(order, out),
            Packet::Hurry(h) => encode_packet(h, None, &[], order, out),
            Packet::Control(p) => p.encode(order, out),
        }
    }

    pub fn header(&self) -> &PacketHeader {
        match self {
            Packet::Data(p) => &p.header,
            Packet::Alive(p) => &p.header,
            Packet::Join(p) => &p.header,
            Packet::Refer(p) => &p.header,
            Packet::Hurry(h) => h,
            Packet::Control(p) => &p.header,
        }
    }
}

pub(crate) fn expect_empty(what: &'static str, body: &[u8]) -> Result<()> {
    if !body.is_empty() {
        return Err(Error::LengthMismatch { what, declared: 0, actual: body.len() });
    }
    Ok(())
}

/// Either kind of daemon datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// Sent to port P.
    Packet(Packet),
    /// Sent to port P+1.
    Token(Token),
}

impl Datagram {
    /// True if the `type` word (marker ignored) belongs to a port-P packet:
    /// any of [`PACKET_ONLY_BITS`]. A token's type holds only FORM, ARQ and
    /// RETRANS bits, so the two never overlap in what the original sends.
    pub fn is_packet_type(t: u32) -> bool {
        t & PACKET_ONLY_BITS != 0
    }

    /// Decode a datagram without knowing which port it came to, by its type
    /// word. A receiver that knows the port should call [`Packet::decode`] or
    /// [`Token::decode`] instead, as the C daemon does.
    pub fn decode(b: &[u8]) -> Result<(Order, Datagram)> {
        let order = order_of(b)?;
        let t = order.read_u32(b);
        if Datagram::is_packet_type(t) {
            let (o, p) = Packet::decode(b)?;
            Ok((o, Datagram::Packet(p)))
        } else {
            let (o, t) = Token::decode(b)?;
            Ok((o, Datagram::Token(t)))
        }
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Datagram::Packet(p) => p.encode(order, out),
            Datagram::Token(t) => t.encode(order, out),
        }
    }

    /// Encode into a new vector.
    pub fn to_bytes(&self, order: Order) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.encode(order, &mut v)?;
        Ok(v)
    }
}

/// Run `f` appending to `out`; on error take back whatever it appended.
pub(crate) fn atomic_append(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
    let start = out.len();
    let r = f(out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

#[cfg(test)]
mod tests;
