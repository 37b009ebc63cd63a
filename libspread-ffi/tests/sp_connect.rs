//! SP_connect / SP_connect_timeout / auth methods / misc helpers against an
//! in-process fake daemon (client spec §1.4–1.5, §2.3, TV-1..TV-4).
//! Tests in this file share the process-wide auth table and diagnostics
//! sink, so they run one at a time.

mod sp_common;

use std::io::{Read, Write};
use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sp_common::*;
use spread_ffi::sp::*;
use spread_ffi::types::*;

static SERIAL: Mutex<()> = Mutex::new(());
static PRINTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn serial() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    spread_client::auth::reset();
    PRINTED.lock().unwrap().clear();
    spread_client::diag::set_sink(Some(Box::new(|m| PRINTED.lock().unwrap().push(m.to_string()))));
    g
}

fn printed() -> Vec<String> {
    PRINTED.lock().unwrap().clone()
}

fn connect_timeout(spread: &str, name: &str, t: sp_time) -> i32 {
    let sp = cstr(spread);
    let nm = cstr(name);
    let mut mbox = -1;
    let mut pg = [0 as c_char; 32];
    unsafe { SP_connect_timeout(sp.as_ptr(), nm.as_ptr(), 0, 1, &mut mbox, pg.as_mut_ptr(), t) }
}

#[test]
fn tv1_unix_handshake_and_disconnect_kill_frame() {
    let _g = serial();
    let (tx, rx) = mpsc::channel();
    let h = serve(21001, move |mut s| {
        let (req, choice) = handshake(&mut s, "#user1#localhost");
        let (_, _, _, kill) = read_frame(&mut s);
        expect_eof(&mut s);
        tx.send((req, choice, kill)).unwrap();
    });
    let (r, mbox, pg) = connect("21001", Some("user1"), 0, 1);
    assert_eq!((r, pg.as_str()), (ACCEPT_SESSION, "#user1#localhost"));
    assert!(mbox >= 0);
    assert_eq!(poll(mbox), 0);
    assert_eq!(disconnect(mbox), 0);
    assert_eq!(disconnect(mbox), ILLEGAL_SESSION);
    assert_eq!(poll(mbox), ILLEGAL_SESSION);
    h.join().unwrap();
    let (req, choice, kill) = rx.recv().unwrap();
    assert_eq!(req, hex("05 00 01 01 05 75 73 65 72 31"));
    let mut want = b"NULL".to_vec();
    want.resize(90, 0);
    assert_eq!(choice, want);
    // TV-5's KILL variant: byte 2 = 04, the group field is the private group,
    // zero-padded (§6 item 5 fixed: no stack garbage after the NUL).
    let mut k = hex("80 00 04 80");
    k.extend_from_slice(&name32("#user1#localhost"));
    k.extend_from_slice(&hex("01 00 00 00 80 00 00 80 00 00 00 00"));
    k.extend_from_slice(&name32("#user1#localhost"));
    assert_eq!(kill, k);
}

