//! Differential test of the Flush layer: the same scripted fake daemon
//! stream and the same sequence of FL calls are played to the original 5.0.1
//! library (`$SPREAD_REF_PREFIX/lib/libspread.so.3`) and to ours; every return
//! value, every output field of every FL_receive (output variables are
//! pre-filled with sentinels, so "left untouched" is compared too) and the
//! complete byte stream each client sent must be identical.
//!
//! The script covers automatic and explicit flushes, a cascaded join, a
//! message from a not-yet-installed member, vulnerable messages both ways,
//! short buffers with and without DROP_RECV, a leave with its transitional
//! signal, calls refused in each state, and the self-leave.
//!
//! Skipped (with a message) when `SPREAD_REF_PREFIX` is not set. Debugging:
//! `FL_DIFF_DUMP=1` prints the original's records and frames,
//! `FL_DIFF_TRACE=1` prints each record as it happens, `FL_DIFF_ONLY=ours` /
//! `orig` runs one side only.
//!
//! Ports 24140–24149.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use compat_tests::frames::{self, name32};
use compat_tests::hex;
use compat_tests::net::{CloseSeen, Conn, Listener};
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

#[derive(Clone, Copy)]
struct FlApi {
    lib_init: unsafe extern "C" fn() -> c_int,
    connect: unsafe extern "C" fn(*const c_char, *const c_char, c_int, *mut c_int, *mut c_char) -> c_int,
    disconnect: unsafe extern "C" fn(c_int) -> c_int,
    join: unsafe extern "C" fn(c_int, *const c_char) -> c_int,
    leave: unsafe extern "C" fn(c_int, *const c_char) -> c_int,
    flush: unsafe extern "C" fn(c_int, *const c_char) -> c_int,
    multicast: unsafe extern "C" fn(c_int, c_int, *const c_char, i16, c_int, *const c_char) -> c_int,
    unicast: unsafe extern "C" fn(c_int, c_int, *const c_char, *const c_char, i16, c_int, *const c_char) -> c_int,
    subgroupcast: unsafe extern "C" fn(
        c_int,
        c_int,
        *const c_char,
        c_int,
        *const [c_char; 32],
        i16,
        c_int,
        *const c_char,
    ) -> c_int,
    receive: RecvFn,
    more_msgs: unsafe extern "C" fn(c_int) -> c_int,
}

fn ours() -> FlApi {
    FlApi {
        lib_init: fl::FL_lib_init,
        connect: fl::FL_connect,
        disconnect: fl::FL_disconnect,
        join: fl::FL_join,
        leave: fl::FL_leave,
        flush: fl::FL_flush,
        multicast: fl::FL_multicast,
        unicast: fl::FL_unicast,
        subgroupcast: fl::FL_subgroupcast,
        receive: fl::FL_receive,
        more_msgs: fl::FL_more_msgs,
    }
}

fn load(path: &Path) -> FlApi {
    let c = CString::new(path.display().to_string()).unwrap();
    // SAFETY: dlopen with a valid path; DEEPBIND keeps the library on its own SP_*.
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
        assert!(!p.is_null(), "{name} missing");
        std::mem::transmute_copy::<*mut c_void, T>(&p)
    }
    // SAFETY: each symbol has the fl.h prototype the field spells out.
    unsafe {
        FlApi {
            lib_init: sym(h, "FL_lib_init"),
            connect: sym(h, "FL_connect"),
            disconnect: sym(h, "FL_disconnect"),
            join: sym(h, "FL_join"),
            leave: sym(h, "FL_leave"),
            flush: sym(h, "FL_flush"),
            multicast: sym(h, "FL_multicast"),
            unicast: sym(h, "FL_unicast"),
            subgroupcast: sym(h, "FL_subgroupcast"),
            receive: sym(h, "FL_receive"),
            more_msgs: sym(h, "FL_more_msgs"),
        }
    }
}

const FIFO: u32 = 0x04;
const AGREED: u32 = 0x10;
const SUBGROUP: u32 = 0x4000_0000;
const DROP_RECV: c_int = 0x0100_0000;
const FLUSH_OK: i16 = -32768;
const FLUSH_RECV: i16 = -32767;
const VULNERABLE: i16 = -32766;
const FA: &str = "#fa#localhost";
const FB: &str = "#fb#localhost";
const FC: &str = "#fc#localhost";

