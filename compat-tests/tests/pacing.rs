//! Readers that keep reading are not cut because our daemon is fast
//! (issue 11 item 6, `spread-daemon/src/engine/pacing.rs`), on real sockets:
//!
//! * `spflooder -ro` reading 100,000 × 1000 B from a `spflooder -wo` writer
//!   completes, three times in a row (without pacing it was cut at
//!   MaxSessionMessages with "Connection closed by Spread" nearly every
//!   time);
//! * two `spflooder -n 2` members flooding each other complete, three times;
//! * a member that stops reading is cut after the stall time and nobody else
//!   notices: the writer and a reading witness complete;
//! * a Python member (ctypes on libtspread-core) draining its queue in a
//!   thread while a non-member sends 5000 × 1000 B gets all of them, five
//!   runs over the Unix socket and five over TCP (skipped, saying so,
//!   without python3).
//!
//! The flooders are our `build/bin/spflooder` (C, linked against our
//! libspread; needs `make build`) and, with `SPREAD_REF_PREFIX`, also the
//! original's statically linked `<prefix>/bin/spflooder`; without it that
//! half is skipped, saying so. Ports near 27600.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use compat_tests::daemon::Daemon;
use compat_tests::paths;
use compat_tests::sp_api::sp;
use spread_wire::consts::{REGULAR_MESS, REG_MEMB_MESS};

/// Bound on any one flooder run.
const LIMIT: Duration = Duration::from_secs(120);

/// The flooders to run: ours, and the original's when its prefix is set.
fn flooders(test: &str) -> Vec<(&'static str, PathBuf)> {
    let ours = paths::workspace_root().join("build/bin/spflooder");
    assert!(ours.is_file(), "{} is missing: run `make build` first", ours.display());
    let mut v = vec![("our spflooder", ours)];
    match std::env::var_os("SPREAD_REF_PREFIX").filter(|p| !p.is_empty()) {
        Some(p) => {
            let orig = Path::new(&p).join("bin/spflooder");
            assert!(orig.is_file(), "SPREAD_REF_PREFIX is set but {} is missing", orig.display());
            v.push(("the original's spflooder", orig));
        }
        None => eprintln!("{test}: the original's spflooder is skipped: SPREAD_REF_PREFIX is not set"),
    }
    v
}

/// A running flooder whose output is collected by a thread; waiting for it
/// is bounded, and a flooder still running then is killed by its PID.
struct Flooder {
    what: String,
    pid: u32,
    done: mpsc::Receiver<(ExitStatus, String)>,
}

impl Flooder {
    fn start(bin: &Path, args: &[&str], what: &str) -> Flooder {
        let mut child: Child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: spawn {}: {e}", bin.display()));
        let pid = child.id();
        let mut out = child.stdout.take().expect("stdout");
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            let st = child.wait().expect("wait");
            let _ = tx.send((st, text));
        });
        Flooder { what: what.to_string(), pid, done }
    }

    /// Wait for the flooder to exit; it must succeed and print `want`.
    fn expect_success(self, want: &str) {
        let (st, text) = match self.done.recv_timeout(LIMIT) {
            Ok(r) => r,
            Err(_) => {
                // SAFETY: kill(2) on the PID of the child this test started.
                unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
                panic!("{} did not finish within {LIMIT:?}", self.what);
            }
        };
        let tail: String = text.lines().rev().take(5).collect::<Vec<_>>().join("\n");
        assert!(st.success(), "{} exited with {st}; last lines:\n{tail}", self.what);
        assert!(text.contains(want), "{}: {want:?} missing; last lines:\n{tail}", self.what);
    }
}

/// Connect an observer with membership notices, join `group` and wait until
/// it has `members` members; returns the mailbox (still joined).
fn watch_until_members(spread: &str, user: &str, group: &str, members: i32) -> i32 {
    let (r, mbox, _) = sp().sp_connect(spread, Some(user), 0, true);
    assert!(r > 0, "SP_connect {user}: {r}");
    assert_eq!(sp().sp_join(mbox, group), 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = sp().sp_receive_by(mbox, deadline, 16, 4096).unwrap_or_else(|| panic!("{user}: no membership"));
        assert!(m.ret >= 0, "{user}: SP_receive {}", m.ret);
        if m.service_type & REG_MEMB_MESS as i32 != 0 && m.num_groups >= members {
            return mbox;
        }
    }
}

fn completed(n: u32) -> String {
    format!("flooder: completed multicast of {n} messages, 1000 bytes each.")
}

/// `spflooder -ro` (member, Unix socket) reading what `spflooder -wo`
/// (non-member, TCP) sends: 100,000 × 1000 B, three runs per flooder binary.
#[test]
fn writer_and_reader_flooders_complete_every_time() {
    let d = Daemon::start_single("pa", 27600, "").expect("daemon");
    let unix = d.port.to_string();
    let tcp = d.spread_name();
    const N: u32 = 100_000;
    let n = N.to_string();
    for (label, bin) in flooders("writer_and_reader_flooders_complete_every_time") {
        for run in 1..=3 {
            let what = |w: &str| format!("{label} {w} (run {run})");
            // Names unique per run: the last run's sessions may still be
            // going away.
            let (o, r, w) = (
                format!("obs{run}{}", label.len()),
                format!("rd{run}{}", label.len()),
                format!("wr{run}{}", label.len()),
            );
            let obs = watch_until_members(&unix, &o, "flooder", 1);
            let reader = Flooder::start(&bin, &["-u", &r, "-s", &unix, "-ro", "-m", &n, "-b", "1000"], &what("-ro"));
            // The reader has joined when the observer sees two members.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let m = sp().sp_receive_by(obs, deadline, 16, 4096).expect("the reader's join");
                if m.service_type & REG_MEMB_MESS as i32 != 0 && m.num_groups == 2 {
                    break;
                }
            }
            assert_eq!(sp().sp_disconnect(obs), 0);
            let writer = Flooder::start(&bin, &["-u", &w, "-s", &tcp, "-wo", "-m", &n, "-b", "1000"], &what("-wo"));
            writer.expect_success(&completed(N));
            reader.expect_success(&completed(N));
        }
    }
    assert!(!d.log().contains("Connection closed"), "{}", d.log());
}

