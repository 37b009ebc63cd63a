//! Python ctypes: `compat-tests/python/test_ctypes.py` loads
//! `build/lib/libtspread-core.so.3` (or `$RSPREAD_CTYPES_LIB`), connects to
//! our daemon, joins, multicasts, receives and parses a membership; this test
//! checks its exit code and its summary lines.
//!
//! Port 23500.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use compat_tests::daemon::Daemon;
use compat_tests::paths;

#[test]
fn python_ctypes_drives_the_threaded_core_library() {
    let lib = match std::env::var("RSPREAD_CTYPES_LIB") {
        Ok(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => paths::c_library("libtspread-core.so.3"),
    };
    let d = Daemon::start_single("d1", 23500, "").unwrap_or_else(|e| panic!("{e}"));
    let script = paths::workspace_root().join("compat-tests").join("python").join("test_ctypes.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .env("RSPREAD_CTYPES_LIB", &lib)
        .env("SPREAD_PORT", d.port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 is needed for this test: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for python3") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the ctypes script did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "ctypes script failed ({status}) with {}:\n{out}\n{err}", lib.display());
    for line in [
        "version 5.0.1",
        "connected pyalice as #pyalice#d1",
        "connected pybob as #pybob#d1",
        "membership pyalice: gid index 2, members #pyalice#d1,#pybob#d1, vs-set #pybob#d1, my index 0",
        "membership pybob: gid index 2, members #pyalice#d1,#pybob#d1, vs-set #pybob#d1, my index 1",
        "message pybob: 'hello from python' from #pyalice#d1 type 42",
        "ctypes summary: OK",
    ] {
        assert!(out.lines().any(|l| l == line), "missing line {line:?} in:\n{out}");
    }
}
