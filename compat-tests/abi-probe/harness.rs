//! The ABI probe harness, shared by `tests/abi.rs` (our headers, our
//! libraries) and `tests/interop_abi.rs` (the original's headers, our
//! libraries).
//!
//! From `../shared/ref/abi.json` it generates C sources that print every
//! recorded fact as `key<TAB>value` lines (sizes, alignments, offsets, struct
//! tags, constant values and C types, macro results, prototype compatibility),
//! compiles them with `probe_main.c` (the runtime half, which dlopens each
//! library) against a given include directory, runs the probe, and compares
//! its output with the values the same keys have in abi.json.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub type Facts = BTreeMap<String, String>;

/// The three libraries, by label and file name.
pub const LIBRARIES: [(&str, &str); 3] = [
    ("libspread", "libspread.so.3"),
    ("libspread-core", "libspread-core.so.3"),
    ("libtspread-core", "libtspread-core.so.3"),
];

pub fn probe_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("abi-probe")
}

/// `../shared/ref` beside the checkout (see [`compat_tests::paths::ref_dir`]).
pub fn ref_dir() -> PathBuf {
    compat_tests::paths::ref_dir()
}

pub fn load_abi() -> Value {
    let p = ref_dir().join("abi.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_else(|| panic!("abi.json: missing string `{k}` in {v}"))
}

fn i(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or_else(|| panic!("abi.json: missing integer `{k}` in {v}"))
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v.get(k).and_then(Value::as_array).unwrap_or_else(|| panic!("abi.json: missing array `{k}`"))
}

fn obj<'a>(v: &'a Value, k: &str) -> &'a serde_json::Map<String, Value> {
    v.get(k).and_then(Value::as_object).unwrap_or_else(|| panic!("abi.json: missing object `{k}`"))
}

/// A C string literal for `s`.
fn c_lit(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            _ => o.push(ch),
        }
    }
    o.push('"');
    o
}

/// The escaping probe_main.c applies to string values.
pub fn escape(s: &str) -> String {
    let mut o = String::new();
    for &b in s.as_bytes() {
        match b {
            b'\\' => o.push_str("\\\\"),
            b'\n' => o.push_str("\\n"),
            b'\t' => o.push_str("\\t"),
            0x20..=0x7e => o.push(b as char),
            _ => {
                let _ = write!(o, "\\x{b:02x}");
            }
        }
    }
    o
}

fn parse_hex(h: &str) -> u32 {
    u32::from_str_radix(h.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("abi.json: bad hex {h}"))
}

/// The header a fact belongs in; decides which generated unit checks it
/// (each unit includes only its header, so sp_events.h is checked alone).
fn unit_of(header: &str) -> &'static str {
    match header {
        "sp_events.h" => "sp_events",
        "fl.h" => "fl",
        _ => "sp", // sp.h and sp_func.h (which needs sp.h)
    }
}

struct Units {
    body: BTreeMap<&'static str, String>,
    pre: BTreeMap<&'static str, String>,
}

impl Units {
    fn new() -> Units {
        Units { body: BTreeMap::new(), pre: BTreeMap::new() }
    }
    fn line(&mut self, unit: &'static str, text: &str) {
        let b = self.body.entry(unit).or_default();
        b.push_str("    ");
        b.push_str(text);
        b.push('\n');
    }
    fn pre(&mut self, unit: &'static str, text: &str) {
        let b = self.pre.entry(unit).or_default();
        b.push_str(text);
        b.push('\n');
    }
}

