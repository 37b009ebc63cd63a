//! Data packets, their fragments, and the messages the fragments carry
//! (daemon spec §3.6, §3.7).
//!
//! ```text
//! packet body := frag_1_bytes { pad(0..3) fragment_header frag_k_bytes }*
//! ```
//! The header of fragment 1 is `first_frag` of the packet header; every further
//! fragment starts at the next body offset that is a multiple of 4, preceded by
//! its own 4-byte header. The pad bytes are uninitialised in the C sender
//! (§12 item 6); they are not kept and are written as zeros.
//!
//! A message is `message_header (48) | num_groups × 32 | data`, cut into
//! elements of [`ELEMENT_LEN`] bytes. Fragment bytes are kept verbatim: the
//! message header inside carries its own marker and is never byte-swapped with
//! the packet (§3.1), so [`Message::decode`] reads it by its own marker.

use super::{encode_packet, Error, FragmentHeader, PacketHeader, Reader, Result, PACKET_BODY_MAX};
use crate::consts::{HEADER_LEN, MAX_CLIENT_SCATTER_ELEMENTS, MAX_GROUP_NAME};
use crate::endian::Order;
use crate::header::Header;
use crate::names::Name32;

/// Size of every element of a message but the last (= the packet body size).
pub const ELEMENT_LEN: usize = PACKET_BODY_MAX;
/// Most elements a message has (`MAX_SCATTER_ELEMENTS`).
pub const MAX_ELEMENTS: usize = MAX_CLIENT_SCATTER_ELEMENTS;

/// One element of a message as it travels in a packet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// `k` for element k (1-based) of an n-element message when k < n, `−n`
    /// for the last element (−1: a whole single-element message).
    pub index: i16,
    pub data: Vec<u8>,
}

impl Fragment {
    /// The element begins a message (and so holds its message header).
    pub fn starts_message(&self) -> bool {
        self.index == 1 || self.index == -1
    }

    /// The element is the last one of its message.
    pub fn ends_message(&self) -> bool {
        self.index < 0
    }

    /// The message header, if this element starts a message and holds 48 bytes.
    pub fn message_header(&self) -> Option<Header> {
        if self.starts_message() {
            Header::decode_slice(&self.data)
        } else {
            None
        }
    }
}

/// A data packet (`type & REGULAR_TYPE` ≠ 0) with its fragments in body order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataPacket {
    /// `data_len` and `first_frag` are recomputed from `fragments` on encode.
    pub header: PacketHeader,
    /// At least one; only the first may be part of a multi-element message in
    /// what the C daemon sends (§3.6 packing rule), but any index is accepted.
    pub fragments: Vec<Fragment>,
}

/// Pad bytes needed after `len` body bytes to reach a multiple of 4.
pub fn pad_after(len: usize) -> usize {
    (4 - len % 4) % 4
}

impl DataPacket {
    /// Walk the body as the C receiver does (`protocol.c:Prot_handle_bcast`),
    /// except that a walk that does not end exactly at `data_len` is an error
    /// (the C code only logs it).
    pub fn decode_body(order: Order, header: PacketHeader, body: &[u8]) -> Result<DataPacket> {
        let mut r = Reader::new(order, body);
        let first_len = header.first_frag.len;
        if first_len < 0 {
            return Err(Error::BadValue { what: "first fragment_len", value: first_len as i64 });
        }
        let first = r.take("first fragment", first_len as usize)?;
        // Each fragment takes at least 4 header bytes after the first, so the
        // count is bounded by the body size.
        let mut fragments = vec![Fragment { index: header.first_frag.index, data: first.to_vec() }];
        while r.remaining() > 0 {
            r.take("fragment pad", pad_after(r.pos()))?;
            let index = r.i16("fragment_index")?;
            let len = r.i16("fragment_len")?;
            if len < 0 {
                return Err(Error::BadValue { what: "fragment_len", value: len as i64 });
            }
            let data = r.take("fragment bytes", len as usize)?;
            fragments.push(Fragment { index, data: data.to_vec() });
        }
        Ok(DataPacket { header, fragments })
    }

    /// Length of the body the fragments make (pads and inner headers included).
    pub fn body_len(fragments: &[Fragment]) -> usize {
        let mut n = 0;
        for (i, f) in fragments.iter().enumerate() {
            if i > 0 {
                n += pad_after(n) + 4;
            }
            n += f.data.len();
        }
        n
    }

    /// The packet body (pads written as zeros).
    pub fn encode_body(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        encode_fragments(order, &self.fragments, out)
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let mut body = Vec::with_capacity(DataPacket::body_len(&self.fragments));
        self.encode_body(order, &mut body)?;
        let f = &self.fragments[0];
        let first = FragmentHeader { index: f.index, len: f.data.len() as i16 };
        encode_packet(&self.header, Some(first), &body, order, out)
    }

