//! The send path (`SP_internal_multicast`, client spec §1.5, §2.6).
//!
//! A frame is the 48-byte header, the 32-byte group names, then the body. The
//! whole frame is written under the session's send lock with vectored writes,
//! so concurrent senders on one mailbox never interleave bytes.

use spread_wire::consts::*;
use spread_wire::endian::set_endian;
use spread_wire::header::{encode_hint, Header};
use spread_wire::names::Name32;

use crate::session::lookup_active;
use crate::Code;

/// Group names a frame carries in its stack-built header block; more than
/// this many are written into one heap buffer.
const INLINE_GROUPS: usize = 16;

/// The body of an outgoing message.
#[derive(Debug)]
pub enum SendBody<'a> {
    Empty,
    One(&'a [u8]),
    /// A scatter: the pieces are sent back to back (at most 100 pieces).
    Scatter(&'a [&'a [u8]]),
}

impl SendBody<'_> {
    fn pieces(&self) -> &[&[u8]] {
        match self {
            SendBody::Empty => &[],
            SendBody::One(b) => std::slice::from_ref(b),
            SendBody::Scatter(s) => s,
        }
    }
    /// Total length, `None` if it does not fit an `i32`.
    fn len(&self) -> Option<i32> {
        let t: usize = self.pieces().iter().try_fold(0usize, |a, p| a.checked_add(p.len()))?;
        i32::try_from(t).ok()
    }
}

/// `SP_multigroup_scat_multicast`: refuse a service without any of the bits
/// 0–5 (`ILLEGAL_SERVICE`), then send. Returns the body length.
pub fn multicast(mbox: i32, service: u32, groups: &[Name32], mess_type: i16, body: &SendBody) -> Result<i32, Code> {
    if service & REGULAR_MESS == 0 {
        return Err(ILLEGAL_SERVICE);
    }
    send_frame(mbox, service, groups, mess_type, body)
}

/// Build and send one frame from `mbox` (also used for JOIN/LEAVE/KILL).
/// Errors: `ILLEGAL_SESSION`, `NET_ERROR_ON_SESSION`, `MESSAGE_TOO_LONG`,
/// `ILLEGAL_MESSAGE` (more than 100 scatter pieces or a body over 2^31-1
/// bytes — memory-safety guards the original lacked), `CONNECTION_CLOSED`.
pub fn send_frame(mbox: i32, service: u32, groups: &[Name32], mess_type: i16, body: &SendBody) -> Result<i32, Code> {
    let s = lookup_active(mbox)?;
    if body.pieces().len() > MAX_CLIENT_SCATTER_ELEMENTS {
        return Err(ILLEGAL_MESSAGE);
    }
    let mess_len = body.len().ok_or(ILLEGAL_MESSAGE)?;
    let groups_len = (groups.len() as u64).saturating_mul(MAX_GROUP_NAME as u64);
    if mess_len as u64 + groups_len > MAX_MESSAGE_BODY_LEN as u64 {
        return Err(MESSAGE_TOO_LONG);
    }
    let h = Header {
        type_: set_endian(service),
        sender: *s.private_group(),
        num_groups: groups.len() as i32,
        hint: encode_hint(mess_type),
        data_len: mess_len,
    };
    // The header and the names in one block: on the stack for the usual few
    // groups, so a message costs no allocation.
    let head_len = HEADER_LEN + groups.len() * MAX_GROUP_NAME;
    let mut inline = [0u8; HEADER_LEN + INLINE_GROUPS * MAX_GROUP_NAME];
    let mut spilled = Vec::new();
    let head: &mut [u8] = if groups.len() <= INLINE_GROUPS {
        &mut inline[..head_len]
    } else {
        spilled.resize(head_len, 0);
        &mut spilled
    };
    head[..HEADER_LEN].copy_from_slice(&h.encode());
    // Each name up to its first NUL, then zeros: whatever the caller's buffer
    // holds after the NUL is its own memory and never goes on the wire (the
    // original sends the 32 bytes verbatim). A name with no NUL goes as is.
    for (g, slot) in groups.iter().zip(head[HEADER_LEN..].chunks_exact_mut(MAX_GROUP_NAME)) {
        let name = spread_wire::names::name_bytes(g);
        slot[..name.len()].copy_from_slice(name);
    }
    let pieces = body.pieces();
    let mut parts: [&[u8]; 1 + MAX_CLIENT_SCATTER_ELEMENTS] = [&[]; 1 + MAX_CLIENT_SCATTER_ELEMENTS];
    parts[0] = head;
    parts[1..=pieces.len()].copy_from_slice(pieces);

    let _g = s.send_lock.lock();
    if crate::io::send_vectored(s.fd(), &parts[..=pieces.len()]).is_err() {
        s.set_error();
        return Err(CONNECTION_CLOSED);
    }
    Ok(mess_len)
}

/// `SP_join` / `SP_leave`: validate the name (1–31 bytes, each in `'$'..='~'`)
/// and send a JOIN or LEAVE frame. Returns 0.
pub fn join(mbox: i32, group: &[u8]) -> Code {
    join_leave(mbox, group, JOIN_MESS)
}

/// See [`join`].
pub fn leave(mbox: i32, group: &[u8]) -> Code {
    join_leave(mbox, group, LEAVE_MESS)
}

fn join_leave(mbox: i32, group: &[u8], kind: u32) -> Code {
    let group = &group[..group.iter().position(|&c| c == 0).unwrap_or(group.len())];
    if !spread_wire::names::valid_group_name(group) {
        return ILLEGAL_GROUP;
    }
    match send_frame(mbox, kind, &[spread_wire::names::name32(group)], 0, &SendBody::Empty) {
        Ok(n) => n,
        Err(e) => e,
    }
}