#[test]
fn tv2_tcp_ipv4_and_ipv6() {
    let _g = serial();
    for v6 in [false, true] {
        let (tx, rx) = mpsc::channel();
        let Some((port, h)) = serve_tcp(v6, move |mut s| {
            let (req, _) = handshake(&mut s, "#user2#localhost");
            tx.send(req).unwrap();
            expect_eof(&mut s);
        }) else {
            assert!(v6, "IPv4 loopback must be available");
            continue;
        };
        let name = if v6 { format!("{port}@::1") } else { format!("{port}@127.0.0.1") };
        let (r, mbox, pg) = connect(&name, Some("user2"), 1, 0);
        assert_eq!((r, pg.as_str()), (ACCEPT_SESSION, "#user2#localhost"), "{name}");
        assert_eq!(rx.recv().unwrap(), hex("05 00 01 10 05 75 73 65 72 32"));
        // TCP_NODELAY and SO_KEEPALIVE are set; the socket is blocking again.
        let get = |level, opt| {
            let mut v: c_int = 0;
            let mut l = 4 as libc::socklen_t;
            unsafe { libc::getsockopt(mbox, level, opt, &mut v as *mut _ as *mut c_void, &mut l) };
            v
        };
        assert_ne!(get(libc::IPPROTO_TCP, libc::TCP_NODELAY), 0);
        assert_ne!(get(libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
        // Buffers grown past the first 10 KiB step (the kernel reports twice
        // what was set).
        assert!(get(libc::SOL_SOCKET, libc::SO_SNDBUF) >= 2 * 15 * 1024);
        assert!(get(libc::SOL_SOCKET, libc::SO_RCVBUF) >= 2 * 15 * 1024);
        let fl = unsafe { libc::fcntl(mbox, libc::F_GETFL) };
        assert_eq!(fl & libc::O_NONBLOCK, 0);
        kill(mbox);
        h.join().unwrap();
    }
}

#[test]
fn tv3_request_variants() {
    let _g = serial();
    let (tx, rx) = mpsc::channel();
    let cases: Vec<(Option<&str>, i32, i32, &str)> = vec![
        (Some("u"), 1, 1, "05 00 01 11 01 75"),
        (None, 0, 1, "05 00 01 01 00"),
        (Some(""), 0, 1, "05 00 01 01 00"),
        (Some("abcdefghijklmnop"), 0, 1, "05 00 01 01 0a 61 62 63 64 65 66 67 68 69 6a"),
        (Some("p"), 5, 7, "05 00 01 11 01 70"),
        (Some("q"), -3, 0, "05 00 01 00 01 71"),
        (Some("a b"), 0, 0, "05 00 01 00 03 61 20 62"),
    ];
    let n = cases.len();
    let h = serve_n(21002, n, move |i, mut s| {
        let (req, _) = handshake(&mut s, &format!("#n{i}#fake"));
        tx.send((i, req)).unwrap();
        expect_eof(&mut s);
    });
    for (i, (name, prio, memb, want)) in cases.iter().enumerate() {
        let (r, mbox, pg) = connect("21002", *name, *prio, *memb);
        assert_eq!((r, pg), (ACCEPT_SESSION, format!("#n{i}#fake")));
        let (j, req) = rx.recv().unwrap();
        assert_eq!((j, req), (i, hex(want)), "case {i}");
        kill(mbox);
    }
    h.join().unwrap();
}

/// One fake-daemon misbehaviour and what SP_connect must return.
fn reject_case(
    port: u16,
    priority: i32,
    daemon: impl FnOnce(&mut std::os::unix::net::UnixStream) + Send + 'static,
) -> i32 {
    let h = serve(port, move |mut s| {
        read_request(&mut s);
        daemon(&mut s);
    });
    let (r, mbox, _) = connect(&port.to_string(), Some("rj"), priority, 1);
    if r == ACCEPT_SESSION {
        kill(mbox);
    }
    h.join().unwrap();
    r
}

fn full_auth(s: &mut std::os::unix::net::UnixStream) {
    s.write_all(b"\x05NULL ").unwrap();
    read_n(s, 90);
}

#[test]
fn tv4_rejects_from_fake_daemon() {
    let _g = serial();
    assert_eq!(reject_case(21003, 0, |s| s.write_all(&[0xfa]).unwrap()), REJECT_NOT_UNIQUE);
    assert_eq!(reject_case(21003, 0, |s| s.write_all(&[0xfb]).unwrap()), REJECT_ILLEGAL_NAME);
    assert_eq!(reject_case(21003, 0, |s| s.write_all(&[0xfd]).unwrap()), REJECT_QUOTA);
    assert_eq!(
        reject_case(21003, 0, |s| {
            full_auth(s);
            s.write_all(&[0xf7]).unwrap()
        }),
        REJECT_AUTH
    );
    // Partial accept whose first byte is a reject code: that code.
    assert_eq!(
        reject_case(21003, 0, |s| {
            full_auth(s);
            s.write_all(&[0xfa, 0x05]).unwrap()
        }),
        REJECT_NOT_UNIQUE
    );
    // Partial accept starting with ACCEPT, or nothing at all: CONNECTION_CLOSED.
    assert_eq!(
        reject_case(21003, 0, |s| {
            full_auth(s);
            s.write_all(&[0x01, 0x05]).unwrap()
        }),
        CONNECTION_CLOSED
    );
    assert_eq!(reject_case(21003, 0, full_auth), CONNECTION_CLOSED);
    assert_eq!(reject_case(21003, 0, |_| {}), CONNECTION_CLOSED);
    // Auth list longer than 90 bytes.
    assert_eq!(reject_case(21003, 0, |s| s.write_all(&[91]).unwrap()), CONNECTION_CLOSED);
    // Truncated auth list.
    assert_eq!(reject_case(21003, 0, |s| s.write_all(b"\x05NU").unwrap()), CONNECTION_CLOSED);
    // Private group name cut short.
    assert_eq!(
        reject_case(21003, 0, |s| {
            full_auth(s);
            s.write_all(b"\x01\x05\x00\x01\x05#a").unwrap()
        }),
        CONNECTION_CLOSED
    );
    assert!(printed().is_empty(), "{:?}", printed());
}

#[test]
fn tv4_version_checks_and_their_prints() {
    let _g = serial();
    let accept = |b: &'static [u8]| {
        move |s: &mut std::os::unix::net::UnixStream| {
            full_auth(s);
            s.write_all(b).unwrap();
        }
    };
    assert_eq!(reject_case(21004, 1, accept(b"\x01\x03\x07\x00\x05#a#bc")), REJECT_VERSION);
    assert_eq!(printed(), vec!["SP_connect: old spread version 3.7.0 does not support priority other than 0\n"]);
    // Without priority a 3.7 daemon is fine.
    assert_eq!(reject_case(21004, 0, accept(b"\x01\x03\x07\x00\x05#a#bc")), ACCEPT_SESSION);
    PRINTED.lock().unwrap().clear();
    assert_eq!(reject_case(21004, 0, accept(b"\x01\x02\x09\x09\x05#a#bc")), REJECT_VERSION);
    assert_eq!(printed(), vec!["SP_connect: old daemon version 2.9.9 not supported\n"]);
    PRINTED.lock().unwrap().clear();
    assert_eq!(reject_case(21004, 0, accept(b"\x01\x05\x00\x01\x20")), CONNECTION_CLOSED);
    assert_eq!(printed(), vec!["SP_connect: illegal values received! 5.0.1; 32\n"]);
    PRINTED.lock().unwrap().clear();
    assert_eq!(reject_case(21004, 0, accept(b"\x01\x05\xff\x01\x05")), CONNECTION_CLOSED);
    assert_eq!(printed(), vec!["SP_connect: illegal values received! 5.-1.1; 5\n"]);
}

#[test]
fn tv4_local_failures() {
    let _g = serial();
    let _ = std::fs::remove_file("/tmp/21099");
    assert_eq!(connect("21099", Some("x"), 0, 0).0, COULD_NOT_CONNECT);
    for bad in ["abc", "4803x", "-", "21000 x", &format!("4803@{}", "h".repeat(66))] {
        assert_eq!(connect(bad, Some("x"), 0, 0).0, ILLEGAL_SPREAD, "{bad}");
    }
    for (sec, usec) in [(1, -5), (0, 1_000_000), (-1, 5), (0, -1_000_000), (0, 2_000_000)] {
        assert_eq!(connect_timeout("21099", "x", sp_time { sec, usec }), ILLEGAL_TIME, "{sec},{usec}");
    }
    // NULL out pointers: refused, nothing happens.
    let sp = cstr("21099");
    let r = unsafe { SP_connect(sp.as_ptr(), std::ptr::null(), 0, 0, std::ptr::null_mut(), std::ptr::null_mut()) };
    assert_eq!(r, COULD_NOT_CONNECT);
}

#[test]
fn tv4_timeout_on_silent_peer() {
    let _g = serial();
    let (tx, rx) = mpsc::channel::<()>();
    let h = serve(21005, move |mut s| {
        read_request(&mut s);
        // Silent until the client gives up (it closes: EOF).
        let _ = rx.recv();
        expect_eof(&mut s);
    });
    let t0 = Instant::now();
    let r = connect_timeout("21005", "slow", sp_time { sec: 0, usec: 300_000 });
    let el = t0.elapsed();
    tx.send(()).unwrap();
    h.join().unwrap();
    assert_eq!(r, CONNECTION_CLOSED);
    assert!(el >= Duration::from_millis(290) && el < Duration::from_secs(10), "{el:?}");

    // An already-expired (negative) deadline fails at the first handshake I/O.
    let h = serve(21005, |mut s| {
        let mut b = [0u8; 16];
        let n = s.read(&mut b).unwrap_or(0);
        assert_eq!(n, 0, "nothing may be sent after the deadline");
    });
    assert_eq!(connect_timeout("21005", "neg", sp_time { sec: -1, usec: 0 }), CONNECTION_CLOSED);
    h.join().unwrap();

    // A generous timeout does not disturb a normal handshake.
    let h = serve(21005, |mut s| {
        handshake(&mut s, "#ok#fake");
        expect_eof(&mut s);
    });
    let sp = cstr("21005");
    let nm = cstr("ok");
    let mut mbox = -1;
    let mut pg = [0 as c_char; 32];
    let r = unsafe {
        SP_connect_timeout(sp.as_ptr(), nm.as_ptr(), 0, 1, &mut mbox, pg.as_mut_ptr(), sp_time { sec: 5, usec: 0 })
    };
    assert_eq!(r, ACCEPT_SESSION);
    kill(mbox);
    h.join().unwrap();
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn mine_ok(fd: c_int, data: *mut c_void) -> c_int {
    CALLS.fetch_add(1, Ordering::SeqCst);
    assert_eq!(data as usize, 0x1234);
    // Method-specific bytes on the connecting socket.
    let n = libc::send(fd, b"hi".as_ptr() as *const c_void, 2, 0);
    (n == 2) as c_int
}

unsafe extern "C" fn fails(_fd: c_int, _data: *mut c_void) -> c_int {
    CALLS.fetch_add(1, Ordering::SeqCst);
    0
}

unsafe extern "C" fn ok(_fd: c_int, _data: *mut c_void) -> c_int {
    CALLS.fetch_add(1, Ordering::SeqCst);
    1
}

#[test]
fn auth_method_table() {
    let _g = serial();
    type F = Option<unsafe extern "C" fn(c_int, *mut c_void) -> c_int>;
    let long30 = cstr(&"X".repeat(30));
    let long29 = cstr(&"X".repeat(29));
    unsafe {
        assert_eq!(SP_set_auth_method(long30.as_ptr(), Some(ok), std::ptr::null_mut()), 0);
        assert_eq!(SP_set_auth_method(long29.as_ptr(), None, std::ptr::null_mut()), 0);
        assert_eq!(SP_set_auth_method(std::ptr::null(), Some(ok), std::ptr::null_mut()), 0);
        assert_eq!(SP_set_auth_methods(4, std::ptr::null(), std::ptr::null(), std::ptr::null()), 0);
        assert_eq!(SP_set_auth_methods(-1, std::ptr::null(), std::ptr::null(), std::ptr::null()), 0);
    }
    // The table is unchanged by refused calls: still NULL.
    assert_eq!(
        spread_client::auth::methods().iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        vec![b"NULL".to_vec()]
    );

    // Two methods: both slots filled, callbacks run in order with their data.
    let names = [cstr("MINE"), cstr("NULL")];
    let np = [names[0].as_ptr(), names[1].as_ptr()];
    let fs: [F; 2] = [Some(mine_ok), Some(ok)];
    let ds = [0x1234 as *mut c_void, std::ptr::null_mut()];
    assert_eq!(unsafe { SP_set_auth_methods(2, np.as_ptr(), fs.as_ptr(), ds.as_ptr()) }, 1);
    let (tx, rx) = mpsc::channel();
    let h = serve(21006, move |mut s| {
        read_request(&mut s);
        s.write_all(b"\x0aNULL MINE ").unwrap();
        let choice = read_n(&mut s, 90);
        let extra = read_n(&mut s, 2);
        s.write_all(b"\x01\x05\x00\x01\x08#au#fake").unwrap();
        tx.send((choice, extra)).unwrap();
        expect_eof(&mut s);
    });
    CALLS.store(0, Ordering::SeqCst);
    let (r, mbox, pg) = connect("21006", Some("au"), 0, 1);
    assert_eq!((r, pg.as_str()), (ACCEPT_SESSION, "#au#fake"));
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    let (choice, extra) = rx.recv().unwrap();
    let mut want = vec![0u8; 90];
    want[..4].copy_from_slice(b"MINE");
    want[30..34].copy_from_slice(b"NULL");
    assert_eq!(choice, want);
    assert_eq!(extra, b"hi");
    kill(mbox);
    h.join().unwrap();

    // A method the daemon does not offer: REJECT_AUTH before the choice is sent.
    let h = serve(21006, |mut s| {
        read_request(&mut s);
        s.write_all(b"\x05NULL ").unwrap();
        expect_eof(&mut s);
    });
    assert_eq!(connect("21006", Some("au"), 0, 1).0, REJECT_AUTH);
    h.join().unwrap();

    // A failing callback: every callback still runs, then REJECT_AUTH.
    let names = [cstr("NULL"), cstr("NULL")];
    let np = [names[0].as_ptr(), names[1].as_ptr()];
    let fs: [F; 2] = [Some(fails), Some(ok)];
    assert_eq!(unsafe { SP_set_auth_methods(2, np.as_ptr(), fs.as_ptr(), std::ptr::null()) }, 1);
    let h = serve(21006, |mut s| {
        read_request(&mut s);
        s.write_all(b"\x05NULL ").unwrap();
        read_n(&mut s, 90);
        expect_eof(&mut s);
    });
    CALLS.store(0, Ordering::SeqCst);
    assert_eq!(connect("21006", Some("au"), 0, 1).0, REJECT_AUTH);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    h.join().unwrap();

    // Zero methods: an all-zero choice; the daemon denies.
    assert_eq!(unsafe { SP_set_auth_methods(0, std::ptr::null(), std::ptr::null(), std::ptr::null()) }, 1);
    let (tx, rx) = mpsc::channel();
    let h = serve(21006, move |mut s| {
        read_request(&mut s);
        s.write_all(b"\x05NULL ").unwrap();
        tx.send(read_n(&mut s, 90)).unwrap();
        s.write_all(&[0xf7]).unwrap();
    });
    assert_eq!(connect("21006", Some("au"), 0, 1).0, REJECT_AUTH);
    assert_eq!(rx.recv().unwrap(), vec![0u8; 90]);
    h.join().unwrap();

    // Single method replaces the table.
    let nm = cstr("NULL");
    assert_eq!(unsafe { SP_set_auth_method(nm.as_ptr(), Some(ok), std::ptr::null_mut()) }, 1);
    assert_eq!(spread_client::auth::methods().len(), 1);
    spread_client::auth::reset();
}

#[test]
fn sigpipe_ignored_and_quota() {
    let _g = serial();
    let h = serve_n(21007, 2, |i, mut s| {
        handshake(&mut s, &format!("#q{i}#fake"));
        expect_eof(&mut s);
    });
    let (r, mbox, _) = connect("21007", Some("q0"), 0, 0);
    assert_eq!(r, ACCEPT_SESSION);
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) };
    assert_eq!(old.sa_sigaction, libc::SIG_IGN);

    // With 1024 sessions open the 1025th is refused after the handshake and
    // its socket closed (the daemon sees EOF).
    let open = spread_client::session::count() as isize;
    spread_client::testing::pretend_sessions(1024 - open);
    let r2 = connect("21007", Some("q1"), 0, 0).0;
    spread_client::testing::pretend_sessions(open - 1024);
    assert_eq!(r2, REJECT_QUOTA);
    kill(mbox);
    h.join().unwrap();
}

