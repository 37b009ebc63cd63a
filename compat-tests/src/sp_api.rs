//! The `SP_*` functions under test as a table of C function pointers.
//!
//! By default the table points at `spread_ffi::sp` (our library linked into
//! the test). With `RSPREAD_SP_LIB=/path/libspread.so.3` it is filled by
//! `dlopen`/`dlsym` from that shared library instead, so the same tests can
//! run against a built C artifact (ours in `build/lib`, or a reference build
//! for cross-checking the tests themselves).
#![allow(clippy::too_many_arguments, clippy::type_complexity)]

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};

use spread_ffi::types::{group_id, mailbox, membership_info, scatter, service, sp_time, vs_set_info};

pub type Name = [c_char; 32];

pub struct Sp {
    pub connect: unsafe extern "C" fn(*const c_char, *const c_char, c_int, c_int, *mut mailbox, *mut c_char) -> c_int,
    pub connect_timeout:
        unsafe extern "C" fn(*const c_char, *const c_char, c_int, c_int, *mut mailbox, *mut c_char, sp_time) -> c_int,
    pub disconnect: unsafe extern "C" fn(mailbox) -> c_int,
    pub kill: unsafe extern "C" fn(mailbox),
    pub join: unsafe extern "C" fn(mailbox, *const c_char) -> c_int,
    pub leave: unsafe extern "C" fn(mailbox, *const c_char) -> c_int,
    pub multicast: unsafe extern "C" fn(mailbox, service, *const c_char, i16, c_int, *const c_char) -> c_int,
    pub multigroup_multicast:
        unsafe extern "C" fn(mailbox, service, c_int, *const Name, i16, c_int, *const c_char) -> c_int,
    pub scat_multicast: unsafe extern "C" fn(mailbox, service, *const c_char, i16, *const scatter) -> c_int,
    pub receive: unsafe extern "C" fn(
        mailbox,
        *mut service,
        *mut c_char,
        c_int,
        *mut c_int,
        *mut Name,
        *mut i16,
        *mut c_int,
        c_int,
        *mut c_char,
    ) -> c_int,
    pub poll: unsafe extern "C" fn(mailbox) -> c_int,
    pub get_memb_info: unsafe extern "C" fn(*const c_char, service, *mut membership_info) -> c_int,
    pub get_vs_sets_info: unsafe extern "C" fn(*const c_char, *mut vs_set_info, c_int, *mut u32) -> c_int,
    pub get_vs_set_members: unsafe extern "C" fn(*const c_char, *const vs_set_info, *mut Name, c_int) -> c_int,
    pub equal_group_ids: unsafe extern "C" fn(group_id, group_id) -> c_int,
    /// Where the functions come from (for messages).
    pub origin: String,
}

// SAFETY: the table holds only function pointers (and the origin text); the
// library handle of a dlopen'ed table is never closed.
unsafe impl Send for Sp {}
unsafe impl Sync for Sp {}

impl Sp {
    /// Our library, linked in (`spread_ffi::sp`).
    pub fn rust() -> Sp {
        use spread_ffi::sp;
        Sp {
            connect: sp::SP_connect,
            connect_timeout: sp::SP_connect_timeout,
            disconnect: sp::SP_disconnect,
            kill: sp::SP_kill,
            join: sp::SP_join,
            leave: sp::SP_leave,
            multicast: sp::SP_multicast,
            multigroup_multicast: sp::SP_multigroup_multicast,
            scat_multicast: sp::SP_scat_multicast,
            receive: sp::SP_receive,
            poll: sp::SP_poll,
            get_memb_info: sp::SP_get_memb_info,
            get_vs_sets_info: sp::SP_get_vs_sets_info,
            get_vs_set_members: sp::SP_get_vs_set_members,
            equal_group_ids: sp::SP_equal_group_ids,
            origin: "spread_ffi (linked)".into(),
        }
    }

