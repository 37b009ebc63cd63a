//! Memory bounds of our daemon (issue 11 item 4,
//! `spread-daemon/src/engine/queues.rs`), read from `/proc/<pid>/status`:
//!
//! * after 1 GB of floods at 100 KB (spflooder in its self mode, then a
//!   `-wo`/`-ro` pair) the daemon's resident memory is back to at most 20 MB
//!   within 10 s;
//! * a member that never reads while 1000 × 100 KB are sent costs at most
//!   its byte bound (`MaxSessionBytes`): it is cut there, the daemon's peak
//!   stays within the bound plus a fixed allowance, and the flooder and a
//!   reading witness complete.
//!
//! Uses our `build/bin/spflooder` (`make build`). Ports near 27640.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use compat_tests::daemon::Daemon;
use compat_tests::paths;
use compat_tests::sp_api::sp;
use spread_wire::consts::REG_MEMB_MESS;

fn spflooder() -> PathBuf {
    let p = paths::workspace_root().join("build/bin/spflooder");
    assert!(p.is_file(), "{} is missing: run `make build` first", p.display());
    p
}

/// A field of /proc/<pid>/status in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {field} in status"))
}

/// Run a flooder to completion (bounded); it must succeed.
fn flood(args: &[&str], what: &str) -> std::process::Child {
    Command::new(spflooder())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn finish(mut c: std::process::Child, what: &str) {
    let mut out = String::new();
    c.stdout.take().expect("stdout").read_to_string(&mut out).expect("read");
    let st = c.wait().expect("wait");
    assert!(st.success(), "{what} exited with {st}:\n{out}");
    assert!(out.contains("flooder: completed multicast of"), "{what}:\n{out}");
}

/// Wait (bounded) until the observer on `mbox` sees `members` members.
fn until_members(mbox: i32, members: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = sp().sp_receive_by(mbox, deadline, 16, 4096).expect("membership");
        assert!(m.ret >= 0, "SP_receive {}", m.ret);
        if m.service_type & REG_MEMB_MESS as i32 != 0 && m.num_groups == members {
            return;
        }
    }
}

/// Wait until the daemon's RSS is at most 20 MB, at most 10 s (checked
/// every 100 ms); returns it and how long it took.
fn rss_back_to_20_mb(pid: u32) -> (u64, Duration) {
    let done = Instant::now();
    let mut rss = status_kb(pid, "VmRSS:");
    while rss > 20 * 1024 && done.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        rss = status_kb(pid, "VmRSS:");
    }
    (rss, done.elapsed())
}

#[test]
fn memory_taken_by_floods_is_returned() {
    let d = Daemon::start_single("ma", 27640, "").expect("daemon");
    let pid = d.pid().expect("pid");
    let unix = d.port.to_string();
    let start = status_kb(pid, "VmRSS:");
    // 1 GB in self mode: the flooder reads its own messages back.
    finish(flood(&["-u", "self", "-s", &unix, "-m", "10000", "-b", "100000"], "spflooder self mode"), "self");
    let peak = status_kb(pid, "VmHWM:");
    let (rss, took) = rss_back_to_20_mb(pid);
    eprintln!("memory_taken_by_floods_is_returned: self mode: RSS {start} kB at start, peak {peak} kB, {rss} kB {took:?} after");
    assert!(rss <= 20 * 1024, "RSS {rss} kB 10 s after 1 GB in self mode (peak {peak} kB)");
    // 1 GB from a non-member writer to a reader.
    let (r, mbox, _) = sp().sp_connect(&unix, Some("obs"), 0, true);
    assert!(r > 0);
    assert_eq!(sp().sp_join(mbox, "flooder"), 0);
    until_members(mbox, 1);
    let reader = flood(&["-u", "rd", "-s", &unix, "-ro", "-m", "10000", "-b", "100000"], "-ro");
    until_members(mbox, 2);
    assert_eq!(sp().sp_disconnect(mbox), 0);
    finish(flood(&["-u", "wr", "-s", &unix, "-wo", "-m", "10000", "-b", "100000"], "-wo"), "-wo");
    finish(reader, "-ro");
    let peak = status_kb(pid, "VmHWM:");
    let (rss, took) = rss_back_to_20_mb(pid);
    eprintln!("memory_taken_by_floods_is_returned: then -wo/-ro: peak {peak} kB, {rss} kB {took:?} after");
    assert!(rss <= 20 * 1024, "RSS {rss} kB 10 s after 2 GB of floods (peak {peak} kB)");
}

#[test]
fn a_reader_that_never_reads_costs_at_most_its_byte_bound() {
    const BOUND: u64 = 8 << 20;
    let d = Daemon::start_single(
        "mb",
        27650,
        &format!("MaxSessionBytes = {BOUND}\nDebugFlags = {{ SESSION }}\nEventPriority = INFO\n"),
    )
    .expect("daemon");
    let pid = d.pid().expect("pid");
    let unix = d.port.to_string();
    // The stalled member joins and reads nothing more; the observer waits
    // for it and for the witness.
    let (r, stall, _) = sp().sp_connect(&unix, Some("stall"), 0, false);
    assert!(r > 0);
    let (r, obs, _) = sp().sp_connect(&unix, Some("obs"), 0, true);
    assert!(r > 0);
    assert_eq!(sp().sp_join(obs, "flooder"), 0);
    until_members(obs, 1);
    assert_eq!(sp().sp_join(stall, "flooder"), 0);
    until_members(obs, 2);
    let witness = flood(&["-u", "wit", "-s", &unix, "-ro", "-m", "1000", "-b", "100000"], "witness");
    until_members(obs, 3);
    assert_eq!(sp().sp_disconnect(obs), 0);
    let base = status_kb(pid, "VmRSS:");
    finish(flood(&["-u", "wr", "-s", &unix, "-wo", "-m", "1000", "-b", "100000"], "-wo"), "-wo");
    finish(witness, "witness");
    let peak = status_kb(pid, "VmHWM:");
    let log = d.log();
    assert!(log.contains("session stall on mailbox"), "the stalled member was cut:\n{log}");
    // The stalled queue (≤ BOUND) plus the witness's paced queue (¼ of it)
    // and buffers: within BOUND + 12 MB of the base.
    eprintln!("a_reader_that_never_reads: base {base} kB, peak {peak} kB, bound {} kB", BOUND / 1024);
    assert!(peak <= base + BOUND / 1024 + 12 * 1024, "peak {peak} kB, base {base} kB");
    sp().sp_kill(stall);
}
