//! `spread -l y`: the session/membership log file named after the daemon.
//! Port 47220.

mod daemon_util;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use daemon_util::{connect_tcp, connect_unix, IO_TIMEOUT};

const PORT: u16 = 47220;

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

#[test]
fn session_and_membership_lines() {
    let dir = std::env::temp_dir().join(format!("rspread-h10-sesslog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // d0 comes first in the file (index 0) and is not running; this daemon
    // is d1, index 1.
    let conf = format!("Spread_Segment 127.0.0.255:{PORT} {{\n\td0\t127.0.0.9\n\td1\t127.0.0.1\n}}\n");
    std::fs::write(dir.join("spread.conf"), conf).unwrap();
    std::fs::write(dir.join("d1"), "earlier run\n").unwrap();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut run = Run::start(&dir, &["-n", "d1", "-c", "spread.conf", "-l", "y"]);
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

    // C lines: a TCP session and a Unix-socket session.
    let mut alice = connect_tcp(PORT, "alice", true);
    let mut bob = connect_unix(PORT, "bob", true);
    let mut carol = connect_tcp(PORT, "carol", true);
    let l = lines_at_least(&log, 6);
    let c = |i: usize, addr: &str, name: &str| {
        let t = time_of(&l[i]);
        assert_eq!(l[i], format!("C {t:>13} {:>11} {:>3} {addr:<16} {name:<10}", 0, 0));
    };
    c(3, "127.0.0.1", "alice");
    c(4, "localhost", "bob");
    c(5, "127.0.0.1", "carol");

    // alice leaves with SP_disconnect: the daemon closes once it is done.
    let pg = alice.pg.clone();
    alice.mcast(0x40000, &[&pg], 0, b"");
    let mut rest = Vec::new();
    let _ = alice.s.read_to_end(&mut rest);
    let l = lines_at_least(&log, 7);
    let t = time_of(&l[6]);
    assert_eq!(l[6], format!("D {t:>13} {:>11} {:>3} {:<46} {:<10} 0", 0, 0, "127.0.0.1", "alice"));

    // bob and carol share a group; bob's socket just closes: carol sees him
    // go, after which his D line is written.
    bob.join("g");
    carol.join("g");
    let _ = bob.recv();
    let _ = carol.recv();
    let _ = bob.recv();
    drop(bob);
    let m = carol.recv();
    assert_eq!(m.sender, "g", "{m:?}");
    let l = lines_at_least(&log, 8);
    let t = time_of(&l[7]);
    assert_eq!(l[7], format!("D {t:>13} {:>11} {:>3} {:<46} {:<10} 0", 0, 0, "localhost", "bob"));
    run.stop();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        8,
        "nothing more for a session still open at exit"
    );
}

#[test]
fn log_file_that_cannot_be_opened_is_fatal() {
    let dir = std::env::temp_dir().join(format!("rspread-h10-sesslog-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("d1")).unwrap();
    let conf = format!("Spread_Segment 127.0.0.255:{} {{\n\td1\t127.0.0.1\n}}\n", PORT + 1);
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
    assert!(!Path::new(&format!("/tmp/{}", PORT + 1)).exists(), "socket removed before the fatal exit");
    let _ = std::fs::remove_dir_all(&dir);
}
