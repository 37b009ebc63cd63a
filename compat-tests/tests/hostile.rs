//! A hostile fake daemon, end to end through the `SP_*` C functions: after a
//! normal handshake it sends garbage, a negative group count, a 2^31-1 body
//! length, or closes mid-frame. The library must return the original's codes
//! (checked against the reference 5.0.1 library with `RSPREAD_SP_LIB`),
//! never hang (every call runs under a deadline) and never allocate what a
//! hostile length field asks for. The last test runs them all again through
//! each of the three built C libraries.
//!
//! Ports 23600–23679 (10 per test; the first free one is used).

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use compat_tests::frames;
use compat_tests::net::Listener;
use compat_tests::sp_api::{sp, Received};
use spread_ffi::types::sp_time;

const CONNECTION_CLOSED: i32 = -8;
const ILLEGAL_SESSION: i32 = -11;
const ILLEGAL_MESSAGE: i32 = -13;
const BUFFER_TOO_SHORT: i32 = -15;
const GROUPS_TOO_SHORT: i32 = -16;
const NET_ERROR_ON_SESSION: i32 = -18;

/// What the fake daemon does once the client is connected.
enum Act {
    Send(Vec<u8>),
    Close,
    /// keep the socket open until the client closes (bounded)
    Linger,
}

/// Serves one client: the server side of the 5.0.1 handshake with the given
/// accept bytes, then `acts`.
fn hostile(base: u16, accept: Option<Vec<u8>>, acts: Vec<Act>) -> (u16, thread::JoinHandle<()>) {
    let (l, port) = Listener::tcp_near(base, 10).unwrap_or_else(|e| panic!("bind near {base}: {e}"));
    (
        port,
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let Ok(mut c) = l.accept_by(deadline) else { return };
            if let Some(acc) = accept {
                let Ok(head) = c.read_exact_by(5, deadline) else { return };
                if c.read_exact_by(head[4] as usize, deadline).is_err() {
                    return;
                }
                let _ = c.write_all(b"\x05NULL ");
                if c.read_exact_by(90, deadline).is_err() {
                    return;
                }
                let _ = c.write_all(&acc);
            }
            for a in acts {
                match a {
                    Act::Send(b) => {
                        let _ = c.write_all(&b);
                    }
                    Act::Close => {
                        c.shutdown_both();
                        return;
                    }
                    Act::Linger => {
                        // swallow whatever the client sends until it closes
                        for _ in 0..10_000 {
                            if !matches!(c.wait_close_by(deadline), compat_tests::net::CloseSeen::Data(_)) {
                                break;
                            }
                        }
                        return;
                    }
                }
            }
            let _ = c.wait_close_by(deadline);
        }),
    )
}

fn accept_bytes(name: &str) -> Vec<u8> {
    let pg = format!("#{name}#d1");
    let mut v = vec![1, 5, 0, 1, pg.len() as u8];
    v.extend_from_slice(pg.as_bytes());
    v
}

/// Runs `f` on another thread and fails the test if it takes longer than
/// `limit` (the fake daemon's own deadline then unblocks it).
fn bounded<T: Send + 'static>(what: &str, limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("{what}: no return within {limit:?}"))
}

fn vm_peak_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmPeak:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn connect(port: u16, name: &str) -> i32 {
    let (r, mbox, pg) = sp().sp_connect(&format!("{port}@127.0.0.1"), Some(name), 0, true);
    assert_eq!((r, pg), (1, format!("#{name}#d1")));
    mbox
}

fn receive(mbox: i32, service_in: i32, max_groups: usize, max_len: usize) -> Received {
    bounded("SP_receive", Duration::from_secs(15), move || sp().sp_receive(mbox, service_in, max_groups, max_len))
}

fn header(num_groups: u32, data_len: u32) -> Vec<u8> {
    frames::raw_header(0x8000_0090, b"#evil#d1", num_groups, 0x8000_0780, data_len)
}

