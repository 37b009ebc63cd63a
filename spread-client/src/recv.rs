//! The receive path (`SP_scat_receive`, client spec §2.8), including the
//! short-buffer contract: without `DROP_RECV` a message that does not fit is
//! left in the socket, its header kept in the session, and the sizes needed
//! are reported as negative numbers; with `DROP_RECV` it is truncated.
//!
//! Fixed relative to 5.0.1: the kept header is forgotten whenever its frame
//! has been consumed, including the `DROP_RECV` truncation path (§6 item 2).

use spread_wire::consts::*;
use spread_wire::endian::{clear_endian, flip32, same_endian};
use spread_wire::header::{decode_hint, Header};
use spread_wire::names::{name_bytes, Name32};

use crate::io;
use crate::session::{lock, lookup_active, Session};
use crate::Code;

/// What a receive call hands back besides its return value. A field is
/// `None` when the call did not (yet) set it — the C shell leaves the
/// caller's variable untouched then, as the original does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecvOutputs {
    pub service: Option<u32>,
    pub sender: Option<Name32>,
    pub num_groups: Option<i32>,
    pub mess_type: Option<i16>,
    pub endian_mismatch: Option<i32>,
}

/// `strncpy(dst, src, 32)` of a 32-byte field: bytes up to the first NUL,
/// then zeros.
fn strncpy32(src: &Name32) -> Name32 {
    let mut out = [0u8; MAX_GROUP_NAME];
    let n = name_bytes(src).len();
    out[..n].copy_from_slice(&src[..n]);
    out
}

fn has_data_bits(t: u32) -> bool {
    t & REGULAR_MESS != 0 || t & REJECT_MESS != 0
}

