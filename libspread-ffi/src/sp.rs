//! The `SP_*` C functions of libspread 5.0.1 (client spec §1.5): thin shells
//! that check pointers, run inside the panic guard and call `spread-client`.
//!
//! (Skeleton: every function has its final C signature; bodies are being
//! filled in.)

use std::os::raw::{c_char, c_int, c_void};

use spread_wire::consts::*;

use crate::guard::{guard, guard_void};
use crate::types::*;

/// Auth callback type: `int (*)(int fd, void *auth_data)`.
pub type AuthFn = unsafe extern "C" fn(c_int, *mut c_void) -> c_int;

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
    _auth_name: *const c_char,
    _auth_function: Option<AuthFn>,
    _auth_data: *mut c_void,
) -> c_int {
    guard(0, || 0)
}

#[no_mangle]
pub unsafe extern "C" fn SP_set_auth_methods(
    _num_methods: c_int,
    _auth_name: *const *const c_char,
    _auth_function: *const Option<AuthFn>,
    _auth_data: *const *mut c_void,
) -> c_int {
    guard(0, || 0)
}

#[no_mangle]
pub unsafe extern "C" fn SP_connect(
    _spread_name: *const c_char,
    _private_name: *const c_char,
    _priority: c_int,
    _group_membership: c_int,
    _mbox: *mut mailbox,
    _private_group: *mut c_char,
) -> c_int {
    guard(SP_BUG, || COULD_NOT_CONNECT)
}

#[no_mangle]
pub unsafe extern "C" fn SP_connect_timeout(
    _spread_name: *const c_char,
    _private_name: *const c_char,
    _priority: c_int,
    _group_membership: c_int,
    _mbox: *mut mailbox,
    _private_group: *mut c_char,
    _time_out: sp_time,
) -> c_int {
    guard(SP_BUG, || COULD_NOT_CONNECT)
}

#[no_mangle]
pub unsafe extern "C" fn SP_disconnect(_mbox: mailbox) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_kill(_mbox: mailbox) {
    guard_void(|| {})
}

#[no_mangle]
pub unsafe extern "C" fn SP_join(_mbox: mailbox, _group: *const c_char) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_leave(_mbox: mailbox, _group: *const c_char) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_multicast(
    _mbox: mailbox,
    _service_type: service,
    _group: *const c_char,
    _mess_type: int16,
    _mess_len: c_int,
    _mess: *const c_char,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_multicast(
    _mbox: mailbox,
    _service_type: service,
    _group: *const c_char,
    _mess_type: int16,
    _scat_mess: *const scatter,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_multigroup_multicast(
    _mbox: mailbox,
    _service_type: service,
    _num_groups: c_int,
    _groups: *const [c_char; 32],
    _mess_type: int16,
    _mess_len: c_int,
    _mess: *const c_char,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_multigroup_scat_multicast(
    _mbox: mailbox,
    _service_type: service,
    _num_groups: c_int,
    _groups: *const [c_char; 32],
    _mess_type: int16,
    _scat_mess: *const scatter,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_receive(
    _mbox: mailbox,
    _service_type: *mut service,
    _sender: *mut c_char,
    _max_groups: c_int,
    _num_groups: *mut c_int,
    _groups: *mut [c_char; 32],
    _mess_type: *mut int16,
    _endian_mismatch: *mut c_int,
    _max_mess_len: c_int,
    _mess: *mut c_char,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_receive(
    _mbox: mailbox,
    _service_type: *mut service,
    _sender: *mut c_char,
    _max_groups: c_int,
    _num_groups: *mut c_int,
    _groups: *mut [c_char; 32],
    _mess_type: *mut int16,
    _endian_mismatch: *mut c_int,
    _scat_mess: *mut scatter,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_poll(_mbox: mailbox) -> c_int {
    guard(SP_BUG, || ILLEGAL_SESSION)
}

#[no_mangle]
pub unsafe extern "C" fn SP_equal_group_ids(g1: group_id, g2: group_id) -> c_int {
    guard(0, || (g1.id == g2.id) as c_int)
}

#[no_mangle]
pub unsafe extern "C" fn SP_get_memb_info(
    _memb_mess: *const c_char,
    _service_type: service,
    _memb_info: *mut membership_info,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_MESSAGE)
}

#[no_mangle]
pub unsafe extern "C" fn SP_get_vs_sets_info(
    _memb_mess: *const c_char,
    _vs_sets: *mut vs_set_info,
    _num_vs_sets: c_int,
    _my_vs_set_index: *mut u32,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_MESSAGE)
}

#[no_mangle]
pub unsafe extern "C" fn SP_get_vs_set_members(
    _memb_mess: *const c_char,
    _vs_set: *const vs_set_info,
    _member_names: *mut [c_char; 32],
    _member_names_count: c_int,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_MESSAGE)
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_get_memb_info(
    _memb_mess_scat: *const scatter,
    _service_type: service,
    _memb_info: *mut membership_info,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_MESSAGE)
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_get_vs_sets_info(
    _memb_mess_scat: *const scatter,
    _vs_sets: *mut vs_set_info,
    _num_vs_sets: c_int,
    _my_vs_set_index: *mut u32,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_MESSAGE)
}

#[no_mangle]
pub unsafe extern "C" fn SP_scat_get_vs_set_members(
    _memb_mess_scat: *const scatter,
    _vs_set: *const vs_set_info,
    _member_names: *mut [c_char; 32],
    _member_names_count: c_int,
) -> c_int {
    guard(SP_BUG, || ILLEGAL_MESSAGE)
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
    guard(b"Unrecognized error.\0".as_ptr() as *const c_char, || strerror_c(error))
}

#[no_mangle]
pub unsafe extern "C" fn SP_error(error: c_int) {
    guard_void(|| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "SP_error: ({}) {}\n", error, strerror(error));
        let _ = out.flush();
    })
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
