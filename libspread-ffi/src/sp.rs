//! The `SP_*` C functions of libspread 5.0.1 (client spec §1.5): thin shells
//! that check pointers, run inside the panic guard and call `spread-client`.
//!
//! Conventions for arguments the original does not check (it would crash or
//! corrupt memory; spec §6 item 12):
//! * a NULL or negative-length *input* → the function's argument error
//!   (`ILLEGAL_GROUP` for group names and a negative group count,
//!   `ILLEGAL_MESSAGE` for bodies and scatters, `COULD_NOT_CONNECT` for
//!   `SP_connect` without `mbox`/`private_group`), nothing sent;
//! * a scatter with more than 100 elements → `ILLEGAL_MESSAGE`;
//! * a NULL *output* pointer of a receive → that output is not written;
//!   a NULL `groups`/`mess` or a negative `max_groups`/`max_mess_len` is
//!   room for nothing.
//!
//! A panic inside any function returns `SP_BUG` (or 0 / nothing).

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::Arc;

use spread_wire::consts::*;
use spread_wire::names::Name32;

use spread_client::memb::{self, MembBody};
use spread_client::recv::RecvOutputs;
use spread_client::send::SendBody;

use crate::guard::{guard, guard_void};
use crate::types::*;

/// Auth callback type: `int (*)(int fd, void *auth_data)`.
pub type AuthFn = unsafe extern "C" fn(c_int, *mut c_void) -> c_int;

/// The opaque `auth_data` pointer handed back to the C callback.
#[derive(Clone, Copy)]
struct Opaque(*mut c_void);
// SAFETY: the pointer is only ever passed back to the application's own
// callback, as the original does from whichever thread connects.
unsafe impl Send for Opaque {}
unsafe impl Sync for Opaque {}

fn c_method(name: *const c_char, f: Option<AuthFn>, data: *mut c_void) -> Option<spread_client::auth::AuthMethod> {
    if name.is_null() {
        return None;
    }
    let f = f?;
    // SAFETY: the caller passes a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes().to_vec();
    let data = Opaque(data);
    Some(spread_client::auth::AuthMethod {
        name,
        authenticate: Arc::new(move |fd| {
            let d = data;
            // SAFETY: calling the application's callback with its own data.
            unsafe { f(fd, d.0) != 0 }
        }),
    })
}

/// Bytes of a C string (NULL → None).
unsafe fn opt_cstr<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_bytes())
    }
}

/// `strncpy(buf, group, 31); buf[31] = 0` without reading past 31 bytes.
unsafe fn group31(p: *const c_char) -> Name32 {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate().take(31) {
        let c = *p.add(i) as u8;
        if c == 0 {
            break;
        }
        *o = c;
    }
    out
}

/// A scatter's elements as `(ptr, len)`; `None` if more than 100.
unsafe fn scat_elems<'a>(s: *const scatter) -> Option<&'a [scat_element]> {
    let s = &*s;
    if s.num_elements > MAX_CLIENT_SCATTER_ELEMENTS {
        return None;
    }
    Some(&s.elements[..s.num_elements])
}

/// Send-side slices of a scatter, written into `out` (no allocation):
/// `Err(ILLEGAL_MESSAGE)` for NULL buffers, `Err(MESSAGE_TOO_LONG)` when the
/// total exceeds the library limit (checked before any slice is formed).
unsafe fn send_pieces(
    elems: &[scat_element],
    num_groups: usize,
    out: &mut [&[u8]; MAX_CLIENT_SCATTER_ELEMENTS],
) -> Result<usize, Code> {
    let mut total: u128 = (num_groups as u128) * MAX_GROUP_NAME as u128;
    for e in elems {
        if e.buf.is_null() && e.len > 0 {
            return Err(ILLEGAL_MESSAGE);
        }
        total += e.len as u128;
    }
    if total > MAX_MESSAGE_BODY_LEN as u128 {
        return Err(MESSAGE_TOO_LONG);
    }
    for (o, e) in out.iter_mut().zip(elems) {
        *o = if e.len == 0 { &[][..] } else { std::slice::from_raw_parts(e.buf as *const u8, e.len) };
    }
    Ok(elems.len())
}

type Code = c_int;