#[test]
fn version_strerror_error_and_misc() {
    let _g = serial();
    let (mut a, mut b, mut c) = (0, 0, 0);
    assert_eq!(unsafe { SP_version(&mut a, &mut b, &mut c) }, 1);
    assert_eq!((a, b, c), (5, 0, 1));
    assert_eq!(unsafe { SP_version(std::ptr::null_mut(), &mut b, &mut c) }, 0);
    let s = |e| unsafe { std::ffi::CStr::from_ptr(SP_strerror(e)) }.to_str().unwrap().to_string();
    assert_eq!(s(CONNECTION_CLOSED), "Connection closed by Spread.");
    assert_eq!(s(NET_ERROR_ON_SESSION), "Network socket error. SP_kill() the mailbox.");
    assert_eq!(s(ILLEGAL_TIME), "Illegal time.");
    assert_eq!(s(1), "Unrecognized error.");
    assert_eq!(s(-10), "Unrecognized error.");
    assert_eq!(s(12345), "Unrecognized error.");
    // The same pointer every time (static storage).
    assert_eq!(unsafe { SP_strerror(-8) }, unsafe { SP_strerror(-8) });
    unsafe { SP_error(-8) };
    unsafe { SP_error(77) };
    assert_eq!(
        printed(),
        vec!["SP_error: (-8) Connection closed by Spread.\n", "SP_error: (77) Unrecognized error.\n"]
    );
    let g1 = group_id { id: [1, 2, 3] };
    assert_eq!(unsafe { SP_equal_group_ids(g1, g1) }, 1);
    assert_eq!(unsafe { SP_equal_group_ids(g1, group_id { id: [1, 2, 4] }) }, 0);
    assert_eq!(unsafe { SP_query_groups(0, 0, std::ptr::null_mut()) }, -1);
    assert_eq!(unsafe { SP_query_members(0, std::ptr::null_mut(), 0, std::ptr::null_mut()) }, -1);
}

