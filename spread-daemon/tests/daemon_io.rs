//! Driver-level tests: the built `spread` binary on ports 22000–22199 with raw
//! clients over TCP and the Unix socket.

mod daemon_util;
use daemon_util::*;

use std::collections::HashMap;
use std::io::{Read, Write};

const AGREED: u32 = 0x10;
const REG_JOIN: u32 = 0x8000_1180;
const REG_DISCONNECT: u32 = 0x8000_1480;

#[test]
fn connect_join_multicast_roundtrip_tcp_and_unix() {
    let _serial = serial();
    let mut d = Daemon::start(22010, "");
    let mut a = connect_tcp(22010, "alice", true);
    assert_eq!(a.pg, "#alice#d1");
    let mut b = connect_unix(22010, "bob", true);
    assert_eq!(b.pg, "#bob#d1");
    a.join("g1");
    let m = a.recv();
    assert_eq!(m.type_, REG_JOIN);
    assert_eq!(m.groups, vec!["#alice#d1"]);
    b.join("g1");
    for c in [&mut a, &mut b] {
        let m = c.recv();
        assert_eq!(m.type_, REG_JOIN);
        assert_eq!(m.sender, "g1");
        assert_eq!(m.groups, vec!["#alice#d1", "#bob#d1"]);
        // gid: (VID of d1, ring time, index 2); one vs-set with the joiner
        let body = &m.body;
        assert_eq!(u32::from_le_bytes(body[0..4].try_into().unwrap()), 1_552_775_919);
        assert_eq!(i32::from_le_bytes(body[8..12].try_into().unwrap()), 2);
        assert_eq!(&body[12..24], &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&body[24..31], b"#bob#d1");
    }
    a.mcast(AGREED, &["g1"], 7, b"hello");
    let want = frame(AGREED, "#alice#d1", &["g1"], 7, b"hello");
    assert_eq!(a.recv().raw, want);
    assert_eq!(b.recv().raw, want);
    // SP_disconnect from bob over the Unix socket.
    b.mcast(0x40000, &["#bob#d1"], 0, b"");
    let m = a.recv();
    assert_eq!(m.type_, REG_DISCONNECT);
    let mut rest = Vec::new();
    let r = b.s.read_to_end(&mut rest);
    assert!(r.is_ok() && rest.is_empty(), "bob sees a plain EOF: {r:?} {rest:?}");
    // SIGTERM: clean exit, Unix socket removed.
    assert!(d.unix_path().exists());
    let st = d.stop(libc::SIGTERM);
    assert!(st.success(), "{st:?}");
    assert!(!d.unix_path().exists());
}