    /// True if every fragment after the first is a whole single-element
    /// message (index −1), the rule a sender must keep (§3.6).
    pub fn follows_packing_rule(&self) -> bool {
        self.fragments.iter().skip(1).all(|f| f.index == -1)
    }
}

/// A packet body made of `fragments` (pads written as zeros): the first
/// fragment's bytes, then for each further one pad, fragment header, bytes.
pub fn encode_fragments(order: Order, fragments: &[Fragment], out: &mut Vec<u8>) -> Result<()> {
    if fragments.is_empty() {
        return Err(Error::BadValue { what: "number of fragments", value: 0 });
    }
    let len = DataPacket::body_len(fragments);
    if len > PACKET_BODY_MAX {
        return Err(Error::TooLarge { what: "packet body", len, max: PACKET_BODY_MAX });
    }
    let start = out.len();
    for (i, f) in fragments.iter().enumerate() {
        if i > 0 {
            let pad = pad_after(out.len() - start);
            out.resize(out.len() + pad, 0);
            order.push_i16(out, f.index);
            order.push_i16(out, f.data.len() as i16);
        }
        out.extend_from_slice(&f.data);
    }
    Ok(())
}

/// Cut a whole message into elements as the C daemon does: consecutive
/// [`ELEMENT_LEN`]-byte pieces, the last one shorter (§3.7).
pub fn split_message(message: &[u8]) -> Result<Vec<Fragment>> {
    if message.is_empty() {
        return Err(Error::BadValue { what: "message length", value: 0 });
    }
    let n = message.len().div_ceil(ELEMENT_LEN);
    if n > MAX_ELEMENTS {
        return Err(Error::TooLarge { what: "message elements", len: n, max: MAX_ELEMENTS });
    }
    Ok(message
        .chunks(ELEMENT_LEN)
        .enumerate()
        .map(|(i, c)| {
            let k = i as i16 + 1;
            Fragment { index: if i + 1 == n { -(n as i16) } else { k }, data: c.to_vec() }
        })
        .collect())
}

/// A whole message as carried by the ring (§3.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Order of the message header (its own marker; may differ from the packet's).
    pub order: Order,
    /// `num_groups` and `data_len` are recomputed from `groups` and `data` on
    /// encode, and the marker of `type_` is set to `order`'s.
    pub header: Header,
    /// Destination groups (raw 32-byte fields: the tail after the NUL may hold
    /// garbage, e.g. in a client KILL, and is kept).
    pub groups: Vec<Name32>,
    pub data: Vec<u8>,
}

impl Message {
    /// Decode the concatenation of a message's elements. The length must be
    /// exactly `48 + 32·num_groups + data_len`.
    pub fn decode(b: &[u8]) -> Result<Message> {
        let order = super::order_of(b)?;
        let header = Header::decode_slice(b).ok_or(Error::Truncated {
            what: "message header",
            need: HEADER_LEN,
            have: b.len(),
        })?;
        if header.num_groups < 0 {
            return Err(Error::BadValue { what: "message num_groups", value: header.num_groups as i64 });
        }
        if header.data_len < 0 {
            return Err(Error::BadValue { what: "message data_len", value: header.data_len as i64 });
        }
        let rest = header.rest_len(false).ok_or(Error::BadValue { what: "message length", value: -1 })?;
        let actual = b.len() - HEADER_LEN;
        if rest != actual {
            return Err(Error::LengthMismatch { what: "message length", declared: rest, actual });
        }
        let gbytes = header.num_groups as usize * MAX_GROUP_NAME;
        let groups = b[HEADER_LEN..HEADER_LEN + gbytes]
            .chunks_exact(MAX_GROUP_NAME)
            .map(|c| {
                let mut n = [0u8; MAX_GROUP_NAME];
                n.copy_from_slice(c);
                n
            })
            .collect();
        let data = b[HEADER_LEN + gbytes..].to_vec();
        Ok(Message { order, header, groups, data })
    }

    /// Bytes the encoded message takes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.groups.len() * MAX_GROUP_NAME + self.data.len()
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let too = |what, len: usize| Error::TooLarge { what, len, max: i32::MAX as usize };
        let ng = i32::try_from(self.groups.len()).map_err(|_| too("message groups", self.groups.len()))?;
        let dl = i32::try_from(self.data.len()).map_err(|_| too("message data", self.data.len()))?;
        let mut h = self.header.with_marker(self.order);
        h.num_groups = ng;
        h.data_len = dl;
        let mut hb = [0u8; HEADER_LEN];
        h.encode_in(self.order, &mut hb);
        out.extend_from_slice(&hb);
        for g in &self.groups {
            out.extend_from_slice(g);
        }
        out.extend_from_slice(&self.data);
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode(&mut v)?;
        Ok(v)
    }
}
