//! An FL client on another build of the library, loaded with its own SP
//! layer, and FL clients on ours (linked in) in one group: joins, leaves,
//! flushes, vulnerable and unicast traffic in both directions. Both sides must
//! install the same views and decode each other's FL trailers.
//!
//! * the original 5.0.1 (`$SPREAD_REF_PREFIX/lib/libspread.so.3`), on our
//!   daemon and then on the original daemon (`$SPREAD_REF_PREFIX/sbin/spread`);
//!   skipped with a message when `SPREAD_REF_PREFIX` is not set;
//! * our own built C library (`build/lib/libspread.so.3`, or
//!   `$RSPREAD_LIB_DIR`), which checks the exported FL symbols end to end;
//!   skipped with a message when it has not been built.
//!
//! Ports 24100–24129.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use compat_tests::daemon::Daemon;
use compat_tests::frames;
use spread_ffi::fl;

type RecvFn = unsafe extern "C" fn(
    c_int,
    *mut c_int,
    *mut c_char,
    c_int,
    *mut c_int,
    *mut [c_char; 32],
    *mut i16,
    *mut c_int,
    c_int,
    *mut c_char,
    *mut c_int,
) -> c_int;

struct FlApi {
    origin: &'static str,
    lib_init: unsafe extern "C" fn() -> c_int,
    connect: unsafe extern "C" fn(*const c_char, *const c_char, c_int, *mut c_int, *mut c_char) -> c_int,
    disconnect: unsafe extern "C" fn(c_int) -> c_int,
    join: unsafe extern "C" fn(c_int, *const c_char) -> c_int,
    leave: unsafe extern "C" fn(c_int, *const c_char) -> c_int,
    flush: unsafe extern "C" fn(c_int, *const c_char) -> c_int,
    multicast: unsafe extern "C" fn(c_int, c_int, *const c_char, i16, c_int, *const c_char) -> c_int,
    unicast: unsafe extern "C" fn(c_int, c_int, *const c_char, *const c_char, i16, c_int, *const c_char) -> c_int,
    receive: RecvFn,
}

fn ours() -> FlApi {
    FlApi {
        origin: "ours",
        lib_init: fl::FL_lib_init,
        connect: fl::FL_connect,
        disconnect: fl::FL_disconnect,
        join: fl::FL_join,
        leave: fl::FL_leave,
        flush: fl::FL_flush,
        multicast: fl::FL_multicast,
        unicast: fl::FL_unicast,
        receive: fl::FL_receive,
    }
}

fn load(path: &std::path::Path, origin: &'static str) -> FlApi {
    let c = CString::new(path.display().to_string()).unwrap();
    // SAFETY: dlopen with a valid path; DEEPBIND keeps the original library on
    // its own SP_* functions.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_DEEPBIND) };
    if h.is_null() {
        // SAFETY: dlerror gives a C string or NULL.
        let e = unsafe { libc::dlerror() };
        let msg = if e.is_null() { String::new() } else { unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned() };
        panic!("dlopen {}: {msg}", path.display());
    }
    unsafe fn sym<T: Copy>(h: *mut c_void, name: &str) -> T {
        let n = CString::new(name).unwrap();
        let p = libc::dlsym(h, n.as_ptr());
        assert!(!p.is_null(), "{name} missing from the loaded library");
        std::mem::transmute_copy::<*mut c_void, T>(&p)
    }
    // SAFETY: each symbol has exactly the fl.h prototype the field spells out.
    unsafe {
        FlApi {
            origin,
            lib_init: sym(h, "FL_lib_init"),
            connect: sym(h, "FL_connect"),
            disconnect: sym(h, "FL_disconnect"),
            join: sym(h, "FL_join"),
            leave: sym(h, "FL_leave"),
            flush: sym(h, "FL_flush"),
            multicast: sym(h, "FL_multicast"),
            unicast: sym(h, "FL_unicast"),
            receive: sym(h, "FL_receive"),
        }
    }
}

