//! System calls per message of the client library under load, counted with
//! `strace -f -c` on `build/bin/splibbench` (and `splibbench-fl`), a C program
//! linked against our libspread-core (libspread), flooding our daemon:
//!
//! * `SP_multicast` + `SP_receive` (over the Unix socket and over TCP),
//!   `SP_scat_*` and `FL_multicast` + `FL_receive`: at most 3 per message
//!   (one send, the header read, one read for the rest of the frame), no
//!   futex, no memory management calls;
//! * the same driven by `E_handle_events`: at most 3 plus its poll.
//!
//! Each count is the difference between a run of 3000 and one of 1000
//! messages, so connecting and joining do not count. With
//! `SPREAD_REF_PREFIX`, the same binaries run on the original's libraries
//! (`LD_LIBRARY_PATH=<prefix>/lib`) and ours must make no more calls per
//! message than the original in any mode.
//!
//! Skipped (saying so) when `strace` is not installed; `.ci/run` installs it.
//! Needs `make build` (build/bin, build/lib). Port near 27400.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use compat_tests::daemon::Daemon;
use compat_tests::paths;
use compat_tests::tempdir::TempDir;

fn strace() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("strace")).find(|p| p.is_file())
}

fn bench_bin(name: &str) -> PathBuf {
    let p = paths::workspace_root().join("build/bin").join(name);
    assert!(p.is_file(), "{} is missing: run `make build` first", p.display());
    p
}

/// `strace -c` table → calls per system call name.
fn parse_strace_c(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "% time  seconds  usecs/call  calls  [errors]  syscall"
        if f.len() < 5 || f[0].parse::<f64>().is_err() {
            continue;
        }
        let (Some(name), Ok(calls)) = (f.last(), f[3].parse::<u64>()) else { continue };
        if *name != "total" {
            out.insert(name.to_string(), calls);
        }
    }
    out
}

/// Runs `cmd` to completion; `None` (the child killed by its PID) if it
/// takes longer than `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Option<std::process::ExitStatus> {
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(limit) {
        Ok(r) => r.ok(),
        Err(_) => {
            // SAFETY: signalling the child we started, still unreaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            None
        }
    };
    let _ = waiter.join();
    status
}

/// Calls per syscall of one run of `bin -x mode` with `n` messages.
fn count(
    st: &Path,
    dir: &Path,
    bin: &Path,
    lib_dir: Option<&Path>,
    spread: &str,
    mode: &str,
    n: u32,
) -> BTreeMap<String, u64> {
    let out = dir.join(format!("strace-{mode}-{n}.txt"));
    let mut cmd = Command::new(st);
    cmd.arg("-f").arg("-c").arg("-o").arg(&out).arg("--").arg(bin);
    cmd.args(["-s", spread, "-u", &format!("ls{mode}"), "-m", &n.to_string(), "-b", "100", "-w", "50", "-x", mode]);
    if let Some(l) = lib_dir {
        cmd.env("LD_LIBRARY_PATH", l);
    }
    let printed = dir.join(format!("stdout-{mode}-{n}.txt"));
    cmd.stdin(Stdio::null()).stdout(std::fs::File::create(&printed).unwrap()).stderr(Stdio::inherit());
    let status = run_bounded(cmd, Duration::from_secs(120));
    let stdout = std::fs::read_to_string(&printed).unwrap_or_default();
    assert!(status.is_some_and(|s| s.success()), "{} -x {mode} failed ({status:?}): {stdout}", bin.display());
    assert!(stdout.contains("msg/s"), "{} -x {mode} printed: {stdout}", bin.display());
    parse_strace_c(&std::fs::read_to_string(&out).unwrap())
}

/// Per message: calls of each syscall in (3000-message run) - (1000-message
/// run), divided by 2000.
fn per_message(
    st: &Path,
    dir: &Path,
    bin: &Path,
    lib_dir: Option<&Path>,
    spread: &str,
    mode: &str,
) -> BTreeMap<String, f64> {
    let small = count(st, dir, bin, lib_dir, spread, mode, 1000);
    let big = count(st, dir, bin, lib_dir, spread, mode, 3000);
    big.iter()
        .map(|(k, &v)| (k.clone(), (v as f64 - *small.get(k).unwrap_or(&0) as f64) / 2000.0))
        .filter(|(_, v)| v.abs() >= 0.005)
        .collect()
}

fn total(m: &BTreeMap<String, f64>) -> f64 {
    m.values().sum()
}

const POLLS: [&str; 4] = ["poll", "ppoll", "select", "pselect6"];

#[test]
fn per_message_system_calls_are_the_minimum_and_no_more_than_the_originals() {
    let Some(st) = strace() else {
        eprintln!("lib_syscalls: skipped: strace is not installed (.ci/run installs it)");
        return;
    };
    let dir = TempDir::new("lib-syscalls").expect("temp dir");
    let d = Daemon::start_single("ls", 27400, "").expect("daemon");
    let unix = d.port.to_string();
    let tcp = d.spread_name();
    let sp = bench_bin("splibbench");
    let fl = bench_bin("splibbench-fl");
    let reference = std::env::var_os("SPREAD_REF_PREFIX").filter(|v| !v.is_empty()).map(|p| Path::new(&p).join("lib"));
    if reference.is_none() {
        eprintln!("lib_syscalls: the comparison with the original library is skipped: SPREAD_REF_PREFIX is not set");
    }
    let cases: [(&str, &Path, &str, &str); 5] =
        [("sp unix", &sp, &unix, "sp"), ("sp tcp", &sp, &tcp, "sp"), ("scat", &sp, &unix, "scat"), ("ev", &sp, &unix, "ev"), ("fl", &fl, &unix, "fl")];
    for (label, bin, spread, mode) in cases {
        let ours = per_message(&st, dir.path(), bin, None, spread, mode);
        eprintln!("lib_syscalls: {label}: ours {:.2}/message {ours:?}", total(&ours));
        let polls: f64 = ours.iter().filter(|(k, _)| POLLS.contains(&k.as_str())).map(|(_, v)| v).sum();
        let io = total(&ours) - polls;
        assert!(io <= 3.01, "{label}: {io:.2} calls per message besides polls (at most 3): {ours:?}");
        if mode == "ev" {
            assert!(polls <= 2.01, "{label}: {polls:.2} polls per message: {ours:?}");
        } else {
            assert!(polls < 0.01, "{label}: polls per message: {ours:?}");
        }
        assert!(!ours.contains_key("futex"), "{label}: futex on the per-message path: {ours:?}");
        if let Some(lib) = &reference {
            let theirs = per_message(&st, dir.path(), bin, Some(lib), spread, mode);
            eprintln!("lib_syscalls: {label}: original {:.2}/message {theirs:?}", total(&theirs));
            assert!(
                total(&ours) <= total(&theirs) + 0.01,
                "{label}: ours {:.2} calls per message, the original {:.2}",
                total(&ours),
                total(&theirs)
            );
        }
    }
}

#[test]
fn strace_tables_parse() {
    let t = "% time     seconds  usecs/call     calls    errors syscall\n\
             ------ ----------- ----------- --------- --------- ----------------\n \
             53.48    0.726141          12     60008         1 recvfrom\n \
             27.38    0.371790           9     40003           futex\n\
             ------ ----------- ----------- --------- --------- ----------------\n\
             100.00    1.357822           9    120035        12 total\n";
    let m = parse_strace_c(t);
    assert_eq!(m.get("recvfrom"), Some(&60008));
    assert_eq!(m.get("futex"), Some(&40003));
    assert_eq!(m.len(), 2);
}