#[test]
fn garbage_after_the_handshake() {
    let base = 23600;
    let (port, srv) = hostile(base, Some(accept_bytes("g1")), vec![Act::Send(vec![0xff; 48]), Act::Close]);
    let m = connect(port, "g1");
    // marker bits set, num_groups = -1 and data_len = -1
    assert_eq!(receive(m, 0, 10, 100).ret, ILLEGAL_MESSAGE);
    assert_eq!(receive(m, 0, 10, 100).ret, CONNECTION_CLOSED);
    assert_eq!(receive(m, 0, 10, 100).ret, NET_ERROR_ON_SESSION);
    assert_eq!(sp().sp_disconnect(m), 0);
    srv.join().unwrap();
}

#[test]
fn foreign_looking_garbage_is_refused_without_allocating() {
    let base = 23610;
    let before = vm_peak_kb();
    let (port, srv) = hostile(base, Some(accept_bytes("g2")), vec![Act::Send(vec![0x41; 48]), Act::Linger]);
    let m = connect(port, "g2");
    // no marker: read as the other byte order; 0x41414141 groups and bytes
    let r = receive(m, 0, 10, 100);
    assert_eq!(r.ret, GROUPS_TOO_SHORT);
    assert_eq!(r.num_groups, -0x4141_4141);
    assert_eq!(r.endian_mismatch, -0x4141_4141);
    // the saved header gives the same answer again
    assert_eq!(receive(m, 0, 10, 100).ret, GROUPS_TOO_SHORT);
    assert!(vm_peak_kb().saturating_sub(before) < 512 * 1024, "virtual memory grew by more than 512 MiB");
    assert_eq!(sp().sp_disconnect(m), 0);
    srv.join().unwrap();
}

#[test]
fn negative_group_count() {
    let base = 23620;
    let (port, srv) = hostile(base, Some(accept_bytes("g3")), vec![Act::Send(header(0xffff_ffff, 0)), Act::Linger]);
    let m = connect(port, "g3");
    assert_eq!(receive(m, 0, 10, 100).ret, ILLEGAL_MESSAGE);
    assert_eq!(sp().sp_disconnect(m), 0);
    srv.join().unwrap();
}

#[test]
fn body_length_two_to_the_31_minus_one() {
    let base = 23630;
    let before = vm_peak_kb();
    let mut frame = header(1, 0x7fff_ffff);
    frame.extend_from_slice(&frames::name32(b"g"));
    frame.extend_from_slice(&[7u8; 64]);
    let (port, srv) = hostile(base, Some(accept_bytes("g4")), vec![Act::Send(frame), Act::Linger]);
    let m = connect(port, "g4");
    let r = receive(m, 0, 10, 1000);
    assert_eq!((r.ret, r.num_groups, r.endian_mismatch), (BUFFER_TOO_SHORT, 0, -0x7fff_ffff));
    assert_eq!(r.service_type, 0x10);
    assert_eq!(r.sender, "#evil#d1");
    let r = receive(m, 0, 10, 1000);
    assert_eq!(r.ret, BUFFER_TOO_SHORT, "the saved header is reported again");
    assert!(vm_peak_kb().saturating_sub(before) < 512 * 1024, "virtual memory grew by more than 512 MiB");
    assert_eq!(sp().sp_disconnect(m), 0);
    srv.join().unwrap();
}

#[test]
fn eof_in_the_middle_of_a_header() {
    let base = 23640;
    let (port, srv) = hostile(base, Some(accept_bytes("g5")), vec![Act::Send(header(1, 4)[..20].to_vec()), Act::Close]);
    let m = connect(port, "g5");
    assert_eq!(receive(m, 0, 10, 100).ret, CONNECTION_CLOSED);
    assert_eq!(receive(m, 0, 10, 100).ret, NET_ERROR_ON_SESSION);
    assert_eq!(sp().sp_multicast(m, 0x10, "g", 0, b"x"), NET_ERROR_ON_SESSION);
    assert_eq!(sp().sp_join(m, "g"), NET_ERROR_ON_SESSION);
    assert_eq!(sp().sp_disconnect(m), 0);
    assert_eq!(sp().sp_disconnect(m), ILLEGAL_SESSION);
    assert_eq!(receive(m, 0, 10, 100).ret, ILLEGAL_SESSION);
    srv.join().unwrap();
}

