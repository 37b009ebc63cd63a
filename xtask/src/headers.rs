//! Generation of `include/{sp.h,sp_func.h,sp_events.h,fl.h}`.
//!
//! Each header is `xtask/templates/<name>.in`: hand-kept C text (include guards,
//! object-like and function-like macros, which cbindgen cannot express with the
//! exact C types the original has) plus directives that pull in what cbindgen
//! renders from the Rust sources of `libspread-ffi`:
//!
//! * `@types NAME[=TAG] ...` — the typedefs / structs `NAME`, in that order. A
//!   struct gets the struct tag `TAG` (`typedef struct TAG { ... } NAME;`), as
//!   the original names its tags `dummy_*` and cbindgen cannot.
//! * `@functions` ... `@end` — the prototypes, in that order. Inside the block
//!   every C declaration (ending with `;`) is a hand-kept prototype naming one
//!   function: it is replaced by cbindgen's rendering of the Rust function of
//!   that name; only when the Rust sources do not define it (yet) is the
//!   hand-kept text used, with a note. Comments and blank lines are kept.
//! * `@subst FROM => TO` — plain text replacement applied to every generated
//!   item of this header (used to write array bounds with their macro names).
//! * `@fixup FUNC: FROM => TO` — text replacement in the rendering of one
//!   function; used where a Rust pointer constness spelling would give a C type
//!   that is not *compatible* with the original prototype (for function
//!   pointer assignments), although the ABI is the same.
//! * `@undeclared NAME ...` — functions the library exports but the original
//!   headers do not declare; they are left out on purpose.
//!
//! Generated items pass through fixed rewrites: fixed-width integer names
//! (`uint32_t`, ...) become the plain C types the original uses (so the headers
//! need only `<stddef.h>`), and a parameter `T (*p)[N]` is written `T p[][N]`
//! (the same type in a parameter list, spelled as in the original).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The generated headers, in the order they are written.
pub const HEADERS: [&str; 4] = ["sp.h", "sp_events.h", "sp_func.h", "fl.h"];

pub struct Output {
    /// (file name, contents)
    pub files: Vec<(String, String)>,
    /// Things a human should know (fallbacks used, unlisted exports, ...).
    pub notes: Vec<String>,
}

/// Generate every header in memory.
pub fn generate_all(root: &Path) -> Result<Output, String> {
    let items = cbindgen_items(&root.join("libspread-ffi/src"))?;
    let mut notes = Vec::new();
    let mut listed = BTreeSet::new();
    let mut files = Vec::new();
    for name in HEADERS {
        let tpl_path = root.join("xtask/templates").join(format!("{name}.in"));
        let tpl = fs::read_to_string(&tpl_path).map_err(|e| format!("{}: {e}", tpl_path.display()))?;
        let text = expand_template(name, &tpl, &items, &mut listed, &mut notes)?;
        files.push((name.to_string(), text));
    }
    for (name, item) in &items {
        if item.kind == Kind::Function && !listed.contains(name) {
            notes.push(format!(
                "{name} is exported by libspread-ffi but neither declared nor listed as @undeclared in any template"
            ));
        }
    }
    Ok(Output { files, notes })
}

/// Write the headers whose contents changed; returns their names.
pub fn write_all(root: &Path, out: &Output) -> Result<Vec<String>, String> {
    let dir = root.join("include");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut changed = Vec::new();
    for (name, text) in &out.files {
        let path = dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            changed.push(name.clone());
        }
    }
    Ok(changed)
}

/// Describe every checked-in header that differs from the generated one.
pub fn stale(root: &Path, out: &Output) -> Vec<String> {
    let mut msgs = Vec::new();
    for (name, text) in &out.files {
        let path = root.join("include").join(name);
        match fs::read_to_string(&path) {
            Err(e) => msgs.push(format!("include/{name}: cannot read ({e})")),
            Ok(have) if have != *text => {
                msgs.push(format!("include/{name} differs from the generator's output:\n{}", line_diff(&have, text)))
            }
            Ok(_) => {}
        }
    }
    msgs
}