#[test]
fn two_hundred_clients_hundred_groups() {
    let _serial = serial();
    let _d = Daemon::start(22020, "");
    let groups: Vec<String> = (0..100).map(|i| format!("grp{i}")).collect();
    let gref: Vec<&str> = groups.iter().map(|s| s.as_str()).collect();
    let mut clients: Vec<Client> = (0..200).map(|i| connect_tcp(22020, &format!("c{i}"), false)).collect();
    let mut watcher = connect_unix(22020, "watch", true);
    watcher.join("grp0");
    assert_eq!(watcher.recv().type_, REG_JOIN);
    // Every client joins every group (one write of 100 joins).
    for c in clients.iter_mut() {
        let mut buf = Vec::new();
        for g in &groups {
            buf.extend(frame(0x10000, &c.pg, &[g], 0, b""));
        }
        c.send(&buf);
    }
    // The watcher sees 200 joins in grp0, the last one listing 201 members.
    let mut last = None;
    for _ in 0..200 {
        let m = watcher.recv();
        assert_eq!(m.type_, REG_JOIN);
        last = Some(m);
    }
    let last = last.unwrap();
    assert_eq!(last.groups.len(), 201);
    let mut sorted = last.groups.clone();
    sorted.sort();
    assert_eq!(last.groups, sorted, "members in name order");
    assert_eq!(i32::from_le_bytes(last.body[8..12].try_into().unwrap()), 201);
    // Each client sends one message to all 100 groups: everyone gets exactly
    // one copy of each (multigroup dedupe).
    for (i, c) in clients.iter_mut().enumerate() {
        c.mcast(AGREED, &gref, 1, format!("m{i}").as_bytes());
    }
    for c in clients.iter_mut() {
        let mut seen = HashMap::new();
        for _ in 0..200 {
            let m = c.recv();
            assert_eq!(m.groups.len(), 100);
            *seen.entry(m.sender.clone()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 200);
        assert!(seen.values().all(|&n| n == 1));
    }
    for _ in 0..200 {
        assert_eq!(watcher.recv().groups.len(), 100);
    }
}

#[test]
fn slow_reader_killed_fast_reader_keeps_stream() {
    let _serial = serial();
    let _d = Daemon::start(22030, "MaxSessionMessages = 200\n");
    let mut snd = connect_tcp(22030, "snd", false);
    let mut fast = connect_tcp(22030, "fast", true);
    // The slow reader never reads; a small receive buffer fills quickly.
    let slow_sock = tcp(22030);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&slow_sock);
    let v: i32 = 4096;
    // SAFETY: setsockopt on our own socket with a valid int.
    unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &v as *const i32 as *const libc::c_void, 4);
    }
    let mut slow = handshake(Box::new(slow_sock), "slow", false);
    fast.join("g");
    assert_eq!(fast.recv().type_, REG_JOIN);
    slow.join("g");
    assert_eq!(fast.recv().type_, REG_JOIN);
    const N: u32 = 5_000;
    const WINDOW: u32 = 100;
    // The fast reader reports its progress; the sender keeps at most two
    // windows outstanding, so "fast" means at most 200 messages behind.
    let (progress_tx, progress_rx) = std::sync::mpsc::channel::<u32>();
    let reader = std::thread::spawn(move || {
        let mut next = 0u32;
        let mut since = 0u32;
        let mut disconnect_seen = false;
        while next < N || !disconnect_seen {
            let m = match fast.try_recv() {
                Ok(m) => m,
                Err(e) => panic!(
                    "fast reader lost its connection after {next} messages (disconnect seen: {disconnect_seen}): {e}"
                ),
            };
            if m.type_ == REG_DISCONNECT {
                assert_eq!(&m.body[24..32], b"#slow#d1");
                disconnect_seen = true;
                continue;
            }
            assert_eq!(m.body.len(), 1000);
            assert_eq!(u32::from_le_bytes(m.body[0..4].try_into().unwrap()), next, "in order, nothing lost");
            next += 1;
            since += 1;
            if since == WINDOW {
                since = 0;
                let _ = progress_tx.send(next);
            }
        }
        next
    });
    let mut body = vec![7u8; 1000];
    let mut acked = 0u32;
    for w in 0..N / WINDOW {
        while acked + 2 * WINDOW < (w + 1) * WINDOW {
            acked = progress_rx.recv_timeout(IO_TIMEOUT).expect("fast reader progress");
        }
        let mut batch = Vec::new();
        for i in w * WINDOW..(w + 1) * WINDOW {
            body[0..4].copy_from_slice(&i.to_le_bytes());
            batch.extend(frame(AGREED, "#snd#d1", &["g"], 0, &body));
        }
        snd.send(&batch);
    }
    assert_eq!(reader.join().unwrap(), N);
    // The slow reader's session is gone (its name is free again). Its socket
    // is not drained here: with a 4 KiB receive window the kernel would
    // trickle the backlog through zero-window probes for seconds.
    let again = connect_tcp(22030, "slow", false);
    assert_eq!(again.pg, "#slow#d1");
    drop(slow);
}

#[test]
fn restart_binds_again_at_once() {
    let _serial = serial();
    let mut d = Daemon::start(22040, "");
    let mut clients: Vec<Client> = (0..10).map(|i| connect_tcp(22040, &format!("c{i}"), true)).collect();
    for c in clients.iter_mut() {
        c.join("g");
    }
    // Stop the daemon while the clients are connected: its side of every
    // connection goes to TIME_WAIT.
    let dir = d.dir.clone();
    assert!(d.stop(libc::SIGTERM).success());
    // Keep the directory: start again right away, same port.
    std::mem::forget(d);
    let d2 = Daemon::start_in(22040, dir.clone());
    let mut c = connect_tcp(22040, "again", true);
    assert_eq!(c.pg, "#again#d1");
    c.join("g");
    let m = c.recv();
    assert_eq!(m.groups, vec!["#again#d1"]);
    drop(clients);
    // SIGKILL leaves the Unix socket file behind; the next start replaces it.
    let mut d2 = d2;
    let _ = d2.stop(libc::SIGKILL);
    assert!(std::path::Path::new("/tmp/22040").exists());
    std::mem::forget(d2);
    let _d3 = Daemon::start_in(22040, dir);
    let u = connect_unix(22040, "unixagain", false);
    assert_eq!(u.pg, "#unixagain#d1");
}

