//! The session/membership log of `spread -l y`.
//!
//! A plain text file named after the daemon, created (append mode) in the
//! working directory — after a privilege drop that is the runtime directory.
//! One line per event, in the layout of a 5.0.1 build (its
//! `SPREAD_PROTOCOL` is 3, so every line carries the ring's highest sequence
//! number):
//!
//! ```text
//! B <time:13>
//! M <time:13> <ring time:13> <seq:11> >  <one column per configured daemon>
//! C <time:13> <seq:11> <mbox:3> <address:-16> <name:-10>
//! D <time:13> <seq:11> <mbox:3> <address:-46> <name:-10> <queued messages>
//! ```
//!
//! `B` starts a run, `M` records an installed membership (each configured
//! daemon, segment by segment, shows ` --` when absent; every present one shows
//! the configuration index of the *first* present daemon, as the original
//! prints it), `C` a session that completed its handshake, `D` a session that
//! went away. The address of a Unix-socket session is `localhost` (what the C
//! library's numeric `getnameinfo` gives for `AF_UNIX`).
//!
//! The original closes and reopens the file every ten seconds and after each
//! line so that readers see complete lines; this writer flushes after every
//! line, which readers cannot tell apart.
//!
//! `C`/`D` lines come from the engine's session observer ([`observe`], see
//! [`crate::engine::SessionNote`]): the mailbox column is the session's
//! socket descriptor, the sequence column the ordering layer's highest
//! delivered sequence number at that moment, and the last column of a `D`
//! line the messages still queued for the session when it was killed or
//! sent its KILL (`SP_disconnect`). A session that never completed its
//! handshake gets no line; one still open when the daemon stops gets no `D`
//! line. The daemon writes one `M` line at start (it is its own ring at
//! once); a ring protocol calls [`log_membership`] for every later regular
//! membership.
//!
//! Known difference: the original's sequence numbers count ring packets
//! (a large message takes several), this engine's count messages, so the
//! sequence columns agree only in kind.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::SessionNote;

/// Address text of a session without an IP peer (Unix socket).
pub const UNIX_PEER: &str = "localhost";

