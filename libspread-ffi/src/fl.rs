//! The Flush library (`fl.h`, client spec §4): virtual synchrony on top of the
//! `SP_*` functions. The state machine lives in [`machine`] (safe Rust, generic
//! over the SP layer); this file holds the thin `extern "C"` shells.
//!
//! Where the original library calls `abort()` because SP returned an error it
//! did not expect, these functions return that error instead (see the comments
//! at each place in `machine`): in every such case the original process would
//! have died without sending anything more, so peers see no difference other
//! than our process staying alive.

pub mod bind;
pub mod machine;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::sync::OnceLock;

use spread_wire::consts::*;

use crate::guard::{guard, guard_void};
use crate::types::*;
use bind::RealSp;
use machine::{FlLib, Name, Payload, RecvArgs, FL_MAX_SCATTER_ELEMENTS};

fn lib() -> &'static FlLib<RealSp> {
    static LIB: OnceLock<FlLib<RealSp>> = OnceLock::new();
    LIB.get_or_init(|| FlLib::new(RealSp))
}

/// The bytes of a C string before its NUL, reading at most `max` bytes.
unsafe fn c_prefix<'a>(p: *const c_char, max: usize) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    let mut n = 0;
    while n < max && *p.add(n) != 0 {
        n += 1;
    }
    std::slice::from_raw_parts(p as *const u8, n)
}

/// A name argument as a zero-padded 32-byte field (bytes before the NUL).
unsafe fn name_arg(p: *const c_char) -> Name {
    machine::name_key(c_prefix(p, MAX_GROUP_NAME))
}

/// The caller's scatter as slices, or the error SP would give for it.
unsafe fn scatter_parts<'a>(scat: *const scatter) -> (usize, Payload<'a>) {
    if scat.is_null() {
        return (0, Payload::Invalid(ILLEGAL_MESSAGE));
    }
    let s = &*scat;
    let n = s.num_elements;
    if n > FL_MAX_SCATTER_ELEMENTS {
        return (n, Payload::Invalid(ILLEGAL_MESSAGE));
    }
    let mut parts = Vec::with_capacity(n + 1);
    for e in &s.elements[..n] {
        if e.len == 0 {
            parts.push(&[][..]);
        } else if e.buf.is_null() || e.len > i32::MAX as usize {
            return (n, Payload::Invalid(ILLEGAL_MESSAGE));
        } else {
            parts.push(std::slice::from_raw_parts(e.buf as *const u8, e.len));
        }
    }
    (n, Payload::Parts(parts))
}

unsafe fn single_part<'a>(mess_len: c_int, mess: *const c_char) -> (usize, Payload<'a>) {
    if mess_len == 0 {
        (1, Payload::Parts(vec![&[][..]]))
    } else if mess_len < 0 || mess.is_null() {
        (1, Payload::Invalid(ILLEGAL_MESSAGE))
    } else {
        (1, Payload::Parts(vec![std::slice::from_raw_parts(mess as *const u8, mess_len as usize)]))
    }
}

#[no_mangle]
pub unsafe extern "C" fn FL_lib_init() -> c_int {
    guard(ILLEGAL_STATE, || lib().lib_init())
}