#[test]
fn eof_in_the_middle_of_a_body() {
    let base = 23650;
    let mut frame = header(1, 100);
    frame.extend_from_slice(&frames::name32(b"g"));
    frame.extend_from_slice(&[1u8; 10]);
    let (port, srv) = hostile(base, Some(accept_bytes("g6")), vec![Act::Send(frame), Act::Close]);
    let m = connect(port, "g6");
    assert_eq!(receive(m, 0, 10, 1000).ret, CONNECTION_CLOSED);
    assert_eq!(sp().sp_disconnect(m), 0);
    srv.join().unwrap();
}

#[test]
fn accept_with_an_oversized_private_name() {
    let base = 23660;
    let mut acc = vec![1, 5, 0, 1, 40];
    acc.extend_from_slice(&[b'x'; 40]);
    let (port, srv) = hostile(base, Some(acc), vec![Act::Linger]);
    let (r, _, _) = bounded("SP_connect", Duration::from_secs(15), move || {
        sp().sp_connect(&format!("{port}@127.0.0.1"), Some("g7"), 0, true)
    });
    assert_eq!(r, CONNECTION_CLOSED);
    srv.join().unwrap();
}

#[test]
fn silent_daemon_and_a_connect_timeout() {
    let base = 23670;
    let (port, srv) = hostile(base, None, vec![Act::Linger]);
    let t0 = Instant::now();
    let (r, _, _) = bounded("SP_connect_timeout", Duration::from_secs(15), move || {
        sp().sp_connect_timeout(&format!("{port}@127.0.0.1"), "g8", true, sp_time { sec: 1, usec: 0 })
    });
    assert_eq!(r, CONNECTION_CLOSED);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "took {took:?}");
    srv.join().unwrap();
}

/// Every test above, again, through each of the three C libraries as built
/// (`build/lib/libspread-core.so.3`, `libtspread-core.so.3`,
/// `libspread.so.3`, loaded with `RSPREAD_SP_LIB` by this same test binary
/// run as a child): the same clean error codes, no crash, no hang. Needs
/// `make build`.
#[test]
fn every_c_library_returns_clean_errors() {
    if std::env::var_os("RSPREAD_SP_LIB").is_some_and(|v| !v.is_empty()) {
        // This run is already the child for one library.
        return;
    }
    let me = std::env::current_exe().expect("test binary");
    for lib in ["libspread-core.so.3", "libtspread-core.so.3", "libspread.so.3"] {
        let path = compat_tests::paths::c_library(lib);
        assert!(path.is_file(), "{} is missing: run `make build` first", path.display());
        let mut child = std::process::Command::new(&me)
            .args(["--skip", "every_c_library_returns_clean_errors", "--test-threads=1"])
            .env("RSPREAD_SP_LIB", &path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the test binary");
        let out = bounded(lib, Duration::from_secs(180), move || {
            let mut text = String::new();
            use std::io::Read;
            let _ = child.stdout.take().expect("stdout").read_to_string(&mut text);
            let mut err = String::new();
            let _ = child.stderr.take().expect("stderr").read_to_string(&mut err);
            (child.wait().expect("wait"), text + &err)
        });
        let (st, text) = out;
        assert!(st.success(), "the hostile-daemon tests through {lib} failed ({st}):\n{text}");
        assert!(text.contains("test result: ok. 8 passed"), "through {lib}:\n{text}");
    }
}