/// A small line diff: the first differing lines, as `-checked-in` / `+generated`.
fn line_diff(have: &str, want: &str) -> String {
    let a: Vec<&str> = have.lines().collect();
    let b: Vec<&str> = want.lines().collect();
    let mut out = String::new();
    let mut shown = 0;
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (a.get(i), b.get(i));
        if x != y {
            if let Some(x) = x {
                out.push_str(&format!("  line {}: -{x}\n", i + 1));
            }
            if let Some(y) = y {
                out.push_str(&format!("  line {}: +{y}\n", i + 1));
            }
            shown += 1;
            if shown >= 12 {
                out.push_str("  ...\n");
                break;
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Define,
    Struct,
    Typedef,
    Extern,
    Function,
}

#[derive(Clone, Debug)]
struct Item {
    kind: Kind,
    text: String,
}

// ---------------------------------------------------------------------------
// cbindgen

fn cbindgen_items(src: &Path) -> Result<BTreeMap<String, Item>, String> {
    let tmp = std::env::temp_dir().join(format!(
        "xtask-headers-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    let result = (|| {
        let aliases = collect_fn_aliases(src)?;
        copy_preprocessed(src, &tmp, &aliases)?;
        run_cbindgen(&tmp.join("lib.rs"))
    })();
    let _ = fs::remove_dir_all(&tmp);
    let text = result?;
    Ok(split_items(&text))
}

fn run_cbindgen(lib_rs: &Path) -> Result<String, String> {
    let mut cfg = cbindgen::Config {
        language: cbindgen::Language::C,
        no_includes: true,
        style: cbindgen::Style::Type,
        usize_is_size_t: true,
        documentation: false,
        sort_by: cbindgen::SortKey::Name,
        ..Default::default()
    };
    // int16 / int32 are macros in sp.h; a typedef of them would not compile.
    cfg.export.exclude = vec!["int16".into(), "int32".into()];
    let bindings =
        cbindgen::Builder::new().with_config(cfg).with_src(lib_rs).generate().map_err(|e| format!("cbindgen: {e}"))?;
    let mut buf = Vec::new();
    bindings.write(&mut buf);
    String::from_utf8(buf).map_err(|e| format!("cbindgen output is not UTF-8: {e}"))
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let rd = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out)?;
        } else if p.extension().and_then(|e| e.to_str()) == Some("rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// `type NAME = ... extern "C" fn(...) ...;` aliases, NAME -> definition.
/// cbindgen renders `Option<extern "C" fn ...>` as a nullable C function
/// pointer, but not `Option<NAME>`; the aliases are inlined before parsing.
fn collect_fn_aliases(src: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut files = Vec::new();
    rs_files(src, &mut files)?;
    let mut aliases = BTreeMap::new();
    for f in files {
        let text = fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let mut rest = text.as_str();
        while let Some(pos) = find_word(rest, "type") {
            let after = &rest[pos + 4..];
            let name_len = ident_len(after.trim_start());
            let lead = after.len() - after.trim_start().len();
            let name = &after.trim_start()[..name_len];
            let after_name = after[lead + name_len..].trim_start();
            if !name.is_empty() && after_name.starts_with('=') {
                if let Some(end) = after_name.find(';') {
                    let def = after_name[1..end].trim();
                    if def.contains("extern \"C\" fn") && !def.contains('<') {
                        aliases.insert(name.to_string(), squash_ws(def));
                    }
                }
            }
            rest = &rest[pos + 4..];
        }
    }
    Ok(aliases)
}

fn copy_preprocessed(src: &Path, dst: &Path, aliases: &BTreeMap<String, String>) -> Result<(), String> {
    let mut files = Vec::new();
    rs_files(src, &mut files)?;
    for f in files {
        let rel = f.strip_prefix(src).map_err(|e| e.to_string())?;
        let out = dst.join(rel);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let mut text = fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        for (name, def) in aliases {
            text = text.replace(&format!("Option<{name}>"), &format!("Option<{def}>"));
        }
        let text = strip_param_underscores(&text);
        fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(())
}

/// In the parameter list of every named `extern "C" fn`, `_name:` becomes
/// `name:` (Rust's unused-parameter spelling is no part of the C API).
fn strip_param_underscores(text: &str) -> String {
    const KEY: &str = "extern \"C\" fn";
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(p) = text[i..].find(KEY) {
        let kend = i + p + KEY.len();
        out.push_str(&text[i..kend]);
        i = kend;
        let name_at = i + (text[i..].len() - text[i..].trim_start().len());
        if ident_len(&text[name_at..]) == 0 {
            continue; // a function pointer type, not a definition
        }
        let Some(open) = text[i..].find('(').map(|o| i + o) else { break };
        out.push_str(&text[i..=open]);
        i = open + 1;
        let mut depth = 1usize;
        let mut at_param_start = true;
        while i < b.len() && depth > 0 {
            let Some(c) = text[i..].chars().next() else { break };
            if at_param_start && !c.is_whitespace() {
                at_param_start = false;
                let p = &text[i..];
                let skip = match p.strip_prefix("mut ") {
                    Some(rest) => 4 + (rest.len() - rest.trim_start().len()),
                    None => 0,
                };
                let q = &p[skip..];
                let n = ident_len(q);
                if q.starts_with('_') && n > 1 && q[n..].trim_start().starts_with(':') {
                    out.push_str(&p[..skip]);
                    i += skip + 1; // drop the underscore
                    continue;
                }
            }
            match c {
                '(' | '[' | '<' => depth += 1,
                '>' if i > 0 && b[i - 1] == b'-' => {}
                ')' | ']' | '>' => depth -= 1,
                ',' if depth == 1 => at_param_start = true,
                _ => {}
            }
            out.push(c);
            i += c.len_utf8();
        }
    }
    out.push_str(&text[i..]);
    out
}

fn find_word(s: &str, w: &str) -> Option<usize> {
    let mut start = 0;
    while let Some(p) = s[start..].find(w) {
        let at = start + p;
        let before_ok = at == 0 || !is_ident_char(s.as_bytes()[at - 1] as char);
        let after_ok = s[at + w.len()..].chars().next().map(|c| !is_ident_char(c)).unwrap_or(true);
        if before_ok && after_ok {
            return Some(at);
        }
        start = at + w.len();
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn ident_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        if is_ident_char(c) && !(i == 0 && c.is_ascii_digit()) {
            n = i + c.len_utf8();
        } else {
            break;
        }
    }
    n
}

fn squash_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Split cbindgen's output (blank-line separated) into named items.
fn split_items(text: &str) -> BTreeMap<String, Item> {
    let mut items = BTreeMap::new();
    for chunk in text.split("\n\n") {
        let chunk = chunk.trim_matches('\n');
        if chunk.trim().is_empty() {
            continue;
        }
        if let Some((name, kind)) = item_name(chunk) {
            items.insert(name, Item { kind, text: chunk.to_string() });
        }
    }
    items
}

fn item_name(chunk: &str) -> Option<(String, Kind)> {
    let body = chunk.trim();
    if let Some(rest) = body.strip_prefix("#define ") {
        let n = ident_len(rest);
        return Some((rest[..n].to_string(), Kind::Define));
    }
    let before_semi = body.trim_end().strip_suffix(';')?;
    if body.starts_with("typedef struct") && body.contains('{') {
        let tail = before_semi.rsplit('}').next()?.trim();
        return Some((tail.to_string(), Kind::Struct));
    }
    if body.starts_with("typedef ") {
        if let Some(p) = body.find("(*") {
            let n = ident_len(&body[p + 2..]);
            return Some((body[p + 2..p + 2 + n].to_string(), Kind::Typedef));
        }
        return Some((last_ident(before_semi)?, Kind::Typedef));
    }
    if body.starts_with("extern ") {
        return Some((last_ident(before_semi)?, Kind::Extern));
    }
    let open = body.find('(')?;
    Some((last_ident(&body[..open])?, Kind::Function))
}

fn last_ident(s: &str) -> Option<String> {
    let s = s.trim_end();
    let start = s.rfind(|c: char| !is_ident_char(c)).map(|p| p + 1).unwrap_or(0);
    let id = &s[start..];
    if id.is_empty() {
        None
    } else {
        Some(id.to_string())
    }
}

// ---------------------------------------------------------------------------
// templates

fn expand_template(
    header: &str,
    tpl: &str,
    items: &BTreeMap<String, Item>,
    listed: &mut BTreeSet<String>,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    // Directives that apply to the whole file are read first.
    let mut substs: Vec<(String, String)> = Vec::new();
    let mut fixups: Vec<(String, String, String)> = Vec::new();
    for line in tpl.lines() {
        if let Some(rest) = line.strip_prefix("@subst ") {
            let (a, b) = rest.split_once(" => ").ok_or_else(|| format!("{header}.in: bad @subst line: {line}"))?;
            substs.push((a.to_string(), b.to_string()));
        } else if let Some(rest) = line.strip_prefix("@fixup ") {
            let (func, rule) = rest.split_once(": ").ok_or_else(|| format!("{header}.in: bad @fixup line: {line}"))?;
            let (a, b) = rule.split_once(" => ").ok_or_else(|| format!("{header}.in: bad @fixup line: {line}"))?;
            fixups.push((func.trim().to_string(), a.to_string(), b.to_string()));
        } else if let Some(rest) = line.strip_prefix("@undeclared ") {
            for n in rest.split_whitespace() {
                listed.insert(n.to_string());
            }
        }
    }

    let mut out = String::new();
    let mut lines = tpl.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("@subst ") || line.starts_with("@fixup ") || line.starts_with("@undeclared ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("@types ") {
            let mut first = true;
            for spec in rest.split_whitespace() {
                let (name, tag) = match spec.split_once('=') {
                    Some((n, t)) => (n, Some(t)),
                    None => (spec, None),
                };
                let item = items.get(name).ok_or_else(|| {
                    format!(
                        "{header}.in: type `{name}` is not defined in libspread-ffi/src (or cbindgen cannot see it)"
                    )
                })?;
                let mut text = item.text.clone();
                if let Some(tag) = tag {
                    if item.kind != Kind::Struct || !text.starts_with("typedef struct {") {
                        return Err(format!("{header}.in: `{name}` is not a plain struct; cannot give it tag `{tag}`"));
                    }
                    text = text.replacen("typedef struct {", &format!("typedef struct {tag} {{"), 1);
                }
                text = rewrite_common(&text, &substs);
                if !first {
                    out.push('\n');
                }
                first = false;
                out.push_str(&text);
                out.push('\n');
                listed.insert(name.to_string());
            }
            continue;
        }
        if line.trim() == "@functions" {
            let mut block = Vec::new();
            let mut closed = false;
            for l in lines.by_ref() {
                if l.trim() == "@end" {
                    closed = true;
                    break;
                }
                block.push(l);
            }
            if !closed {
                return Err(format!("{header}.in: @functions without @end"));
            }
            out.push_str(&expand_functions(header, &block, items, &substs, &fixups, listed, notes)?);
            continue;
        }
        if line.starts_with('@') {
            return Err(format!("{header}.in: unknown directive: {line}"));
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

fn expand_functions(
    header: &str,
    block: &[&str],
    items: &BTreeMap<String, Item>,
    substs: &[(String, String)],
    fixups: &[(String, String, String)],
    listed: &mut BTreeSet<String>,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut i = 0;
    while i < block.len() {
        let line = block[i];
        let t = line.trim_start();
        if t.is_empty() {
            out.push('\n');
            i += 1;
            continue;
        }
        if t.starts_with("/*") {
            // a comment, kept verbatim (possibly several lines)
            loop {
                out.push_str(block[i]);
                out.push('\n');
                let done = block[i].contains("*/");
                i += 1;
                if done || i >= block.len() {
                    break;
                }
            }
            continue;
        }
        // a hand-kept prototype, up to its ';'
        let mut decl = String::new();
        loop {
            decl.push_str(block[i]);
            decl.push('\n');
            let done = block[i].contains(';');
            i += 1;
            if done || i >= block.len() {
                break;
            }
        }
        let open = decl.find('(').ok_or_else(|| format!("{header}.in: not a prototype: {}", decl.trim()))?;
        let name =
            last_ident(&decl[..open]).ok_or_else(|| format!("{header}.in: no function name in: {}", decl.trim()))?;
        listed.insert(name.clone());
        match items.get(&name) {
            Some(item) if item.kind == Kind::Function => {
                let mut text = rewrite_common(&item.text, substs);
                text = rewrite_array_params(&text);
                for (f, a, b) in fixups {
                    if *f == name {
                        if text.contains(a.as_str()) {
                            text = text.replace(a.as_str(), b);
                        } else {
                            notes.push(format!(
                                "{header}.in: @fixup for {name} does not apply (no `{a}`); it may be obsolete"
                            ));
                        }
                    }
                }
                out.push_str(&text);
                out.push('\n');
            }
            _ => {
                notes.push(format!(
                    "{name} is not defined in libspread-ffi/src yet; {header} uses the hand-kept prototype"
                ));
                out.push_str("/* hand-kept: not yet defined in the Rust sources */\n");
                out.push_str(&decl);
            }
        }
    }
    Ok(out)
}

/// Rewrites applied to every generated item.
fn rewrite_common(text: &str, substs: &[(String, String)]) -> String {
    let mut t = text.to_string();
    for (from, to) in [
        ("uint32_t", "unsigned int"),
        ("int32_t", "int"),
        ("uint16_t", "unsigned short"),
        ("int16_t", "short"),
        ("uint8_t", "unsigned char"),
        ("int8_t", "signed char"),
        ("uintptr_t", "size_t"),
        ("intptr_t", "long"),
        ("int64_t", "long"),
        ("uint64_t", "unsigned long"),
    ] {
        t = replace_word(&t, from, to);
    }
    for (from, to) in substs {
        t = t.replace(from.as_str(), to);
    }
    t
}

fn replace_word(s: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = find_word(rest, from) {
        out.push_str(&rest[..p]);
        out.push_str(to);
        rest = &rest[p + from.len()..];
    }
    out.push_str(rest);
    out
}

/// `T (*name)[N]` -> `T name[][N]` (identical parameter types).
fn rewrite_array_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(p) = rest.find("(*") {
        let after = &rest[p + 2..];
        let n = ident_len(after);
        if n > 0 && after[n..].starts_with(")[") {
            out.push_str(&rest[..p]);
            out.push_str(&after[..n]);
            out.push_str("[]");
            rest = &after[n + 1..];
        } else {
            out.push_str(&rest[..p + 2]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        crate::workspace_root()
    }

    /// The checked-in headers must be exactly what the generator makes.
    #[test]
    fn checked_in_headers_are_fresh() {
        let out = generate_all(&root()).expect("header generation failed");
        let stale = stale(&root(), &out);
        assert!(
            stale.is_empty(),
            "include/*.h are stale; run `cargo run -p xtask -- headers`\n{}\nnotes:\n{}",
            stale.join("\n"),
            out.notes.join("\n")
        );
    }

    #[test]
    fn array_params_are_respelled() {
        assert_eq!(
            rewrite_array_params("int f(const char (*groups)[MAX_GROUP_NAME], int (*cb)(int));"),
            "int f(const char groups[][MAX_GROUP_NAME], int (*cb)(int));"
        );
    }

    #[test]
    fn unused_param_underscores_are_dropped() {
        let src = "pub unsafe extern \"C\" fn f(_a: c_int, mut _b: *mut [c_char; 32], c: Option<unsafe extern \"C\" fn(c_int) -> c_int>, _d: u8) -> c_int { let _x: u8 = 0; 0 }";
        let got = strip_param_underscores(src);
        assert_eq!(
            got,
            "pub unsafe extern \"C\" fn f(a: c_int, mut b: *mut [c_char; 32], c: Option<unsafe extern \"C\" fn(c_int) -> c_int>, d: u8) -> c_int { let _x: u8 = 0; 0 }"
        );
    }

    #[test]
    fn item_names() {
        assert_eq!(item_name("int SP_poll(mailbox mbox);"), Some(("SP_poll".into(), Kind::Function)));
        assert_eq!(item_name("sp_time E_get_time(void);"), Some(("E_get_time".into(), Kind::Function)));
        assert_eq!(item_name("typedef int mailbox;"), Some(("mailbox".into(), Kind::Typedef)));
        assert_eq!(item_name("typedef struct {\n  long sec;\n} sp_time;"), Some(("sp_time".into(), Kind::Struct)));
        assert_eq!(item_name("extern int Slow_events_max;"), Some(("Slow_events_max".into(), Kind::Extern)));
    }
}
