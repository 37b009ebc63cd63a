//! ABI probe: our `include/*.h` and our three libraries against the facts
//! recorded from the original 5.0.1 (`../shared/ref/abi.json`).
//!
//! A C probe generated from abi.json is compiled with gcc against `include/`
//! (so a missing or incompatible declaration fails here) and run on
//! `build/lib/*.so.3` (made by `make build`). Every difference is listed.

#[path = "../abi-probe/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::sync::OnceLock;

use harness::{Facts, LIBRARIES};

fn include_dir() -> PathBuf {
    compat_tests::paths::workspace_root().join("include")
}

/// (expected, actual), computed once for all the tests of this file.
fn facts() -> &'static (Facts, Facts) {
    static F: OnceLock<(Facts, Facts)> = OnceLock::new();
    F.get_or_init(|| {
        let abi = harness::load_abi();
        let (_, expected) = harness::generate(&abi);
        let libs: Vec<(&str, PathBuf)> =
            LIBRARIES.iter().map(|(label, file)| (*label, compat_tests::paths::c_library(file))).collect();
        let actual = harness::run_probe(&include_dir(), &libs, &abi).unwrap_or_else(|e| panic!("{e}"));
        (expected, actual)
    })
}

fn check(prefixes: &[&str], what: &str) {
    let (expected, actual) = facts();
    let n = expected.keys().filter(|k| prefixes.iter().any(|p| k.starts_with(p))).count();
    assert!(n > 0, "no recorded facts for {prefixes:?}");
    let report = harness::diff(expected, actual, prefixes);
    assert!(report.is_empty(), "{what}: differences from the reference ABI\n{report}");
    println!("{what}: {n} facts match abi.json");
}

#[test]
fn layouts_of_types_and_structs() {
    check(&["scalar.", "struct.", "tag."], "types, struct layouts and tags");
}

#[test]
fn constants_values_and_c_types() {
    check(&["const."], "object-like macros");
}

#[test]
fn guards_type_macros_and_function_macros_exist() {
    check(&["macro.", "fmacro."], "non-numeric and function-like macros");
}

#[test]
fn service_type_macros_over_the_recorded_table() {
    check(&["svc.", "flmac."], "Is_* macros");
}

#[test]
fn flip_macros_values_and_result_types() {
    check(&["flip."], "Flip_int16 / Flip_int32");
}

#[test]
fn prototypes_compatible_with_the_original() {
    check(&["proto."], "function prototypes");
}

#[test]
fn runtime_libspread() {
    check(&["rt.libspread."], "libspread.so.3 at run time");
}

#[test]
fn runtime_libspread_core() {
    check(&["rt.libspread-core."], "libspread-core.so.3 at run time");
}

#[test]
fn runtime_libtspread_core() {
    check(&["rt.libtspread-core."], "libtspread-core.so.3 at run time");
}

/// The generator itself: a prototype becomes a pointer typedef, escaping
/// matches the probe's.
#[test]
fn harness_self_check() {
    let (files, expected) = harness::generate(&harness::load_abi());
    assert_eq!(files.len(), 4);
    assert!(expected.len() > 1500, "only {} facts generated", expected.len());
    assert_eq!(harness::escape("a\\b\nc\t\u{1}"), "a\\\\b\\nc\\t\\x01");
    let sp = &files.iter().find(|(n, _)| n == "probe_gen_sp.c").expect("sp unit").1;
    assert!(sp.contains("typedef int (*probe_proto_SP_join)( mailbox mbox, const char *group );"), "{sp}");
}