#[no_mangle]
pub unsafe extern "C" fn FL_version(major_ver: *mut c_int, minor_ver: *mut c_int, patch_ver: *mut c_int) {
    guard_void(|| {
        for (p, v) in [(major_ver, 2), (minor_ver, 0), (patch_ver, 0)] {
            if !p.is_null() {
                *p = v;
            }
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_connect(
    daemon_name: *const c_char,
    user_name: *const c_char,
    priority: c_int,
    mbox: *mut mailbox,
    private_name: *mut c_char,
) -> c_int {
    guard(SP_BUG, || {
        let d = (!daemon_name.is_null()).then(|| CStr::from_ptr(daemon_name));
        let u = (!user_name.is_null()).then(|| CStr::from_ptr(user_name));
        let (ret, m, private) = lib().connect(d, u, priority);
        if ret == ACCEPT_SESSION {
            if !mbox.is_null() {
                *mbox = m;
            }
            if !private_name.is_null() {
                let s = machine::name_str(&private);
                for (i, &b) in s.iter().enumerate() {
                    *private_name.add(i) = b as c_char;
                }
                *private_name.add(s.len().min(MAX_GROUP_NAME - 1)) = 0;
            }
        }
        ret
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_disconnect(mbox: mailbox) -> c_int {
    guard(SP_BUG, || lib().disconnect(mbox))
}

#[no_mangle]
pub unsafe extern "C" fn FL_join(mbox: mailbox, group_name: *const c_char) -> c_int {
    guard(SP_BUG, || lib().join(mbox, c_prefix(group_name, MAX_GROUP_NAME)))
}

#[no_mangle]
pub unsafe extern "C" fn FL_leave(mbox: mailbox, group_name: *const c_char) -> c_int {
    guard(SP_BUG, || lib().leave(mbox, c_prefix(group_name, MAX_GROUP_NAME)))
}

#[no_mangle]
pub unsafe extern "C" fn FL_flush(mbox: mailbox, group_name: *const c_char) -> c_int {
    guard(SP_BUG, || lib().flush(mbox, c_prefix(group_name, MAX_GROUP_NAME)))
}

#[no_mangle]
pub unsafe extern "C" fn FL_unicast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    recvr_name: *const c_char,
    mess_type: int16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    guard(SP_BUG, || {
        let (n, payload) = single_part(mess_len, mess);
        // The original copies 32 bytes from `recvr_name` whatever its length;
        // we take the name up to its NUL and pad with zeros (the daemon and
        // every receiver read the name only up to the NUL).
        let r = [name_arg(recvr_name)];
        let svc = serv_type | SUBGROUP_CAST as i32;
        lib().send(mbox, svc, &name_arg(group_name), 1, &r, mess_type, n, payload)
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_scat_unicast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    recvr_name: *const c_char,
    mess_type: int16,
    scat: *const scatter,
) -> c_int {
    guard(SP_BUG, || {
        let (n, payload) = scatter_parts(scat);
        let r = [name_arg(recvr_name)];
        let svc = serv_type | SUBGROUP_CAST as i32;
        lib().send(mbox, svc, &name_arg(group_name), 1, &r, mess_type, n, payload)
    })
}

/// The receivers of a subgroupcast, each a full 32-byte field (copied verbatim,
/// as SP sends them).
unsafe fn receivers(num: c_int, names: *const [c_char; 32]) -> Option<Vec<Name>> {
    if num <= 0 {
        return Some(Vec::new());
    }
    if names.is_null() {
        return None;
    }
    let raw = std::slice::from_raw_parts(names as *const Name, num as usize);
    Some(raw.to_vec())
}

#[no_mangle]
pub unsafe extern "C" fn FL_subgroupcast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    num_recvrs: c_int,
    recvr_names: *const [c_char; 32],
    mess_type: int16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    guard(SP_BUG, || {
        let Some(r) = receivers(num_recvrs, recvr_names) else { return ILLEGAL_PARAM };
        let (n, payload) = single_part(mess_len, mess);
        let svc = serv_type | SUBGROUP_CAST as i32;
        lib().send(mbox, svc, &name_arg(group_name), num_recvrs, &r, mess_type, n, payload)
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_scat_subgroupcast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    num_recvrs: c_int,
    recvr_names: *const [c_char; 32],
    mess_type: int16,
    scat: *const scatter,
) -> c_int {
    guard(SP_BUG, || {
        let Some(r) = receivers(num_recvrs, recvr_names) else { return ILLEGAL_PARAM };
        let (n, payload) = scatter_parts(scat);
        let svc = serv_type | SUBGROUP_CAST as i32;
        lib().send(mbox, svc, &name_arg(group_name), num_recvrs, &r, mess_type, n, payload)
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_multicast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    mess_type: int16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    guard(SP_BUG, || {
        let (n, payload) = single_part(mess_len, mess);
        let svc = serv_type & !(SUBGROUP_CAST as i32);
        lib().send(mbox, svc, &name_arg(group_name), 0, &[], mess_type, n, payload)
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_scat_multicast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    mess_type: int16,
    scat_mess: *const scatter,
) -> c_int {
    guard(SP_BUG, || {
        let (n, payload) = scatter_parts(scat_mess);
        let svc = serv_type & !(SUBGROUP_CAST as i32);
        lib().send(mbox, svc, &name_arg(group_name), 0, &[], mess_type, n, payload)
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_receive(
    mbox: mailbox,
    serv_type: *mut service,
    sender_name: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    group_names: *mut [c_char; 32],
    mess_type: *mut int16,
    endian_mismatch: *mut c_int,
    max_mess_len: c_int,
    mess: *mut c_char,
    more_msgs: *mut c_int,
) -> c_int {
    guard(SP_BUG, || {
        // The original turns a negative length into a huge buffer size (and
        // then writes past the caller's buffer); we refuse it.
        if max_mess_len < 0 {
            return ILLEGAL_PARAM;
        }
        let mut s = scatter {
            num_elements: 1,
            elements: [scat_element { buf: std::ptr::null_mut(), len: 0 }; MAX_CLIENT_SCATTER_ELEMENTS],
        };
        s.elements[0] = scat_element { buf: mess, len: max_mess_len as usize };
        FL_scat_receive(
            mbox,
            serv_type,
            sender_name,
            max_groups,
            num_groups,
            group_names,
            mess_type,
            endian_mismatch,
            &mut s,
            more_msgs,
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_scat_receive(
    mbox: mailbox,
    serv_type: *mut service,
    sender_name: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    group_names: *mut [c_char; 32],
    mess_type: *mut int16,
    endian_mismatch: *mut c_int,
    scat_mess: *mut scatter,
    more_msgs: *mut c_int,
) -> c_int {
    guard(SP_BUG, || {
        if serv_type.is_null() || max_groups < 0 {
            return ILLEGAL_PARAM;
        }
        // A scatter we cannot read safely: the original would read past it.
        if scat_mess.is_null() || (*scat_mess).num_elements > MAX_CLIENT_SCATTER_ELEMENTS {
            return ILLEGAL_MESSAGE;
        }
        let scat = &mut *scat_mess;
        let elems = &scat.elements[..scat.num_elements];
        if elems.iter().any(|e| e.len != 0 && e.buf.is_null()) {
            return ILLEGAL_MESSAGE;
        }
        let cap = elems.iter().fold(0usize, |a, e| a.saturating_add(e.len));
        let args = RecvArgs { service_in: *serv_type, max_groups, body_cap: cap };
        let out = lib().receive(mbox, args);

        if let Some(v) = out.service {
            *serv_type = v;
        }
        if let (Some(v), false) = (out.sender, sender_name.is_null()) {
            std::ptr::copy_nonoverlapping(v.as_ptr() as *const c_char, sender_name, MAX_GROUP_NAME);
        }
        if let (Some(v), false) = (out.num_groups, num_groups.is_null()) {
            *num_groups = v;
        }
        if !group_names.is_null() {
            for (i, g) in out.groups.iter().take(max_groups as usize).enumerate() {
                *group_names.add(i) = g.map(|b| b as c_char);
            }
        }
        if let (Some(v), false) = (out.mess_type, mess_type.is_null()) {
            *mess_type = v;
        }
        if let (Some(v), false) = (out.endian_mismatch, endian_mismatch.is_null()) {
            *endian_mismatch = v;
        }
        let mut rest = &out.body[..];
        for e in elems {
            if rest.is_empty() {
                break;
            }
            let k = e.len.min(rest.len());
            if k == 0 {
                continue;
            }
            std::ptr::copy_nonoverlapping(rest.as_ptr(), e.buf as *mut u8, k);
            rest = &rest[k..];
        }
        if let (Some(v), false) = (out.more_msgs, more_msgs.is_null()) {
            *more_msgs = v;
        }
        out.ret
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_more_msgs(mbox: mailbox) -> c_int {
    guard(SP_BUG, || lib().more_msgs(mbox))
}

#[no_mangle]
pub unsafe extern "C" fn FL_poll(mbox: mailbox) -> c_int {
    guard(SP_BUG, || lib().poll(mbox))
}

/// The text `FL_error` prints for the FL-specific codes (`None`: an SP code).
pub fn fl_error_text(err: i32) -> Option<String> {
    let what = match err {
        ILLEGAL_PARAM => "Illegal parameter (eg a negative size) passed to a function.".to_string(),
        WOULD_BLOCK => "Function call would have blocked.".to_string(),
        ILLEGAL_MESSAGE_TYPE => format!(
            "Illegal message type (int16) used, value < FL_MIN_LEGAL_MESS_TYPE({}).",
            machine::FL_MIN_LEGAL_MESS_TYPE
        ),
        // "peformed" is the original's spelling; programs may compare the output.
        ILLEGAL_STATE => "Function call peformed in a prohibited state.".to_string(),
        ILLEGAL_RECEIVERS => "Illegal receivers specified.".to_string(),
        _ => return None,
    };
    Some(format!("FL_error: ({}) {}\n", err, what))
}

#[no_mangle]
pub unsafe extern "C" fn FL_error(error_code: c_int) {
    guard_void(|| match fl_error_text(error_code) {
        // Through C stdio, like the original's printf, so it interleaves with
        // the application's own printf output.
        Some(t) => {
            if let Ok(c) = std::ffi::CString::new(t) {
                // (no c"" literal: the workspace supports Rust 1.75)
                #[allow(clippy::manual_c_str_literals)]
                libc::printf(b"%s\0".as_ptr() as *const c_char, c.as_ptr());
            }
        }
        None => crate::sp::SP_error(error_code),
    })
}

#[no_mangle]
pub unsafe extern "C" fn FL_get_gid_offset_memb_mess() -> c_int {
    0
}

#[no_mangle]
pub unsafe extern "C" fn FL_get_num_vs_offset_memb_mess() -> c_int {
    std::mem::size_of::<group_id>() as c_int
}

#[no_mangle]
pub unsafe extern "C" fn FL_get_vs_set_offset_memb_mess() -> c_int {
    (std::mem::size_of::<group_id>() + std::mem::size_of::<int32>()) as c_int
}
