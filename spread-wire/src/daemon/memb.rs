//! Membership packets and form tokens (daemon spec §3.10, §3.11).
//!
//! Shared structures, as laid out by the C daemon (`membership.c`):
//! ```text
//! members_info: i16 num_members, i16 num_pending, i32 members[128]   (full: 516 bytes)
//! rep_info:     i32 proc_id, i16 type, i16 seg_index                 (8 bytes)
//! reps_info:    i16 num_reps, i16 rep_index, rep_info reps[25]       (full: 204 bytes)
//! ```
//! ALIVE and JOIN send them *truncated* to the entries in use; FORM1 and FORM2
//! send the full structures, whose unused entries the C daemon leaves holding
//! whatever was there before (§12 item 6). Those unused entries are not decoded
//! and are written as zeros.

use super::token::{encode_token, TokenHeader};
use super::{
    check_count, encode_packet, expect_empty, to_i16, Error, MembershipId, PacketHeader, Reader, Result,
    MAX_PROCS_RING, MAX_REPS, MEMBERSHIP_ID_LEN,
};
use crate::endian::Order;

/// Bytes of a full `members_info`.
pub const MEMBERS_INFO_LEN: usize = 4 + 4 * MAX_PROCS_RING;
/// Bytes of one `rep_info`.
pub const REP_INFO_LEN: usize = 8;
/// Bytes of a full `reps_info`.
pub const REPS_INFO_LEN: usize = 4 + REP_INFO_LEN * MAX_REPS;
/// Bytes of a `ring_info` (before its holes and members).
pub const RING_INFO_LEN: usize = 28;

/// Kind of a representative (`rep_info.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepType {
    /// `POTENTIAL_REP` = 0.
    Potential,
    /// `SEG_REP` = 1: represents its segment.
    Seg,
    /// `RING_REP` = 2: represents its current ring.
    Ring,
    /// Any other value, kept as sent.
    Other(i16),
}

impl RepType {
    pub fn from_i16(v: i16) -> RepType {
        match v {
            0 => RepType::Potential,
            1 => RepType::Seg,
            2 => RepType::Ring,
            x => RepType::Other(x),
        }
    }

    pub fn to_i16(self) -> i16 {
        match self {
            RepType::Potential => 0,
            RepType::Seg => 1,
            RepType::Ring => 2,
            RepType::Other(x) => x,
        }
    }
}

/// `rep_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RepInfo {
    pub proc_id: i32,
    pub rep_type: RepType,
    pub seg_index: i16,
}

/// `reps_info`: the representatives and the index of the next one a FORM1
/// visits (in JOIN it is a leftover value, §12 item 6: carried, never used).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RepList {
    pub rep_index: i16,
    pub reps: Vec<RepInfo>,
}

impl RepList {
    fn decode_head(r: &mut Reader<'_>) -> Result<(usize, i16)> {
        let n = r.count16("num_reps", MAX_REPS)?;
        Ok((n, r.i16("rep_index")?))
    }

    fn decode_reps(r: &mut Reader<'_>, n: usize) -> Result<Vec<RepInfo>> {
        let bytes = r.take("reps", n * REP_INFO_LEN)?;
        let mut q = Reader::new(r.order, bytes);
        let mut reps = Vec::with_capacity(n);
        for _ in 0..n {
            let proc_id = q.i32("rep proc_id")?;
            let rep_type = RepType::from_i16(q.i16("rep type")?);
            reps.push(RepInfo { proc_id, rep_type, seg_index: q.i16("rep seg_index")? });
        }
        Ok(reps)
    }

    /// The truncated form (JOIN): `4 + 8·num_reps` bytes.
    pub(crate) fn decode_short(r: &mut Reader<'_>) -> Result<RepList> {
        let (n, rep_index) = RepList::decode_head(r)?;
        Ok(RepList { rep_index, reps: RepList::decode_reps(r, n)? })
    }

