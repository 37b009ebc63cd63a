//! The Flush layer's frames byte for byte (client spec §5.5, TV-25/TV-26)
//! through a scripted fake daemon: the FL client is our library
//! (`spread_ffi::fl`, over our `SP_*`), the fake daemon plays `localhost`,
//! checks every frame the client sends and feeds it membership and peer
//! frames exactly as the 5.0.1 daemon would.
//!
//! Ports 24000–24019.

use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use compat_tests::frames::{self, name32};
use compat_tests::hex;
use compat_tests::net::{Conn, Listener};
use spread_ffi::fl;
use spread_ffi::types::{scat_element, scatter};

const FIFO: u32 = 0x04;
const RELIABLE: u32 = 0x02;
const REG_MEMB: u32 = 0x1000;
const CAUSED_BY_JOIN: u32 = 0x100;
const DONT_BLOCK: i32 = 0x1000_0000;
const FLUSH_OK: i16 = -32768;
const FLUSH_RECV: i16 = -32767;
const WOULD_BLOCK: i32 = -25;

/// The view id of the recordings: daemon `localhost`, time 0x6b02f8e5, `index`.
fn gid(index: u32) -> Vec<u8> {
    let mut v = hex::decode("2697c51ce5f8026b").unwrap();
    v.extend_from_slice(&index.to_le_bytes());
    v
}

/// An LE REG_MEMB frame as the daemon sends it for a join (one vs-set naming
/// the joiner).
fn join_memb(group: &str, members: &[&str], gid: &[u8], joiner: &str) -> Vec<u8> {
    let mut body = gid.to_vec();
    for v in [1u32, 0, 1] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    body.extend_from_slice(&name32(joiner.as_bytes()));
    let mut f = frames::raw_header(
        REG_MEMB | CAUSED_BY_JOIN | frames::MARKER,
        group.as_bytes(),
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

/// FLUSH_OK / FLUSH_RECV from `sender` (what it sends and what the daemon
/// delivers: identical bytes on LE).
fn flok(sender: &str, group: &str, mess_type: i16, gid: &[u8]) -> Vec<u8> {
    frames::message(FIFO, sender.as_bytes(), &[group.as_bytes()], mess_type, gid)
}

struct Fake {
    c: Conn,
    deadline: Instant,
}

impl Fake {
    /// Accepts one client and answers its handshake with `private`.
    fn serve(l: &Listener, want_name: &str, private: &str) -> Fake {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut c = l.accept_by(deadline).expect("client connects");
        let req = c.read_exact_by(5, deadline).expect("connect request");
        // 5.0.1, membership always on for FL, no priority
        assert_eq!(&req[..4], &[5, 0, 1, 1]);
        let name = c.read_exact_by(req[4] as usize, deadline).expect("name");
        assert_eq!(name, want_name.as_bytes());
        c.write_all(b"\x05NULL ").unwrap();
        c.read_exact_by(90, deadline).expect("auth choice");
        let mut acc = vec![1, 5, 0, 1, private.len() as u8];
        acc.extend_from_slice(private.as_bytes());
        c.write_all(&acc).unwrap();
        Fake { c, deadline }
    }

    /// Reads exactly the frame `want` and compares it byte for byte.
    fn expect(&mut self, what: &str, want: &[u8]) -> Vec<u8> {
        let got = self
            .c
            .read_exact_by(want.len(), self.deadline)
            .unwrap_or_else(|e| panic!("{what}: client frame not received: {e:?}"));
        assert_eq!(got, want, "{what}:\n{}", hex::diff(want, &got));
        got
    }

    fn send(&mut self, b: &[u8]) {
        self.c.write_all(b).unwrap();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    ret: i32,
    service: i32,
    sender: String,
    groups: Vec<String>,
    mess_type: i16,
    endian: i32,
    body: Vec<u8>,
    more: i32,
}

/// Starts FL_receive (room for 10 groups and 1000 bytes) on another thread;
/// the result arrives on the channel.
fn fl_recv_start(mbox: c_int, service_in: i32) -> mpsc::Receiver<Got> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut svc = service_in;
        let mut sender = [0 as c_char; 32];
        let mut groups = [[0 as c_char; 32]; 10];
        let mut ng = 0;
        let mut mt: i16 = 0;
        let mut em = 0;
        let mut body = vec![0u8; 1000];
        let mut more = -1;
        // SAFETY: every buffer is live and as large as announced.
        let ret = unsafe {
            fl::FL_receive(
                mbox,
                &mut svc,
                sender.as_mut_ptr(),
                10,
                &mut ng,
                groups.as_mut_ptr(),
                &mut mt,
                &mut em,
                1000,
                body.as_mut_ptr() as *mut c_char,
                &mut more,
            )
        };
        let s = |n: &[c_char; 32]| frames::name_str(&n.map(|c| c as u8));
        let _ = tx.send(Got {
            ret,
            service: svc,
            sender: s(&sender),
            groups: groups[..ng.clamp(0, 10) as usize].iter().map(s).collect(),
            mess_type: mt,
            endian: em,
            body: body[..ret.clamp(0, 1000) as usize].to_vec(),
            more,
        });
    });
    rx
}