/// Two `spflooder -n 2` members flooding a group they both read (each stays
/// 200 messages ahead of the other's): both complete, three runs per binary.
#[test]
fn two_member_flooders_complete_every_time() {
    let d = Daemon::start_single("pb", 27610, "").expect("daemon");
    let unix = d.port.to_string();
    let tcp = d.spread_name();
    const N: u32 = 50_000;
    let n = N.to_string();
    for (label, bin) in flooders("two_member_flooders_complete_every_time") {
        for run in 1..=3 {
            let (fa, fb) = (format!("fa{run}{}", label.len()), format!("fb{run}{}", label.len()));
            let a = Flooder::start(
                &bin,
                &["-u", &fa, "-s", &unix, "-n", "2", "-m", &n, "-b", "1000"],
                &format!("{label} -n 2 over the Unix socket (run {run})"),
            );
            let b = Flooder::start(
                &bin,
                &["-u", &fb, "-s", &tcp, "-n", "2", "-m", &n, "-b", "1000"],
                &format!("{label} -n 2 over TCP (run {run})"),
            );
            a.expect_success(&completed(N));
            b.expect_success(&completed(N));
        }
    }
}

/// A member that stops reading is cut after the stall time (its senders are
/// paced until then); the writer and a reading witness complete untouched.
#[test]
fn stalled_reader_is_cut_and_the_others_complete() {
    let d = Daemon::start_single("pc", 27620, "DebugFlags = { SESSION }\nEventPriority = INFO\n").expect("daemon");
    let unix = d.port.to_string();
    let (label, bin) = flooders("stalled_reader_is_cut_and_the_others_complete").remove(0);
    const N: u32 = 30_000;
    let n = N.to_string();
    // The stalled member: joins, waits for the witness's join, then reads
    // nothing more until the end.
    let stall_join = std::thread::spawn({
        let unix = unix.clone();
        move || watch_until_members(&unix, "stall", "flooder", 2)
    });
    let t = Instant::now() + Duration::from_secs(30);
    let obs = watch_until_members(&unix, "obs", "flooder", 2);
    let witness = Flooder::start(&bin, &["-u", "wit", "-s", &unix, "-ro", "-m", &n, "-b", "1000"], "witness -ro");
    // obs has seen itself and the stalled member; the witness makes three.
    loop {
        let m = sp().sp_receive_by(obs, t, 16, 4096).expect("the witness's join");
        if m.service_type & REG_MEMB_MESS as i32 != 0 && m.num_groups == 3 {
            break;
        }
    }
    assert_eq!(sp().sp_disconnect(obs), 0);
    let stall = stall_join.join().expect("stall joined");
    let writer =
        Flooder::start(&bin, &["-u", "wr", "-s", &unix, "-wo", "-m", &n, "-b", "1000"], &format!("{label} -wo"));
    writer.expect_success(&completed(N));
    witness.expect_success(&completed(N));
    let log = d.log();
    assert!(log.contains("session stall stopped reading"), "the stall is named in the log:\n{log}");
    assert!(log.contains("session stall on mailbox"), "the stalled session is cut:\n{log}");
    // The stalled member finds its session closed after what was queued.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut regular = 0;
    let end = loop {
        let m = sp().sp_receive_by(stall, deadline, 16, 2048).expect("the stalled session ends");
        if m.ret < 0 {
            break m.ret;
        }
        if m.service_type & REGULAR_MESS as i32 != 0 {
            regular += 1;
        }
    };
    assert_eq!(end, -8, "CONNECTION_CLOSED");
    assert!(regular < N, "it was cut before the end ({regular} messages)");
    sp().sp_kill(stall);
}

/// A Python member draining in a thread while a non-member sends 5000 ×
/// 1000 B (`compat-tests/python/pace_drain.py`): every message arrives, five
/// times over each transport.
#[test]
fn python_member_draining_in_a_thread_gets_everything() {
    if Command::new("python3").arg("-c").arg("pass").status().map(|s| !s.success()).unwrap_or(true) {
        eprintln!("python_member_draining_in_a_thread_gets_everything: skipped: python3 is not installed");
        return;
    }
    let d = Daemon::start_single("pd", 27630, "").expect("daemon");
    let lib = paths::c_library("libtspread-core.so.3");
    let script = paths::workspace_root().join("compat-tests/python/pace_drain.py");
    for spread in [d.port.to_string(), d.spread_name()] {
        for run in 1..=5 {
            let what = format!("pace_drain.py on {spread} (run {run})");
            let p = Flooder::start(
                Path::new("python3"),
                &[script.to_str().unwrap(), lib.to_str().unwrap(), &spread, "5000"],
                &what,
            );
            p.expect_success("received 5000 of 5000");
        }
    }
}