fn gid(index: u32) -> Vec<u8> {
    let mut v = hex::decode("2697c51ce5f8026b").unwrap();
    v.extend_from_slice(&index.to_le_bytes());
    v
}

fn memb(cause: u32, members: &[&str], gid: &[u8], changed: &str) -> Vec<u8> {
    let mut body = gid.to_vec();
    for v in [1u32, 0, 1] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    body.extend_from_slice(&name32(changed.as_bytes()));
    let mut f = frames::raw_header(
        0x1000 | cause | frames::MARKER,
        b"fg",
        members.len() as u32,
        frames::MARKER,
        body.len() as u32,
    );
    for m in members {
        f.extend_from_slice(&name32(m.as_bytes()));
    }
    f.extend_from_slice(&body);
    f
}

fn data(service: u32, sender: &str, groups: &[&str], mess_type: i16, body: &[u8]) -> Vec<u8> {
    let g: Vec<&[u8]> = groups.iter().map(|s| s.as_bytes()).collect();
    frames::message(service, sender.as_bytes(), &g, mess_type, body)
}

fn vulnerable_body(user: &[u8], t: i16, gid: &[u8]) -> Vec<u8> {
    let mut b = user.to_vec();
    b.extend_from_slice(&t.to_le_bytes());
    b.extend_from_slice(gid);
    b
}

/// One FL_receive: the buffers' sizes and the input service.
#[derive(Clone, Copy)]
struct Rx {
    service_in: c_int,
    max_groups: c_int,
    len: c_int,
}

const BIG: Rx = Rx { service_in: 0, max_groups: 8, len: 512 };

