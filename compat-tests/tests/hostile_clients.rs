//! Hostile clients against our running daemon (issue 11 item 2): every
//! field of the connect request, the authentication choice and a message
//! frame mutated (zero, negative, huge and mismatched lengths, the other
//! byte order's marker, bad service types and group counts, names without a
//! NUL) and every one of them cut at every byte. Each case is one
//! connection that sends its bytes and then ends its half of the stream;
//! the daemon must close it (or finish the handshake it made sense of), and
//! after each case a witness session still gets its own message back, the
//! daemon's other session is untouched and the daemon is alive. Port near
//! 27660.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use compat_tests::daemon::Daemon;
use compat_tests::sp_api::sp;
use spread_wire::consts::*;
use spread_wire::endian::ARCH_ENDIAN;
use spread_wire::names::name32;
use spread_wire::Header;

const T: Duration = Duration::from_secs(10);

/// A valid 5.0.1 connect request for `name` (no membership notices).
fn connect_request(name: &str) -> Vec<u8> {
    let mut v = vec![5, 0, 1, 0, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v
}

/// The authentication choice naming NULL.
fn null_choice() -> Vec<u8> {
    let mut c = vec![0u8; 90];
    c[..4].copy_from_slice(b"NULL");
    c
}

/// A frame: header fields as given (native order unless the caller changes
/// the marker), then the group names and the body.
fn frame(type_: u32, sender: &str, num_groups: i32, data_len: i32, groups: &[[u8; 32]], body: &[u8]) -> Vec<u8> {
    let h = Header { type_, sender: name32(sender.as_bytes()), num_groups, hint: ARCH_ENDIAN, data_len };
    let mut v = h.encode().to_vec();
    for g in groups {
        v.extend_from_slice(g);
    }
    v.extend_from_slice(body);
    v
}

/// One hostile connection over the Unix socket: optionally a valid
/// handshake first, then `bytes`, then EOF. Returns what the daemon wrote
/// after the handshake; the daemon must close its end within T.
fn hostile(path: &str, handshake_as: Option<&str>, bytes: &[u8], what: &str) -> Vec<u8> {
    let mut s = UnixStream::connect(path).unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    s.set_read_timeout(Some(T)).unwrap();
    s.set_write_timeout(Some(T)).unwrap();
    if let Some(name) = handshake_as {
        s.write_all(&connect_request(name)).unwrap();
        // Methods: a length byte and the list; accept: ACCEPT_SESSION, the
        // version (3 bytes), the private group's length and name.
        let mut len = [0u8; 1];
        s.read_exact(&mut len).unwrap();
        let mut names = vec![0u8; len[0] as usize];
        s.read_exact(&mut names).unwrap();
        s.write_all(&null_choice()).unwrap();
        let mut acc = [0u8; 5];
        s.read_exact(&mut acc).unwrap();
        assert_eq!(acc[0] as i8 as i32, ACCEPT_SESSION, "{what}: handshake");
        let mut pg = vec![0u8; acc[4] as usize];
        s.read_exact(&mut pg).unwrap();
    }
    // The daemon may close before taking everything: a write error is fine.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{what}: the daemon did not close the connection: {e}"),
    }
    got
}

struct Witness {
    mbox: i32,
    n: u32,
}

impl Witness {
    /// The witness multicasts to its group and gets its message back.
    fn check(&mut self, after: &str) {
        self.n += 1;
        let body = self.n.to_le_bytes();
        assert_eq!(sp().sp_multicast(self.mbox, AGREED_MESS as i32, "wg", 0, &body), 4, "after {after}");
        let deadline = std::time::Instant::now() + T;
        loop {
            let m = sp()
                .sp_receive_by(self.mbox, deadline, 8, 64)
                .unwrap_or_else(|| panic!("witness starved after {after}"));
            assert!(m.ret >= 0, "witness lost its session after {after}: {}", m.ret);
            if m.service_type & REGULAR_MESS as i32 != 0 && m.body == body {
                return;
            }
        }
    }
}

