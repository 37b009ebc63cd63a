//! [`SpApi`] over this library's own `SP_*` functions.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::ptr;

use spread_wire::consts::*;

use super::machine::{Name, SpApi, SpRecv};
use crate::sp;
use crate::types::{scat_element, scatter, service};

/// The real SP layer (`crate::sp`).
pub struct RealSp;

fn empty_scatter() -> scatter {
    scatter { num_elements: 0, elements: [scat_element { buf: ptr::null_mut(), len: 0 }; MAX_CLIENT_SCATTER_ELEMENTS] }
}

/// One multicast through the client engine.
fn send(mbox: i32, service: i32, groups: &[Name], mess_type: i16, parts: &[&[u8]]) -> i32 {
    if parts.len() > MAX_CLIENT_SCATTER_ELEMENTS {
        return ILLEGAL_MESSAGE;
    }
    let body = spread_client::SendBody::Scatter(parts);
    match spread_client::multicast(mbox, service as u32, groups, mess_type, &body) {
        Ok(n) => n,
        Err(e) => e,
    }
}

/// A NUL-terminated copy of a name of at most 32 bytes.
fn c_name(bytes: &[u8]) -> [c_char; MAX_GROUP_NAME + 1] {
    let mut b = [0 as c_char; MAX_GROUP_NAME + 1];
    for (d, &s) in b.iter_mut().zip(bytes.iter().take(MAX_GROUP_NAME)) {
        *d = s as c_char;
    }
    b
}

impl SpApi for RealSp {
    fn version(&self) -> (i32, i32, i32) {
        let (mut a, mut b, mut c) = (0, 0, 0);
        // SAFETY: three valid out-pointers.
        unsafe { sp::SP_version(&mut a, &mut b, &mut c) };
        (a, b, c)
    }

    fn connect(&self, daemon: Option<&CStr>, user: Option<&CStr>, priority: i32) -> (i32, i32, Name) {
        let mut mbox: c_int = -1;
        let mut private = [0 as c_char; MAX_GROUP_NAME];
        // SAFETY: the names are NUL-terminated or null; the out-buffers are valid
        // and the private one has the 32 bytes SP_connect may write.
        let r = unsafe {
            sp::SP_connect(
                daemon.map_or(ptr::null(), |c| c.as_ptr()),
                user.map_or(ptr::null(), |c| c.as_ptr()),
                priority,
                1,
                &mut mbox,
                private.as_mut_ptr(),
            )
        };
        let mut name = [0u8; MAX_GROUP_NAME];
        for (d, s) in name.iter_mut().zip(private.iter()) {
            *d = *s as u8;
        }
        (r, mbox, name)
    }

    fn disconnect(&self, mbox: i32) -> i32 {
        // SAFETY: plain value argument.
        unsafe { sp::SP_disconnect(mbox) }
    }

    fn join(&self, mbox: i32, group: &[u8]) -> i32 {
        let g = c_name(group);
        // SAFETY: `g` is NUL-terminated.
        unsafe { sp::SP_join(mbox, g.as_ptr()) }
    }

    fn leave(&self, mbox: i32, group: &[u8]) -> i32 {
        let g = c_name(group);
        // SAFETY: `g` is NUL-terminated.
        unsafe { sp::SP_leave(mbox, g.as_ptr()) }
    }

    // The sends go straight to the client engine with the slices FL holds:
    // the same checks and results as `SP_scat_multicast` /
    // `SP_multigroup_scat_multicast` (service, session, then size), without
    // building a 100-element scatter per message.
    fn multicast(&self, mbox: i32, service: i32, group: &Name, mess_type: i16, parts: &[&[u8]]) -> i32 {
        // `strncpy(.., 31)` of the name, as SP_scat_multicast takes it.
        let mut g = [0u8; MAX_GROUP_NAME];
        let n = group.iter().take(MAX_GROUP_NAME - 1).position(|&c| c == 0).unwrap_or(MAX_GROUP_NAME - 1);
        g[..n].copy_from_slice(&group[..n]);
        send(mbox, service, &[g], mess_type, parts)
    }

    fn multigroup_multicast(&self, mbox: i32, service: i32, groups: &[Name], mess_type: i16, parts: &[&[u8]]) -> i32 {
        if c_int::try_from(groups.len()).is_err() {
            return ILLEGAL_MESSAGE;
        }
        send(mbox, service, groups, mess_type, parts)
    }

    fn receive(&self, mbox: i32, max_groups: usize, body_cap: usize) -> SpRecv {
        let mut groups = vec![[0u8; MAX_GROUP_NAME]; max_groups];
        // Not zeroed: SP writes the bytes we keep (see set_len below).
        let mut body: Vec<u8> = Vec::with_capacity(body_cap);
        let mut s = empty_scatter();
        s.num_elements = 1;
        s.elements[0] = scat_element { buf: body.as_mut_ptr() as *mut c_char, len: body_cap };
        let mut svc: service = 0;
        let mut sender = [0 as c_char; MAX_GROUP_NAME];
        let mut num_groups: c_int = 0;
        let mut mess_type: i16 = 0;
        let mut endian: c_int = 0;
        let max = c_int::try_from(max_groups).unwrap_or(c_int::MAX);
        // SAFETY: every pointer refers to a live buffer of the size announced.
        let ret = unsafe {
            sp::SP_scat_receive(
                mbox,
                &mut svc,
                sender.as_mut_ptr(),
                max,
                &mut num_groups,
                groups.as_mut_ptr() as *mut [c_char; MAX_GROUP_NAME],
                &mut mess_type,
                &mut endian,
                &mut s,
            )
        };
        let mut snd = [0u8; MAX_GROUP_NAME];
        for (d, c) in snd.iter_mut().zip(sender.iter()) {
            *d = *c as u8;
        }
        if ret >= 0 {
            groups.truncate((num_groups.max(0) as usize).min(max_groups));
            // SAFETY: on success SP has written min(ret, capacity) body bytes
            // from the start of the buffer.
            unsafe { body.set_len((ret as usize).min(body_cap)) };
        } else {
            groups.clear();
            body.clear();
        }
        SpRecv { ret, service: svc, sender: snd, num_groups, groups, mess_type, endian_mismatch: endian, body }
    }

    fn poll(&self, mbox: i32) -> i32 {
        // SAFETY: plain value argument.
        unsafe { sp::SP_poll(mbox) }
    }
}
