//! Locating the workspace, the built `spread` binary, the C libraries and the
//! reference recordings.

use std::path::{Path, PathBuf};

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// `target/<profile>` of the running test binary: test executables live in
/// `target/<profile>/deps/`, so this is the parent of their directory. Falls
/// back to `$CARGO_TARGET_DIR` or `<root>/target` with `release`.
pub fn profile_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            if dir.file_name().map(|n| n == "deps").unwrap_or(false) {
                if let Some(p) = dir.parent() {
                    return p.to_path_buf();
                }
            }
            return dir.to_path_buf();
        }
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    target.join("release")
}

/// The daemon binary under test: `$RSPREAD_SPREAD_BIN`, else
/// `target/<profile>/spread`, else `target/release/spread`. Panics with a
/// clear message when missing (run `cargo build --release --workspace` or
/// `make build` first).
pub fn spread_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RSPREAD_SPREAD_BIN") {
        return PathBuf::from(p);
    }
    let mut tried = Vec::new();
    let candidates = [profile_dir().join("spread"), workspace_root().join("target").join("release").join("spread")];
    for c in candidates {
        if c.is_file() {
            warn_if_stale(&c, &workspace_root().join("spread-daemon"));
            return c;
        }
        tried.push(c.display().to_string());
    }
    panic!(
        "the `spread` daemon binary is missing (looked at {}). Build it first with \
         `cargo build --release --workspace` (or `make build`), or point RSPREAD_SPREAD_BIN at one.",
        tried.join(", ")
    );
}

/// Newest modification time of any file under `dir` (bounded walk).
fn newest_mtime(dir: &Path, budget: &mut usize) -> Option<std::time::SystemTime> {
    let mut best = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let p = e.path();
        let t = if p.is_dir() { newest_mtime(&p, budget) } else { e.metadata().ok().and_then(|m| m.modified().ok()) };
        if let Some(t) = t {
            if best.map(|b| t > b).unwrap_or(true) {
                best = Some(t);
            }
        }
    }
    best
}

/// `cargo test -p compat-tests` does not rebuild the daemon binary: say so
/// when the binary is older than the daemon's sources.
fn warn_if_stale(bin: &Path, crate_dir: &Path) {
    let mut budget = 2000;
    let src = newest_mtime(&crate_dir.join("src"), &mut budget);
    let built = std::fs::metadata(bin).ok().and_then(|m| m.modified().ok());
    if let (Some(src), Some(built)) = (src, built) {
        if src > built {
            eprintln!(
                "warning: {} is older than the spread-daemon sources; rebuild it \
                 (`cargo build --release --workspace` or `make build`)",
                bin.display()
            );
        }
    }
}

/// Directory of the built C libraries (`build/lib`, made by the Makefile), or
/// `$RSPREAD_LIB_DIR`.
pub fn c_lib_dir() -> PathBuf {
    std::env::var_os("RSPREAD_LIB_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("build").join("lib"))
}

/// A built C library by file name (e.g. `libtspread-core.so.3`); panics with
/// a clear message when it is missing.
pub fn c_library(file: &str) -> PathBuf {
    let p = c_lib_dir().join(file);
    if !p.is_file() {
        panic!(
            "{} is missing: build the C libraries first (`make build`, which puts them in build/lib/), \
             or point RSPREAD_LIB_DIR at a directory holding them.",
            p.display()
        );
    }
    p
}

/// The recordings of the original 5.0.1 (`abi.json`, `symbols/`,
/// `transcripts/`, `pcap/`): `../shared/ref` beside the checkout, the only
/// place they come from. Panics saying so when it is missing.
pub fn ref_dir() -> PathBuf {
    let dir = workspace_root().join("../shared/ref");
    if !dir.is_dir() {
        panic!(
            "the recordings of the original 5.0.1 are missing: expected ../shared/ref beside the checkout ({}); \
             they come only from there",
            dir.display()
        );
    }
    dir
}

/// The reference transcripts directory (`transcripts/` of [`ref_dir`]).
pub fn transcripts_dir() -> PathBuf {
    ref_dir().join("transcripts")
}

/// `<SPREAD_REF_PREFIX>/sbin/spread`, the installed original 5.0.1 daemon;
/// `None` (having printed that `test` is skipped and why) when the variable
/// is unset or empty. Panics if the prefix has no such file.
pub fn reference_daemon(test: &str) -> Option<PathBuf> {
    let Some(prefix) = std::env::var_os("SPREAD_REF_PREFIX").filter(|v| !v.is_empty()) else {
        eprintln!("{test}: skipped: SPREAD_REF_PREFIX is not set (it must name an installed original Spread 5.0.1)");
        return None;
    };
    let bin = PathBuf::from(prefix).join("sbin/spread");
    assert!(bin.is_file(), "{} is missing under SPREAD_REF_PREFIX", bin.display());
    Some(bin)
}