    /// The functions of a shared library (never unloaded).
    pub fn dlopen(path: &str) -> Result<Sp, String> {
        let c = CString::new(path).map_err(|_| "path with NUL".to_string())?;
        // SAFETY: dlopen with a valid C string; RTLD_DEEPBIND keeps the
        // library bound to its own SP_* symbols, not to ours.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_DEEPBIND) };
        if h.is_null() {
            // SAFETY: dlerror returns a C string or NULL.
            let e = unsafe { libc::dlerror() };
            let msg = if e.is_null() {
                "unknown".into()
            } else {
                unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
            };
            return Err(format!("dlopen {path}: {msg}"));
        }
        unsafe fn sym<T: Copy>(h: *mut c_void, name: &str) -> Result<T, String> {
            let n = CString::new(name).unwrap_or_default();
            let p = libc::dlsym(h, n.as_ptr());
            if p.is_null() {
                return Err(format!("symbol {name} missing"));
            }
            assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
            Ok(std::mem::transmute_copy::<*mut c_void, T>(&p))
        }
        // SAFETY: each symbol is a function with exactly the C prototype of
        // sp_func.h, which the field types spell out.
        unsafe {
            Ok(Sp {
                connect: sym(h, "SP_connect")?,
                connect_timeout: sym(h, "SP_connect_timeout")?,
                disconnect: sym(h, "SP_disconnect")?,
                kill: sym(h, "SP_kill")?,
                join: sym(h, "SP_join")?,
                leave: sym(h, "SP_leave")?,
                multicast: sym(h, "SP_multicast")?,
                multigroup_multicast: sym(h, "SP_multigroup_multicast")?,
                scat_multicast: sym(h, "SP_scat_multicast")?,
                receive: sym(h, "SP_receive")?,
                poll: sym(h, "SP_poll")?,
                get_memb_info: sym(h, "SP_get_memb_info")?,
                get_vs_sets_info: sym(h, "SP_get_vs_sets_info")?,
                get_vs_set_members: sym(h, "SP_get_vs_set_members")?,
                equal_group_ids: sym(h, "SP_equal_group_ids")?,
                origin: path.to_string(),
            })
        }
    }

    /// `$RSPREAD_SP_LIB` if set, else [`Sp::rust`].
    pub fn from_env() -> Sp {
        match std::env::var("RSPREAD_SP_LIB") {
            Ok(p) if !p.is_empty() => Sp::dlopen(&p).unwrap_or_else(|e| panic!("RSPREAD_SP_LIB: {e}")),
            _ => Sp::rust(),
        }
    }
}

/// The process-wide table (one per test binary).
pub fn sp() -> &'static Sp {
    static SP: std::sync::OnceLock<Sp> = std::sync::OnceLock::new();
    SP.get_or_init(Sp::from_env)
}

fn cstr(s: &str) -> CString {
    CString::new(s.as_bytes().iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>()).unwrap_or_default()
}

/// Text of a 32-byte name buffer up to the first NUL.
pub fn name_text(n: &[c_char]) -> String {
    let b: Vec<u8> = n.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&b).into_owned()
}

/// A 32-byte name buffer holding `s` (NUL-padded, cut at 31).
pub fn name_buf(s: &str) -> Name {
    let mut n: Name = [0; 32];
    for (i, b) in s.bytes().take(31).enumerate() {
        n[i] = b as c_char;
    }
    n
}

/// Everything `SP_receive` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub ret: i32,
    pub service_type: i32,
    pub sender: String,
    pub num_groups: i32,
    pub groups: Vec<String>,
    pub mess_type: i16,
    pub endian_mismatch: i32,
    /// The body bytes (the first `max(ret, 0)` bytes of the buffer).
    pub body: Vec<u8>,
    /// The whole receive buffer (membership parsing uses it).
    pub buf: Vec<u8>,
}

/// `SP_get_memb_info` results.
#[derive(Clone, Debug)]
pub struct MembInfo {
    pub ret: i32,
    pub gid: [i32; 3],
    pub changed_member: String,
    pub num_vs_sets: u32,
    pub my_vs_set: (u32, u32),
}