/// A TCP listener with a full accept queue drops further SYNs, so a connect
/// to it stays in progress: the deadline expires *during connect*, which
/// the original reports as CONNECTION_CLOSED, not COULD_NOT_CONNECT (§6 item 9).
#[test]
fn timeout_during_tcp_connect_is_connection_closed() {
    let _g = serial();
    unsafe {
        let l = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(l >= 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let al = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(l, &a as *const _ as *const libc::sockaddr, al), 0);
        assert_eq!(libc::listen(l, 0), 0);
        let mut bound: libc::sockaddr_in = std::mem::zeroed();
        let mut bl = al;
        libc::getsockname(l, &mut bound as *mut _ as *mut libc::sockaddr, &mut bl);
        let port = u16::from_be(bound.sin_port);
        // Fill the accept queue with connections nobody accepts.
        let mut fillers = vec![];
        for _ in 0..8 {
            let c = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
            libc::connect(c, &bound as *const _ as *const libc::sockaddr, al);
            fillers.push(c);
        }
        let t0 = Instant::now();
        let r = connect_timeout(&format!("{port}@127.0.0.1"), "late", sp_time { sec: 0, usec: 400_000 });
        let el = t0.elapsed();
        for c in fillers {
            libc::close(c);
        }
        libc::close(l);
        assert_eq!(r, CONNECTION_CLOSED);
        assert!(el >= Duration::from_millis(390) && el < Duration::from_secs(10), "{el:?}");
    }
}