/// Generate the C sources (file name, text) and the expected facts.
pub fn generate(abi: &Value) -> (Vec<(String, String)>, Facts) {
    let mut u = Units::new();
    let mut exp = Facts::new();
    let header_of_unit = [("sp", "sp.h"), ("sp_events", "sp_events.h"), ("fl", "fl.h")];

    // scalar typedefs
    for (name, v) in obj(abi, "scalar_types") {
        let unit = if name == "sp_time" { "sp_events" } else { "sp" };
        for what in ["sizeof", "alignof"] {
            let key = format!("scalar.{name}.{what}");
            let op = if what == "sizeof" { "sizeof" } else { "_Alignof" };
            u.line(unit, &format!("probe_int(o, {}, (long long){op}({name}));", c_lit(&key)));
            exp.insert(key, i(v, what).to_string());
        }
    }

    // structs: size, alignment, every recorded field
    for (name, v) in obj(abi, "structs") {
        let unit = if name == "sp_time" { "sp_events" } else { "sp" };
        for what in ["sizeof", "alignof"] {
            let key = format!("struct.{name}.{what}");
            let op = if what == "sizeof" { "sizeof" } else { "_Alignof" };
            u.line(unit, &format!("probe_int(o, {}, (long long){op}({name}));", c_lit(&key)));
            exp.insert(key, i(v, what).to_string());
        }
        for f in arr(v, "fields") {
            let path = s(f, "name");
            let ctype = s(f, "c_type");
            let k = format!("struct.{name}.{path}");
            u.line(
                unit,
                &format!("probe_int(o, {}, (long long)offsetof({name}, {path}));", c_lit(&format!("{k}.offsetof"))),
            );
            u.line(
                unit,
                &format!("probe_int(o, {}, (long long)sizeof((({name} *)0)->{path}));", c_lit(&format!("{k}.sizeof"))),
            );
            u.line(
                unit,
                &format!(
                    "probe_int(o, {}, __builtin_types_compatible_p(__typeof__((({name} *)0)->{path}), {ctype}));",
                    c_lit(&format!("{k}.type_is.{ctype}"))
                ),
            );
            exp.insert(format!("{k}.offsetof"), i(f, "offsetof").to_string());
            exp.insert(format!("{k}.sizeof"), i(f, "sizeof").to_string());
            exp.insert(format!("{k}.type_is.{ctype}"), "1".into());
        }
    }

    // struct tags
    for (name, tag) in obj(abi, "typedef_tags") {
        let tag = tag.as_str().unwrap_or_default();
        let unit = if name == "sp_time" { "sp_events" } else { "sp" };
        let key = format!("tag.{name}");
        u.line(unit, &format!("probe_int(o, {}, __builtin_types_compatible_p({name}, {tag}));", c_lit(&key)));
        exp.insert(key, "1".into());
    }

    // object-like macros: value, C type, size
    for c in arr(abi, "constants") {
        let (name, header) = (s(c, "name"), s(c, "header"));
        let unit = unit_of(header);
        let k = format!("const.{header}.{name}");
        u.line(unit, &format!("probe_int(o, {}, (long long)({name}));", c_lit(&format!("{k}.value"))));
        u.line(unit, &format!("probe_str(o, {}, PROBE_TYPE_NAME({name}));", c_lit(&format!("{k}.type"))));
        u.line(unit, &format!("probe_int(o, {}, (long long)sizeof({name}));", c_lit(&format!("{k}.sizeof"))));
        exp.insert(format!("{k}.value"), i(c, "value").to_string());
        exp.insert(format!("{k}.type"), s(c, "c_type").to_string());
        exp.insert(format!("{k}.sizeof"), i(c, "sizeof").to_string());
    }

    // guards, type macros, NULL
    for m in arr(abi, "non_numeric_macros") {
        let (name, header, kind) = (s(m, "name"), s(m, "header"), s(m, "kind"));
        let unit = unit_of(header);
        let k = format!("macro.{header}.{name}");
        u.line(
            unit,
            &format!(
                "#ifdef {name}\n    probe_int(o, {}, 1);\n#else\n    probe_int(o, {}, 0);\n#endif",
                c_lit(&format!("{k}.defined")),
                c_lit(&format!("{k}.defined"))
            ),
        );
        exp.insert(format!("{k}.defined"), "1".into());
        if kind == "type macro" {
            let def = s(m, "definition");
            u.line(unit, &format!("probe_int(o, {}, (long long)sizeof({name}));", c_lit(&format!("{k}.sizeof"))));
            u.line(
                unit,
                &format!(
                    "probe_int(o, {}, __builtin_types_compatible_p({name}, {def}));",
                    c_lit(&format!("{k}.is.{def}"))
                ),
            );
            exp.insert(format!("{k}.sizeof"), i(m, "sizeof").to_string());
            exp.insert(format!("{k}.is.{def}"), "1".into());
        }
    }

    // function-like macros exist in their header
    let mut macro_header: BTreeMap<String, String> = BTreeMap::new();
    for m in arr(abi, "function_macros") {
        let (name, header) = (s(m, "name"), s(m, "header"));
        macro_header.insert(name.to_string(), header.to_string());
        let k = format!("fmacro.{header}.{name}.defined");
        u.line(
            unit_of(header),
            &format!(
                "#ifdef {name}\n    probe_int(o, {}, 1);\n#else\n    probe_int(o, {}, 0);\n#endif",
                c_lit(&k),
                c_lit(&k)
            ),
        );
        exp.insert(k, "1".into());
    }

    // Is_* over the service table
    let svc = abi.get("service_macro_table").expect("abi.json: service_macro_table");
    for row in arr(svc, "rows") {
        let hex = s(row, "service_hex");
        let val = parse_hex(hex);
        for (mname, res) in row.as_object().expect("row") {
            if !mname.starts_with("Is_") {
                continue;
            }
            let header = macro_header.get(mname).map(String::as_str).unwrap_or("sp.h");
            let k = format!("svc.{hex}.{mname}");
            u.line(
                unit_of(header),
                &format!(
                    "{{ service t = (service)0x{val:08x}u; probe_int(o, {}, (long long)(int)({mname}(t))); }}",
                    c_lit(&k)
                ),
            );
            exp.insert(k, res.as_i64().expect("int result").to_string());
        }
    }

    // Flip_* with result types
    for (n, f) in arr(abi, "flip_macro_table").iter().enumerate() {
        let (mac, at) = (s(f, "macro"), s(f, "arg_type"));
        let arg = i(f, "arg");
        let k = format!("flip.{n}.{mac}({at} {arg})");
        u.line("sp", &format!("{{ {at} a = ({at})({arg}LL); probe_int(o, {}, (long long)({mac}(a))); probe_str(o, {}, PROBE_TYPE_NAME({mac}(a))); }}", c_lit(&format!("{k}.value")), c_lit(&format!("{k}.type"))));
        exp.insert(format!("{k}.value"), i(f, "result").to_string());
        exp.insert(format!("{k}.type"), s(f, "result_c_type").to_string());
    }

    // FL macros
    for row in arr(abi, "fl_macro_table") {
        let hex = s(row, "service_hex");
        let val = parse_hex(hex);
        for mname in ["Is_flush_req_mess", "Is_subgroup_mess"] {
            let k = format!("flmac.{hex}.{mname}");
            u.line(
                "fl",
                &format!(
                    "{{ service t = (service)0x{val:08x}u; probe_int(o, {}, (long long)(int)({mname}(t))); }}",
                    c_lit(&k)
                ),
            );
            exp.insert(k, i(row, mname).to_string());
        }
    }

    // prototypes: the declared function type must be compatible with the recorded one
    let mut fnames = Vec::new();
    for p in arr(abi, "function_prototypes") {
        let (name, header, proto) = (s(p, "name"), s(p, "header"), s(p, "prototype"));
        fnames.push(name.to_string());
        let unit = unit_of(header);
        let tdef = proto_typedef(name, proto);
        u.pre(unit, &tdef);
        let k = format!("proto.{header}.{name}");
        u.line(
            unit,
            &format!(
                "probe_int(o, {}, __builtin_types_compatible_p(__typeof__(&{name}), probe_proto_{name}));",
                c_lit(&k)
            ),
        );
        exp.insert(k, "1".into());
    }

    // runtime
    let rt = abi.get("runtime").expect("abi.json: runtime");
    let codes: Vec<i64> = arr(rt, "error_codes").iter().map(|e| i(e, "code")).collect();
    for (label, _) in LIBRARIES {
        let is_full = label == "libspread";
        exp.insert(format!("rt.{label}.dlopen"), "ok".into());
        for f in &fnames {
            let present = is_full || !f.starts_with("FL_");
            exp.insert(format!("rt.{label}.sym.{f}"), if present { "1" } else { "0" }.into());
        }
        let v = rt.get("SP_version").expect("SP_version");
        exp.insert(
            format!("rt.{label}.SP_version"),
            format!("{} {}.{}.{}", i(v, "return"), i(v, "major"), i(v, "minor"), i(v, "patch")),
        );
        exp.insert(format!("rt.{label}.SP_version_null"), i(v, "return_with_NULL_arg").to_string());
        let g = rt.get("SP_equal_group_ids").expect("SP_equal_group_ids");
        exp.insert(format!("rt.{label}.SP_equal_group_ids.equal"), i(g, "equal").to_string());
        exp.insert(format!("rt.{label}.SP_equal_group_ids.different"), i(g, "different").to_string());
        exp.insert(format!("rt.{label}.SP_poll_unknown_mbox"), i(rt, "SP_poll_unknown_mbox").to_string());
        for e in arr(rt, "error_codes") {
            let code = i(e, "code");
            exp.insert(format!("rt.{label}.SP_strerror.{code}"), escape(s(e, "SP_strerror")));
            exp.insert(format!("rt.{label}.SP_error.{code}"), escape(s(e, "SP_error_stdout")));
            if is_full {
                exp.insert(format!("rt.{label}.FL_error.{code}"), escape(s(e, "FL_error_stdout")));
            }
        }
        if is_full {
            let f = rt.get("FL_version").expect("FL_version");
            exp.insert(
                format!("rt.{label}.FL_version"),
                format!("{}.{}.{}", i(f, "major"), i(f, "minor"), i(f, "patch")),
            );
            for g in ["FL_get_gid_offset_memb_mess", "FL_get_num_vs_offset_memb_mess", "FL_get_vs_set_offset_memb_mess"]
            {
                exp.insert(format!("rt.{label}.{g}"), i(rt, g).to_string());
            }
        }
    }

    // the sources
    let mut files = Vec::new();
    let mut calls = String::new();
    for (unit, header) in header_of_unit {
        let mut c = String::new();
        let _ = writeln!(c, "/* generated by compat-tests/abi-probe/harness.rs from abi.json; checks {header} */");
        let _ = writeln!(c, "#include \"{header}\"");
        let _ = writeln!(c, "#include \"probe.h\"\n");
        c.push_str(u.pre.get(unit).map(String::as_str).unwrap_or(""));
        let _ = writeln!(c, "\nvoid probe_unit_{unit}(FILE *o)\n{{");
        c.push_str(u.body.get(unit).map(String::as_str).unwrap_or(""));
        c.push_str("}\n");
        files.push((format!("probe_gen_{unit}.c"), c));
        let _ = writeln!(calls, "    probe_unit_{unit}(o);");
    }
    let mut d =
        String::from("/* generated by compat-tests/abi-probe/harness.rs from abi.json */\n#include <stdio.h>\n\n");
    for (unit, _) in header_of_unit {
        let _ = writeln!(d, "void probe_unit_{unit}(FILE *o);");
    }
    let _ = writeln!(
        d,
        "\nconst int probe_error_codes[] = {{ {} }};",
        codes.iter().map(|c| format!("({c})")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(d, "const int probe_n_error_codes = {};", codes.len());
    let _ = writeln!(
        d,
        "const char *const probe_function_names[] = {{ {} }};",
        fnames.iter().map(|f| c_lit(f)).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(d, "const int probe_n_function_names = {};", fnames.len());
    let _ = writeln!(d, "\nvoid probe_static(FILE *o)\n{{\n{calls}}}");
    files.push(("probe_gen_data.c".to_string(), d));
    (files, exp)
}

/// `int SP_join( mailbox mbox, const char *group );` ->
/// `typedef int (*probe_proto_SP_join)( mailbox mbox, const char *group );`
fn proto_typedef(name: &str, proto: &str) -> String {
    let bytes = proto.as_bytes();
    let mut at = None;
    let mut start = 0;
    while let Some(p) = proto[start..].find(name) {
        let a = start + p;
        let before = a == 0 || !(bytes[a - 1].is_ascii_alphanumeric() || bytes[a - 1] == b'_');
        let e = a + name.len();
        let after = e >= bytes.len() || !(bytes[e].is_ascii_alphanumeric() || bytes[e] == b'_');
        if before && after {
            at = Some(a);
            break;
        }
        start = e;
    }
    let a = at.unwrap_or_else(|| panic!("abi.json: prototype of {name} does not name it: {proto}"));
    format!("typedef {}(*probe_proto_{name}){}", &proto[..a], &proto[a + name.len()..])
}

/// Wait for a child with a deadline; kill it (by its own pid) when exceeded.
fn wait_bounded(mut child: std::process::Child, limit: Duration) -> Result<std::process::Output, String> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().map_err(|e| e.to_string()),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {limit:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn run(cmd: &mut Command, what: &str, limit: Duration) -> Result<std::process::Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let out = wait_bounded(child, limit).map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

pub fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Build the probe against `include_dir`, run it on `libs` (label, path),
/// return the facts it printed.
pub fn run_probe(include_dir: &Path, libs: &[(&str, PathBuf)], abi: &Value) -> Result<Facts, String> {
    let tmp = compat_tests::tempdir::TempDir::new("abi-probe").map_err(|e| e.to_string())?;
    let dir = tmp.path();
    let (files, _) = generate(abi);
    let mut sources = vec![probe_dir().join("probe_main.c")];
    for (name, text) in &files {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        sources.push(p);
    }
    let exe = dir.join("probe");
    let mut cmd = Command::new(cc());
    cmd.args(["-std=gnu11", "-O0", "-Wall", "-Wno-unused-function"])
        .args(["-Werror=incompatible-pointer-types", "-Werror=implicit-function-declaration"])
        .arg("-I")
        .arg(probe_dir())
        .arg("-I")
        .arg(include_dir)
        .args(&sources)
        .arg("-ldl")
        .arg("-o")
        .arg(&exe);
    run(&mut cmd, "compiling the ABI probe", Duration::from_secs(120))?;
    let out_file = dir.join("facts.txt");
    let mut cmd = Command::new(&exe);
    cmd.arg(&out_file);
    for (label, path) in libs {
        cmd.arg(format!("{label}={}", path.display()));
    }
    run(&mut cmd, "running the ABI probe", Duration::from_secs(60))?;
    let text = std::fs::read_to_string(&out_file).map_err(|e| format!("{}: {e}", out_file.display()))?;
    let mut facts = Facts::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('\t') {
            facts.insert(k.to_string(), v.to_string());
        }
    }
    Ok(facts)
}

/// Compare the expected facts whose key starts with one of `prefixes`;
/// returns a readable report of every difference (empty when equal).
pub fn diff(expected: &Facts, actual: &Facts, prefixes: &[&str]) -> String {
    let mut missing_syms = Vec::new();
    let mut lines = Vec::new();
    for (k, want) in expected {
        if !prefixes.iter().any(|p| k.starts_with(p)) {
            continue;
        }
        match actual.get(k) {
            None => lines.push(format!("  {k}: expected {want:?}, not reported")),
            Some(got) if got == "MISSING-SYMBOL" => missing_syms.push(k.clone()),
            Some(got) if got != want => {
                if k.contains(".sym.") && want == "1" {
                    missing_syms.push(k.clone());
                } else {
                    lines.push(format!("  {k}: expected {want:?}, got {got:?}"));
                }
            }
            Some(_) => {}
        }
    }
    let mut report = String::new();
    if !missing_syms.is_empty() {
        let _ = writeln!(report, "functions/values not provided by the library yet ({}):", missing_syms.len());
        for k in &missing_syms {
            let _ = writeln!(report, "  {k}");
        }
    }
    if !lines.is_empty() {
        let _ = writeln!(report, "differences from abi.json ({}):", lines.len());
        for l in &lines {
            let _ = writeln!(report, "{l}");
        }
    }
    report
}