#[test]
fn nine_hundred_ninety_seven_sessions_then_reject_quota() {
    let _serial = serial();
    raise_fd_limit(4096);
    let _d = Daemon::start(22050, "");
    let mut clients = Vec::new();
    for i in 0..997 {
        let c = if i % 2 == 0 {
            connect_tcp(22050, &format!("q{i}"), false)
        } else {
            connect_unix(22050, &format!("q{i}"), false)
        };
        clients.push(c);
    }
    // The 998th gets one byte, REJECT_QUOTA, and EOF.
    let mut s = tcp(22050);
    let mut b = Vec::new();
    s.read_to_end(&mut b).unwrap();
    assert_eq!(b, vec![0xfd]);
    // One leaves (SP_disconnect): there is room again.
    let mut last = clients.pop().unwrap();
    let pg = last.pg.clone();
    last.mcast(0x40000, &[&pg], 0, b"");
    let mut rest = Vec::new();
    let _ = last.s.read_to_end(&mut rest);
    let c = connect_tcp(22050, "again", false);
    assert_eq!(c.pg, "#again#d1");
}

#[test]
fn pword_authentication_over_tcp() {
    let _serial = serial();
    // DES crypt("secret", "ab")
    let extra = "AllowedAuthMethods = \"PWORD\"\n";
    // Like the stock 5.0.1 build, the configuration may not know PWORD.
    let conf = spread_daemon::config::parse_str(&conf_text(22060, extra), "test").unwrap();
    if !conf.auth.allowed.iter().any(|m| m == "PWORD") {
        eprintln!("the configuration does not accept PWORD; skipping");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rspread-h5-22060-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spread.conf"), conf_text(22060, extra)).unwrap();
    std::fs::write(dir.join("spread.access_pword"), "# users\nalice:abNANd1rDfiNc\n").unwrap();
    let _d = Daemon::start_in(22060, dir);
    let login = |user: &str, pw: &str| -> Vec<u8> {
        let mut s = tcp(22060);
        s.write_all(b"\x05\x00\x01\x01\x01a").unwrap();
        let mut list = [0u8; 7];
        s.read_exact(&mut list).unwrap();
        assert_eq!(&list, b"\x06PWORD ");
        let mut c = [0u8; 90];
        c[..5].copy_from_slice(b"PWORD");
        s.write_all(&c).unwrap();
        let mut creds = [0u8; 40];
        creds[..user.len()].copy_from_slice(user.as_bytes());
        creds[32..32 + pw.len()].copy_from_slice(pw.as_bytes());
        s.write_all(&creds).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        rest
    };
    // The daemon closes after a failure; after a success the session stays
    // open, so read only what a success sends.
    assert_eq!(login("alice", "wrong"), b"\x00\xf7");
    assert_eq!(login("bob", "secret"), b"\x00\xf7");
    let mut s = tcp(22060);
    s.write_all(b"\x05\x00\x01\x01\x01a").unwrap();
    let mut list = [0u8; 7];
    s.read_exact(&mut list).unwrap();
    let mut c = [0u8; 90];
    c[..5].copy_from_slice(b"PWORD");
    s.write_all(&c).unwrap();
    let mut creds = [0u8; 40];
    creds[..5].copy_from_slice(b"alice");
    creds[32..38].copy_from_slice(b"secret");
    s.write_all(&creds).unwrap();
    let mut ok = [0u8; 1 + 5 + 5];
    s.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"\x01\x01\x05\x00\x01\x05#a#d1");
}