/// FL_receive, failing the test if it does not return within 20 s.
fn fl_recv(mbox: c_int, service_in: i32) -> Got {
    wait(fl_recv_start(mbox, service_in))
}

fn wait(rx: mpsc::Receiver<Got>) -> Got {
    rx.recv_timeout(Duration::from_secs(20)).expect("FL_receive returned within 20 s")
}

/// Accepts the client of `user` on `port` while it connects with FL_connect.
fn connect_pair(port: u16, user: &str) -> (Fake, c_int) {
    let l = Listener::tcp(port).unwrap_or_else(|e| panic!("bind {port}: {e}"));
    let want = user.to_string();
    let server = thread::spawn(move || Fake::serve(&l, &want, &format!("#{want}#localhost")));
    let (mbox, private) = fl_connect(port, user);
    assert_eq!(private, format!("#{user}#localhost"));
    (server.join().expect("fake daemon handshake"), mbox)
}

fn fl_connect(port: u16, user: &str) -> (c_int, String) {
    // SAFETY: no arguments.
    unsafe { fl::FL_lib_init() };
    let d = CString::new(format!("{port}@127.0.0.1")).unwrap();
    let u = CString::new(user).unwrap();
    let mut mbox = -1;
    let mut private = [0 as c_char; 32];
    // SAFETY: valid strings and out-buffers.
    let r = unsafe { fl::FL_connect(d.as_ptr(), u.as_ptr(), 0, &mut mbox, private.as_mut_ptr()) };
    assert_eq!(r, 1, "FL_connect");
    (mbox, frames::name_str(&private.map(|c| c as u8)))
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn fl_body(gid: &[u8], names: &[&str]) -> Vec<u8> {
    let mut b = gid.to_vec();
    b.extend_from_slice(&(names.len() as i32).to_ne_bytes());
    for n in names {
        b.extend_from_slice(&name32(n.as_bytes()));
    }
    b
}

/// TV-25: the FLUSH_OK a joining member sends by itself, then its FLUSH_RECV,
/// and the FL membership (pre-4.0 body) it delivers.
#[test]
fn tv25_flush_ok_and_flush_recv_of_a_first_join() {
    let l = Listener::tcp(24000).expect("bind 24000");
    let daemon = thread::spawn(move || {
        let mut f = Fake::serve(&l, "fa", "#fa#localhost");
        f.expect("join", &frames::message(frames::JOIN_MESS, b"#fa#localhost", &[b"fg"], 0, b""));
        f.send(&join_memb("fg", &["#fa#localhost"], &gid(1), "#fa#localhost"));
        // 84 00 00 80 | "#fa#localhost" | 01000000 | 80 00 80 80 | 0c000000 | "fg" | gid
        let mut tv25 = hex::decode("84000080").unwrap();
        tv25.extend_from_slice(&name32(b"#fa#localhost"));
        tv25.extend_from_slice(&hex::decode("01000000800080800c000000").unwrap());
        tv25.extend_from_slice(&name32(b"fg"));
        tv25.extend_from_slice(&hex::decode("2697c51ce5f8026b01000000").unwrap());
        let ok = f.expect("FLUSH_OK (TV-25)", &tv25);
        f.send(&ok);
        let recv = f.expect("FLUSH_RECV", &flok("#fa#localhost", "fg", FLUSH_RECV, &gid(1)));
        assert_eq!(&recv[40..44], &[0x80, 0x01, 0x80, 0x80], "hint of FLUSH_RECV");
        f.send(&recv);
        // then the client leaves: one LEAVE frame
        f.expect("leave", &frames::message(frames::LEAVE_MESS, b"#fa#localhost", &[b"fg"], 0, b""));
        f
    });
    let (mbox, private) = fl_connect(24000, "fa");
    assert_eq!(private, "#fa#localhost");
    let g = c("fg");
    // SAFETY: valid C strings.
    assert_eq!(unsafe { fl::FL_join(mbox, g.as_ptr()) }, 0);
    let v = fl_recv(mbox, 0);
    assert_eq!(
        v,
        Got {
            ret: 48,
            service: (REG_MEMB | CAUSED_BY_JOIN) as i32,
            sender: "fg".into(),
            groups: vec!["#fa#localhost".into()],
            mess_type: 0,
            endian: 0,
            body: fl_body(&gid(1), &["#fa#localhost"]),
            more: 0,
        }
    );
    // SAFETY: plain call.
    assert_eq!(unsafe { fl::FL_more_msgs(mbox) }, 0);
    // The echoed FLUSH_RECV (arrived or not) is consumed inside FL.
    assert_eq!(fl_recv(mbox, DONT_BLOCK).ret, WOULD_BLOCK);
    // SAFETY: valid C string.
    assert_eq!(unsafe { fl::FL_leave(mbox, g.as_ptr()) }, 0);
    let _f = daemon.join().expect("fake daemon script");
    // SAFETY: plain call.
    assert_eq!(unsafe { fl::FL_disconnect(mbox) }, 0);
}

/// Brings `who` into view 2 of `fg` = {fa, fb} (through view 1 = {fa} when
/// `who` is fa). Leaves the fake daemon after the client's FLUSH_RECV for view 2.
fn into_view2(f: &mut Fake, mbox: c_int, who: &str) {
    let me = format!("#{who}#localhost");
    let other = if who == "fa" { "#fb#localhost" } else { "#fa#localhost" };
    let both = ["#fa#localhost", "#fb#localhost"];
    let g = c("fg");
    // SAFETY: valid C string.
    assert_eq!(unsafe { fl::FL_join(mbox, g.as_ptr()) }, 0);
    f.expect("join", &frames::message(frames::JOIN_MESS, me.as_bytes(), &[b"fg"], 0, b""));
    if who == "fa" {
        f.send(&join_memb("fg", &["#fa#localhost"], &gid(1), "#fa#localhost"));
        let pending = fl_recv_start(mbox, 0);
        let ok = f.expect("FLUSH_OK 1", &flok(&me, "fg", FLUSH_OK, &gid(1)));
        f.send(&ok);
        assert_eq!(wait(pending).groups, vec!["#fa#localhost".to_string()]);
        let rc = f.expect("FLUSH_RECV 1", &flok(&me, "fg", FLUSH_RECV, &gid(1)));
        f.send(&rc);
        // fb joins: fa is asked to flush
        f.send(&join_memb("fg", &both, &gid(2), "#fb#localhost"));
        let r = fl_recv(mbox, 0);
        assert_eq!((r.ret, r.service, r.sender.as_str()), (0, 0x2000_0000, "fg"), "FLUSH_REQ");
        // SAFETY: valid C string.
        assert_eq!(unsafe { fl::FL_flush(mbox, g.as_ptr()) }, 0);
        let ok = f.expect("FLUSH_OK 2", &flok(&me, "fg", FLUSH_OK, &gid(2)));
        f.send(&flok(other, "fg", FLUSH_OK, &gid(2)));
        f.send(&ok);
        let v = fl_recv(mbox, 0);
        assert_eq!(v.groups, both.map(String::from).to_vec());
        assert_eq!(v.body, fl_body(&gid(2), &["#fb#localhost"]));
    } else {
        f.send(&join_memb("fg", &both, &gid(2), "#fb#localhost"));
        f.send(&flok(other, "fg", FLUSH_OK, &gid(2)));
        let pending = fl_recv_start(mbox, 0);
        let ok = f.expect("FLUSH_OK 2 (automatic)", &flok(&me, "fg", FLUSH_OK, &gid(2)));
        f.send(&ok);
        let v = wait(pending);
        assert_eq!(v.groups, both.map(String::from).to_vec());
        assert_eq!(v.mess_type, 1, "my index");
        assert_eq!(v.body, fl_body(&gid(2), &["#fb#localhost"]));
    }
    f.expect("FLUSH_RECV 2", &flok(&me, "fg", FLUSH_RECV, &gid(2)));
}

/// TV-26 as sent: a FIFO unicast in VERIFY state is vulnerable and a
/// subgroupcast: `[data][mess_type][gid][reference group]`, type SUBGROUP|FIFO.
fn tv26_frame() -> Vec<u8> {
    let mut v = frames::raw_header(0xc000_0084, b"#fb#localhost", 1, 0x8080_0280, 0x30);
    v.extend_from_slice(&name32(b"#fa#localhost"));
    v.extend_from_slice(b"hi");
    v.extend_from_slice(&[0x0a, 0x00]);
    v.extend_from_slice(&gid(2));
    v.extend_from_slice(&name32(b"fg"));
    v
}

#[test]
fn tv26_vulnerable_unicast_as_sent() {
    let (mut f, mbox) = connect_pair(24001, "fb");
    into_view2(&mut f, mbox, "fb");
    let (g, r) = (c("fg"), c("#fa#localhost"));
    // SAFETY: valid C strings and a 2-byte message.
    let n =
        unsafe { fl::FL_unicast(mbox, FIFO as i32, g.as_ptr(), r.as_ptr(), 10, 2, b"hi".as_ptr() as *const c_char) };
    assert_eq!(n, 2, "only the caller's bytes are counted");
    let sent = f.expect("vulnerable unicast (TV-26)", &tv26_frame());
    assert_eq!(&sent[..4], &[0x84, 0x00, 0x00, 0xc0]);
    assert_eq!(&sent[40..44], &[0x80, 0x02, 0x80, 0x80], "VULNERABLE_MESS on the wire");
    // A scatter of three pieces, still vulnerable: pieces, then the trailer.
    let pieces: [&[u8]; 3] = [b"ab", b"", b"cde"];
    let mut sc = scatter { num_elements: 3, elements: [scat_element { buf: std::ptr::null_mut(), len: 0 }; 100] };
    for (e, p) in sc.elements.iter_mut().zip(pieces) {
        *e = scat_element { buf: p.as_ptr() as *mut c_char, len: p.len() };
    }
    // SAFETY: the scatter points at live slices.
    let n = unsafe { fl::FL_scat_multicast(mbox, RELIABLE as i32, g.as_ptr(), 12, &sc) };
    assert_eq!(n, 5);
    let mut body = b"abcde".to_vec();
    body.extend_from_slice(&12i16.to_le_bytes());
    body.extend_from_slice(&gid(2));
    f.expect("vulnerable scatter multicast", &frames::message(RELIABLE, b"#fb#localhost", &[b"fg"], -32766, &body));
    assert_eq!(sc.num_elements, 3, "the caller's scatter is left as it was");
    // 99 pieces are allowed, 100 are not (FL needs one for its trailer).
    sc.num_elements = 100;
    // SAFETY: as above; FL refuses before reading the elements.
    assert_eq!(unsafe { fl::FL_scat_multicast(mbox, RELIABLE as i32, g.as_ptr(), 12, &sc) }, -13);
    // AGREED traffic is never vulnerable; a plain multicast carries no trailer.
    // SAFETY: as above.
    let n = unsafe { fl::FL_multicast(mbox, 0x10, g.as_ptr(), 7, 2, b"ag".as_ptr() as *const c_char) };
    assert_eq!(n, 2);
    f.expect("agreed multicast", &frames::message(0x10, b"#fb#localhost", &[b"fg"], 7, b"ag"));
    // SAFETY: plain call.
    assert_eq!(unsafe { fl::FL_disconnect(mbox) }, 0);
    f.expect("disconnect", &frames::message(frames::KILL_MESS, b"#fb#localhost", &[b"#fb#localhost"], 0, b""));
}

/// TV-26 as received, from a sender of our byte order and from a big-endian
/// one (the daemon relays the sender's hint and body untouched).
#[test]
fn tv26_vulnerable_unicast_as_received_from_either_byte_order() {
    let (mut f, mbox) = connect_pair(24002, "fa");
    into_view2(&mut f, mbox, "fa");
    f.send(&tv26_frame());
    let r = fl_recv(mbox, 0);
    assert_eq!(
        r,
        Got {
            ret: 2,
            service: 0x4000_0004,
            sender: "#fb#localhost".into(),
            groups: vec!["#fa#localhost".into(), "fg".into()],
            mess_type: 10,
            endian: 0,
            body: b"hi".to_vec(),
            more: 0,
        }
    );
    // Big-endian sender: hint 00 80 02 00, trailer 00 0b and a BE gid.
    let mut be = frames::raw_header(0xc000_0084, b"#fb#localhost", 1, 0x0002_8000, 0x30);
    be.extend_from_slice(&name32(b"#fa#localhost"));
    be.extend_from_slice(b"ho");
    be.extend_from_slice(&[0x00, 0x0b]);
    be.extend_from_slice(&hex::decode("1cc597266b02f8e500000002").unwrap());
    be.extend_from_slice(&name32(b"fg"));
    f.send(&be);
    let r = fl_recv(mbox, 0);
    assert_eq!((r.ret, r.mess_type, r.endian, r.body.as_slice()), (2, 11, 1, &b"ho"[..]), "{r:?}");
    assert_eq!(r.groups, vec!["#fa#localhost".to_string(), "fg".to_string()]);
    // Into a scatter of three pieces (2, 0 and 50 bytes).
    f.send(&frames::message(0x10, b"#fb#localhost", &[b"fg"], 4, b"hello"));
    let (mut p1, mut p3) = ([0u8; 2], [0u8; 50]);
    let mut sc = scatter { num_elements: 3, elements: [scat_element { buf: std::ptr::null_mut(), len: 0 }; 100] };
    sc.elements[0] = scat_element { buf: p1.as_mut_ptr() as *mut c_char, len: 2 };
    sc.elements[2] = scat_element { buf: p3.as_mut_ptr() as *mut c_char, len: 50 };
    // wait (bounded) for the frame, then receive without blocking
    assert!(compat_tests::net::poll_readable(mbox, Instant::now() + Duration::from_secs(10)));
    let mut svc = DONT_BLOCK;
    let mut sender = [0 as c_char; 32];
    let mut groups = [[0 as c_char; 32]; 4];
    let (mut ng, mut mt, mut em, mut more) = (0, 0i16, 0, 0);
    // SAFETY: buffers as announced.
    let r = unsafe {
        fl::FL_scat_receive(
            mbox,
            &mut svc,
            sender.as_mut_ptr(),
            4,
            &mut ng,
            groups.as_mut_ptr(),
            &mut mt,
            &mut em,
            &mut sc,
            &mut more,
        )
    };
    assert_eq!((r, mt, &p1[..], &p3[..3]), (5, 4, &b"he"[..], &b"llo"[..]));
    // A message from outside the view is not delivered.
    let mut stray = tv26_frame();
    stray[4..36].copy_from_slice(&name32(b"#zz#localhost"));
    f.send(&stray);
    f.send(&frames::message(0x10, b"#fb#localhost", &[b"fg"], 3, b"after"));
    let r = fl_recv(mbox, 0);
    assert_eq!((r.body.as_slice(), r.mess_type), (&b"after"[..], 3), "the stray one was dropped");
    // SAFETY: plain call.
    assert_eq!(unsafe { fl::FL_disconnect(mbox) }, 0);
}
