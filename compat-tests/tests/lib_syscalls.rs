//! System calls per message of the client library under load, counted with
//! `strace -f -c` on `build/bin/splibbench` (and `splibbench-fl`), a C program
//! linked against our libspread-core (libspread), flooding our daemon:
//!
//! * `SP_multicast` + `SP_receive` (over the Unix socket and over TCP),
//!   `SP_scat_*` and `FL_multicast` + `FL_receive`: at most 3 per message
//!   (one send, the header read, one read for the rest of the frame), no
//!   futex, no memory management calls;
//! * the same driven by `E_handle_events`: at most 3 plus its poll(s).
//!
//! Each count is the difference between a run of 3000 and one of 1000
//! messages (`spread_bench::libload`, shared with `make bench`), so
//! connecting and joining do not count. With `SPREAD_REF_PREFIX`, the same
//! binaries run on the original's libraries (`LD_LIBRARY_PATH=<prefix>/lib`)
//! and ours must make no more calls per message than the original's in any
//! mode.
//!
//! Skipped (saying so) when `strace` is not installed; `.ci/run` installs it.
//! Needs `make build` (build/bin, build/lib). Port near 27400.

use std::path::{Path, PathBuf};

use compat_tests::daemon::Daemon;
use compat_tests::paths;
use compat_tests::tempdir::TempDir;
use spread_bench::libload::{find_in_path, total, LibLoad};

fn bench_bin(name: &str) -> PathBuf {
    let p = paths::workspace_root().join("build/bin").join(name);
    assert!(p.is_file(), "{} is missing: run `make build` first", p.display());
    p
}

const POLLS: [&str; 4] = ["poll", "ppoll", "select", "pselect6"];

#[test]
fn per_message_system_calls_are_the_minimum_and_no_more_than_the_originals() {
    let Some(st) = find_in_path("strace") else {
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
    let cases: [(&str, &Path, &str, &str); 5] = [
        ("sp unix", &sp, &unix, "sp"),
        ("sp tcp", &sp, &tcp, "sp"),
        ("scat", &sp, &unix, "scat"),
        ("ev", &sp, &unix, "ev"),
        ("fl", &fl, &unix, "fl"),
    ];
    for (label, bin, spread, mode) in cases {
        let load = LibLoad { bin, lib_dir: None, spread, user: "ls", mode, body: 100, window: 50, cpu: None };
        let ours = load.syscalls_per_message(&st, dir.path()).unwrap_or_else(|e| panic!("{label}: {e}"));
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
            let theirs = LibLoad { lib_dir: Some(lib), ..load }
                .syscalls_per_message(&st, dir.path())
                .unwrap_or_else(|e| panic!("{label} (original library): {e}"));
            eprintln!("lib_syscalls: {label}: original {:.2}/message {theirs:?}", total(&theirs));
            assert!(
                total(&ours) <= total(&theirs) + 0.01,
                "{label}: ours {:.2} calls per message, the original's {:.2}",
                total(&ours),
                total(&theirs)
            );
        }
    }
}