/// `SocketPortReuse = OFF` is honoured: while the stopped daemon's side of a
/// connection still lingers (FIN_WAIT/TIME_WAIT), a restart without
/// SO_REUSEADDR cannot bind and says so (the default, shown in
/// `restart_binds_again_at_once`, binds at once).
#[test]
fn socket_port_reuse_off_is_honoured() {
    let _serial = serial();
    // A port of this test's range that a listener without SO_REUSEADDR can
    // bind now: an earlier run of this test (or any program) may have left a
    // connection in TIME_WAIT on one of them for a minute.
    let port = (22070..22100)
        .step_by(2)
        .find(|&p| bindable_without_reuse(p))
        .expect("every port of 22070..22100 has a lingering TCP connection");
    let mut d = Daemon::start(port, "SocketPortReuse = OFF");
    let mut c = connect_tcp(port, "tw", true);
    c.join("g");
    let _ = c.recv();
    let dir = d.dir.clone();
    assert!(d.stop(libc::SIGTERM).success());
    std::mem::forget(d);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spread"))
        .args(["-n", "d1", "-c"])
        .arg(dir.join("spread.conf"))
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn spread");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon bound its port although SocketPortReuse = OFF and a connection lingers");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    child.stdout.take().unwrap().read_to_string(&mut err).unwrap();
    drop(c);
    assert!(!status.success());
    assert!(err.contains("Address already in use"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether a TCP listener on 127.0.0.1:`port` binds without SO_REUSEADDR
/// (what the daemon does under `SocketPortReuse = OFF`). The Rust standard
/// library always sets SO_REUSEADDR, so the probe uses the socket calls.
fn bindable_without_reuse(port: u16) -> bool {
    // SAFETY: plain socket calls on a descriptor owned here and closed below;
    // the address is a fully initialised sockaddr_in of the size passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return false;
        }
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_port = port.to_be();
        a.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let ok = libc::bind(fd, &a as *const _ as *const libc::sockaddr, std::mem::size_of_val(&a) as u32) == 0;
        libc::close(fd);
        ok
    }
}

/// 1200 TCP connections that never finish their handshake take no session
/// slot (`engine::admission`): most never send a byte, every fourth sends its
/// connect request and stops. The daemon holds at most its connect budget of
/// them, evicting the oldest; real clients connect at once, a witness
/// session keeps its stream; and the ones that are left are closed after
/// the connect (2 s) or handshake (10 s) timeout.
#[test]
fn silent_connections_take_no_session_slot() {
    let _serial = serial();
    raise_fd_limit(4096);
    let _d = Daemon::start(22110, "");
    let mut witness = connect_unix(22110, "witness", true);
    witness.join("g");
    assert_eq!(witness.recv().type_, REG_JOIN);
    let mut storm = Vec::new();
    for i in 0..1200 {
        let mut s = tcp(22110);
        if i % 4 == 0 {
            let name = format!("h{i}");
            let mut req = vec![5, 0, 1, 0, name.len() as u8];
            req.extend_from_slice(name.as_bytes());
            s.write_all(&req).unwrap();
        }
        storm.push(s);
    }
    // Real clients still get sessions: more than the 997 slots minus the storm.
    let mut real = Vec::new();
    for i in 0..20 {
        let c = connect_tcp(22110, &format!("real{i}"), false);
        assert_eq!(c.pg, format!("#real{i}#d1"));
        real.push(c);
    }
    witness.mcast(AGREED, &["g"], 1, b"still served");
    let m = witness.recv();
    assert_eq!((m.type_ & AGREED, &m.body[..]), (AGREED, &b"still served"[..]));
    // Every silent connection is closed by the daemon: the oldest evicted
    // at once, the rest after the connect timeout (2 s; IO_TIMEOUT bounds each read).
    // (A half-open one may have got the method list first, or a reset if it
    // was evicted before its request was read.)
    for (i, s) in storm.iter_mut().enumerate() {
        s.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) if i % 4 == 0 || got.is_empty() => {}
            Ok(_) => panic!("silent connection {i} got {got:?}"),
            // Closed with its request still unread: a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && i % 4 == 0 => {}
            Err(e) => panic!("connection {i} was not closed: {e}"),
        }
    }
    // The real sessions are unaffected.
    for c in &mut real {
        c.join("h");
    }
    witness.mcast(AGREED, &["g"], 2, b"after");
    assert_eq!(&witness.recv().body[..], b"after");
}