    /// The full 204-byte form (FORM1); unused entries are skipped.
    pub(crate) fn decode_full(r: &mut Reader<'_>) -> Result<RepList> {
        let block = r.take("reps_info", REPS_INFO_LEN)?;
        let mut q = Reader::new(r.order, block);
        let (n, rep_index) = RepList::decode_head(&mut q)?;
        Ok(RepList { rep_index, reps: RepList::decode_reps(&mut q, n)? })
    }

    fn encode_short(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        order.push_i16(out, to_i16("num_reps", self.reps.len(), MAX_REPS)?);
        order.push_i16(out, self.rep_index);
        for rep in &self.reps {
            order.push_i32(out, rep.proc_id);
            order.push_i16(out, rep.rep_type.to_i16());
            order.push_i16(out, rep.seg_index);
        }
        Ok(())
    }

    fn encode_full(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        self.encode_short(order, out)?;
        out.resize(start + REPS_INFO_LEN, 0);
        Ok(())
    }
}

/// A full `members_info` as in the form tokens: `members` are the first
/// `num_members` entries, `pending` the next `num_pending`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemberList {
    pub members: Vec<i32>,
    pub pending: Vec<i32>,
}

impl MemberList {
    pub(crate) fn decode_full(r: &mut Reader<'_>) -> Result<MemberList> {
        let block = r.take("members_info", MEMBERS_INFO_LEN)?;
        let mut q = Reader::new(r.order, block);
        let nm = q.count16("num_members", MAX_PROCS_RING)?;
        let np = q.count16("num_pending", MAX_PROCS_RING)?;
        if nm + np > MAX_PROCS_RING {
            return Err(Error::BadValue { what: "num_members + num_pending", value: (nm + np) as i64 });
        }
        Ok(MemberList { members: q.i32s("members", nm)?, pending: q.i32s("pending members", np)? })
    }

    pub(crate) fn encode_full(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let total = self.members.len() + self.pending.len();
        if total > MAX_PROCS_RING {
            return Err(Error::TooLarge { what: "members_info entries", len: total, max: MAX_PROCS_RING });
        }
        let start = out.len();
        order.push_i16(out, self.members.len() as i16);
        order.push_i16(out, self.pending.len() as i16);
        for &m in self.members.iter().chain(&self.pending) {
            order.push_i32(out, m);
        }
        out.resize(start + MEMBERS_INFO_LEN, 0);
        Ok(())
    }

    /// Members then pending members, in wire order.
    pub fn all(&self) -> impl Iterator<Item = i32> + '_ {
        self.members.iter().chain(&self.pending).copied()
    }
}

/// Truncated `members_info` (ALIVE, JOIN): `num_members` entries are sent; the
/// receiver ignores `num_pending`'s entries (none are sent), so a sender must
/// write `num_pending` = 0 (§3.10). It is carried as sent.
fn decode_short_members(r: &mut Reader<'_>) -> Result<(Vec<i32>, i16)> {
    let nm = r.count16("num_members", MAX_PROCS_RING)?;
    let num_pending = r.i16("num_pending")?;
    Ok((r.i32s("members", nm)?, num_pending))
}

fn encode_short_members(members: &[i32], num_pending: i16, order: Order, out: &mut Vec<u8>) -> Result<()> {
    order.push_i16(out, to_i16("num_members", members.len(), MAX_PROCS_RING)?);
    order.push_i16(out, num_pending);
    for &m in members {
        order.push_i32(out, m);
    }
    Ok(())
}

/// ALIVE (§3.10): header + the sender's `F_members`, truncated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlivePacket {
    pub header: PacketHeader,
    pub members: Vec<i32>,
    /// 0 from every sender (§3.10); carried as sent.
    pub num_pending: i16,
}

impl AlivePacket {
    pub fn decode_body(order: Order, header: PacketHeader, body: &[u8]) -> Result<AlivePacket> {
        let mut r = Reader::new(order, body);
        let (members, num_pending) = decode_short_members(&mut r)?;
        r.finish("ALIVE body")?;
        Ok(AlivePacket { header, members, num_pending })
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let mut body = Vec::with_capacity(4 + 4 * self.members.len());
        encode_short_members(&self.members, self.num_pending, order, &mut body)?;
        encode_packet(&self.header, None, &body, order, out)
    }
}

