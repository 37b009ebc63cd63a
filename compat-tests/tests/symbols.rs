//! The export surface of the built libraries (`build/lib`, made by
//! `make build`) against the public part of the reference lists
//! (`../shared/ref/symbols/*.txt`, `nm -D --defined-only` of the original).
//!
//! Public part: every `SP_*`, `E_*`, `FL_*` and `Slow_events_*` symbol the
//! original exports (FL_* only in libspread), with the same nm type. Nothing
//! else may be exported (the original's internal Alarm/Mem/DL/spu/std/scatp
//! helpers are deliberately not; see libspread-ffi/exports/README.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use compat_tests::paths;

const LIBS: [&str; 3] = ["libspread", "libspread-core", "libtspread-core"];

fn ref_dir() -> PathBuf {
    paths::ref_dir()
}

fn is_public(name: &str) -> bool {
    ["SP_", "E_", "FL_", "Slow_events_"].iter().any(|p| name.starts_with(p))
}

struct RefList {
    soname: String,
    /// name -> nm type
    public: BTreeMap<String, String>,
    total: usize,
}

fn load_ref(lib: &str) -> RefList {
    let p = ref_dir().join("symbols").join(format!("{lib}.so.3.txt"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    let mut soname = String::new();
    let mut public = BTreeMap::new();
    let mut total = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# SONAME:") {
            soname = rest.trim().to_string();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut it = line.split_whitespace();
        if let (Some(name), Some(ty)) = (it.next(), it.next()) {
            total += 1;
            if is_public(name) {
                public.insert(name.to_string(), ty.to_string());
            }
        }
    }
    assert!(!soname.is_empty(), "{}: no SONAME header", p.display());
    RefList { soname, public, total }
}

fn tool(cmd: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(cmd)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} (binutils installed?): {e}"));
    assert!(out.status.success(), "{cmd} {args:?} {} failed: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nm` output (`[addr] type name`) -> name -> type, defined symbols only.
fn parse_nm(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, ty, name] = f.as_slice() {
            m.insert(name.to_string(), ty.to_string());
        }
    }
    m
}

fn compare(
    lib: &str,
    what: &str,
    want: &BTreeMap<String, String>,
    got: &BTreeMap<String, String>,
    types: bool,
) -> String {
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    let mut wrong = Vec::new();
    for (n, t) in want {
        match got.get(n) {
            None => missing.push(format!("{n} ({t})")),
            Some(g) if types && g != t => wrong.push(format!("{n}: reference {t}, ours {g}")),
            Some(_) => {}
        }
    }
    for (n, t) in got {
        if !want.contains_key(n) {
            extra.push(format!("{n} ({t})"));
        }
    }
    let mut r = String::new();
    if !missing.is_empty() {
        r += &format!(
            "{lib} {what}: {} public symbols missing (not implemented yet?):\n  {}\n",
            missing.len(),
            missing.join("\n  ")
        );
    }
    if !extra.is_empty() {
        r += &format!(
            "{lib} {what}: {} symbols exported that the reference's public API does not have:\n  {}\n",
            extra.len(),
            extra.join("\n  ")
        );
    }
    if !wrong.is_empty() {
        r += &format!("{lib} {what}: wrong symbol types:\n  {}\n", wrong.join("\n  "));
    }
    r
}

fn expected_for(lib: &str) -> RefList {
    let r = load_ref(lib);
    // the reference lists agree with the documented split: FL only in libspread
    let has_fl = r.public.keys().any(|n| n.starts_with("FL_"));
    assert_eq!(has_fl, lib == "libspread", "{lib}: unexpected FL_* presence in the reference list");
    r
}

#[test]
fn shared_libraries_export_exactly_the_public_api() {
    let mut report = String::new();
    for lib in LIBS {
        let r = expected_for(lib);
        let so = paths::c_library(&format!("{lib}.so.3"));
        let got = parse_nm(&tool("nm", &["-D", "--defined-only"], &so));
        report += &compare(lib, ".so.3", &r.public, &got, true);
        println!("{lib}.so.3: {} exported (reference: {} public of {} total)", got.len(), r.public.len(), r.total);
    }
    assert!(report.is_empty(), "\n{report}");
}

