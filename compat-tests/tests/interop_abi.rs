//! Drop-in check against an installed ORIGINAL Spread 5.0.1
//! (`SPREAD_REF_PREFIX=<prefix>` with `include/` and `lib/`; skipped when the
//! variable is not set).
//!
//! 1. The ABI probe compiled against the original's headers, run on OUR
//!    libraries: every fact must equal abi.json (programs compiled against
//!    the original's headers see the same ABI in our libraries).
//! 2. (harness check) The same probe on the original's libraries
//!    reproduces abi.json.
//! 3. A program compiled and linked against the original's headers and
//!    libraries, then run with `LD_LIBRARY_PATH=build/lib`, must bind to our
//!    libraries (the SONAMEs match) and behave the same.

#[path = "../abi-probe/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use compat_tests::paths;

fn reference_prefix() -> Option<PathBuf> {
    match std::env::var_os("SPREAD_REF_PREFIX") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            println!("skipped: SPREAD_REF_PREFIX not set");
            None
        }
    }
}

#[test]
fn probe_with_original_headers_on_our_libraries() {
    let Some(prefix) = reference_prefix() else { return };
    let abi = harness::load_abi();
    let (_, expected) = harness::generate(&abi);
    let libs: Vec<(&str, PathBuf)> =
        harness::LIBRARIES.iter().map(|(label, file)| (*label, paths::c_library(file))).collect();
    let actual = harness::run_probe(&prefix.join("include"), &libs, &abi).unwrap_or_else(|e| panic!("{e}"));
    let report = harness::diff(&expected, &actual, &[""]);
    assert!(report.is_empty(), "original headers + our libraries differ from abi.json:\n{report}");
}

/// The harness itself: the probe on the original's headers and libraries
/// reproduces abi.json exactly (so a difference seen on ours is ours).
#[test]
fn probe_on_the_original_reproduces_abi_json() {
    let Some(prefix) = reference_prefix() else { return };
    let abi = harness::load_abi();
    let (_, expected) = harness::generate(&abi);
    let libs: Vec<(&str, PathBuf)> =
        harness::LIBRARIES.iter().map(|(label, file)| (*label, prefix.join("lib").join(file))).collect();
    let actual = harness::run_probe(&prefix.join("include"), &libs, &abi).unwrap_or_else(|e| panic!("{e}"));
    let report = harness::diff(&expected, &actual, &[""]);
    assert!(report.is_empty(), "the probe on the original differs from abi.json:\n{report}");
}

fn output(cmd: &mut Command, what: &str) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build_against_original(prefix: &Path, lib: &str, exe: &Path) {
    let src = paths::workspace_root().join("compat-tests/abi-probe/hello.c");
    let mut cc = Command::new(harness::cc());
    cc.arg(&src)
        .arg("-I")
        .arg(prefix.join("include"))
        .arg(format!("-L{}", prefix.join("lib").display()))
        .arg(format!("-l{}", lib.trim_start_matches("lib")))
        .arg("-ldl")
        .arg("-o")
        .arg(exe);
    output(&mut cc, &format!("compiling hello.c against the original {lib}"));
}

#[test]
fn binaries_linked_with_the_original_run_on_ours() {
    let Some(prefix) = reference_prefix() else { return };
    let tmp = compat_tests::tempdir::TempDir::new("interop-abi").expect("temp dir");
    let ours = paths::c_lib_dir();
    let ours_canon = std::fs::canonicalize(&ours).unwrap_or(ours.clone());
    for (lib, _) in harness::LIBRARIES {
        let exe = tmp.path().join(format!("hello-{lib}"));
        build_against_original(&prefix, lib, &exe);

        // on the original (sanity of the program itself)
        let orig = output(Command::new(&exe).env("LD_LIBRARY_PATH", prefix.join("lib")), "hello on the original");
        // on ours
        let mine = output(Command::new(&exe).env("LD_LIBRARY_PATH", &ours), "hello on ours");
        let from = mine.lines().find_map(|l| l.strip_prefix("from ")).unwrap_or("");
        let from_canon = std::fs::canonicalize(from).unwrap_or_else(|_| PathBuf::from(from));
        assert!(from_canon.starts_with(&ours_canon), "{lib}: the program bound to {from}, not to our build/lib");
        let strip = |s: &str| s.lines().filter(|l| !l.starts_with("from ")).collect::<Vec<_>>().join("\n");
        assert_eq!(strip(&mine), strip(&orig), "{lib}: different behaviour on our library");
        println!("{lib}: a binary linked with the original runs on {from}");
    }
}