/// Receive one message on `mbox`.
///
/// * `drop_recv`: the `DROP_RECV` bit of the caller's `*service_type`;
/// * `groups`: room for `groups.len()` group names (`max_groups`);
/// * `body`: the scatter the body is read into, piece after piece.
///
/// Returns the body length, or an error code (`ILLEGAL_SESSION`,
/// `NET_ERROR_ON_SESSION`, `CONNECTION_CLOSED`, `ILLEGAL_MESSAGE`,
/// `GROUPS_TOO_SHORT`, `BUFFER_TOO_SHORT`).
pub fn receive(
    mbox: i32,
    drop_recv: bool,
    groups: &mut [Name32],
    body: &mut [&mut [u8]],
    out: &mut RecvOutputs,
) -> Code {
    let s = match lookup_active(mbox) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let _held = s.recv_lock.lock();
    // The saved-header cell is only touched briefly (and only under the
    // receive lock), never across blocking I/O.
    let saved = lock(&s.recv).saved;
    if !s.is_current() {
        return ILLEGAL_SESSION;
    }
    if !s.is_active() {
        return NET_ERROR_ON_SESSION;
    }
    let closed = |s: &Session| {
        s.set_error();
        CONNECTION_CLOSED
    };
    let fd = s.fd();

    let was_saved = saved.is_some();
    let h = match saved {
        Some(h) => h,
        None => {
            let mut raw = [0u8; HEADER_LEN];
            if io::recv_exact(fd, &mut raw).is_err() {
                return closed(&s);
            }
            Header::decode(&raw)
        }
    };

    let max_mess: i64 = body
        .iter()
        .fold(0i64, |a, b| a.saturating_add(i64::try_from(b.len()).unwrap_or(i64::MAX)))
        .min(i32::MAX as i64);
    let max_groups = groups.len() as i64;

    if h.num_groups < 0 || h.data_len < 0 {
        // Only the header has been consumed; the stream is out of step now.
        return ILLEGAL_MESSAGE;
    }
    let (ng, dl) = (h.num_groups as i64, h.data_len as i64);

    if !drop_recv && (ng > max_groups || dl > max_mess) {
        if !was_saved {
            lock(&s.recv).saved = Some(h);
        }
        out.mess_type = Some(if has_data_bits(h.type_) { decode_hint(h.hint).0 } else { 0 });
        out.service = Some(clear_endian(h.type_));
        let n = if ng > max_groups { -h.num_groups } else { 0 };
        out.num_groups = Some(n);
        out.endian_mismatch = Some(if dl > max_mess { -h.data_len } else { 0 });
        out.sender = Some(strncpy32(&h.sender));
        return if n != 0 { GROUPS_TOO_SHORT } else { BUFFER_TOO_SHORT };
    }

    // From here on the frame is consumed (or the session fails).
    if was_saved {
        lock(&s.recv).saved = None;
    }

    if has_data_bits(h.type_) {
        let (mt, mismatch) = decode_hint(h.hint);
        out.mess_type = Some(mt);
        out.endian_mismatch = Some(mismatch as i32);
    } else {
        out.mess_type = Some(-1);
        out.endian_mismatch = Some(0);
    }
    out.sender = Some(strncpy32(&h.sender));

    let foreign = !same_endian(h.type_);
    let is_reject = h.type_ & REJECT_MESS != 0;
    let mut old_type = [0u8; 4];

    // Groups: as many as fit, the rest discarded (drop mode only).
    let take = ng.min(max_groups) as usize;
    let short_groups = ng > max_groups;
    let body_take = dl.min(max_mess) as usize;
    let short_buffer = dl > max_mess;

    // The rest of the frame is read straight into the caller's buffers: the
    // original type of a reject, the names, the body pieces, in one
    // `recvmsg` when they are all there (the original makes one `recv` for
    // each). Only surplus names are read apart, to be thrown away.
    let surplus = if short_groups { (ng - take as i64) as usize * MAX_GROUP_NAME } else { 0 };
    let old = if is_reject { Some(&mut old_type) } else { None };
    let read = read_rest(fd, old, groups[..take].as_flattened_mut(), surplus, body, body_take);
    // As 5.0.1: the group count is reported once the names are consumed,
    // even if the body then fails.
    let names_end = if is_reject { 4 } else { 0 } + take * MAX_GROUP_NAME + surplus;
    if read.is_ok() || read.is_err_and(|n| n >= names_end) {
        out.num_groups = Some(if short_groups { -h.num_groups } else { h.num_groups });
    }
    if read.is_err() {
        return closed(&s);
    }

    let mut type_ = h.type_;
    if is_reject {
        let mut old = u32::from_ne_bytes(old_type);
        if foreign {
            old = flip32(old);
        }
        type_ = old | REJECT_MESS;
    }

    // Both use the header's type, as 5.0.1 does (for a reject that is just
    // REJECT_MESS, whatever the original type was).
    if h.type_ & REG_MEMB_MESS != 0 && !short_groups {
        let me = name_bytes(s.private_group());
        if let Some(i) = groups[..take].iter().position(|g| name_bytes(g) == me) {
            out.mess_type = Some(i as i16);
        }
    }

    if h.type_ & REG_MEMB_MESS != 0 && foreign {
        // Convert the membership body to host order in place, across the
        // scatter pieces, within the bytes actually received.
        flip_membership(body, body_take);
    }

    out.service = Some(clear_endian(type_));

    if short_buffer {
        if io::discard(fd, (dl - body_take as i64) as usize).is_err() {
            return closed(&s);
        }
        return BUFFER_TOO_SHORT;
    }
    h.data_len
}

/// Read what follows the header: `old_type` (a reject's original type),
/// `names`, then `surplus` bytes of names to throw away, then `body_take`
/// bytes into the body pieces in order. `Err(n)`: failed after `n` bytes of
/// all that were consumed.
fn read_rest(
    fd: std::os::fd::RawFd,
    old_type: Option<&mut [u8; 4]>,
    names: &mut [u8],
    surplus: usize,
    body: &mut [&mut [u8]],
    body_take: usize,
) -> Result<(), usize> {
    let mut reads = io::ReadList::new(fd);
    let mut discarded = 0;
    if let Some(t) = old_type {
        reads.push(t).map_err(|()| reads.done())?;
    }
    reads.push(names).map_err(|()| reads.done())?;
    if surplus > 0 {
        reads.finish().map_err(|()| reads.done())?;
        io::discard(fd, surplus).map_err(|()| reads.done())?;
        discarded = surplus;
    }
    let mut remain = body_take;
    for piece in body.iter_mut() {
        if remain == 0 {
            break;
        }
        let k = remain.min(piece.len());
        reads.push(&mut piece[..k]).map_err(|()| discarded + reads.done())?;
        remain -= k;
    }
    reads.finish().map_err(|()| discarded + reads.done())
}