impl Sp {
    /// `SP_connect`: (return code, mailbox, private group).
    pub fn sp_connect(
        &self,
        spread_name: &str,
        name: Option<&str>,
        priority: i32,
        membership: bool,
    ) -> (i32, mailbox, String) {
        let sn = cstr(spread_name);
        let pn = name.map(cstr);
        let mut mbox: mailbox = -1;
        let mut pg = [0 as c_char; 64];
        // SAFETY: valid C strings, out-pointers to live locals (pg ≥ 32 bytes).
        let r = unsafe {
            (self.connect)(
                sn.as_ptr(),
                pn.as_ref().map(|c| c.as_ptr()).unwrap_or(std::ptr::null()),
                priority,
                membership as c_int,
                &mut mbox,
                pg.as_mut_ptr(),
            )
        };
        (r, mbox, name_text(&pg))
    }

    /// `SP_connect_timeout`.
    pub fn sp_connect_timeout(
        &self,
        spread_name: &str,
        name: &str,
        membership: bool,
        t: sp_time,
    ) -> (i32, mailbox, String) {
        let sn = cstr(spread_name);
        let pn = cstr(name);
        let mut mbox: mailbox = -1;
        let mut pg = [0 as c_char; 64];
        // SAFETY: as in sp_connect.
        let r = unsafe {
            (self.connect_timeout)(sn.as_ptr(), pn.as_ptr(), 0, membership as c_int, &mut mbox, pg.as_mut_ptr(), t)
        };
        (r, mbox, name_text(&pg))
    }

    pub fn sp_join(&self, mbox: mailbox, group: &str) -> i32 {
        let g = cstr(group);
        // SAFETY: valid C string.
        unsafe { (self.join)(mbox, g.as_ptr()) }
    }

    pub fn sp_leave(&self, mbox: mailbox, group: &str) -> i32 {
        let g = cstr(group);
        // SAFETY: valid C string.
        unsafe { (self.leave)(mbox, g.as_ptr()) }
    }

    pub fn sp_multicast(&self, mbox: mailbox, service_type: i32, group: &str, mess_type: i16, body: &[u8]) -> i32 {
        let g = cstr(group);
        // SAFETY: the body pointer is valid for body.len() bytes.
        unsafe {
            (self.multicast)(
                mbox,
                service_type,
                g.as_ptr(),
                mess_type,
                body.len() as c_int,
                body.as_ptr() as *const c_char,
            )
        }
    }

    pub fn sp_multigroup_multicast(
        &self,
        mbox: mailbox,
        service_type: i32,
        groups: &[&str],
        mess_type: i16,
        body: &[u8],
    ) -> i32 {
        let names: Vec<Name> = groups.iter().map(|g| name_buf(g)).collect();
        // SAFETY: `names` holds groups.len() 32-byte entries.
        unsafe {
            (self.multigroup_multicast)(
                mbox,
                service_type,
                names.len() as c_int,
                names.as_ptr(),
                mess_type,
                body.len() as c_int,
                body.as_ptr() as *const c_char,
            )
        }
    }

    /// `SP_receive` with `max_groups` group slots and a `max_len` buffer;
    /// `service_in` is the input value of `*service_type` (e.g. DROP_RECV).
    pub fn sp_receive(&self, mbox: mailbox, service_in: i32, max_groups: usize, max_len: usize) -> Received {
        let mut st: service = service_in;
        let mut sender = [0 as c_char; 32];
        let mut ng: c_int = 0;
        let mut groups: Vec<Name> = vec![[0; 32]; max_groups.max(1)];
        let mut mt: i16 = 0;
        let mut em: c_int = 0;
        let mut buf = vec![0u8; max_len.max(1)];
        // SAFETY: every out-pointer is live and sized as announced.
        let r = unsafe {
            (self.receive)(
                mbox,
                &mut st,
                sender.as_mut_ptr(),
                max_groups as c_int,
                &mut ng,
                groups.as_mut_ptr(),
                &mut mt,
                &mut em,
                max_len as c_int,
                buf.as_mut_ptr() as *mut c_char,
            )
        };
        let shown = if ng > 0 {
            (ng as usize).min(max_groups)
        } else if ng < 0 && r >= 0 {
            ((-ng) as usize).min(max_groups)
        } else {
            0
        };
        let gs = groups[..shown.min(groups.len())].iter().map(|g| name_text(g)).collect();
        let body = if r > 0 { buf[..(r as usize).min(max_len)].to_vec() } else { Vec::new() };
        Received {
            ret: r,
            service_type: st,
            sender: name_text(&sender),
            num_groups: ng,
            groups: gs,
            mess_type: mt,
            endian_mismatch: em,
            body,
            buf,
        }
    }