/// Session errors take precedence over the size error, as in the original
/// (lookup first, then the 144000-byte check).
fn too_long(mbox: mailbox) -> Code {
    match spread_client::session::check_active(mbox) {
        0 => MESSAGE_TOO_LONG,
        e => e,
    }
}

#[no_mangle]
pub unsafe extern "C" fn SP_version(major: *mut c_int, minor: *mut c_int, patch: *mut c_int) -> c_int {
    guard(0, || {
        if major.is_null() || minor.is_null() || patch.is_null() {
            return 0;
        }
        *major = SP_MAJOR_VERSION as c_int;
        *minor = SP_MINOR_VERSION as c_int;
        *patch = SP_PATCH_VERSION as c_int;
        1
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_set_auth_method(
    auth_name: *const c_char,
    auth_function: Option<AuthFn>,
    auth_data: *mut c_void,
) -> c_int {
    guard(0, || {
        spread_client::init();
        match c_method(auth_name, auth_function, auth_data) {
            Some(m) => spread_client::auth::set_method(m) as c_int,
            None => 0,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_set_auth_methods(
    num_methods: c_int,
    auth_name: *const *const c_char,
    auth_function: *const Option<AuthFn>,
    auth_data: *const *mut c_void,
) -> c_int {
    guard(0, || {
        spread_client::init();
        if !(0..=MAX_AUTH_METHODS as c_int).contains(&num_methods) {
            return 0;
        }
        let n = num_methods as usize;
        if n > 0 && (auth_name.is_null() || auth_function.is_null()) {
            return 0;
        }
        let mut ms = Vec::with_capacity(n);
        for i in 0..n {
            let data = if auth_data.is_null() { std::ptr::null_mut() } else { *auth_data.add(i) };
            match c_method(*auth_name.add(i), *auth_function.add(i), data) {
                Some(m) => ms.push(m),
                None => return 0,
            }
        }
        spread_client::auth::set_methods(ms) as c_int
    })
}

unsafe fn connect_common(
    spread_name: *const c_char,
    private_name: *const c_char,
    priority: c_int,
    group_membership: c_int,
    mbox: *mut mailbox,
    private_group: *mut c_char,
    deadline: Option<std::time::Instant>,
) -> c_int {
    if mbox.is_null() || private_group.is_null() {
        return COULD_NOT_CONNECT;
    }
    match spread_client::connect(
        opt_cstr(spread_name),
        opt_cstr(private_name),
        priority,
        group_membership != 0,
        deadline,
    ) {
        Ok(c) => {
            let n = c.private_group.len().min(MAX_GROUP_NAME - 1);
            std::ptr::copy_nonoverlapping(c.private_group.as_ptr(), private_group as *mut u8, n);
            *private_group.add(n) = 0;
            *mbox = c.mbox;
            ACCEPT_SESSION
        }
        Err(e) => e,
    }
}

#[no_mangle]
pub unsafe extern "C" fn SP_connect(
    spread_name: *const c_char,
    private_name: *const c_char,
    priority: c_int,
    group_membership: c_int,
    mbox: *mut mailbox,
    private_group: *mut c_char,
) -> c_int {
    guard(SP_BUG, || connect_common(spread_name, private_name, priority, group_membership, mbox, private_group, None))
}

#[no_mangle]
pub unsafe extern "C" fn SP_connect_timeout(
    spread_name: *const c_char,
    private_name: *const c_char,
    priority: c_int,
    group_membership: c_int,
    mbox: *mut mailbox,
    private_group: *mut c_char,
    time_out: sp_time,
) -> c_int {
    guard(SP_BUG, || {
        #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
        let t = spread_client::Timeout { sec: i64::from(time_out.sec), usec: i64::from(time_out.usec) };
        match spread_client::validate_timeout(t) {
            Ok(d) => connect_common(spread_name, private_name, priority, group_membership, mbox, private_group, d),
            Err(e) => e,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_disconnect(mbox: mailbox) -> c_int {
    guard(SP_BUG, || spread_client::disconnect(mbox))
}

#[no_mangle]
pub unsafe extern "C" fn SP_kill(mbox: mailbox) {
    guard_void(|| spread_client::kill(mbox))
}

#[no_mangle]
pub unsafe extern "C" fn SP_join(mbox: mailbox, group: *const c_char) -> c_int {
    guard(SP_BUG, || match opt_cstr(group) {
        Some(g) => spread_client::send::join(mbox, g),
        None => ILLEGAL_GROUP,
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_leave(mbox: mailbox, group: *const c_char) -> c_int {
    guard(SP_BUG, || match opt_cstr(group) {
        Some(g) => spread_client::send::leave(mbox, g),
        None => ILLEGAL_GROUP,
    })
}

/// The group names of a multicast: one copied (`strncpy` to 31 bytes) or
/// the caller's array of 32-byte entries, read in place.
enum Groups<'a> {
    One(Name32),
    Many(&'a [Name32]),
}

impl Groups<'_> {
    fn as_slice(&self) -> &[Name32] {
        match self {
            Groups::One(g) => std::slice::from_ref(g),
            Groups::Many(g) => g,
        }
    }
}

/// The common shell of the four multicast forms.
unsafe fn multicast_common(
    mbox: mailbox,
    service_type: service,
    groups: Result<Groups<'_>, Code>,
    mess_type: int16,
    elems: Option<&[scat_element]>,
) -> c_int {
    let service = service_type as u32;
    if service & REGULAR_MESS == 0 {
        return ILLEGAL_SERVICE;
    }
    let groups = match groups {
        Ok(g) => g,
        Err(MESSAGE_TOO_LONG) => return too_long(mbox),
        Err(e) => return e,
    };
    let groups = groups.as_slice();
    let Some(elems) = elems else { return ILLEGAL_MESSAGE };
    let mut pieces: [&[u8]; MAX_CLIENT_SCATTER_ELEMENTS] = [&[]; MAX_CLIENT_SCATTER_ELEMENTS];
    let n = match send_pieces(elems, groups.len(), &mut pieces) {
        Ok(n) => n,
        Err(MESSAGE_TOO_LONG) => return too_long(mbox),
        Err(e) => return e,
    };
    match spread_client::multicast(mbox, service, groups, mess_type, &SendBody::Scatter(&pieces[..n])) {
        Ok(n) => n,
        Err(e) => e,
    }
}

/// One group name from a C string (NULL → `ILLEGAL_GROUP`).
unsafe fn one_group<'a>(group: *const c_char) -> Result<Groups<'a>, Code> {
    if group.is_null() {
        return Err(ILLEGAL_GROUP);
    }
    Ok(Groups::One(group31(group)))
}

/// `num_groups` verbatim 32-byte entries.
unsafe fn many_groups<'a>(num_groups: c_int, groups: *const [c_char; 32]) -> Result<Groups<'a>, Code> {
    if num_groups < 0 {
        return Err(ILLEGAL_GROUP);
    }
    let n = num_groups as usize;
    if n * MAX_GROUP_NAME > MAX_MESSAGE_BODY_LEN {
        return Err(MESSAGE_TOO_LONG);
    }
    if n == 0 {
        return Ok(Groups::Many(&[]));
    }
    if groups.is_null() {
        return Err(ILLEGAL_GROUP);
    }
    // SAFETY: the caller passes `num_groups` entries of 32 bytes; `[c_char;
    // 32]` and `[u8; 32]` have the same size and alignment.
    Ok(Groups::Many(std::slice::from_raw_parts(groups as *const Name32, n)))
}

/// A one-element scatter over `(mess, mess_len)`.
fn single(mess: *const c_char, mess_len: c_int) -> Option<[scat_element; 1]> {
    if mess_len < 0 {
        return None;
    }
    Some([scat_element { buf: mess as *mut c_char, len: mess_len as usize }])
}

#[no_mangle]
pub unsafe extern "C" fn SP_multicast(
    mbox: mailbox,
    service_type: service,
    group: *const c_char,
    mess_type: int16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    guard(SP_BUG, || {
        let one = single(mess, mess_len);
        multicast_common(mbox, service_type, one_group(group), mess_type, one.as_ref().map(|e| &e[..]))
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_multicast(
    mbox: mailbox,
    service_type: service,
    group: *const c_char,
    mess_type: int16,
    scat_mess: *const scatter,
) -> c_int {
    guard(SP_BUG, || {
        let elems = if scat_mess.is_null() { None } else { scat_elems(scat_mess) };
        multicast_common(mbox, service_type, one_group(group), mess_type, elems)
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_multigroup_multicast(
    mbox: mailbox,
    service_type: service,
    num_groups: c_int,
    groups: *const [c_char; 32],
    mess_type: int16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    guard(SP_BUG, || {
        let one = single(mess, mess_len);
        multicast_common(mbox, service_type, many_groups(num_groups, groups), mess_type, one.as_ref().map(|e| &e[..]))
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_multigroup_scat_multicast(
    mbox: mailbox,
    service_type: service,
    num_groups: c_int,
    groups: *const [c_char; 32],
    mess_type: int16,
    scat_mess: *const scatter,
) -> c_int {
    guard(SP_BUG, || {
        let elems = if scat_mess.is_null() { None } else { scat_elems(scat_mess) };
        multicast_common(mbox, service_type, many_groups(num_groups, groups), mess_type, elems)
    })
}

/// The common shell of the two receive forms.
#[allow(clippy::too_many_arguments)]
unsafe fn receive_common(
    mbox: mailbox,
    service_type: *mut service,
    sender: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    groups: *mut [c_char; 32],
    mess_type: *mut int16,
    endian_mismatch: *mut c_int,
    elems: &[scat_element],
) -> c_int {
    let drop_recv = !service_type.is_null() && (*service_type as u32) & DROP_RECV != 0;
    let ng = if groups.is_null() || max_groups <= 0 { 0 } else { max_groups as usize };
    let gslice: &mut [Name32] =
        if ng == 0 { &mut [] } else { std::slice::from_raw_parts_mut(groups as *mut Name32, ng) };
    let mut pieces: [&mut [u8]; MAX_CLIENT_SCATTER_ELEMENTS] = std::array::from_fn(|_| <&mut [u8]>::default());
    for (p, e) in pieces.iter_mut().zip(elems) {
        if e.len == 0 {
            continue;
        } else if e.buf.is_null() || e.len > isize::MAX as usize {
            return ILLEGAL_MESSAGE;
        }
        *p = std::slice::from_raw_parts_mut(e.buf as *mut u8, e.len);
    }
    let pieces = &mut pieces[..elems.len()];
    let mut out = RecvOutputs::default();
    let r = spread_client::receive(mbox, drop_recv, gslice, pieces, &mut out);
    if let (Some(v), false) = (out.service, service_type.is_null()) {
        *service_type = v as service;
    }
    if let (Some(v), false) = (out.sender, sender.is_null()) {
        std::ptr::copy_nonoverlapping(v.as_ptr(), sender as *mut u8, MAX_GROUP_NAME);
    }
    if let (Some(v), false) = (out.num_groups, num_groups.is_null()) {
        *num_groups = v;
    }
    if let (Some(v), false) = (out.mess_type, mess_type.is_null()) {
        *mess_type = v;
    }
    if let (Some(v), false) = (out.endian_mismatch, endian_mismatch.is_null()) {
        *endian_mismatch = v;
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn SP_receive(
    mbox: mailbox,
    service_type: *mut service,
    sender: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    groups: *mut [c_char; 32],
    mess_type: *mut int16,
    endian_mismatch: *mut c_int,
    max_mess_len: c_int,
    mess: *mut c_char,
) -> c_int {
    guard(SP_BUG, || {
        let len = if mess.is_null() || max_mess_len < 0 { 0 } else { max_mess_len as usize };
        let e = [scat_element { buf: mess, len }];
        receive_common(mbox, service_type, sender, max_groups, num_groups, groups, mess_type, endian_mismatch, &e)
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_receive(
    mbox: mailbox,
    service_type: *mut service,
    sender: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    groups: *mut [c_char; 32],
    mess_type: *mut int16,
    endian_mismatch: *mut c_int,
    scat_mess: *mut scatter,
) -> c_int {
    guard(SP_BUG, || {
        if scat_mess.is_null() {
            return ILLEGAL_MESSAGE;
        }
        let Some(elems) = scat_elems(scat_mess) else { return ILLEGAL_MESSAGE };
        receive_common(mbox, service_type, sender, max_groups, num_groups, groups, mess_type, endian_mismatch, elems)
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_poll(mbox: mailbox) -> c_int {
    guard(SP_BUG, || spread_client::poll(mbox))
}

#[no_mangle]
pub unsafe extern "C" fn SP_equal_group_ids(g1: group_id, g2: group_id) -> c_int {
    guard(0, || (g1.id == g2.id) as c_int)
}

/// A membership body behind a bare pointer: its size is unknown, so reads
/// are confined to the largest body a message can carry (144000 bytes) and
/// read as zero beyond that.
struct RawBody(*const u8);

impl MembBody for RawBody {
    fn read_at(&self, off: u64, out: &mut [u8]) {
        out.fill(0);
        let lim = MAX_MESSAGE_BODY_LEN as u64;
        if off >= lim {
            return;
        }
        let k = (out.len() as u64).min(lim - off) as usize;
        // SAFETY: the caller passed a membership message buffer; offsets are
        // confined to the largest body there can be.
        unsafe { std::ptr::copy_nonoverlapping(self.0.add(off as usize), out.as_mut_ptr(), k) };
    }
}

/// A scatter as a contiguous byte string; NULL elements read as zeros.
struct RawScatter<'a>(&'a [scat_element]);

impl MembBody for RawScatter<'_> {
    fn read_at(&self, mut off: u64, out: &mut [u8]) {
        out.fill(0);
        let mut done = 0usize;
        for e in self.0 {
            if done == out.len() {
                break;
            }
            let len = e.len as u64;
            if off >= len {
                off -= len;
                continue;
            }
            let k = ((len - off) as usize).min(out.len() - done);
            if !e.buf.is_null() {
                // SAFETY: within the element's declared length.
                unsafe {
                    std::ptr::copy_nonoverlapping((e.buf as *const u8).add(off as usize), out[done..].as_mut_ptr(), k)
                };
            }
            done += k;
            off = 0;
        }
    }
}

unsafe fn scat_view<'a>(s: *const scatter) -> RawScatter<'a> {
    let s = &*s;
    RawScatter(&s.elements[..s.num_elements.min(MAX_CLIENT_SCATTER_ELEMENTS)])
}

unsafe fn put_memb_info(body: &impl MembBody, service_type: service, memb_info: *mut membership_info) -> c_int {
    if memb_info.is_null() {
        return ILLEGAL_MESSAGE;
    }
    match memb::memb_info(body, service_type as u32) {
        Ok(m) => {
            let mi = &mut *memb_info;
            mi.gid.id = m.gid;
            if let Some(c) = m.changed_member {
                for (d, s) in mi.changed_member.iter_mut().zip(c) {
                    *d = s as c_char;
                }
            }
            mi.num_vs_sets = m.num_vs_sets;
            mi.my_vs_set = vs_set_info { num_members: m.my_vs_set.0, members_offset: m.my_vs_set.1 };
            1
        }
        Err(e) => e,
    }
}

unsafe fn put_vs_sets(
    body: &impl MembBody,
    vs_sets: *mut vs_set_info,
    num_vs_sets: c_int,
    my_index: *mut u32,
) -> c_int {
    let cap = if vs_sets.is_null() { num_vs_sets.min(0) } else { num_vs_sets };
    memb::vs_sets_info(
        body,
        cap,
        &mut |i, n, o| {
            // SAFETY: i < count <= cap entries the caller provided.
            unsafe { *vs_sets.add(i) = vs_set_info { num_members: n, members_offset: o } }
        },
        &mut |i| {
            if !my_index.is_null() {
                // SAFETY: non-null out pointer from the caller.
                unsafe { *my_index = i }
            }
        },
    )
}

unsafe fn put_members(
    body: &impl MembBody,
    vs_set: *const vs_set_info,
    names: *mut [c_char; 32],
    count: c_int,
) -> c_int {
    if vs_set.is_null() {
        return ILLEGAL_MESSAGE;
    }
    let vs = *vs_set;
    let cap = if names.is_null() { count.min(0) } else { count };
    memb::vs_set_members(body, vs.num_members, vs.members_offset, cap, &mut |i, n| {
        // SAFETY: i < num_members <= cap entries the caller provided.
        unsafe { std::ptr::copy_nonoverlapping(n.as_ptr(), names.add(i) as *mut u8, MAX_GROUP_NAME) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_get_memb_info(
    memb_mess: *const c_char,
    service_type: service,
    memb_info: *mut membership_info,
) -> c_int {
    guard(SP_BUG, || {
        if memb_mess.is_null() {
            return ILLEGAL_MESSAGE;
        }
        put_memb_info(&RawBody(memb_mess as *const u8), service_type, memb_info)
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_get_vs_sets_info(
    memb_mess: *const c_char,
    vs_sets: *mut vs_set_info,
    num_vs_sets: c_int,
    my_vs_set_index: *mut u32,
) -> c_int {
    guard(SP_BUG, || {
        if memb_mess.is_null() {
            return ILLEGAL_MESSAGE;
        }
        put_vs_sets(&RawBody(memb_mess as *const u8), vs_sets, num_vs_sets, my_vs_set_index)
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_get_vs_set_members(
    memb_mess: *const c_char,
    vs_set: *const vs_set_info,
    member_names: *mut [c_char; 32],
    member_names_count: c_int,
) -> c_int {
    guard(SP_BUG, || {
        if memb_mess.is_null() {
            return ILLEGAL_MESSAGE;
        }
        put_members(&RawBody(memb_mess as *const u8), vs_set, member_names, member_names_count)
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_get_memb_info(
    memb_mess_scat: *const scatter,
    service_type: service,
    memb_info: *mut membership_info,
) -> c_int {
    guard(SP_BUG, || {
        if memb_mess_scat.is_null() {
            return ILLEGAL_MESSAGE;
        }
        put_memb_info(&scat_view(memb_mess_scat), service_type, memb_info)
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_get_vs_sets_info(
    memb_mess_scat: *const scatter,
    vs_sets: *mut vs_set_info,
    num_vs_sets: c_int,
    my_vs_set_index: *mut u32,
) -> c_int {
    guard(SP_BUG, || {
        if memb_mess_scat.is_null() {
            return ILLEGAL_MESSAGE;
        }
        put_vs_sets(&scat_view(memb_mess_scat), vs_sets, num_vs_sets, my_vs_set_index)
    })
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_get_vs_set_members(
    memb_mess_scat: *const scatter,
    vs_set: *const vs_set_info,
    member_names: *mut [c_char; 32],
    member_names_count: c_int,
) -> c_int {
    guard(SP_BUG, || {
        if memb_mess_scat.is_null() {
            return ILLEGAL_MESSAGE;
        }
        put_members(&scat_view(memb_mess_scat), vs_set, member_names, member_names_count)
    })
}

/// Exported but undeclared upstream; always -1.
#[no_mangle]
pub unsafe extern "C" fn SP_query_groups(_mbox: mailbox, _max_groups: c_int, _groups: *mut *mut c_char) -> c_int {
    -1
}

/// Exported but undeclared upstream; always -1.
#[no_mangle]
pub unsafe extern "C" fn SP_query_members(
    _mbox: mailbox,
    _group: *mut c_char,
    _max_members: c_int,
    _members: *mut *mut c_char,
) -> c_int {
    -1
}

#[no_mangle]
pub unsafe extern "C" fn SP_strerror(error: c_int) -> *const c_char {
    #[allow(clippy::manual_c_str_literals)] // MSRV 1.75
    guard(b"Unrecognized error.\0".as_ptr() as *const c_char, || strerror_c(error))
}

#[no_mangle]
pub unsafe extern "C" fn SP_error(error: c_int) {
    guard_void(|| spread_client::diag::print(&format!("SP_error: ({}) {}\n", error, strerror(error))))
}

/// The `SP_strerror` text as a static NUL-terminated C string.
fn strerror_c(code: c_int) -> *const c_char {
    concat_cstr(strerror(code))
}

/// Interned NUL-terminated copies of the static strerror texts.
fn concat_cstr(s: &'static str) -> *const c_char {
    use std::collections::HashMap;
    use std::ffi::CString;
    use std::sync::{Mutex, OnceLock};
    static TABLE: OnceLock<Mutex<HashMap<&'static str, &'static std::ffi::CStr>>> = OnceLock::new();
    let t = TABLE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
    let c = t.entry(s).or_insert_with(|| Box::leak(CString::new(s).unwrap_or_default().into_boxed_c_str()));
    c.as_ptr()
}