enum Step {
    Deliver(Vec<u8>),
    Join,
    Leave,
    Flush,
    Multicast(u32, i16, &'static [u8]),
    Unicast(&'static str, u32, i16, &'static [u8]),
    Subgroupcast(Vec<&'static str>, u32, i16, &'static [u8]),
    MoreMsgs,
    Receive(Rx),
}

fn script_basic() -> Vec<Step> {
    use Step::*;
    // what the daemon hands back to fa of its own vulnerable sends
    let echo_pre = data(FIFO, FA, &["fg"], VULNERABLE, &vulnerable_body(b"pre", 5, &gid(1)));
    let echo_in_v2 = data(FIFO, FA, &["fg"], VULNERABLE, &vulnerable_body(b"in-v2", 6, &gid(2)));
    let mut uni_body = b"0123456789abcdefghij".to_vec();
    uni_body.extend_from_slice(&name32(b"fg"));
    let uni = data(FIFO | SUBGROUP, FC, &[FA], 9, &uni_body);
    let v3 = data(FIFO, FB, &["fg"], VULNERABLE, &vulnerable_body(b"v3", 7, &gid(3)));
    let self_leave = frames::raw_header(0x200 | frames::MARKER, b"fg", 0, frames::MARKER, 0);
    let tiny = Rx { service_in: 0, max_groups: 1, len: 5 };
    vec![
        Join,
        Join, // accepted again: the group's state appears only with its first membership
        Deliver(memb(0x100, &[FA], &gid(1), FA)),
        Deliver(data(FIFO, FA, &["fg"], FLUSH_OK, &gid(1))),
        Receive(BIG), // view {fa}
        Deliver(data(FIFO, FA, &["fg"], FLUSH_RECV, &gid(1))),
        Deliver(memb(0x100, &[FA, FB], &gid(2), FB)),
        Deliver(data(FIFO, FB, &["fg"], FLUSH_OK, &gid(2))),
        Deliver(data(AGREED, FB, &["fg"], 4, b"early")), // fb not in fa's view yet: dropped
        Receive(BIG),                                    // FLUSH_REQ
        Multicast(FIFO, 5, b"pre"),                      // vulnerable (AUTHORIZE), tagged with view 1
        Flush,
        Flush,                      // refused: already flushed
        Multicast(AGREED, 1, b"x"), // refused in AGREE
        Deliver(echo_pre),
        Deliver(memb(0x100, &[FA, FB, FC], &gid(3), FC)), // cascade
        Deliver(data(FIFO, FC, &["fg"], FLUSH_OK, &gid(3))),
        Deliver(data(FIFO, FA, &["fg"], FLUSH_OK, &gid(2))),
        Receive(BIG), // fa's own "pre", delivered in view 1
        MoreMsgs,
        Receive(BIG),                      // view {fa, fb}; the cascade's FLUSH_REQ queued behind it
        Multicast(FIFO, 6, b"in-v2"),      // vulnerable (AUTHORIZE)
        Multicast(AGREED, -32766, b"bad"), // reserved type
        Multicast(0x2000_0004, 1, b"bad"), // reserved service bit
        Unicast(FC, FIFO, 1, b"no"),       // fc is not in the current FL view
        Flush,                             // answers the request before reading it
        Deliver(echo_in_v2),
        Deliver(data(FIFO, FB, &["fg"], FLUSH_OK, &gid(3))),
        Deliver(data(FIFO, FA, &["fg"], FLUSH_OK, &gid(3))),
        Receive(BIG),                  // the queued FLUSH_REQ
        Receive(BIG),                  // fa's own in-v2, in view 2
        Unicast(FB, FIFO, 8, b"no"),   // refused: AGREE until view 3 is read
        Receive(BIG),                  // view {fa, fb, fc}
        Unicast(FB, FIFO, 8, b"to-b"), // vulnerable unicast (VERIFY)
        Subgroupcast(vec![FB, FC], AGREED, 2, b"sub"),
        Deliver(v3),
        Deliver(uni),
        Receive(BIG),                                  // fb's vulnerable v3
        Receive(tiny),                                 // groups too short for the reference group too
        Receive(Rx { max_groups: 2, ..tiny }),         // body too short
        Receive(Rx { service_in: DROP_RECV, ..tiny }), // DROP_RECV: truncated
        Deliver(memb(0x200, &[FA, FC], &gid(4), FB)),  // fb left
        Receive(BIG),                                  // FLUSH_REQ
        MoreMsgs,                                      // the transitional signal is queued
        Receive(Rx { max_groups: 0, len: 0, ..BIG }),  // and needs no room
        Leave,
        Leave,                      // refused: already leaving
        Flush,                      // refused: leaving
        Multicast(AGREED, 1, b"x"), // refused: leaving
        Deliver(self_leave),
        Receive(BIG), // self-leave
        Join,         // allowed again
    ]
}

// Note: no network (merge/partition) memberships here. The original 5.0.1 FL
// crashes (SIGSEGV) on every CAUSED_BY_NETWORK membership: when computing who
// left it erases names from a table keyed by name *pointers*, passing a name
// where a pointer to one is expected. Ours handles them (unit tests in
// libspread-ffi/src/fl/tests.rs).

fn script_collapse_foreign_order_held() -> Vec<Step> {
    use Step::*;
    let tiny = Rx { service_in: 0, max_groups: 1, len: 5 };
    let sp_trans = {
        let mut f = frames::raw_header(0x2000 | frames::MARKER, b"fg", 0, frames::MARKER, 12);
        f.extend_from_slice(&gid(5));
        f
    };
    // a vulnerable unicast from a big-endian fb: hint and trailer in its order
    let be = {
        let mut f = frames::raw_header(0xc000_0084, FB.as_bytes(), 1, 0x0002_8000, 2 + 2 + 12 + 32);
        f.extend_from_slice(&name32(FA.as_bytes()));
        f.extend_from_slice(b"be");
        f.extend_from_slice(&[0x00, 0x0b]);
        f.extend_from_slice(&hex::decode("1cc597266b02f8e500000003").unwrap());
        f.extend_from_slice(&name32(b"fg"));
        f
    };
    let self_leave = frames::raw_header(0x200 | frames::MARKER, b"fg", 0, frames::MARKER, 0);
    vec![
        Join,
        Deliver(memb(0x100, &[FA], &gid(1), FA)),
        Deliver(data(FIFO, FA, &["fg"], FLUSH_OK, &gid(1))),
        Receive(BIG), // view {fa}
        Deliver(data(FIFO, FA, &["fg"], FLUSH_RECV, &gid(1))),
        Deliver(memb(0x100, &[FA, FB], &gid(2), FB)),
        Deliver(data(FIFO, FB, &["fg"], FLUSH_OK, &gid(2))),
        Receive(BIG), // FLUSH_REQ
        Flush,
        Deliver(data(FIFO, FA, &["fg"], FLUSH_OK, &gid(2))),
        Receive(BIG), // view {fa, fb}
        Deliver(memb(0x100, &[FA, FB, FC], &gid(3), FC)),
        Deliver(data(FIFO, FB, &["fg"], FLUSH_OK, &gid(3))),
        Deliver(data(FIFO, FC, &["fg"], FLUSH_OK, &gid(3))),
        Receive(BIG), // FLUSH_REQ (still in VERIFY of view 2)
        Flush,
        Deliver(data(FIFO, FA, &["fg"], FLUSH_OK, &gid(3))),
        Receive(BIG), // view {fa, fb, fc}
        Deliver(data(FIFO, FB, &["fg"], FLUSH_RECV, &gid(3))),
        Deliver(data(FIFO, FA, &["fg"], FLUSH_RECV, &gid(3))),
        Deliver(data(FIFO, FC, &["fg"], FLUSH_RECV, &gid(3))),
        Deliver(data(AGREED, "#zz#localhost", &["fg"], 3, b"stranger")), // not a member: dropped
        Deliver(data(AGREED, "#zz#localhost", &[FA], 3, b"private")),    // to my private group
        Receive(BIG),
        Deliver(be),
        Receive(BIG), // decoded: type 11, endian_mismatch 1
        // fc leaves; before fa flushes, fb disconnects without flushing
        Deliver(memb(0x200, &[FA, FB], &gid(4), FC)),
        Receive(BIG), // FLUSH_REQ
        Receive(BIG), // transitional signal
        Deliver(memb(0x400, &[FA], &gid(5), FB)),
        Flush, // answers the leave (fa has not read the disconnect yet)
        Deliver(data(FIFO, FA, &["fg"], FLUSH_OK, &gid(4))),
        Deliver(data(FIFO, FA, &["fg"], FLUSH_OK, &gid(5))),
        Receive(BIG), // collapsed into one (network) view {fa}
        MoreMsgs,
        Deliver(data(FIFO, FA, &["fg"], FLUSH_RECV, &gid(5))),
        // fb again; an SP transitional message while the change is pending
        Deliver(memb(0x100, &[FA, FB], &gid(6), FB)),
        Deliver(sp_trans),
        Deliver(data(FIFO, FB, &["fg"], FLUSH_OK, &gid(6))),
        Deliver(data(FIFO, FB, &["fg"], VULNERABLE, &vulnerable_body(b"held-msg", 12, &gid(6)))),
        Receive(BIG), // FLUSH_REQ
        Flush,
        Deliver(data(FIFO, FA, &["fg"], FLUSH_OK, &gid(6))),
        Receive(BIG), // transitional signal
        Receive(BIG), // view {fa, fb}; the held message queued behind it
        MoreMsgs,
        Receive(tiny),                         // queued and too short: stays
        Receive(Rx { max_groups: 0, ..tiny }), // still there
        MoreMsgs,
        Receive(Rx { service_in: DROP_RECV, ..tiny }), // DROP_RECV: truncated, consumed
        MoreMsgs,
        Leave,
        Deliver(self_leave),
        Receive(BIG),
    ]
}

/// Everything observable from one run.
#[derive(Debug, PartialEq, Eq)]
enum Rec {
    Ret(&'static str, c_int),
    Got {
        ret: c_int,
        service: c_int,
        sender: Vec<u8>,
        num_groups: c_int,
        groups: Vec<Vec<u8>>,
        mess_type: i16,
        endian: c_int,
        body: Vec<u8>,
        more: c_int,
    },
}

fn receive(api: FlApi, mbox: c_int, rx: Rx) -> Rec {
    let (tx, rr) = mpsc::channel();
    thread::spawn(move || {
        let mut svc = rx.service_in;
        let mut sender = [0x7e as c_char; 32];
        let mut groups = [[0x7e as c_char; 32]; 8];
        let (mut ng, mut mt, mut em, mut more) = (777, 777i16, 777, 777);
        let mut body = vec![0xeeu8; rx.len as usize];
        // SAFETY: buffers as announced (max_groups <= 8).
        let ret = unsafe {
            (api.receive)(
                mbox,
                &mut svc,
                sender.as_mut_ptr(),
                rx.max_groups,
                &mut ng,
                groups.as_mut_ptr(),
                &mut mt,
                &mut em,
                rx.len,
                body.as_mut_ptr() as *mut c_char,
                &mut more,
            )
        };
        let shown_groups = if ret >= 0 { ng.clamp(0, rx.max_groups) } else { rx.max_groups } as usize;
        let shown_body = if ret >= 0 { ret as usize } else { rx.len as usize };
        let _ = tx.send(Rec::Got {
            ret,
            service: svc,
            sender: sender.map(|c| c as u8).to_vec(),
            num_groups: ng,
            groups: groups[..shown_groups].iter().map(|g| g.map(|c| c as u8).to_vec()).collect(),
            mess_type: mt,
            endian: em,
            body: body[..shown_body.min(body.len())].to_vec(),
            more,
        });
    });
    rr.recv_timeout(Duration::from_secs(20))
        .expect("FL_receive returned (a library waiting for a message the script never sends?)")
}

/// Plays the script to one library; returns its records and its byte stream.
fn run(api: FlApi, port: u16, script: fn() -> Vec<Step>) -> (Vec<Rec>, Vec<u8>) {
    // SAFETY: no arguments.
    unsafe { (api.lib_init)() };
    let l = Listener::tcp(port).unwrap_or_else(|e| panic!("bind {port}: {e}"));
    let server = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut c = l.accept_by(deadline).expect("client connects");
        let req = c.read_exact_by(5, deadline).expect("request");
        c.read_exact_by(req[4] as usize, deadline).expect("name");
        c.write_all(b"\x05NULL ").unwrap();
        c.read_exact_by(90, deadline).expect("auth");
        let mut acc = vec![1, 5, 0, 1, FA.len() as u8];
        acc.extend_from_slice(FA.as_bytes());
        c.write_all(&acc).unwrap();
        c
    });
    let d = CString::new(format!("{port}@127.0.0.1")).unwrap();
    let u = CString::new("fa").unwrap();
    let mut mbox = -1;
    let mut private = [0 as c_char; 32];
    // SAFETY: valid strings and buffers.
    assert_eq!(unsafe { (api.connect)(d.as_ptr(), u.as_ptr(), 0, &mut mbox, private.as_mut_ptr()) }, 1);
    let mut fake: Conn = server.join().expect("handshake");
    let g = CString::new("fg").unwrap();
    let mut recs = Vec::new();
    for step in script() {
        // SAFETY (all calls): valid strings and buffers of the announced sizes.
        let rec = unsafe {
            match step {
                Step::Deliver(f) => {
                    fake.write_all(&f).unwrap();
                    continue;
                }
                Step::Join => Rec::Ret("join", (api.join)(mbox, g.as_ptr())),
                Step::Leave => Rec::Ret("leave", (api.leave)(mbox, g.as_ptr())),
                Step::Flush => Rec::Ret("flush", (api.flush)(mbox, g.as_ptr())),
                Step::MoreMsgs => Rec::Ret("more_msgs", (api.more_msgs)(mbox)),
                Step::Multicast(s, t, b) => Rec::Ret(
                    "multicast",
                    (api.multicast)(mbox, s as c_int, g.as_ptr(), t, b.len() as c_int, b.as_ptr() as *const c_char),
                ),
                Step::Unicast(to, s, t, b) => {
                    let mut r = [0 as c_char; 32];
                    for (d, c) in r.iter_mut().zip(to.bytes()) {
                        *d = c as c_char;
                    }
                    Rec::Ret(
                        "unicast",
                        (api.unicast)(
                            mbox,
                            s as c_int,
                            g.as_ptr(),
                            r.as_ptr(),
                            t,
                            b.len() as c_int,
                            b.as_ptr() as *const c_char,
                        ),
                    )
                }
                Step::Subgroupcast(to, s, t, b) => {
                    let names: Vec<[c_char; 32]> =
                        to.iter().map(|n| name32(n.as_bytes()).map(|c| c as c_char)).collect();
                    Rec::Ret(
                        "subgroupcast",
                        (api.subgroupcast)(
                            mbox,
                            s as c_int,
                            g.as_ptr(),
                            names.len() as c_int,
                            names.as_ptr(),
                            t,
                            b.len() as c_int,
                            b.as_ptr() as *const c_char,
                        ),
                    )
                }
                Step::Receive(rx) => receive(api, mbox, rx),
            }
        };
        if std::env::var_os("FL_DIFF_TRACE").is_some() {
            eprintln!("{rec:?}");
        }
        recs.push(rec);
    }
    // SAFETY: plain call.
    recs.push(Rec::Ret("disconnect", unsafe { (api.disconnect)(mbox) }));
    // Everything the client sent, up to its close.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = Vec::new();
    for _ in 0..100_000 {
        match fake.wait_close_by(deadline) {
            CloseSeen::Data(b) => stream.extend_from_slice(&b),
            _ => break,
        }
    }
    (recs, stream)
}

