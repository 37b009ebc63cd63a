//! Reading membership bodies after a receive (`SP_get_memb_info`,
//! `SP_get_vs_sets_info`, `SP_get_vs_set_members` and their scatter forms;
//! client spec §1.5). Integers in the body are already in host order (the
//! receive path converted them).
//!
//! Bodies are read through [`MembBody`], a contiguous view: for a scatter
//! that is the pieces back to back (fixing 5.0.1's `scat_read`, §6 item 3).
//! Bytes outside what the view can reach read as zero — never out of bounds.

use spread_wire::consts::*;
use spread_wire::names::Name32;

use crate::Code;

const NUM_VS_SETS_OFF: u64 = 12;
const LOCAL_OFF_OFF: u64 = 16;
const FIRST_VS_SET_OFF: u64 = 20;

/// A membership body seen as one byte string.
pub trait MembBody {
    /// Copy `out.len()` bytes starting at `off`; bytes the view cannot reach
    /// are set to zero.
    fn read_at(&self, off: u64, out: &mut [u8]);

    fn u32_at(&self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.read_at(off, &mut b);
        u32::from_ne_bytes(b)
    }
}

impl MembBody for [u8] {
    fn read_at(&self, off: u64, out: &mut [u8]) {
        out.fill(0);
        let Ok(off) = usize::try_from(off) else { return };
        if let Some(src) = self.get(off..) {
            let k = src.len().min(out.len());
            out[..k].copy_from_slice(&src[..k]);
        }
    }
}

/// A scatter's pieces viewed back to back.
pub struct Scattered<'a>(pub &'a [&'a [u8]]);

impl MembBody for Scattered<'_> {
    fn read_at(&self, mut off: u64, out: &mut [u8]) {
        out.fill(0);
        let mut done = 0usize;
        for p in self.0 {
            if done == out.len() {
                break;
            }
            let len = p.len() as u64;
            if off >= len {
                off -= len;
                continue;
            }
            let src = &p[off as usize..];
            let k = src.len().min(out.len() - done);
            out[done..done + k].copy_from_slice(&src[..k]);
            done += k;
            off = 0;
        }
    }
}

/// `membership_info` in safe form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembInfo {
    pub gid: [i32; 3],
    /// `None`: the original leaves the caller's field untouched.
    pub changed_member: Option<Name32>,
    pub num_vs_sets: u32,
    /// `(num_members, members_offset)`
    pub my_vs_set: (u32, u32),
}

/// `SP_get_memb_info`: `ILLEGAL_MESSAGE` unless `service` has a bit of
/// `MEMBERSHIP_MESS` (a rejected JOIN passes, as in 5.0.1).
pub fn memb_info(body: &(impl MembBody + ?Sized), service: u32) -> Result<MembInfo, Code> {
    if service & MEMBERSHIP_MESS == 0 {
        return Err(ILLEGAL_MESSAGE);
    }
    let mut g = [0u8; 12];
    body.read_at(0, &mut g);
    let gid = [0, 1, 2].map(|i| i32::from_ne_bytes([g[4 * i], g[4 * i + 1], g[4 * i + 2], g[4 * i + 3]]));
    if service & REG_MEMB_MESS == 0 {
        return Ok(MembInfo { gid, changed_member: None, num_vs_sets: 0, my_vs_set: (0, 0) });
    }
    let changed_member = if service & (CAUSED_BY_JOIN | CAUSED_BY_LEAVE | CAUSED_BY_DISCONNECT) != 0 {
        let mut n = [0u8; MAX_GROUP_NAME];
        body.read_at(FIRST_VS_SET_OFF + 4, &mut n);
        Some(n)
    } else if service & CAUSED_BY_NETWORK != 0 {
        Some([0u8; MAX_GROUP_NAME])
    } else {
        None
    };
    let num_vs_sets = body.u32_at(NUM_VS_SETS_OFF);
    let my_off = body.u32_at(LOCAL_OFF_OFF).wrapping_add(FIRST_VS_SET_OFF as u32);
    let my_num = body.u32_at(my_off as u64);
    Ok(MembInfo { gid, changed_member, num_vs_sets, my_vs_set: (my_num, my_off.wrapping_add(4)) })
}

