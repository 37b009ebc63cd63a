//! The `spread` binary's reaction to a bad command line: the usage text on
//! stdout, then the fatal-exit line, then abort (SIGABRT), like 5.0.1.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use spread_daemon::cli::USAGE;

static N: AtomicUsize = AtomicUsize::new(0);

fn run(args: &[&str]) -> (Option<i32>, String) {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("h4-cli-bin-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spread"));
    cmd.args(args).current_dir(&dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; no core file from the abort.
    unsafe {
        cmd.pre_exec(|| {
            let r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &r);
            Ok(())
        });
    }
    // The process exits on its own right after printing; output() waits for it.
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.signal(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn unknown_option_prints_usage_and_aborts() {
    let (sig, out) = run(&["-x"]);
    assert_eq!(sig, Some(libc::SIGABRT));
    assert!(out.ends_with(&format!("{USAGE}Exit caused by Alarm!\n")), "{out:?}");
}

#[test]
fn bad_values_abort() {
    let (sig, out) = run(&["-l", "maybe"]);
    assert_eq!(sig, Some(libc::SIGABRT));
    assert!(out.contains(USAGE));
    let (sig, out) = run(&["-n", "abcdefghijklmnopqrstu"]);
    assert_eq!(sig, Some(libc::SIGABRT));
    assert!(out.contains("Usage: proc name abcdefghijklmnopqrstu too long"), "{out:?}");
    let (sig, _) = run(&["-c"]);
    assert_eq!(sig, Some(libc::SIGABRT));
}