const GROUP: &str = "fli";
const FIFO: c_int = 0x04;
const AGREED: c_int = 0x10;
const DONT_BLOCK: c_int = 0x1000_0000;
const FLUSH_REQ: c_int = 0x2000_0000;
const REG_MEMB: c_int = 0x1000;
const TRANSITION: c_int = 0x2000;
const WOULD_BLOCK: c_int = -25;

fn cs(s: &str) -> CString {
    CString::new(s).unwrap()
}

#[derive(Debug, Clone)]
struct Data {
    sender: String,
    service: c_int,
    groups: Vec<String>,
    mess_type: i16,
    body: Vec<u8>,
}

struct Client<'a> {
    api: &'a FlApi,
    mbox: c_int,
    private: String,
    view: Option<([u8; 12], Vec<String>)>,
    views: Vec<([u8; 12], Vec<String>)>,
    data: Vec<Data>,
    flush_reqs: usize,
    in_group: bool,
}

impl<'a> Client<'a> {
    fn connect(api: &'a FlApi, port: u16, user: &str) -> Client<'a> {
        let d = cs(&format!("{port}@127.0.0.1"));
        let u = cs(user);
        let mut mbox = -1;
        let mut private = [0 as c_char; 32];
        // SAFETY: valid strings and buffers.
        let r = unsafe { (api.connect)(d.as_ptr(), u.as_ptr(), 0, &mut mbox, private.as_mut_ptr()) };
        assert_eq!(r, 1, "{}: FL_connect", api.origin);
        Client {
            api,
            mbox,
            private: frames::name_str(&private.map(|c| c as u8)),
            view: None,
            views: Vec::new(),
            data: Vec::new(),
            flush_reqs: 0,
            in_group: false,
        }
    }

    fn join(&mut self) {
        let g = cs(GROUP);
        // SAFETY: valid string.
        assert_eq!(unsafe { (self.api.join)(self.mbox, g.as_ptr()) }, 0);
        self.in_group = true;
    }

    fn leave(&mut self) {
        let g = cs(GROUP);
        // SAFETY: valid string.
        assert_eq!(unsafe { (self.api.leave)(self.mbox, g.as_ptr()) }, 0);
        self.in_group = false;
    }

    fn multicast(&self, svc: c_int, t: i16, body: &[u8]) {
        let g = cs(GROUP);
        // SAFETY: valid string and buffer.
        let r = unsafe {
            (self.api.multicast)(self.mbox, svc, g.as_ptr(), t, body.len() as c_int, body.as_ptr() as *const c_char)
        };
        assert_eq!(r, body.len() as c_int, "{}: FL_multicast", self.api.origin);
    }

    fn unicast(&self, to: &str, svc: c_int, t: i16, body: &[u8]) {
        let g = cs(GROUP);
        let mut r32 = [0 as c_char; 32];
        for (d, s) in r32.iter_mut().zip(to.bytes()) {
            *d = s as c_char;
        }
        // SAFETY: valid strings (the receiver in a full 32-byte buffer) and buffer.
        let r = unsafe {
            (self.api.unicast)(
                self.mbox,
                svc,
                g.as_ptr(),
                r32.as_ptr(),
                t,
                body.len() as c_int,
                body.as_ptr() as *const c_char,
            )
        };
        assert_eq!(r, body.len() as c_int, "{}: FL_unicast", self.api.origin);
    }

    /// Everything available now; flush requests answered at once.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            let mut svc = DONT_BLOCK;
            let mut sender = [0 as c_char; 32];
            let mut groups = [[0 as c_char; 32]; 16];
            let (mut ng, mut mt, mut em, mut more) = (0, 0i16, 0, 0);
            let mut body = vec![0u8; 4096];
            // SAFETY: buffers as announced.
            let ret = unsafe {
                (self.api.receive)(
                    self.mbox,
                    &mut svc,
                    sender.as_mut_ptr(),
                    16,
                    &mut ng,
                    groups.as_mut_ptr(),
                    &mut mt,
                    &mut em,
                    4096,
                    body.as_mut_ptr() as *mut c_char,
                    &mut more,
                )
            };
            if ret == WOULD_BLOCK {
                return;
            }
            assert!(ret >= 0, "{}: FL_receive {ret}", self.api.origin);
            let s = |n: &[c_char; 32]| frames::name_str(&n.map(|c| c as u8));
            let groups: Vec<String> = groups[..ng.clamp(0, 16) as usize].iter().map(s).collect();
            let body = body[..ret as usize].to_vec();
            if svc & FLUSH_REQ != 0 {
                self.flush_reqs += 1;
                let g = cs(GROUP);
                // SAFETY: valid string.
                assert_eq!(unsafe { (self.api.flush)(self.mbox, g.as_ptr()) }, 0, "{}: FL_flush", self.api.origin);
            } else if svc & TRANSITION != 0 {
            } else if svc & REG_MEMB != 0 {
                assert_eq!(body.len(), 16 + 32 * i32::from_ne_bytes(body[12..16].try_into().unwrap()) as usize);
                let gid: [u8; 12] = body[..12].try_into().unwrap();
                self.views.push((gid, groups.clone()));
                self.view = Some((gid, groups));
            } else if svc & 0x3f == 0 {
                self.view = None; // self-leave
            } else {
                self.data.push(Data { sender: s(&sender), service: svc, groups, mess_type: mt, body });
            }
        }
        panic!("drain bound");
    }
}

