//! A hostile or dying daemon: truncated frames, EOF anywhere, absurd sizes,
//! random garbage. The library must return the original's codes, move the
//! session to the error state as §3.4 says, and never crash, hang or
//! allocate what a header merely claims.

mod sp_common;

use std::io::Write;
use std::os::unix::net::UnixStream;

use sp_common::*;

/// Wait (bounded) until the peer has closed: poll(2) reports POLLHUP/POLLIN
/// with nothing left but EOF.
fn wait_peer_closed(mbox: i32) {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < IO_TIMEOUT {
        let mut p = libc::pollfd { fd: mbox, events: libc::POLLIN | libc::POLLRDHUP, revents: 0 };
        unsafe { libc::poll(&mut p, 1, 100) };
        if p.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0 {
            return;
        }
    }
    panic!("peer did not close");
}

/// The §3.4 sequence after the failing call returned CONNECTION_CLOSED.
fn assert_error_state_then_gone(mbox: i32) {
    assert_eq!(recv(mbox, 0, 5, 100).ret, NET_ERROR_ON_SESSION);
    assert_eq!(multicast(mbox, AGREED_MESS, "g", 0, b"x"), NET_ERROR_ON_SESSION);
    assert_eq!(join(mbox, b"g"), NET_ERROR_ON_SESSION);
    assert_eq!(leave(mbox, b"g"), NET_ERROR_ON_SESSION);
    assert!(poll(mbox) >= 0);
    assert_eq!(disconnect(mbox), 0);
    assert_eq!(disconnect(mbox), ILLEGAL_SESSION);
    assert_eq!(recv(mbox, 0, 5, 100).ret, ILLEGAL_SESSION);
    assert_eq!(poll(mbox), ILLEGAL_SESSION);
}

fn reject_prefix() -> Vec<u8> {
    let mut f = frame_le(0x8040_0080, "#h#fake", &[], 0x8000_0080, b"");
    f[36..40].copy_from_slice(&1i32.to_le_bytes());
    f
}

#[test]
fn eof_anywhere_in_a_frame() {
    let full = frame_le(0x8000_0090, "#s#fake", &["g1", "g2"], 0x8000_0080, b"0123456789");
    let cuts: Vec<Vec<u8>> = vec![
        vec![],
        full[..20].to_vec(),
        full[..47].to_vec(),
        full[..48].to_vec(),
        full[..48 + 40].to_vec(),
        full[..48 + 64].to_vec(),
        full[..full.len() - 1].to_vec(),
        reject_prefix(),
        {
            let mut r = reject_prefix();
            r.extend([0x84, 0]);
            r
        },
    ];
    let n = cuts.len();
    let c2 = cuts.clone();
    let h = serve_n(21030, n, move |i, mut s| {
        handshake(&mut s, &format!("#h{i}#fake"));
        s.write_all(&c2[i]).unwrap();
        // Close our side at once; wait for the client to finish.
        s.shutdown(std::net::Shutdown::Write).unwrap();
        drain_to_eof(&mut s);
    });
    for i in 0..n {
        let (r, mbox, _) = connect("21030", Some(&format!("h{i}")), 0, 1);
        assert_eq!(r, ACCEPT_SESSION);
        let drop = if i % 2 == 0 { 0 } else { DROP_RECV as i32 };
        assert_eq!(recv(mbox, drop, 5, 100).ret, CONNECTION_CLOSED, "cut {i}");
        assert_error_state_then_gone(mbox);
    }
    h.join().unwrap();
}

#[test]
fn send_to_a_closed_daemon() {
    let h = serve(21031, |mut s| {
        handshake(&mut s, "#w#fake");
    });
    let (r, mbox, _) = connect("21031", Some("w"), 0, 1);
    assert_eq!(r, ACCEPT_SESSION);
    h.join().unwrap();
    wait_peer_closed(mbox);
    // EPIPE (SIGPIPE is ignored): CONNECTION_CLOSED, then the error state.
    assert_eq!(multicast(mbox, AGREED_MESS, "g", 0, b"x"), CONNECTION_CLOSED);
    assert_eq!(multicast(mbox, AGREED_MESS, "g", 0, b"x"), NET_ERROR_ON_SESSION);
    assert_error_state_then_gone(mbox);
}

