//! The token header and the regular token (daemon spec §3.8).
//!
//! ```text
//! 0  i32 type          ARQ (bits 16..19), RETRANS (20..23), FORM1/FORM2, marker
//! 4  i32 transmiter_id
//! 8  i32 proc_id       last daemon that processed the token
//! 12 i32 memb_id.proc_id, 16 i32 memb_id.time
//! 20 i32 seq           24 i32 aru          28 i32 aru_last_id
//! 32 i16 flow_control  34 u16 rtr_len      36 u32 conf_hash
//! ```
//! A regular token's body is a list of retransmission requests:
//! `ring_rtr` (i32 memb_id.proc_id, i32 memb_id.time, i32 proc_id, i16
//! seg_index, i16 num_seq) followed by `num_seq` i32 sequence numbers.

use super::memb::{Form1Token, Form2Token};
use super::{
    atomic_append, order_of, to_i16, Error, MembershipId, Reader, Result, ARQ_TYPE, FORM1_TYPE, FORM_TYPE,
    RETRANS_TYPE, TOKEN_BODY_MAX, TOKEN_HEADER_LEN,
};
use crate::consts::ENDIAN_RESERVED;
use crate::endian::Order;

/// Bytes of a `ring_rtr` record header.
pub const RING_RTR_LEN: usize = 16;

/// What a port-P+1 datagram is (`protocol.c:Prot_handle_token`,
/// `membership.c:Memb_handle_token`: FORM1 is tested before FORM2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Regular,
    Form1,
    Form2,
}

impl TokenKind {
    pub fn of_type(t: u32) -> TokenKind {
        if t & FORM_TYPE == 0 {
            TokenKind::Regular
        } else if t & FORM1_TYPE != 0 {
            TokenKind::Form1
        } else {
            TokenKind::Form2
        }
    }
}

/// `token_header`, integers as values; `type_` has no marker bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TokenHeader {
    pub type_: u32,
    pub transmiter_id: i32,
    pub proc_id: i32,
    /// Ring id (regular token); attempt id (form tokens).
    pub memb_id: MembershipId,
    pub seq: i32,
    pub aru: i32,
    pub aru_last_id: i32,
    pub flow_control: i16,
    /// Body length; the token encoders overwrite it with the real length.
    pub rtr_len: u16,
    pub conf_hash: u32,
}

impl TokenHeader {
    pub fn decode_in(order: Order, b: &[u8]) -> Result<TokenHeader> {
        let mut r = Reader::new(order, b);
        Ok(TokenHeader {
            type_: r.u32("token type")? & !ENDIAN_RESERVED,
            transmiter_id: r.i32("transmiter_id")?,
            proc_id: r.i32("proc_id")?,
            memb_id: r.membership_id("memb_id")?,
            seq: r.i32("seq")?,
            aru: r.i32("aru")?,
            aru_last_id: r.i32("aru_last_id")?,
            flow_control: r.i16("flow_control")?,
            rtr_len: r.u16("rtr_len")?,
            conf_hash: r.u32("conf_hash")?,
        })
    }

    pub fn decode(b: &[u8]) -> Result<(Order, TokenHeader)> {
        let order = order_of(b)?;
        Ok((order, TokenHeader::decode_in(order, b)?))
    }

    /// Append the 40 header bytes exactly as the fields say (marker of `order` added).
    pub fn encode(&self, order: Order, out: &mut Vec<u8>) {
        order.push_u32(out, (self.type_ & !ENDIAN_RESERVED) | order.marker());
        order.push_i32(out, self.transmiter_id);
        order.push_i32(out, self.proc_id);
        self.memb_id.encode(order, out);
        order.push_i32(out, self.seq);
        order.push_i32(out, self.aru);
        order.push_i32(out, self.aru_last_id);
        order.push_i16(out, self.flow_control);
        order.push_u16(out, self.rtr_len);
        order.push_u32(out, self.conf_hash);
    }

    pub fn kind(&self) -> TokenKind {
        TokenKind::of_type(self.type_)
    }

    /// Token round counter mod 16.
    pub fn arq(&self) -> u32 {
        (self.type_ & ARQ_TYPE) >> 16
    }

    /// Retransmission counter.
    pub fn retrans(&self) -> u32 {
        (self.type_ & RETRANS_TYPE) >> 20
    }

    /// `Set_arq`: only the low 4 bits of `v` are kept.
    pub fn set_arq(&mut self, v: u32) {
        self.type_ = (self.type_ & !ARQ_TYPE) | ((v << 16) & ARQ_TYPE);
    }

