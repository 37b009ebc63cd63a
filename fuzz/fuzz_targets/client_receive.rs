//! The client library against a hostile daemon: `spread_client::connect` and
//! then `spread_client::receive` (the engine of `SP_receive` and
//! `SP_scat_receive`) read whatever a daemon sends. Nothing in the library
//! parses a frame apart from its socket, so a thread of this process plays the
//! daemon on a Unix-domain socket: it answers with the fuzz bytes, closes its
//! sending side and reads until the client goes. The library must return an
//! error code, never panic or wait forever (libFuzzer's `-timeout` catches a
//! hang). Membership bodies received are read back through the
//! `SP_get_memb_info` helpers, contiguous and scattered, which must agree.
//!
//! Input: 3 control bytes, then the daemon's bytes.
//! * byte 0, bit 0: the daemon's bytes follow a valid 5.0.1 handshake reply
//!   (auth list `NULL`, accept `#fz#d1`) instead of starting from the first
//!   byte; bit 1: ask for membership messages; bit 2: priority 1; bit 3: an
//!   empty private name; bit 4: `SP_disconnect` (else `SP_kill`) at the end;
//! * bytes 1-2: seed of the buffer sizes of each receive call.
#![no_main]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rspread_fuzz::{split_control, Rng};
use spread_client::memb::{memb_info, vs_set_members, vs_sets_info, Scattered};
use spread_client::{RecvOutputs, Timeout};
use spread_wire::consts::*;

struct Daemon {
    port: u16,
    bytes: Sender<Vec<u8>>,
    done: Receiver<()>,
}

static DAEMON: OnceLock<Mutex<Daemon>> = OnceLock::new();
static SOCKET_PATH: OnceLock<String> = OnceLock::new();

extern "C" fn remove_socket() {
    if let Some(p) = SOCKET_PATH.get() {
        let _ = std::fs::remove_file(p);
    }
}

/// Bind `SP_UNIX_SOCKET/<port>` at a free port and start the daemon thread.
fn daemon() -> &'static Mutex<Daemon> {
    DAEMON.get_or_init(|| {
        spread_client::init();
        spread_client::diag::set_sink(Some(Box::new(|_| {})));
        let base = 30_000 + (std::process::id() % 20_000) as u16;
        let (port, listener, path) = (0..2000u16)
            .find_map(|i| {
                let port = base + i;
                let path = format!("{SP_UNIX_SOCKET}/{port}");
                if std::path::Path::new(&path).exists() {
                    return None;
                }
                UnixListener::bind(&path).ok().map(|l| (port, l, path))
            })
            .expect("no free Unix socket path for the fake daemon");
        let _ = SOCKET_PATH.set(path);
        // SAFETY: registers a plain function without arguments.
        unsafe { libc::atexit(remove_socket) };
        let (tx, rx) = channel::<Vec<u8>>();
        let (done_tx, done) = channel();
        std::thread::spawn(move || serve(listener, rx, done_tx));
        Mutex::new(Daemon { port, bytes: tx, done })
    })
}

/// One connection per input: write it all, close the sending side, read
/// until the client closes.
fn serve(listener: UnixListener, inputs: Receiver<Vec<u8>>, done: Sender<()>) {
    for bytes in inputs {
        let mut pfd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 5000) };
        if ready == 1 {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.write_all(&bytes);
                let _ = s.shutdown(std::net::Shutdown::Write);
                let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                let mut sink = [0u8; 4096];
                while let Ok(n) = s.read(&mut sink) {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        if done.send(()).is_err() {
            return;
        }
    }
}

const GROUP_ROOM: [usize; 6] = [0, 1, 2, 3, 5, 100];
const BODY_ROOM: [usize; 10] = [0, 1, 11, 12, 20, 47, 60, 200, 4096, 150_000];

/// The membership helpers on the `n` bytes received into `pieces`, read as
/// one slice and as the scatter, must say the same.
fn check_membership(service: u32, flat: &[u8], pieces: &[&[u8]], n: usize) {
    let contiguous = &flat[..n];
    let mut cut: Vec<&[u8]> = Vec::new();
    let mut left = n;
    for p in pieces {
        let k = p.len().min(left);
        cut.push(&p[..k]);
        left -= k;
    }
    let scattered = Scattered(&cut);
    let a = memb_info(contiguous, service);
    assert_eq!(a, memb_info(&scattered, service), "memb_info: contiguous and scattered views differ");
    for cap in [0, 1, 4] {
        let mut s1 = Vec::new();
        let mut m1 = None;
        let r1 = vs_sets_info(contiguous, cap, &mut |i, k, o| s1.push((i, k, o)), &mut |i| m1 = Some(i));
        let mut s2 = Vec::new();
        let mut m2 = None;
        let r2 = vs_sets_info(&scattered, cap, &mut |i, k, o| s2.push((i, k, o)), &mut |i| m2 = Some(i));
        assert_eq!((r1, &s1, m1), (r2, &s2, m2), "vs_sets_info: contiguous and scattered views differ");
        for &(_, num, off) in &s1 {
            let mut n1 = Vec::new();
            let mut n2 = Vec::new();
            let r1 = vs_set_members(contiguous, num, off, 8, &mut |i, nm| n1.push((i, nm)));
            let r2 = vs_set_members(&scattered, num, off, 8, &mut |i, nm| n2.push((i, nm)));
            assert_eq!((r1, n1), (r2, n2), "vs_set_members: contiguous and scattered views differ");
        }
    }
    if let Ok(m) = a {
        let mut names = Vec::new();
        let _ = vs_set_members(contiguous, m.my_vs_set.0, m.my_vs_set.1, 8, &mut |_, nm| names.push(nm));
    }
}