/// `SP_get_vs_sets_info`: fills `vs_sets` (at most `capacity` entries are
/// ever written: `BUFFER_TOO_SHORT` when fewer than the body's count) and
/// returns the count. `my_index` is set only if the local set is found.
/// Counts are compared and returned as C `int`s, as the original does.
pub fn vs_sets_info(
    body: &(impl MembBody + ?Sized),
    capacity: i32,
    vs_sets: &mut dyn FnMut(usize, u32, u32),
    my_index: &mut dyn FnMut(u32),
) -> Code {
    let n = body.u32_at(NUM_VS_SETS_OFF) as i32;
    if capacity < n {
        return BUFFER_TOO_SHORT;
    }
    let local = body.u32_at(LOCAL_OFF_OFF).wrapping_add(FIRST_VS_SET_OFF as u32);
    let mut off = FIRST_VS_SET_OFF as u32;
    for i in 0..n.max(0) {
        if off == local {
            my_index(i as u32);
        }
        let num = body.u32_at(off as u64);
        off = off.wrapping_add(4);
        vs_sets(i as usize, num, off);
        off = off.wrapping_add(num.wrapping_mul(MAX_GROUP_NAME as u32));
    }
    n
}

/// `SP_get_vs_set_members`: `BUFFER_TOO_SHORT` if `capacity` names do not
/// suffice; else calls `put(i, name)` for each member and returns the count.
pub fn vs_set_members(
    body: &(impl MembBody + ?Sized),
    num_members: u32,
    members_offset: u32,
    capacity: i32,
    put: &mut dyn FnMut(usize, Name32),
) -> Code {
    let n = num_members as i32;
    if capacity < n {
        return BUFFER_TOO_SHORT;
    }
    for i in 0..n.max(0) {
        let mut name = [0u8; MAX_GROUP_NAME];
        body.read_at(members_offset as u64 + i as u64 * MAX_GROUP_NAME as u64, &mut name);
        put(i as usize, name);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::membership::{encode_regular_body, GroupId};
    use spread_wire::names::name32;
    use spread_wire::Order;

    fn tv20_body() -> Vec<u8> {
        let gid = GroupId { proc_id: 111, time: 222, index: 3 };
        let x = [name32(b"#x#other")];
        let u = [name32(b"#u#fake")];
        let mut b = Vec::new();
        encode_regular_body(Order::NATIVE, &gid, &[&x, &u], 1, &mut b);
        b
    }

    fn check_all(view: &(impl MembBody + ?Sized)) {
        let m = memb_info(view, REG_MEMB_MESS | CAUSED_BY_NETWORK).unwrap();
        assert_eq!(m.gid, [111, 222, 3]);
        assert_eq!(m.num_vs_sets, 2);
        assert_eq!(m.my_vs_set, (1, 60));
        assert_eq!(m.changed_member, Some([0; 32]));
        let mut sets = vec![];
        let mut my = None;
        assert_eq!(vs_sets_info(view, 2, &mut |i, n, o| sets.push((i, n, o)), &mut |i| my = Some(i)), 2);
        assert_eq!(sets, vec![(0, 1, 24), (1, 1, 60)]);
        assert_eq!(my, Some(1));
        let mut names = vec![];
        assert_eq!(vs_set_members(view, 1, 60, 1, &mut |_, n| names.push(n)), 1);
        assert_eq!(names, vec![name32(b"#u#fake")]);
        assert_eq!(vs_set_members(view, 1, 60, 0, &mut |_, _| unreachable!()), BUFFER_TOO_SHORT);
        assert_eq!(vs_sets_info(view, 1, &mut |_, _, _| unreachable!(), &mut |_| {}), BUFFER_TOO_SHORT);
    }

    #[test]
    fn contiguous_and_scattered_agree() {
        let b = tv20_body();
        check_all(&b[..]);
        for cuts in [[5usize, 30], [1, 2], [12, 20], [59, 61], [90, 91]] {
            let (a, rest) = b.split_at(cuts[0]);
            let (m, z) = rest.split_at(cuts[1] - cuts[0]);
            let pieces: [&[u8]; 4] = [a, &[], m, z];
            check_all(&Scattered(&pieces));
        }
    }

    #[test]
    fn never_out_of_bounds() {
        let b = tv20_body();
        let short = &b[..10];
        let m = memb_info(short, REG_MEMB_MESS | CAUSED_BY_JOIN).unwrap();
        assert_eq!(m.num_vs_sets, 0);
        let mut absurd = b.clone();
        absurd[16..20].copy_from_slice(&u32::MAX.to_ne_bytes());
        memb_info(&absurd[..], REG_MEMB_MESS | CAUSED_BY_LEAVE).unwrap();
        assert_eq!(memb_info(&b[..], REJECT_MESS | AGREED_MESS), Err(ILLEGAL_MESSAGE));
        let t = memb_info(&b[..], TRANSITION_MESS).unwrap();
        assert_eq!((t.num_vs_sets, t.my_vs_set, t.changed_member), (0, (0, 0), None));
    }
}