#[test]
fn mutated_and_truncated_handshakes_and_frames_spare_everyone_else() {
    let d = Daemon::start_single("hc", 27660, "").expect("daemon");
    let path = d.unix_path();
    let spread = d.port.to_string();
    let (r, mbox, _) = sp().sp_connect(&spread, Some("witness"), 0, false);
    assert!(r > 0, "witness: {r}");
    assert_eq!(sp().sp_join(mbox, "wg"), 0);
    let mut w = Witness { mbox, n: 0 };
    w.check("the start");
    // A bystander session that only joins: it must still be there at the end.
    let (r, by, _) = sp().sp_connect(&spread, Some("bystand"), 0, true);
    assert!(r > 0);
    assert_eq!(sp().sp_join(by, "bg"), 0);
    let mut cases = 0;

    // 1. The connect request: every byte cut, every field mutated.
    let req = connect_request("hostile");
    for cut in 0..req.len() {
        hostile(&path, None, &req[..cut], &format!("connect request cut at {cut}"));
        cases += 1;
    }
    for pos in 0..req.len() {
        for v in [0u8, 0x7f, 0x80, 0xff] {
            let mut m = req.clone();
            m[pos] = v;
            hostile(&path, None, &m, &format!("connect request byte {pos} = {v:#x}"));
            cases += 1;
        }
        w.check(&format!("connect request byte {pos} mutated"));
    }
    // A name with a NUL, one with control bytes, one of 255 bytes.
    for name in [b"ho\0st".to_vec(), b"\x01\x02\x1b[2J".to_vec(), vec![b'a'; 255]] {
        let mut m = vec![5, 0, 1, 0, name.len() as u8];
        m.extend_from_slice(&name);
        hostile(&path, None, &m, "odd private name");
        cases += 1;
    }
    // 2. The authentication choice: cut at every byte, names mutated.
    let mut hs = req.clone();
    let choice = null_choice();
    for cut in 0..=choice.len() {
        let mut m = connect_request(&format!("c{cut}"));
        m.extend_from_slice(&choice[..cut]);
        hostile(&path, None, &m, &format!("auth choice cut at {cut}"));
        cases += 1;
    }
    for bad in [b"XXXX".to_vec(), vec![0xff; 90], vec![b'N'; 90], b"NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0PWORD".to_vec()]
    {
        let mut c = vec![0u8; 90];
        c[..bad.len()].copy_from_slice(&bad);
        hs.truncate(req.len());
        hs.extend_from_slice(&c);
        hostile(&path, None, &hs, "mutated auth choice");
        cases += 1;
    }
    w.check("the handshake cases");

    // 3. Message frames after a valid handshake.
    let g = name32(b"wg");
    let mut nonul = [b'x'; 32];
    nonul[0] = b'w';
    let me = "#m#hc";
    let other_order = |t: u32| (t & !0x8000_0080) | if ARCH_ENDIAN == 0x8000_0080 { 0 } else { 0x8000_0080 };
    let mut frames: Vec<(String, Vec<u8>)> = vec![
        ("valid".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, 1, 4, &[g], b"okay")),
        ("num_groups 0".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, 0, 4, &[], b"okay")),
        ("num_groups -1".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, -1, 4, &[g], b"okay")),
        ("num_groups i32::MAX".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, i32::MAX, 4, &[g], b"okay")),
        ("num_groups 5000".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, 5000, 4, &[g; 3], b"okay")),
        ("data_len -1".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, 1, -1, &[g], b"okay")),
        ("data_len i32::MAX".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, 1, i32::MAX, &[g], b"okay")),
        ("data_len 200000".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, 1, 200_000, &[g], &[0u8; 1000])),
        ("data_len larger than sent".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, 1, 100, &[g], b"okay")),
        ("other byte order's marker".into(), frame(other_order(AGREED_MESS | ARCH_ENDIAN), me, 1, 4, &[g], b"okay")),
        ("no endian marker".into(), frame(AGREED_MESS, me, 1, 4, &[g], b"okay")),
        ("service type 0".into(), frame(ARCH_ENDIAN, me, 1, 4, &[g], b"okay")),
        // fuzz/ client_frames' finding: delivered, it broke the group's framing.
        ("the REJECT_MESS bit".into(), frame(FIFO_MESS | REJECT_MESS | ARCH_ENDIAN, me, 1, 0, &[g], b"")),
        ("all service bits".into(), frame(0x7fff_ffff | ARCH_ENDIAN, me, 1, 4, &[g], b"okay")),
        ("two services".into(), frame(AGREED_MESS | SAFE_MESS | JOIN_MESS | ARCH_ENDIAN, me, 1, 4, &[g], b"okay")),
        ("wrong sender".into(), frame(AGREED_MESS | ARCH_ENDIAN, "#witness#hc", 1, 4, &[g], b"okay")),
        ("group name without NUL".into(), frame(AGREED_MESS | ARCH_ENDIAN, me, 1, 4, &[nonul], b"okay")),
        ("join a group without NUL".into(), frame(JOIN_MESS | ARCH_ENDIAN, me, 1, 0, &[nonul], b"")),
        ("join with no group".into(), frame(JOIN_MESS | ARCH_ENDIAN, me, 0, 0, &[], b"")),
        ("leave a group never joined".into(), frame(LEAVE_MESS | ARCH_ENDIAN, me, 1, 0, &[g], b"")),
        ("kill naming someone else".into(), frame(KILL_MESS | ARCH_ENDIAN, me, 1, 0, &[name32(b"#witness#hc")], b"")),
        ("all ones header".into(), vec![0xff; 48]),
        ("all zero header".into(), vec![0; 48]),
    ];
    // Every field of the valid frame cut at every byte.
    let valid = frames[0].1.clone();
    for cut in 0..valid.len() {
        frames.push((format!("frame cut at {cut}"), valid[..cut].to_vec()));
    }
    for (what, f) in &frames {
        hostile(&path, Some("m"), f, what);
        cases += 1;
        w.check(what);
    }
    // The witness's group saw only its own messages and the valid frames'
    // sender leaving; the bystander is still a session.
    assert!(sp().sp_poll(by) >= 0, "the bystander's session");
    assert_eq!(sp().sp_multicast(by, AGREED_MESS as i32, "bg", 0, b"last"), 4);
    let m = sp().sp_receive_by(by, std::time::Instant::now() + T, 8, 256).expect("bystander");
    assert!(m.ret >= 0);
    eprintln!("hostile_clients: {cases} hostile connections, the witness served after each");
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(sp().sp_disconnect(w.mbox), 0);
    assert_eq!(sp().sp_disconnect(by), 0);
}