    pub fn sp_poll(&self, mbox: mailbox) -> i32 {
        // SAFETY: plain value arguments.
        unsafe { (self.poll)(mbox) }
    }

    pub fn sp_disconnect(&self, mbox: mailbox) -> i32 {
        // SAFETY: plain value arguments.
        unsafe { (self.disconnect)(mbox) }
    }

    pub fn sp_kill(&self, mbox: mailbox) {
        // SAFETY: plain value arguments.
        unsafe { (self.kill)(mbox) }
    }

    /// `SP_get_memb_info` on a received membership body.
    pub fn memb_info(&self, body: &[u8], service_type: i32) -> MembInfo {
        let mut mi = membership_info {
            gid: group_id::default(),
            changed_member: [0; 32],
            num_vs_sets: 0,
            my_vs_set: vs_set_info::default(),
        };
        // SAFETY: `body` is the caller's receive buffer (at least the body).
        let r = unsafe { (self.get_memb_info)(body.as_ptr() as *const c_char, service_type, &mut mi) };
        MembInfo {
            ret: r,
            gid: mi.gid.id,
            changed_member: name_text(&mi.changed_member),
            num_vs_sets: mi.num_vs_sets,
            my_vs_set: (mi.my_vs_set.num_members, mi.my_vs_set.members_offset),
        }
    }

    /// `SP_get_vs_sets_info` with room for `cap` sets: (ret, my index, sets).
    pub fn vs_sets(&self, body: &[u8], cap: usize) -> (i32, u32, Vec<vs_set_info>) {
        let mut sets = vec![vs_set_info::default(); cap.max(1)];
        let mut my: u32 = u32::MAX;
        // SAFETY: `sets` has `cap` entries.
        let r = unsafe {
            (self.get_vs_sets_info)(body.as_ptr() as *const c_char, sets.as_mut_ptr(), cap as c_int, &mut my)
        };
        let n = if r > 0 { (r as usize).min(cap) } else { 0 };
        sets.truncate(n);
        (r, my, sets)
    }

    /// `SP_get_vs_set_members` with room for `cap` names.
    pub fn vs_members(&self, body: &[u8], set: &vs_set_info, cap: usize) -> (i32, Vec<String>) {
        let mut names: Vec<Name> = vec![[0; 32]; cap.max(1)];
        // SAFETY: `names` has `cap` entries.
        let r =
            unsafe { (self.get_vs_set_members)(body.as_ptr() as *const c_char, set, names.as_mut_ptr(), cap as c_int) };
        let n = if r > 0 { (r as usize).min(cap) } else { 0 };
        (r, names[..n].iter().map(|x| name_text(x)).collect())
    }
}

impl Sp {
    /// `SP_receive` that first waits (bounded) until the mailbox is readable;
    /// `None` if nothing arrived before `deadline`. (The mailbox is the
    /// socket fd.)
    pub fn sp_receive_by(
        &self,
        mbox: mailbox,
        deadline: std::time::Instant,
        max_groups: usize,
        max_len: usize,
    ) -> Option<Received> {
        if !crate::net::poll_readable(mbox, deadline) {
            return None;
        }
        Some(self.sp_receive(mbox, 0, max_groups, max_len))
    }
}