#[test]
fn absurd_sizes_never_allocate_or_crash() {
    let mut f1 = frame_le(0x8000_0090, "#s#fake", &[], 0x8000_0080, b"");
    f1[44..48].copy_from_slice(&i32::MAX.to_le_bytes());
    let mut f2 = frame_le(0x8000_0090, "#s#fake", &[], 0x8000_0080, b"");
    f2[36..40].copy_from_slice(&i32::MAX.to_le_bytes());
    let mut f3 = frame_le(0x8000_1180, "#s#fake", &[], 0x8000_0080, b"");
    f3[36..40].copy_from_slice(&i32::MAX.to_le_bytes());
    f3[44..48].copy_from_slice(&i32::MAX.to_le_bytes());
    let frames = [f1, f2, f3];
    let h = serve_n(21032, 3, move |i, mut s| {
        handshake(&mut s, &format!("#a{i}#fake"));
        s.write_all(&frames[i]).unwrap();
        s.write_all(&[0x41; 5000]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        drain_to_eof(&mut s);
    });
    let d = DROP_RECV as i32;
    // data_len 2^31-1: reported, not read.
    let (_, m0, _) = connect("21032", Some("a0"), 0, 1);
    let r = recv(m0, 0, 5, 100);
    assert_eq!(
        (r.ret, r.service, r.num_groups, r.endian_mismatch, r.mess_type),
        (BUFFER_TOO_SHORT, 0x10, 0, -i32::MAX, 0)
    );
    // DROP_RECV discards what there is, then hits EOF.
    assert_eq!(recv(m0, d, 5, 100).ret, CONNECTION_CLOSED);
    assert_error_state_then_gone(m0);
    // num_groups 2^31-1.
    let (_, m1, _) = connect("21032", Some("a1"), 0, 1);
    let r = recv(m1, 0, 5, 100);
    assert_eq!((r.ret, r.num_groups, r.endian_mismatch), (GROUPS_TOO_SHORT, -i32::MAX, 0));
    assert_eq!(recv(m1, d, 1000, 100).ret, CONNECTION_CLOSED);
    assert_error_state_then_gone(m1);
    // Both, on a membership message, with a big buffer.
    let (_, m2, _) = connect("21032", Some("a2"), 0, 1);
    let r = recv(m2, 0, 5, 100);
    assert_eq!((r.ret, r.num_groups, r.endian_mismatch, r.mess_type), (GROUPS_TOO_SHORT, -i32::MAX, -i32::MAX, 0));
    assert_eq!(recv(m2, d, 100, 100_000).ret, CONNECTION_CLOSED);
    assert_error_state_then_gone(m2);
    h.join().unwrap();
}

/// xorshift: deterministic garbage.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_garbage_streams() {
    const N: usize = 48;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let streams: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let len = (rng.next() % 600) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Some streams start with a plausible header carrying garbage sizes.
            if i % 3 == 0 && v.len() >= 48 {
                v[0..4].copy_from_slice(&[0x90, 0, 0, 0x80]);
                let ng = (rng.next() % 8) as i32 - 2;
                let dl = (rng.next() % 200) as i32 - 20;
                v[36..40].copy_from_slice(&ng.to_le_bytes());
                v[44..48].copy_from_slice(&dl.to_le_bytes());
            }
            v
        })
        .collect();
    let st = streams.clone();
    let h = serve_n(21033, N, move |i, mut s: UnixStream| {
        handshake(&mut s, &format!("#r{i}#fake"));
        let _ = s.write_all(&st[i]);
        let _ = s.shutdown(std::net::Shutdown::Write);
        drain_to_eof(&mut s);
    });
    for i in 0..N {
        let (r, mbox, _) = connect("21033", Some(&format!("r{i}")), 0, 1);
        assert_eq!(r, ACCEPT_SESSION);
        let mut done = false;
        for k in 0..64 {
            let (mg, ml) = [(0, 0), (3, 16), (100, 4096), (1, 1)][k % 4];
            let flags = if k % 3 == 2 { DROP_RECV as i32 } else { 0 };
            let r = recv(mbox, flags, mg, ml);
            match r.ret {
                n if n >= 0 => assert!(n as usize <= 600),
                GROUPS_TOO_SHORT | BUFFER_TOO_SHORT => {}
                ILLEGAL_MESSAGE | CONNECTION_CLOSED => {
                    done = true;
                    break;
                }
                other => panic!("stream {i}: unexpected {other}"),
            }
        }
        assert!(done, "stream {i} never ended");
        kill(mbox);
    }
    h.join().unwrap();
}
