//! `spread -l y`: the session/membership log file named after the daemon.
//! Ports 27300 (and 27301, its token port) and 27302.

mod daemon_util;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use daemon_util::{connect_unix, IO_TIMEOUT};

const PORT: u16 = 27300;

struct Run {
    child: Option<Child>,
    dir: PathBuf,
    log: mpsc::Receiver<String>,
}

impl Run {
    fn start(dir: &Path, args: &[&str]) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spread"))
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spread");
        let (tx, rx) = mpsc::channel();
        for r in
            [Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stdout.take().unwrap())]
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(l) = line else { break };
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        Run { child: Some(child), dir: dir.to_path_buf(), log: rx }
    }

    fn wait_log(&self, pat: &str) {
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match self.log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains(pat) => return,
                Ok(l) => seen.push(l),
                Err(e) => panic!("daemon never logged {pat:?} ({e}); it logged {seen:?}"),
            }
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the pid of the child this test started.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let (tx, rx) = mpsc::channel();
            let pid = c.id() as i32;
            std::thread::spawn(move || {
                let _ = tx.send(c.wait());
            });
            if rx.recv_timeout(IO_TIMEOUT).is_err() {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(format!("/tmp/{PORT}"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Wait (bounded) until the log file has at least `n` lines.
fn lines_at_least(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "log {} has only {lines:?}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The seconds field of a line (after its letter), checked to be 13 wide.
fn time_of(line: &str) -> i64 {
    let f = &line[2..15];
    assert_eq!(f.len(), 13);
    f.trim_start().parse().unwrap_or_else(|_| panic!("no time in {line:?}"))
}

/// The daemon's descriptor of the TCP connection whose client end is bound to
/// `client_port` on 127.0.0.1: its socket inode from `/proc/net/tcp`, then the
/// descriptor of `pid` linked to that inode.
fn daemon_fd_of_tcp_client(pid: u32, client_port: u16) -> Option<i32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{PORT:04X}");
    let remote = format!("0100007F:{client_port:04X}");
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 9 && f[1] == local && f[2] == remote).then(|| f[9].to_string())
    })?;
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten().find_map(|e| {
        let link = std::fs::read_link(e.path()).ok()?;
        (link.to_str() == Some(want.as_str())).then(|| e.file_name().to_str()?.parse().ok())?
    })
}

/// Whether descriptor `fd` of `pid` is a socket.
fn is_socket_fd(pid: u32, fd: i32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .is_ok_and(|l| l.to_str().is_some_and(|s| s.starts_with("socket:[")))
}

/// The columns of a `C` or `D` line after the time: sequence, mailbox,
/// address, name (and for `D` the queued count), checked against the layout.
struct SessLine {
    seq: i64,
    mbox: i32,
    addr: String,
    name: String,
    queued: Option<usize>,
}

fn sess_line(line: &str) -> SessLine {
    let kind = &line[..1];
    let t = time_of(line);
    let f: Vec<&str> = line[15..].split_whitespace().collect();
    let (seq, mbox): (i64, i32) = (f[0].parse().unwrap(), f[1].parse().unwrap());
    let (addr, name) = (f[2].to_string(), f[3].to_string());
    match kind {
        "C" => {
            assert_eq!(f.len(), 4, "{line:?}");
            assert_eq!(line, format!("C {t:>13} {seq:>11} {mbox:>3} {addr:<16} {name:<10}"));
            SessLine { seq, mbox, addr, name, queued: None }
        }
        "D" => {
            assert_eq!(f.len(), 5, "{line:?}");
            let q: usize = f[4].parse().unwrap();
            assert_eq!(line, format!("D {t:>13} {seq:>11} {mbox:>3} {addr:<46} {name:<10} {q}"));
            SessLine { seq, mbox, addr, name, queued: Some(q) }
        }
        _ => panic!("not a session line: {line:?}"),
    }
}

/// A raw TCP client and the local port of its socket.
fn tcp_client(name: &str) -> (daemon_util::Client, u16) {
    let s = daemon_util::tcp(PORT);
    let port = s.local_addr().unwrap().port();
    (daemon_util::handshake(Box::new(s), name, true), port)
}