#[test]
fn static_archives_define_exactly_the_public_api() {
    let mut report = String::new();
    for lib in LIBS {
        let r = expected_for(lib);
        let a = paths::c_lib_dir().join(format!("{lib}.a"));
        assert!(a.is_file(), "{} missing: run `make build`", a.display());
        let got = parse_nm(&tool("nm", &["-g", "--defined-only"], &a));
        // an archive member's data symbols may be D/B/R depending on layout; compare names only
        report += &compare(lib, ".a", &r.public, &got, false);
    }
    assert!(report.is_empty(), "\n{report}");
}

#[test]
fn sonames_links_and_dependencies() {
    for lib in LIBS {
        let r = expected_for(lib);
        let dir = paths::c_lib_dir();
        let real = dir.join(format!("{lib}.so.3.0.0"));
        assert!(real.is_file(), "{} missing: run `make build`", real.display());
        // lib.so -> lib.so.3 -> lib.so.3.0.0
        let l3 = std::fs::read_link(dir.join(format!("{lib}.so.3"))).expect("lib.so.3 is a symlink");
        assert_eq!(l3, PathBuf::from(format!("{lib}.so.3.0.0")));
        let l = std::fs::read_link(dir.join(format!("{lib}.so"))).expect("lib.so is a symlink");
        assert_eq!(l, PathBuf::from(format!("{lib}.so.3")));

        let dynamic = tool("readelf", &["-d", "-W"], &real);
        let soname: Vec<&str> = dynamic
            .lines()
            .filter(|l| l.contains("(SONAME)"))
            .filter_map(|l| l.split('[').nth(1).and_then(|s| s.split(']').next()))
            .collect();
        assert_eq!(soname, vec![r.soname.as_str()], "{lib}: SONAME");
        let needed: Vec<&str> = dynamic
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| l.split('[').nth(1).and_then(|s| s.split(']').next()))
            .collect();
        println!("{lib}: SONAME {} NEEDED {needed:?}", soname[0]);
        assert!(needed.contains(&"libc.so.6"), "{lib}: libc.so.6 not NEEDED: {needed:?}");
        for n in &needed {
            assert!(
                n.starts_with("libc.so")
                    || n.starts_with("ld-linux")
                    || n.starts_with("libm.so")
                    || n.starts_with("libpthread.so")
                    || n.starts_with("libdl.so"),
                "{lib}: unexpected NEEDED entry {n} (only the C library is allowed)"
            );
        }
        // every strong undefined reference is a versioned C library symbol
        // (the library must load with nothing but libc beside it)
        let undefined = tool("nm", &["-D", "--undefined-only"], &real);
        let bad: Vec<&str> = undefined
            .lines()
            .filter(|l| l.split_whitespace().next() == Some("U"))
            .filter(|l| !l.contains("@GLIBC_"))
            .collect();
        assert!(bad.is_empty(), "{lib}: unresolved non-libc references: {bad:?}");
        // exports are unversioned, like the original's
        let versions = tool("readelf", &["-V", "-W"], &real);
        assert!(!versions.contains(".gnu.version_d"), "{lib}: defines symbol versions:\n{versions}");
    }
}

/// The export lists the Makefile links with are the reference's public
/// part (so symbols.rs and libspread-ffi/exports/ cannot drift apart).
#[test]
fn export_lists_match_the_reference() {
    let dir = paths::workspace_root().join("libspread-ffi/exports");
    let read = |f: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let core = read("core.syms");
    let fl = read("fl.syms");
    let mut full: Vec<String> = core.iter().chain(fl.iter()).cloned().collect();
    full.sort();
    let mut core_sorted = core.clone();
    core_sorted.sort();
    let want_full: Vec<String> = load_ref("libspread").public.keys().cloned().collect();
    let want_core: Vec<String> = load_ref("libspread-core").public.keys().cloned().collect();
    let want_t: Vec<String> = load_ref("libtspread-core").public.keys().cloned().collect();
    assert_eq!(full, want_full, "core.syms + fl.syms vs libspread's public symbols");
    assert_eq!(core_sorted, want_core, "core.syms vs libspread-core's public symbols");
    assert_eq!(want_core, want_t, "the two core libraries export the same list");
}