/// The frames of a client byte stream, one per line, for readable diffs. In
/// the KILL frame of SP_disconnect the bytes after the name's NUL are zeroed:
/// the original sends uninitialised stack there (client spec §6 item 5).
fn split_frames(mut s: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while s.len() >= 48 {
        let n = 48 + frames::rest_len(s).unwrap_or(s.len() - 48);
        let n = n.min(s.len());
        let mut f = s[..n].to_vec();
        if frames::head(&f).is_some_and(|h| h.type_ & frames::KILL_MESS != 0) && f.len() >= 80 {
            let name = &mut f[48..80];
            if let Some(z) = name.iter().position(|&b| b == 0) {
                name[z..].fill(0);
            }
        }
        out.push(hex::encode(&f));
        s = &s[n..];
    }
    if !s.is_empty() {
        out.push(hex::encode(s));
    }
    out
}

fn compare(script: fn() -> Vec<Step>, ports: (u16, u16), min_frames: usize) {
    let Some(prefix) = std::env::var_os("SPREAD_REF_PREFIX").filter(|v| !v.is_empty()) else {
        eprintln!(
            "fl_differential: skipped: SPREAD_REF_PREFIX is not set (it must name an installed original Spread 5.0.1)"
        );
        return;
    };
    let original = load(&Path::new(&prefix).join("lib").join("libspread.so.3"));
    let only = std::env::var("FL_DIFF_ONLY").unwrap_or_default();
    if only == "ours" {
        let (got, _) = run(ours(), ports.1, script);
        for r in &got {
            eprintln!("{r:?}");
        }
        return;
    }
    let (want, want_bytes) = run(original, ports.0, script);
    if only == "orig" {
        return;
    }
    let (got, got_bytes) = run(ours(), ports.1, script);
    let (wf, gf) = (split_frames(&want_bytes), split_frames(&got_bytes));
    eprintln!("fl_differential: {} records, {} frames sent", want.len(), wf.len());
    if std::env::var_os("FL_DIFF_DUMP").is_some() {
        for r in &want {
            eprintln!("{r:?}");
        }
        for f in &wf {
            eprintln!("{f}");
        }
    }
    for (i, (w, g)) in want.iter().zip(got.iter()).enumerate() {
        assert_eq!(g, w, "record {i} differs (left: ours, right: original)");
    }
    assert_eq!(got.len(), want.len());
    for (i, (w, g)) in wf.iter().zip(gf.iter()).enumerate() {
        assert_eq!(g, w, "sent frame {i} differs (left: ours, right: original)");
    }
    assert_eq!(gf.len(), wf.len(), "number of frames sent");
    assert!(wf.len() >= min_frames, "the script made the client send {} frames", wf.len());
}

#[test]
fn joins_cascade_vulnerable_short_buffers_leave() {
    compare(script_basic, (24140, 24141), 14);
}

#[test]
fn collapse_foreign_order_held_message() {
    compare(script_collapse_foreign_order_held, (24142, 24143), 10);
}