    /// `Set_retrans`: only the low 4 bits of `v` are kept.
    pub fn set_retrans(&mut self, v: u32) {
        self.type_ = (self.type_ & !RETRANS_TYPE) | ((v << 20) & RETRANS_TYPE);
    }
}

/// Write `header` with `rtr_len` replaced by the body length, then `body`.
pub(crate) fn encode_token(header: &TokenHeader, body: &[u8], order: Order, out: &mut Vec<u8>) -> Result<()> {
    if body.len() > TOKEN_BODY_MAX {
        return Err(Error::TooLarge { what: "token body", len: body.len(), max: TOKEN_BODY_MAX });
    }
    let mut h = *header;
    h.rtr_len = body.len() as u16;
    h.encode(order, out);
    out.extend_from_slice(body);
    Ok(())
}

/// One retransmission request (`ring_rtr` + its sequence numbers).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RetransRequest {
    /// The ring whose packets are wanted.
    pub memb_id: MembershipId,
    /// Where to send the answers: a VID, or −1 for "see `seg_index`".
    pub proc_id: i32,
    /// A segment index (answer by segment send), or −1 (answer by broadcast).
    pub seg_index: i16,
    pub seqs: Vec<i32>,
}

/// The regular token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegularToken {
    pub header: TokenHeader,
    pub requests: Vec<RetransRequest>,
}

impl RegularToken {
    pub fn decode_body(order: Order, header: TokenHeader, body: &[u8]) -> Result<RegularToken> {
        let mut r = Reader::new(order, body);
        let mut requests = Vec::new();
        while r.remaining() > 0 {
            let memb_id = r.membership_id("ring_rtr memb_id")?;
            let proc_id = r.i32("ring_rtr proc_id")?;
            let seg_index = r.i16("ring_rtr seg_index")?;
            let n = r.count16("ring_rtr num_seq", i16::MAX as usize)?;
            let seqs = r.i32s("ring_rtr seqs", n)?;
            requests.push(RetransRequest { memb_id, proc_id, seg_index, seqs });
        }
        Ok(RegularToken { header, requests })
    }

    pub fn encode_body(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        atomic_append(out, |out| {
            for q in &self.requests {
                q.memb_id.encode(order, out);
                order.push_i32(out, q.proc_id);
                order.push_i16(out, q.seg_index);
                order.push_i16(out, to_i16("ring_rtr num_seq", q.seqs.len(), i16::MAX as usize)?);
                for &s in &q.seqs {
                    order.push_i32(out, s);
                }
            }
            Ok(())
        })
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let mut body = Vec::new();
        self.encode_body(order, &mut body)?;
        encode_token(&self.header, &body, order, out)
    }
}

/// Everything that arrives on a daemon's port P+1, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Regular(RegularToken),
    Form1(Form1Token),
    Form2(Form2Token),
}

impl Token {
    /// Decode a port-P+1 datagram. The length must be exactly `40 + rtr_len`
    /// (the C daemon checks this only for regular tokens, §3.8; every C sender
    /// keeps it for all tokens).
    pub fn decode(b: &[u8]) -> Result<(Order, Token)> {
        if b.len() > TOKEN_HEADER_LEN + TOKEN_BODY_MAX {
            return Err(Error::TooLarge {
                what: "token datagram",
                len: b.len(),
                max: TOKEN_HEADER_LEN + TOKEN_BODY_MAX,
            });
        }
        let (order, h) = TokenHeader::decode(b)?;
        let body = &b[TOKEN_HEADER_LEN..];
        if body.len() != h.rtr_len as usize {
            return Err(Error::LengthMismatch {
                what: "token rtr_len",
                declared: h.rtr_len as usize,
                actual: body.len(),
            });
        }
        let t = match h.kind() {
            TokenKind::Regular => Token::Regular(RegularToken::decode_body(order, h, body)?),
            TokenKind::Form1 => Token::Form1(Form1Token::decode_body(order, h, body)?),
            TokenKind::Form2 => Token::Form2(Form2Token::decode_body(order, h, body)?),
        };
        Ok((order, t))
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Token::Regular(t) => t.encode(order, out),
            Token::Form1(t) => t.encode(order, out),
            Token::Form2(t) => t.encode(order, out),
        }
    }

    pub fn header(&self) -> &TokenHeader {
        match self {
            Token::Regular(t) => &t.header,
            Token::Form1(t) => &t.header,
            Token::Form2(t) => &t.header,
        }
    }
}