fn pump(cs: &mut [&mut Client], what: &str, done: impl Fn(&[&mut Client]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..100_000 {
        for c in cs.iter_mut() {
            c.drain();
        }
        if done(cs) {
            return;
        }
        let now = Instant::now();
        assert!(now < deadline, "{what}: not reached within 30 s");
        let mut fds: Vec<libc::pollfd> =
            cs.iter().map(|c| libc::pollfd { fd: c.mbox, events: libc::POLLIN, revents: 0 }).collect();
        let ms = (deadline - now).as_millis().min(500) as c_int;
        // SAFETY: valid pollfd array.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms.max(1)) };
    }
    panic!("{what}: pump bound");
}

fn sees(c: &Client, members: &[&Client]) -> bool {
    let mut want: Vec<String> = members.iter().map(|m| m.private.clone()).collect();
    want.sort();
    c.view.as_ref().map(|v| v.1.clone()) == Some(want)
}

#[test]
fn other_fl_libraries_share_views_and_traffic_with_ours() {
    let our = ours();
    // SAFETY: no arguments (a repeated call only returns ILLEGAL_STATE).
    unsafe { (our.lib_init)() };
    let built = compat_tests::paths::c_lib_dir().join("libspread.so.3");
    if built.is_file() {
        let api = load(&built, "built libspread.so.3");
        // SAFETY: as above.
        unsafe { (api.lib_init)() };
        scenario(&api, &our, 24120);
    } else {
        eprintln!("fl_ref_interop: {} not built: skipped that part", built.display());
    }
    let Some(prefix) = std::env::var_os("SPREAD_REF_PREFIX").filter(|v| !v.is_empty()).map(PathBuf::from) else {
        eprintln!("fl_ref_interop: original part skipped: SPREAD_REF_PREFIX is not set (it must name an installed original Spread 5.0.1)");
        return;
    };
    let refapi = load(&prefix.join("lib").join("libspread.so.3"), "original");
    // SAFETY: as above.
    unsafe { (refapi.lib_init)() };
    scenario(&refapi, &our, 24100);
    // The same again on the original daemon, if the installation has one
    // (this binary runs this single test, so setting the variable is safe).
    let ref_daemon = prefix.join("sbin").join("spread");
    if ref_daemon.is_file() {
        std::env::set_var("RSPREAD_SPREAD_BIN", &ref_daemon);
        scenario(&refapi, &our, 24110);
    } else {
        eprintln!("fl_ref_interop: no {}: ran on our daemon only", ref_daemon.display());
    }
}

fn scenario(refapi: &FlApi, our: &FlApi, port: u16) {
    let d = Daemon::start_single("d1", port, "").unwrap_or_else(|e| panic!("daemon: {e}"));
    let mut r = Client::connect(refapi, d.port, "ra");
    let mut o = Client::connect(our, d.port, "ob");
    let mut o2 = Client::connect(our, d.port, "oc");

    r.join();
    pump(&mut [&mut r, &mut o], "original alone", |c| sees(c[0], &[&*c[0]]));
    o.join();
    pump(&mut [&mut r, &mut o], "original + ours", |c| sees(c[0], &[&*c[0], &*c[1]]) && sees(c[1], &[&*c[0], &*c[1]]));
    assert_eq!(r.flush_reqs, 1, "the original member was asked to flush");
    assert_eq!(r.views.last(), o.views.last(), "same view id and member list");

    // Traffic both ways right after the view: FIFO may be vulnerable.
    r.multicast(FIFO, 21, b"from-ref");
    o.multicast(FIFO, 22, b"from-ours");
    r.unicast(&o.private, FIFO, 23, b"uni-r2o");
    o.unicast(&r.private, AGREED, 24, b"uni-o2r");
    pump(&mut [&mut r, &mut o], "traffic", |c| c[0].data.len() >= 3 && c[1].data.len() >= 3);
    let find = |c: &Client, t: i16| {
        c.data.iter().find(|m| m.mess_type == t).cloned().unwrap_or_else(|| panic!("type {t} missing"))
    };
    assert_eq!((find(&o, 21).body, find(&o, 21).sender), (b"from-ref".to_vec(), r.private.clone()));
    assert_eq!((find(&r, 22).body, find(&r, 22).sender), (b"from-ours".to_vec(), o.private.clone()));
    let u = find(&o, 23);
    assert_eq!((u.body.as_slice(), u.service), (&b"uni-r2o"[..], 0x4000_0000 | FIFO));
    assert_eq!(u.groups, vec![o.private.clone(), GROUP.to_string()]);
    let u = find(&r, 24);
    assert_eq!((u.body.as_slice(), u.service), (&b"uni-o2r"[..], 0x4000_0000 | AGREED));
    assert_eq!(u.groups, vec![r.private.clone(), GROUP.to_string()]);

    // A second client of ours joins, the original's member leaves, then comes back.
    o2.join();
    pump(&mut [&mut r, &mut o, &mut o2], "three", |c| (0..3).all(|i| sees(c[i], &[&*c[0], &*c[1], &*c[2]])));
    r.leave();
    pump(&mut [&mut r, &mut o, &mut o2], "original left", |c| {
        c[0].view.is_none() && sees(c[1], &[&*c[1], &*c[2]]) && sees(c[2], &[&*c[1], &*c[2]])
    });
    r.join();
    o.multicast(FIFO, 25, b"during-join");
    pump(&mut [&mut r, &mut o, &mut o2], "original back", |c| (0..3).all(|i| sees(c[i], &[&*c[0], &*c[1], &*c[2]])));
    assert_eq!(r.views.last(), o.views.last());
    assert_eq!(o.views.last(), o2.views.last());
    // Our member leaves and the original sees it through flush.
    o2.leave();
    pump(&mut [&mut r, &mut o, &mut o2], "ours left", |c| {
        sees(c[0], &[&*c[0], &*c[1]]) && sees(c[1], &[&*c[0], &*c[1]])
    });
    assert_eq!(r.views.last(), o.views.last());
    for c in [&r, &o, &o2] {
        // SAFETY: plain call.
        assert_eq!(unsafe { (c.api.disconnect)(c.mbox) }, 0);
    }
    drop(d);
}
