//! The TOML form's round trip: `spread.conf` text → `--convert-config`'s
//! TOML → loaded again must give the same configuration and hash.
#![allow(dead_code)]

use spread_daemon::config::{self, Config};

/// `file:line: message` → `message` (the two forms differ in file and lines).
fn strip(m: &str) -> String {
    let mut parts = m.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(l), Some(rest)) if l.chars().all(|c| c.is_ascii_digit()) => rest.trim_start().to_string(),
        _ => m.to_string(),
    }
}

/// A warning without the ports of the addresses it quotes (`a:4803`,
/// `[v6]:4803` → `a`, `v6`): a segment's port is a key of its own in TOML.
fn portless(w: &str) -> String {
    w.split(' ')
        .map(|word| match word.rsplit_once(':') {
            Some((a, p))
                if !p.is_empty()
                    && p.chars().all(|c| c.is_ascii_digit())
                    && (a.contains('.') || a.starts_with('[')) =>
            {
                a.trim_start_matches('[').trim_end_matches(']').to_string()
            }
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Warning on or before line N` (the original's words) → without the line.
fn lineless(w: &str) -> String {
    match w.find("Warning on or before line ") {
        Some(i) => {
            let rest = &w[i + "Warning on or before line ".len()..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            format!("{}Warning on or before line _{}", &w[..i], &rest[digits..])
        }
        None => w.to_string(),
    }
}

/// What may differ between the two spellings of one configuration: the
/// file label, the lines of the daemons and of the messages.
pub fn normalized(c: &Config) -> Config {
    let mut c = c.clone();
    c.file.clear();
    for d in &mut c.daemons {
        d.line = 0;
    }
    c.warnings = c.warnings.iter().map(|w| lineless(&portless(&strip(w)))).collect();
    c.unsupported = c.unsupported.iter().map(|w| strip(w)).collect();
    c
}

/// Both configurations are the same (hash, VIDs, every parameter), and the
/// TOML one warned only about what the original warned about (the scanner's
/// own warnings, e.g. a stray character, have no TOML counterpart).
pub fn same(conf: &Config, back: &Config) -> Result<(), String> {
    let (mut a, mut b) = (normalized(conf), normalized(back));
    if a.hash() != b.hash() {
        return Err(format!("hash {} vs {} ({:?} vs {:?})", a.hash(), b.hash(), a.hash_text, b.hash_text));
    }
    for w in &b.warnings {
        if !a.warnings.contains(w) {
            return Err(format!("TOML warning {w:?} not given for the spread.conf form ({:?})", a.warnings));
        }
    }
    // Notes of keywords not supported yet: a repeated keyword gives one per
    // line in spread.conf, and none for a value a later line took back.
    for u in &b.unsupported {
        if !a.unsupported.contains(u) {
            return Err(format!("TOML note {u:?} not given for the spread.conf form ({:?})", a.unsupported));
        }
    }
    a.warnings.clear();
    b.warnings.clear();
    a.unsupported.clear();
    b.unsupported.clear();
    if a != b {
        let (ta, tb) = (format!("{a:#?}"), format!("{b:#?}"));
        let diff: Vec<String> = ta
            .lines()
            .zip(tb.lines())
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| format!("line {i}: {x:?} vs {y:?}"))
            .collect();
        return Err(format!("configurations differ: {}", diff.join("; ")));
    }
    Ok(())
}

/// Convert `text` (spread.conf syntax), load the TOML, compare; then convert
/// the TOML itself, which must give the same TOML again. Returns the TOML.
pub fn round_trip(text: &str, label: &str) -> Result<String, String> {
    let conf = config::parse_str_with_resolver(text, label, &config::offline_resolver)
        .map_err(|e| format!("spread.conf form does not parse: {e}"))?;
    let toml = config::convert_bytes(text.as_bytes(), label, &config::offline_resolver)
        .map_err(|e| format!("cannot convert: {e}"))?;
    let back = config::parse_toml_str_with_resolver(&toml, "converted.toml", &config::offline_resolver)
        .map_err(|e| format!("converted TOML does not load: {e}\n{toml}"))?;
    same(&conf, &back).map_err(|e| format!("{e}\n{toml}"))?;
    let again = config::convert_bytes(toml.as_bytes(), "converted.toml", &config::offline_resolver)
        .map_err(|e| format!("cannot convert the TOML again: {e}"))?;
    let body = |t: &str| t.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    if body(&again) != body(&toml) {
        return Err(format!("converting the TOML again gives another TOML:\n{toml}\nvs\n{again}"));
    }
    Ok(toml)
}