/// JOIN (§3.10): header + truncated members_info + truncated reps_info. The
/// reps start right after `num_members` entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinPacket {
    pub header: PacketHeader,
    pub members: Vec<i32>,
    /// Must be 0: the receiver finds the reps right after `num_members`
    /// entries, but a foreign-order C receiver swaps `num_members +
    /// num_pending` entries (§3.10). Carried as sent.
    pub num_pending: i16,
    /// `reps[0]` is the sender itself.
    pub reps: RepList,
}

impl JoinPacket {
    pub fn decode_body(order: Order, header: PacketHeader, body: &[u8]) -> Result<JoinPacket> {
        let mut r = Reader::new(order, body);
        let (members, num_pending) = decode_short_members(&mut r)?;
        let reps = RepList::decode_short(&mut r)?;
        r.finish("JOIN body")?;
        Ok(JoinPacket { header, members, num_pending, reps })
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let mut body = Vec::with_capacity(8 + 4 * self.members.len() + REP_INFO_LEN * self.reps.reps.len());
        encode_short_members(&self.members, self.num_pending, order, &mut body)?;
        self.reps.encode_short(order, &mut body)?;
        encode_packet(&self.header, None, &body, order, out)
    }
}

/// REFER (§3.10): header only. `memb_id.proc_id` is the referred
/// representative, `memb_id.time` its rep type. The C sender leaves the other
/// header fields uninitialised; they are carried as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReferPacket {
    pub header: PacketHeader,
}

impl ReferPacket {
    pub fn decode_body(header: PacketHeader, body: &[u8]) -> Result<ReferPacket> {
        expect_empty("REFER body", body)?;
        Ok(ReferPacket { header })
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        encode_packet(&self.header, None, &[], order, out)
    }

    /// VID of the referred representative.
    pub fn rep_proc_id(&self) -> i32 {
        self.header.memb_id.proc_id
    }

    /// Its type, truncated to 16 bits as the C receiver stores it.
    pub fn rep_type(&self) -> RepType {
        RepType::from_i16(self.header.memb_id.time as i16)
    }
}

/// One ring's record in a form token (`ring_info` + holes + members).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingRecord {
    pub memb_id: MembershipId,
    pub trans_time: i32,
    pub aru: i32,
    pub highest_seq: i32,
    /// Sequence numbers nobody on the token has.
    pub holes: Vec<i32>,
    /// The ring's transitional members (the first `num_trans` VIDs).
    pub trans: Vec<i32>,
    /// The remaining commit-set members (`num_commit − num_trans` VIDs).
    pub commit_rest: Vec<i32>,
}

impl RingRecord {
    fn decode(r: &mut Reader<'_>) -> Result<RingRecord> {
        let memb_id = r.membership_id("ring memb_id")?;
        let trans_time = r.i32("ring trans_time")?;
        let aru = r.i32("ring aru")?;
        let highest_seq = r.i32("ring highest_seq")?;
        let num_holes = r.i32("ring num_holes")?;
        let num_holes = check_count("ring num_holes", num_holes as i64, i32::MAX as usize)?;
        let num_commit = r.count16("ring num_commit", i16::MAX as usize)?;
        let num_trans = r.count16("ring num_trans", num_commit)?;
        let holes = r.i32s("ring holes", num_holes)?;
        let trans = r.i32s("ring trans members", num_trans)?;
        let commit_rest = r.i32s("ring commit members", num_commit - num_trans)?;
        Ok(RingRecord { memb_id, trans_time, aru, highest_seq, holes, trans, commit_rest })
    }

    fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let num_commit = self.trans.len() + self.commit_rest.len();
        let num_commit = to_i16("ring num_commit", num_commit, i16::MAX as usize)?;
        let num_holes = i32::try_from(self.holes.len()).map_err(|_| Error::TooLarge {
            what: "ring holes",
            len: self.holes.len(),
            max: i32::MAX as usize,
        })?;
        self.memb_id.encode(order, out);
        order.push_i32(out, self.trans_time);
        order.push_i32(out, self.aru);
        order.push_i32(out, self.highest_seq);
        order.push_i32(out, num_holes);
        order.push_i16(out, num_commit);
        order.push_i16(out, self.trans.len() as i16);
        for &v in self.holes.iter().chain(&self.trans).chain(&self.commit_rest) {
            order.push_i32(out, v);
        }
        Ok(())
    }

    /// Bytes this record takes.
    pub fn encoded_len(&self) -> usize {
        RING_INFO_LEN + 4 * (self.holes.len() + self.trans.len() + self.commit_rest.len())
    }
}

/// `i32 num_rings` + the records, to the end of the body.
fn decode_rings(r: &mut Reader<'_>) -> Result<Vec<RingRecord>> {
    let n = r.i32("num_rings")?;
    let n = check_count("num_rings", n as i64, i32::MAX as usize)?;
    // Every record takes at least RING_INFO_LEN bytes: a count the bytes cannot
    // hold fails on the way without allocating for it.
    let mut rings = Vec::with_capacity(n.min(r.remaining() / RING_INFO_LEN));
    for _ in 0..n {
        rings.push(RingRecord::decode(r)?);
    }
    Ok(rings)
}

fn encode_rings(rings: &[RingRecord], order: Order, out: &mut Vec<u8>) -> Result<()> {
    let n = i32::try_from(rings.len()).map_err(|_| Error::TooLarge {
        what: "num_rings",
        len: rings.len(),
        max: i32::MAX as usize,
    })?;
    order.push_i32(out, n);
    for ring in rings {
        ring.encode(order, out)?;
    }
    Ok(())
}

/// FORM1 (§3.11): full members_info, full reps_info, ring records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form1Token {
    /// `memb_id` is the attempt id, `seq` the future `Last_seq`; `rtr_len` is
    /// recomputed on encode.
    pub header: TokenHeader,
    pub members: MemberList,
    pub reps: RepList,
    pub rings: Vec<RingRecord>,
}

impl Form1Token {
    pub fn decode_body(order: Order, header: TokenHeader, body: &[u8]) -> Result<Form1Token> {
        let mut r = Reader::new(order, body);
        let members = MemberList::decode_full(&mut r)?;
        let reps = RepList::decode_full(&mut r)?;
        let rings = decode_rings(&mut r)?;
        r.finish("FORM1 body")?;
        Ok(Form1Token { header, members, reps, rings })
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let mut body = Vec::with_capacity(MEMBERS_INFO_LEN + REPS_INFO_LEN + 4 + RING_INFO_LEN * self.rings.len());
        self.members.encode_full(order, &mut body)?;
        self.reps.encode_full(order, &mut body)?;
        encode_rings(&self.rings, order, &mut body)?;
        encode_token(&self.header, &body, order, out)
    }
}

/// FORM2 (§3.11): full members_info, the new ring id in place of reps_info,
/// ring records. Before the first hop fills it in, `new_memb_id` is a
/// placeholder (the first 8 bytes of the FORM1's reps_info); it is carried as
/// sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form2Token {
    pub header: TokenHeader,
    pub members: MemberList,
    pub new_memb_id: MembershipId,
    pub rings: Vec<RingRecord>,
}

impl Form2Token {
    pub fn decode_body(order: Order, header: TokenHeader, body: &[u8]) -> Result<Form2Token> {
        let mut r = Reader::new(order, body);
        let members = MemberList::decode_full(&mut r)?;
        let new_memb_id = r.membership_id("FORM2 membership id")?;
        let rings = decode_rings(&mut r)?;
        r.finish("FORM2 body")?;
        Ok(Form2Token { header, members, new_memb_id, rings })
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let mut body = Vec::with_capacity(MEMBERS_INFO_LEN + MEMBERSHIP_ID_LEN + 4 + RING_INFO_LEN * self.rings.len());
        self.members.encode_full(order, &mut body)?;
        self.new_memb_id.encode(order, &mut body);
        encode_rings(&self.rings, order, &mut body)?;
        encode_token(&self.header, &body, order, out)
    }
}
