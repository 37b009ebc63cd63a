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

/// EventLogFile takes over the daemon's standard output and error: start the
/// daemon with a FIFO as its log file and read its start-up line from there.
#[test]
fn event_log_file_receives_the_output() {
    // A fixed port may still be held by an earlier run: try a few of ours.
    let mut report = Vec::new();
    for port in 27140u16..27146 {
        match log_file_attempt(port) {
            Ok(()) => return,
            Err(e) => report.push(format!("port {port}: {e}")),
        }
    }
    panic!("no attempt succeeded: {report:?}");
}

fn log_file_attempt(port: u16) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    use std::time::Duration;

    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("h4-logfile-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("spread.log");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: valid path string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let conf = dir.join("spread.conf");
    std::fs::write(
        &conf,
        format!("Spread_Segment 127.0.0.255:{port} {{\n\td1 127.0.0.1\n}}\nEventLogFile = \"{}\"\n", fifo.display()),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spread"))
        .args(["-n", "d1", "-c"])
        .arg(&conf)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader_path = fifo.clone();
    std::thread::spawn(move || {
        // Opening blocks until the daemon opens its end.
        let Ok(f) = std::fs::File::open(&reader_path) else { return };
        for line in BufReader::new(f).lines() {
            let Ok(l) = line else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            // The line logged once the client listeners are bound (earlier
            // lines, e.g. "Configured daemon 'd1' ...", come before the bind).
            Ok(l) if l.contains("serving clients") => break true,
            Ok(l) => seen.push(l),
            Err(_) => break false,
        }
    };
    // The line came from a running daemon, not from a fatal exit.
    let serving = found && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    // SAFETY: kill(2) on the pid of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    if !found {
        return Err(format!("no start-up line in the log file; saw {seen:?}"));
    }
    if !serving {
        return Err("the daemon was not serving".to_string());
    }
    Ok(())
}
