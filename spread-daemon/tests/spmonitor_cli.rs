//! The `spmonitor` binary's command-line handling, as 5.0.1's: a bad option
//! prints the reason and the usage on stdout, then the fatal-exit line, then
//! aborts (SIGABRT); so does a configuration it cannot use. A good command
//! line shows the menu, and end of input says goodbye with status 0.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use spread_daemon::monitor::dialog::MENU;
use spread_daemon::monitor::options::usage;

static N: AtomicUsize = AtomicUsize::new(0);

const EXE: &str = env!("CARGO_BIN_EXE_spmonitor");

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("spmonitor-cli-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run spmonitor in `dir` with stdin empty; (status code, signal, stdout).
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, Option<i32>, String) {
    let mut cmd = Command::new(EXE);
    cmd.args(args).current_dir(dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; no core file from the abort.
    unsafe {
        cmd.pre_exec(|| {
            let r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &r);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    (out.status.code(), out.status.signal(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The text after the start-up banner.
fn after_banner(out: &str) -> &str {
    let end = "\\===========================================================================/\n";
    assert!(out.starts_with("/===="), "no banner first: {out:?}");
    let i = out.find(end).unwrap_or_else(|| panic!("banner not closed: {out:?}"));
    &out[i + end.len()..]
}

fn assert_fatal(args: &[&str], want: &str) {
    let d = Dir::new();
    let (code, sig, out) = run(&d.0, args);
    assert_eq!((code, sig), (None, Some(libc::SIGABRT)), "{args:?}: {out:?}");
    assert_eq!(after_banner(&out), format!("{want}Exit caused by Alarm!\n"), "{args:?}");
}

#[test]
fn bad_options_print_the_usage_and_abort() {
    let u = usage(EXE);
    assert_fatal(&["-x", "1"], &format!("Unknown parameter: -x\n\n{u}"));
    assert_fatal(&["-pX", "1"], &format!("Unknown parameter: -pX\n\n{u}"));
    assert_fatal(&["-p"], &format!("Unknown or missing parameter: -p\n\n{u}"));
    assert_fatal(&["-t", "5", "-c"], &format!("Unknown or missing parameter: -c\n\n{u}"));
    assert_fatal(&["-p", "70000"], &format!("Port number must be in range [0, 65536): 70000\n\n{u}"));
    assert_fatal(&["-p", "12x"], &format!("Port number must be in range [0, 65536): 12x\n\n{u}"));
    assert_fatal(&["-t", "0"], &format!("Status query timeout must be a positive integer: 0\n\n{u}"));
    assert_fatal(&["-n", "abcdefghijklmnopqrst"], &format!("Proc name too long: abcdefghijklmnopqrst\n\n{u}"));
    let long = "x".repeat(80);
    assert_fatal(&["-c", &long], &format!("Config file name too long: {long}\n\n{u}"));
    assert!(u.starts_with(&format!("Usage: {EXE}\n\t[-p <port number>]    : specify port number\n")));
}

#[test]
fn a_missing_configuration_file_is_fatal() {
    let etc = format!("{}/spread.conf", spread_daemon::cli::SPREAD_ETCDIR);
    if Path::new(&etc).exists() {
        eprintln!("skipped: {etc} exists, so a missing -c file falls back to it");
        return;
    }
    assert_fatal(
        &["-c", "/nonexistent/spmonitor.conf"],
        "Conf_load_conf_file: error opening config file /nonexistent/spmonitor.conf and alternates!\n",
    );
}

#[test]
fn a_configuration_without_this_machine_is_fatal() {
    let d = Dir::new();
    let conf = d.0.join("m.conf");
    // 192.0.2.0/24 is TEST-NET-1; 192.0.2.77 is not an address of this machine
    // (the test hosts use at most .1 and .2)
    std::fs::write(&conf, "Spread_Segment 192.0.2.255:28180 {\n far 192.0.2.77\n}\n").unwrap();
    let c = conf.to_str().unwrap();
    assert_fatal(
        &["-c", c],
        "Conf_load_conf_file: None of this machine's internet addresses match any daemon's address in configuration!\n",
    );
    assert_fatal(&["-c", c, "-n", "nosuch"], "Conf_load_conf_file: My proc nosuch is not in configuration!\n");
    assert_fatal(
        &["-c", c, "-n", "far"],
        "Conf_load_conf_file: None of this machine's internet addresses match this daemon's address 192.0.2.77!\n",
    );
}

#[test]
fn a_good_command_line_shows_the_menu_and_end_of_input_says_bye() {
    let d = Dir::new();
    std::fs::write(d.0.join("spread.conf"), "Spread_Segment 127.0.0.255:28180 {\n here 127.0.0.1\n}\n").unwrap();
    // port 0: any free port, so that parallel runs never collide
    let (code, sig, out) = run(&d.0, &["-p", "0", "-t", "0x3", "-n", "here"]);
    assert_eq!((code, sig), (Some(0), None), "{out:?}");
    assert_eq!(after_banner(&out), format!("{MENU}Bye.\n"));
}