/// Byte-swap the u32 at `off` of the pieces viewed back to back, if all four
/// bytes lie within the first `limit` bytes. Returns the new (host) value.
fn flip_at(body: &mut [&mut [u8]], off: usize, limit: usize) -> Option<u32> {
    if off.checked_add(4)? > limit {
        return None;
    }
    // Locate each of the four bytes (they may straddle pieces).
    let mut idx = [(0usize, 0usize); 4];
    for (k, slot) in idx.iter_mut().enumerate() {
        let mut o = off + k;
        let mut found = None;
        for (p, piece) in body.iter().enumerate() {
            if o < piece.len() {
                found = Some((p, o));
                break;
            }
            o -= piece.len();
        }
        *slot = found?;
    }
    let raw = [body[idx[0].0][idx[0].1], body[idx[1].0][idx[1].1], body[idx[2].0][idx[2].1], body[idx[3].0][idx[3].1]];
    let v = flip32(u32::from_ne_bytes(raw));
    for (k, &(p, o)) in idx.iter().enumerate() {
        body[p][o] = v.to_ne_bytes()[k];
    }
    Some(v)
}

/// The conversion of §2.8 step 12: gid (3 × i32), `num_vs_sets`,
/// `local_vs_set_offset`, then each vs-set's `num_members` while walking the
/// sets; names untouched. Stops at the first field beyond `limit`.
fn flip_membership(body: &mut [&mut [u8]], limit: usize) {
    for off in [0, 4, 8] {
        if flip_at(body, off, limit).is_none() {
            return;
        }
    }
    let Some(nsets) = flip_at(body, 12, limit) else { return };
    if flip_at(body, 16, limit).is_none() {
        return;
    }
    let mut off = spread_wire::membership::VS_SETS_OFFSET;
    // Bounded: each set advances at least 4 bytes and stops past `limit`.
    for _ in 0..nsets {
        let Some(n) = flip_at(body, off, limit) else { return };
        off = match (n as usize).checked_mul(MAX_GROUP_NAME).and_then(|x| x.checked_add(off + 4)) {
            Some(o) => o,
            None => return,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::membership::{encode_regular_body, flip_regular_body, GroupId};
    use spread_wire::names::name32;
    use spread_wire::Order;

    #[test]
    fn in_place_flip_matches_flat_flip_on_any_split() {
        let foreign = if Order::NATIVE == Order::Little { Order::Big } else { Order::Little };
        let sets = [vec![name32(b"#a#d1"), name32(b"#b#d1")], vec![name32(b"#c#d2")], vec![]];
        let refs: Vec<&[Name32]> = sets.iter().map(|s| &s[..]).collect();
        let mut body = Vec::new();
        encode_regular_body(foreign, &GroupId { proc_id: 7, time: -9, index: 3 }, &refs, 1, &mut body);
        for limit in [0, 3, 13, 20, 23, 60, body.len()] {
            let mut want = body[..limit].to_vec();
            flip_regular_body(&mut want);
            for cut1 in 0..body.len() {
                let cut2 = (cut1 * 7 + 3) % (body.len() + 1);
                let (c1, c2) = (cut1.min(cut2), cut1.max(cut2));
                let mut a = body[..c1].to_vec();
                let mut b = body[c1..c2].to_vec();
                let mut c = body[c2..].to_vec();
                let mut pieces: Vec<&mut [u8]> = vec![&mut a, &mut b, &mut c];
                flip_membership(&mut pieces, limit);
                let got = [a, b, c].concat();
                assert_eq!(&got[..limit], &want[..], "limit {limit} cuts {c1} {c2}");
                assert_eq!(&got[limit..], &body[limit..]);
            }
        }
        // Absurd counts stop at the limit.
        let mut absurd = body.clone();
        absurd[20..24].copy_from_slice(&[0xff; 4]);
        absurd[12..16].copy_from_slice(&[0xff; 4]);
        let n = absurd.len();
        let mut pieces: Vec<&mut [u8]> = vec![&mut absurd];
        flip_membership(&mut pieces, n);
    }
}