fuzz_target!(|data: &[u8]| {
    let (c, stream) = split_control::<3>(data);
    let d = daemon().lock().unwrap_or_else(|e| e.into_inner());
    let mut reply = Vec::with_capacity(stream.len() + 32);
    if c[0] & 1 != 0 {
        reply.extend_from_slice(b"\x05NULL ");
        reply.extend_from_slice(&[1, 5, 0, 1, 6]);
        reply.extend_from_slice(b"#fz#d1");
    }
    reply.extend_from_slice(stream);
    d.bytes.send(reply).expect("the fake daemon thread is gone");

    let target = d.port.to_string();
    let name: &[u8] = if c[0] & 8 != 0 { b"" } else { b"fz" };
    let priority = i32::from(c[0] & 4 != 0);
    let deadline = spread_client::validate_timeout(Timeout { sec: 10, usec: 0 }).expect("a valid timeout");
    let connected = spread_client::connect(Some(target.as_bytes()), Some(name), priority, c[0] & 2 != 0, deadline);
    if let Ok(conn) = connected {
        let mbox = conn.mbox;
        let mut rng = Rng::new(u64::from(c[1]) | u64::from(c[2]) << 8 | (stream.len() as u64) << 16);
        let mut force_drop = false;
        let calls = (stream.len() / 48 + 8).min(2048);
        for _ in 0..calls {
            let r = rng.next_u64();
            let ng = GROUP_ROOM[(r % GROUP_ROOM.len() as u64) as usize];
            let cap = BODY_ROOM[((r >> 8) % BODY_ROOM.len() as u64) as usize];
            let drop_recv = force_drop || (r >> 16) & 3 == 0;
            let mut groups = vec![[0u8; MAX_GROUP_NAME]; ng];
            let mut flat = vec![0u8; cap];
            // Up to three scatter pieces (empty ones included).
            let (a, b) = ((r >> 20) as usize % (cap + 1), (r >> 40) as usize % (cap + 1));
            let (lo, hi) = (a.min(b), a.max(b));
            let (p0, rest) = flat.split_at_mut(lo);
            let (p1, p2) = rest.split_at_mut(hi - lo);
            let mut pieces: Vec<&mut [u8]> = vec![p0, p1, p2];
            if (r >> 60) & 1 == 0 {
                pieces.retain(|p| !p.is_empty());
            }
            let mut out = RecvOutputs::default();
            let ret = spread_client::receive(mbox, drop_recv, &mut groups, &mut pieces, &mut out);
            if let Some(n) = out.num_groups.filter(|&n| n > 0) {
                assert!(n as usize <= ng, "{n} groups reported with room for {ng}");
            }
            if ret >= 0 {
                assert!(ret as usize <= cap, "a {ret}-byte body reported with room for {cap}");
            }
            let service = out.service.unwrap_or(0);
            if (ret >= 0 || (ret == BUFFER_TOO_SHORT && drop_recv)) && service & MEMBERSHIP_MESS != 0 {
                let n = if ret >= 0 { ret as usize } else { cap };
                let views: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
                let joined = views.concat();
                check_membership(service, &joined, &views, n.min(joined.len()));
            }
            force_drop = !drop_recv && (ret == BUFFER_TOO_SHORT || ret == GROUPS_TOO_SHORT);
            if (r >> 24) & 7 == 0 {
                let _ = spread_client::poll(mbox);
            }
            if ret == CONNECTION_CLOSED || ret == NET_ERROR_ON_SESSION || ret == ILLEGAL_SESSION {
                break;
            }
        }
        if c[0] & 0x10 != 0 {
            let _ = spread_client::disconnect(mbox);
        } else {
            spread_client::kill(mbox);
        }
    }
    d.done.recv_timeout(Duration::from_secs(30)).expect("the fake daemon did not finish its connection");
});