#[test]
fn session_and_membership_lines() {
    let dir = std::env::temp_dir().join(format!("rspread-h11-sesslog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // d0 comes first in the file (index 0) and is not running; this daemon
    // is d1, index 1.
    let conf = format!("Spread_Segment 127.0.0.255:{PORT} {{\n\td0\t127.0.0.9\n\td1\t127.0.0.1\n}}\n");
    std::fs::write(dir.join("spread.conf"), conf).unwrap();
    std::fs::write(dir.join("d1"), "earlier run\n").unwrap();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut run = Run::start(&dir, &["-n", "d1", "-c", "spread.conf", "-l", "y"]);
    let pid = run.child.as_ref().unwrap().id();
    run.wait_log("serving clients");
    let log = dir.join("d1");
    let head = lines_at_least(&log, 3);
    assert_eq!(head[0], "earlier run", "appended, not truncated");
    let t = time_of(&head[1]);
    assert!(t >= before, "{head:?}");
    assert_eq!(head[1], format!("B {t:>13}"));
    let tm = time_of(&head[2]);
    let ring = &head[2][16..29];
    assert!(ring.trim_start().parse::<i64>().unwrap() >= before, "{head:?}");
    assert_eq!(head[2], format!("M {tm:>13} {ring} {:>11} >  --  1", 0));

    // C lines: TCP and Unix-socket sessions. The mailbox is the daemon's
    // descriptor of the connection; nothing has been ordered yet (sequence 0).
    let (mut alice, alice_port) = tcp_client("alice");
    let mut bob = connect_unix(PORT, "bob", true);
    let (mut carol, carol_port) = tcp_client("carol");
    let l = lines_at_least(&log, 6);
    let (ca, cb, cc) = (sess_line(&l[3]), sess_line(&l[4]), sess_line(&l[5]));
    for (c, addr, name) in [(&ca, "127.0.0.1", "alice"), (&cb, "localhost", "bob"), (&cc, "127.0.0.1", "carol")] {
        assert_eq!((c.seq, c.addr.as_str(), c.name.as_str()), (0, addr, name), "{l:?}");
    }
    assert_eq!(Some(ca.mbox), daemon_fd_of_tcp_client(pid, alice_port), "{l:?}");
    assert_eq!(Some(cc.mbox), daemon_fd_of_tcp_client(pid, carol_port), "{l:?}");
    assert!(cb.mbox > 2 && is_socket_fd(pid, cb.mbox), "{l:?}");
    let mboxes = [ca.mbox, cb.mbox, cc.mbox];
    assert!(mboxes.iter().all(|&m| mboxes.iter().filter(|&&x| x == m).count() == 1), "{mboxes:?}");

    // alice leaves with SP_disconnect: the daemon closes once it is done.
    let pg = alice.pg.clone();
    alice.mcast(0x40000, &[&pg], 0, b"");
    let mut rest = Vec::new();
    let _ = alice.s.read_to_end(&mut rest);
    let l = lines_at_least(&log, 7);
    let d = sess_line(&l[6]);
    assert_eq!(
        (d.seq, d.mbox, d.addr.as_str(), d.name.as_str(), d.queued),
        (0, ca.mbox, "127.0.0.1", "alice", Some(0))
    );

    // bob and carol share a group; bob's socket just closes: carol sees him
    // go, after which his D line is written. Ordered so far: alice's KILL and
    // two joins.
    bob.join("g");
    carol.join("g");
    let _ = bob.recv();
    let _ = carol.recv();
    let _ = bob.recv();
    drop(bob);
    let m = carol.recv();
    assert_eq!(m.sender, "g", "{m:?}");
    let l = lines_at_least(&log, 8);
    let d = sess_line(&l[7]);
    assert_eq!((d.mbox, d.addr.as_str(), d.name.as_str(), d.queued), (cb.mbox, "localhost", "bob", Some(0)));
    // Two daemons are configured, so this one runs the token ring (alone):
    // the seq counts ring packets, and the three messages may share one.
    assert!((1..=3).contains(&d.seq), "{l:?}");

    // vic (Unix socket) joins g2 and reads nothing; fl joins g2 and sends 40
    // messages of 100 KB, reading its own copies back. The kernel holds only
    // a few of vic's; the rest wait in the daemon when vic disconnects.
    let mut vic = connect_unix(PORT, "vic", true);
    vic.join("g2");
    let (mut fl, fl_port) = tcp_client("fl");
    fl.join("g2");
    let l = lines_at_least(&log, 10);
    let (cv, cf) = (sess_line(&l[8]), sess_line(&l[9]));
    assert_eq!((cv.name.as_str(), cf.name.as_str()), ("vic", "fl"));
    assert!(cv.seq >= 1 && cf.seq >= cv.seq, "{l:?}");
    assert_eq!(Some(cf.mbox), daemon_fd_of_tcp_client(pid, fl_port), "{l:?}");
    assert!(is_socket_fd(pid, cv.mbox), "{l:?}");
    let body = vec![7u8; 100_000];
    const FLOOD: usize = 40;
    for _ in 0..FLOOD {
        fl.mcast(0x2, &["g2"], 0, &body);
    }
    let mut own = 0;
    for _ in 0..FLOOD + 10 {
        if fl.recv().body.len() == body.len() {
            own += 1;
            if own == FLOOD {
                break;
            }
        }
    }
    assert_eq!(own, FLOOD);
    let pg = vic.pg.clone();
    vic.mcast(0x40000, &[&pg], 0, b"");
    let l = lines_at_least(&log, 11);
    let d = sess_line(&l[10]);
    assert_eq!((d.mbox, d.addr.as_str(), d.name.as_str()), (cv.mbox, "localhost", "vic"), "{l:?}");
    let q = d.queued.unwrap();
    assert!((20..=FLOOD + 2).contains(&q), "vic left with {q} messages queued: {l:?}");
    // The 40 messages were ordered since vic connected, each in 70 packets
    // (100,080 bytes in 1,432-byte elements), and then maybe the two joins.
    let flood_packets = FLOOD as i64 * 70;
    assert!((cv.seq + flood_packets..=cv.seq + flood_packets + 2).contains(&d.seq), "{l:?}");
    drop(vic);

    // slow (Unix socket) joins g3 and reads nothing; fl sends small messages
    // to g3 until the daemon kills slow as a slow reader: at least
    // MaxSessionMessages (1000 by default) were queued for it.
    let mut slow = connect_unix(PORT, "slow", true);
    slow.join("g3");
    let l = lines_at_least(&log, 12);
    let cs = sess_line(&l[11]);
    assert_eq!(cs.name, "slow");
    let small = vec![1u8; 1000];
    let mut sent = 0;
    for _ in 0..50 {
        for _ in 0..100 {
            fl.mcast(0x2, &["g3"], 0, &small);
        }
        sent += 100;
        if std::fs::read_to_string(&log).unwrap_or_default().lines().count() >= 13 {
            break;
        }
    }
    let l = lines_at_least(&log, 13);
    let d = sess_line(&l[12]);
    assert_eq!((d.mbox, d.addr.as_str(), d.name.as_str()), (cs.mbox, "localhost", "slow"), "{l:?}");
    let q = d.queued.unwrap();
    assert!((1000..=sent).contains(&q), "slow was killed with {q} queued after {sent} sent: {l:?}");
    assert!(d.seq > cs.seq + 1000, "{l:?}");
    drop(slow);

    run.stop();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        13,
        "nothing more for sessions still open at exit (carol, fl)"
    );
    drop((carol, fl));
}

#[test]
fn log_file_that_cannot_be_opened_is_fatal() {
    let dir = std::env::temp_dir().join(format!("rspread-h11-sesslog-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("d1")).unwrap();
    let conf = format!("Spread_Segment 127.0.0.255:{} {{\n\td1\t127.0.0.1\n}}\n", PORT + 2);
    std::fs::write(dir.join("spread.conf"), conf).unwrap();
    // A directory named like the log file: opening it for appending fails.
    let out = Command::new(env!("CARGO_BIN_EXE_spread"))
        .args(["-n", "d1", "-c", "spread.conf", "-l", "y"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("Log_init: error (Is a directory) could not open file d1\n"), "{text}");
    assert!(text.ends_with("Exit caused by Alarm!\n"), "{text}");
    assert!(!Path::new(&format!("/tmp/{}", PORT + 2)).exists(), "socket removed before the fatal exit");
    let _ = std::fs::remove_dir_all(&dir);
}