/// The open log file.
pub struct SessLog {
    out: Box<dyn Write + Send>,
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Text of a peer address for `C`/`D` lines: the numeric host only.
pub fn peer_text(peer: Option<&SocketAddr>) -> String {
    match peer {
        Some(SocketAddr::V4(a)) => a.ip().to_string(),
        Some(SocketAddr::V6(a)) => {
            if a.scope_id() != 0 {
                format!("{}%{}", a.ip(), scope_name(a.scope_id()))
            } else {
                a.ip().to_string()
            }
        }
        None => UNIX_PEER.to_string(),
    }
}

fn scope_name(id: u32) -> String {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(id, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return id.to_string();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// `B` line.
pub fn begin_line(time: i64) -> String {
    format!("B {time:>13}\n")
}

/// `M` line. `columns` lists, in segment order, whether each configured
/// daemon is in the membership together with its configuration index.
pub fn membership_line(time: i64, ring_time: i32, seq: u32, columns: &[(usize, bool)]) -> String {
    let mut s = format!("M {time:>13} {ring_time:>13} {:>11} > ", seq as i32);
    let first = columns.iter().find(|c| c.1).map(|c| c.0);
    for &(_, present) in columns {
        match (present, first) {
            (true, Some(f)) => s.push_str(&format!(" {f:>2}")),
            _ => s.push_str(" --"),
        }
    }
    s.push('\n');
    s
}

/// `C` line.
pub fn connect_line(time: i64, seq: u32, mbox: i32, addr: &str, name: &str) -> String {
    format!("C {time:>13} {:>11} {mbox:>3} {addr:<16} {name:<10}\n", seq as i32)
}

/// `D` line.
pub fn disconnect_line(time: i64, seq: u32, mbox: i32, addr: &str, name: &str, queued: usize) -> String {
    format!("D {time:>13} {:>11} {mbox:>3} {addr:<46} {name:<10} {queued}\n", seq as i32)
}

impl SessLog {
    /// Open (create, append) `file_name` in the working directory and write
    /// the `B` line.
    pub fn open(file_name: impl AsRef<std::path::Path>) -> io::Result<SessLog> {
        let f: File = OpenOptions::new().create(true).append(true).open(file_name)?;
        let mut l = SessLog { out: Box::new(f) };
        l.line(&begin_line(now_secs()))?;
        Ok(l)
    }

    /// A log writing to any sink (tests).
    pub fn with_writer(w: Box<dyn Write + Send>) -> SessLog {
        SessLog { out: w }
    }

    fn line(&mut self, s: &str) -> io::Result<()> {
        self.out.write_all(s.as_bytes())?;
        self.out.flush()
    }

    pub fn membership(&mut self, ring_time: i32, seq: u32, columns: &[(usize, bool)]) {
        let _ = self.line(&membership_line(now_secs(), ring_time, seq, columns));
    }

    pub fn connect(&mut self, seq: u32, mbox: i32, peer: Option<&SocketAddr>, name: &str) {
        let _ = self.line(&connect_line(now_secs(), seq, mbox, &peer_text(peer), name));
    }

    pub fn disconnect(&mut self, seq: u32, mbox: i32, peer: Option<&SocketAddr>, name: &str, queued: usize) {
        let _ = self.line(&disconnect_line(now_secs(), seq, mbox, &peer_text(peer), name, queued));
    }
}

/// The columns of an `M` line: every configured daemon, segment by segment,
/// with its configuration index and whether its VID is among `members`.
pub fn membership_columns(conf: &crate::config::Config, members: &[u32]) -> Vec<(usize, bool)> {
    conf.segments
        .iter()
        .flat_map(|s| s.daemons.iter())
        .map(|&p| (p, conf.daemons.get(p).is_some_and(|d| members.contains(&d.vid))))
        .collect()
}

/// Write an `M` line to the installed log (if `-l y` opened one) for a
/// regular membership of the daemons with these VIDs, formed at `ring_time`
/// (`memb_id.time`), with `seq` the ring's highest sequence number. The ring
/// calls this each time it installs a regular configuration.
pub fn log_membership(conf: &crate::config::Config, members: &[u32], ring_time: i32, seq: u32) {
    let cols = membership_columns(conf, members);
    with_active(|l| l.membership(ring_time, seq, &cols));
}

/// The log of this process, once `-l y` has opened it.
static ACTIVE: Mutex<Option<SessLog>> = Mutex::new(None);
/// Make `log` the process's session log (written by [`observe`] and
/// [`log_membership`]).
pub fn install(log: SessLog) {
    if let Ok(mut g) = ACTIVE.lock() {
        *g = Some(log);
    }
}

/// Run `f` on the installed log, if any.
pub fn with_active(f: impl FnOnce(&mut SessLog)) {
    if let Ok(mut g) = ACTIVE.lock() {
        if let Some(l) = g.as_mut() {
            f(l);
        }
    }
}

/// The engine's session observer for `-l y` (install it with
/// [`crate::engine::Engine::set_session_observer`]): writes the `C` and `D`
/// lines to the installed log, if any.
pub fn observe(note: SessionNote<'_>) {
    match note {
        SessionNote::Connected { mailbox, peer, name, highest_seq } => {
            let name = String::from_utf8_lossy(name);
            with_active(|l| l.connect(highest_seq as u32, mailbox, peer.as_ref(), &name));
        }
        SessionNote::Gone { mailbox, peer, name, queued, highest_seq } => {
            let name = String::from_utf8_lossy(name);
            with_active(|l| l.disconnect(highest_seq as u32, mailbox, peer.as_ref(), &name, queued));
        }
    }
}

/// A boxed [`observe`], ready for the engine.
pub fn observer() -> crate::engine::SessionObserver {
    Box::new(observe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_layouts() {
        assert_eq!(begin_line(1_700_000_000), "B    1700000000\n");
        assert_eq!(
            connect_line(1_700_000_001, 12, 7, "127.0.0.1", "alice"),
            "C    1700000001          12   7 127.0.0.1        alice     \n"
        );
        let d = disconnect_line(1_700_000_002, 0, 10, "localhost", "averylongname", 3);
        assert_eq!(d, format!("D    1700000002           0  10 {:<46} averylongname 3\n", "localhost"));
        assert_eq!(
            membership_line(1_700_000_003, 1_699_999_999, 0, &[(0, false), (1, true), (2, true), (3, false)]),
            "M    1700000003    1699999999           0 >  --  1  1 --\n"
        );
        assert_eq!(membership_line(5, 4, 0, &[]), "M             5             4           0 > \n");
    }

    #[test]
    fn columns_follow_segments() {
        let text = "Spread_Segment 127.0.0.255:27250 {\n\ta 127.0.0.1\n\tb 127.0.0.2\n}\n\
                    Spread_Segment 127.0.1.255:27250 {\n\tc 127.0.1.1\n}\n";
        let c = crate::config::parse_str_with_resolver(text, "t", &crate::config::offline_resolver).unwrap();
        let (a, b, cc) = (c.daemons[0].vid, c.daemons[1].vid, c.daemons[2].vid);
        assert_eq!(membership_columns(&c, &[cc, b]), vec![(0, false), (1, true), (2, true)]);
        assert_eq!(membership_columns(&c, &[a]), vec![(0, true), (1, false), (2, false)]);
        assert!(membership_line(1, 2, 3, &membership_columns(&c, &[cc, b])).ends_with(" >  --  1  1\n"));
    }

    #[test]
    fn observer_writes_connect_and_disconnect_lines() {
        use std::sync::{Arc, Mutex as M};
        #[derive(Clone)]
        struct Sink(Arc<M<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        // Nothing installed yet: notes are dropped quietly.
        observe(SessionNote::Connected { mailbox: 1, peer: None, name: b"early", highest_seq: 0 });
        let sink = Sink(Arc::new(M::new(Vec::new())));
        install(SessLog::with_writer(Box::new(sink.clone())));
        let mut obs = observer();
        let peer: SocketAddr = "10.0.0.7:4000".parse().unwrap();
        obs(SessionNote::Connected { mailbox: 9, peer: Some(peer), name: b"alice", highest_seq: 12 });
        obs(SessionNote::Gone { mailbox: 9, peer: Some(peer), name: b"alice", queued: 3, highest_seq: 15 });
        obs(SessionNote::Gone { mailbox: 11, peer: None, name: b"bob", queued: 0, highest_seq: 0 });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        // Drop the 13-wide time column before comparing.
        let rest = |l: &str| l[15..].to_string();
        assert!(lines[0].starts_with("C ") && lines[1].starts_with("D ") && lines[2].starts_with("D "));
        assert_eq!(rest(lines[0]), format!(" {:>11} {:>3} {:<16} {:<10}", 12, 9, "10.0.0.7", "alice"));
        assert_eq!(rest(lines[1]), format!(" {:>11} {:>3} {:<46} {:<10} 3", 15, 9, "10.0.0.7", "alice"));
        assert_eq!(rest(lines[2]), format!(" {:>11} {:>3} {:<46} {:<10} 0", 0, 11, "localhost", "bob"));
    }

    #[test]
    fn peers() {
        assert_eq!(peer_text(None), "localhost");
        assert_eq!(peer_text(Some(&"10.1.2.3:9".parse().unwrap())), "10.1.2.3");
        assert_eq!(peer_text(Some(&"[fe80::1]:9".parse().unwrap())), "fe80::1");
    }
}