/// The probe must notice a broken header: a copy of include/ with a wrong
/// constant type, a wrong struct tag, a wrong macro type, a wrong Flip mask
/// and an incompatible prototype is reported on each of those facts.
#[test]
fn probe_detects_a_broken_header() {
    let tmp = compat_tests::tempdir::TempDir::new("abi-broken").expect("temp dir");
    let inc = tmp.path().join("include");
    std::fs::create_dir_all(&inc).expect("mkdir");
    for h in ["sp.h", "sp_func.h", "sp_events.h", "fl.h"] {
        let mut text = std::fs::read_to_string(include_dir().join(h)).expect("read header");
        let before = text.clone();
        match h {
            "sp.h" => {
                text = text.replacen("0x80000080", "0x00000080", 1);
                text = text.replacen("typedef struct dummy_group_id", "typedef struct other_group_id", 1);
                text = text.replacen("#define int16 short", "#define int16 int", 1);
                text = text.replacen("( (t) >> 8 ) & 0x00ff", "( (t) >> 8 ) & 0xffff", 1);
            }
            "sp_func.h" => {
                text = text.replacen(
                    "int SP_join(mailbox mbox, const char *group);",
                    "int SP_join(mailbox mbox, char *group);",
                    1,
                )
            }
            _ => {}
        }
        if h == "sp.h" || h == "sp_func.h" {
            assert_ne!(text, before, "{h}: the mutation no longer applies; update this test");
        }
        std::fs::write(inc.join(h), text).expect("write header");
    }
    let abi = harness::load_abi();
    let (_, expected) = harness::generate(&abi);
    let actual = harness::run_probe(&inc, &[], &abi).unwrap_or_else(|e| panic!("{e}"));
    let report = harness::diff(&expected, &actual, &["const.", "tag.", "macro.", "flip.", "proto."]);
    for needle in [
        "const.sp.h.ENDIAN_RESERVED.type",
        "const.sp.h.ENDIAN_RESERVED.value",
        "tag.group_id",
        "macro.sp.h.int16.sizeof",
        "const.fl.h.FL_MIN_LEGAL_MESS_TYPE.type",
        "proto.sp_func.h.SP_join",
        "flip.",
    ] {
        assert!(report.contains(needle), "the probe missed `{needle}`:\n{report}");
    }
}

/// The headers are usable from strict C89, C11 and C++ (inside `extern "C"`),
/// as a client of the original would use them: sp.h alone, fl.h alone, both
/// twice, and sp_events.h alone.
#[test]
fn headers_compile_in_c89_c11_and_cpp() {
    let tmp = compat_tests::tempdir::TempDir::new("abi-std").expect("temp dir");
    let src = tmp.path().join("client.c");
    std::fs::write(
        &src,
        r#"#include "fl.h"
#include "sp.h"
#include "fl.h"
#include "sp_events.h"
int use_everything(mailbox mbox);
int use_everything(mailbox mbox)
{
    char groups[2][MAX_GROUP_NAME];
    service st = SAFE_MESS | SELF_DISCARD;
    int16 mt = FL_MIN_LEGAL_MESS_TYPE;
    int n = 0, endian = 0;
    char sender[MAX_GROUP_NAME];
    char buf[16];
    sp_time t;
    t = E_get_time();
    groups[0][0] = groups[1][0] = '\0';
    if (Is_regular_mess(st) && !Is_membership_mess(st))
        n = SP_multigroup_multicast(mbox, st, 2, (const char (*)[MAX_GROUP_NAME])groups, mt, 0, "");
    n += SP_receive(mbox, &st, sender, 2, &n, groups, &mt, &endian, (int)sizeof(buf), buf);
    n += FL_subgroupcast(mbox, st, "g", 2, groups, mt, 0, "");
    return n + (int)t.sec + (int)Flip_int32(n) + Flip_int16(mt);
}
"#,
    )
    .expect("write client.c");
    let inc = include_dir();
    let cc = harness::cc();
    let mut runs: Vec<(String, Vec<&str>)> = vec![
        (cc.clone(), vec!["-std=c89", "-pedantic-errors", "-Wall", "-Wextra", "-Werror"]),
        (cc.clone(), vec!["-std=c11", "-pedantic-errors", "-Wall", "-Wextra", "-Werror"]),
    ];
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    if std::process::Command::new(&cxx).arg("--version").output().map(|o| o.status.success()).unwrap_or(false) {
        runs.push((cxx, vec!["-x", "c++", "-std=c++11", "-Wall", "-Werror"]));
    } else {
        println!("note: no C++ compiler ({cxx}); the C++ check is not run");
    }
    for (compiler, flags) in runs {
        let out = std::process::Command::new(&compiler)
            .args(&flags)
            .arg("-I")
            .arg(&inc)
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(tmp.path().join("client.o"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
        assert!(
            out.status.success(),
            "{compiler} {flags:?} rejects the headers:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
