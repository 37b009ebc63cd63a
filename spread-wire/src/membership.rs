//! Membership bodies (client spec §2.7.3–2.7.5).
//!
//! Regular membership body, in the delivering daemon's order:
//! ```text
//! 0  group_id (proc_id i32, time i32, index i32)
//! 12 u32 num_vs_sets
//! 16 u32 local_vs_set_offset   (counted from body offset 20)
//! 20 vs-sets: u32 num_members, num_members × 32-byte names
//! ```
//! Transitional body: the 12-byte group_id only.

use crate::consts::MAX_GROUP_NAME;
use crate::endian::{flip32, Order};
use crate::names::Name32;

/// `group_id`: `memb_id.proc_id`, `memb_id.time`, `index`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId {
    pub proc_id: i32,
    pub time: i32,
    pub index: i32,
}

pub const GROUP_ID_LEN: usize = 12;
/// Offset of the first vs-set in a regular membership body.
pub const VS_SETS_OFFSET: usize = 20;

impl GroupId {
    pub fn encode_in(&self, order: Order, out: &mut Vec<u8>) {
        order.push_u32(out, self.proc_id as u32);
        order.push_u32(out, self.time as u32);
        order.push_u32(out, self.index as u32);
    }

    pub fn decode_in(order: Order, b: &[u8]) -> Option<GroupId> {
        if b.len() < GROUP_ID_LEN {
            return None;
        }
        Some(GroupId {
            proc_id: order.read_i32(&b[0..]),
            time: order.read_i32(&b[4..]),
            index: order.read_i32(&b[8..]),
        })
    }
}

/// Encode a regular membership body. `vs_sets` in wire order; `local_set` is
/// the index of the recipient's vs-set (its byte offset is computed).
pub fn encode_regular_body(order: Order, gid: &GroupId, vs_sets: &[&[Name32]], local_set: usize, out: &mut Vec<u8>) {
    gid.encode_in(order, out);
    order.push_u32(out, vs_sets.len() as u32);
    let local_off: usize = vs_sets.iter().take(local_set).map(|s| 4 + MAX_GROUP_NAME * s.len()).sum();
    order.push_u32(out, local_off as u32);
    for s in vs_sets {
        order.push_u32(out, s.len() as u32);
        for n in s.iter() {
            out.extend_from_slice(n);
        }
    }
}

/// Length of a regular membership body with these vs-set sizes.
pub fn regular_body_len(set_sizes: impl IntoIterator<Item = usize>) -> usize {
    VS_SETS_OFFSET + set_sizes.into_iter().map(|n| 4 + MAX_GROUP_NAME * n).sum::<usize>()
}

/// Convert a foreign-order regular membership body to host order in place, as
/// `SP_scat_receive` step 12 does: the gid, `num_vs_sets`,
/// `local_vs_set_offset`, then each set's `num_members` while walking the sets.
/// Only the first `buf.len()` bytes exist (clipped to the caller's buffer); the
/// walk stops at the first field that does not fit. Never panics.
pub fn flip_regular_body(buf: &mut [u8]) {
    let flip_at = |buf: &mut [u8], off: usize| -> Option<u32> {
        let b = buf.get_mut(off..off + 4)?;
        let v = flip32(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        b.copy_from_slice(&v.to_ne_bytes());
        Some(v)
    };
    for off in [0, 4, 8] {
        if flip_at(buf, off).is_none() {
            return;
        }
    }
    let Some(nsets) = flip_at(buf, 12) else { return };
    if flip_at(buf, 16).is_none() {
        return;
    }
    let mut off = VS_SETS_OFFSET;
    for _ in 0..nsets {
        let Some(n) = flip_at(buf, off) else { return };
        off = match (n as usize).checked_mul(MAX_GROUP_NAME).and_then(|x| x.checked_add(off + 4)) {
            Some(o) => o,
            None => return,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::name32;

    #[test]
    fn tv17_merge_body_at_d1() {
        let gid = GroupId { proc_id: 0x5c8d7aef, time: 0x6b02f9c8, index: 1 };
        let b2 = [name32(b"#b2#d2")];
        let a1 = [name32(b"#a1#d1")];
        let mut out = Vec::new();
        encode_regular_body(Order::Little, &gid, &[&b2, &a1], 1, &mut out);
        assert_eq!(out.len(), 92);
        assert_eq!(out.len(), regular_body_len([1, 1]));
        assert_eq!(&out[12..20], &[2, 0, 0, 0, 0x24, 0, 0, 0]);
        assert_eq!(GroupId::decode_in(Order::Little, &out), Some(gid));
    }

    #[test]
    fn tv20_flip_in_place() {
        let gid = GroupId { proc_id: 111, time: 222, index: 3 };
        let x = [name32(b"#x#other")];
        let u = [name32(b"#u#fake")];
        let mut be = Vec::new();
        encode_regular_body(Order::Big, &gid, &[&x, &u], 1, &mut be);
        let mut le = Vec::new();
        encode_regular_body(Order::Little, &gid, &[&x, &u], 1, &mut le);
        if Order::NATIVE == Order::Little {
            flip_regular_body(&mut be);
            assert_eq!(be, le);
        }
        // Clipped buffers and absurd counts never panic.
        let mut short = le[..30].to_vec();
        flip_regular_body(&mut short);
        let mut absurd = le.clone();
        absurd[20..24].copy_from_slice(&[0xff; 4]);
        flip_regular_body(&mut absurd);
    }
}
