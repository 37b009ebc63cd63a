//! The event log as operators read it (issue 10 items 5 and 7):
//!
//! * text form (the default): the lines scripts watch for keep the
//!   original's words — "Conf_load_conf_file: using file: …", the
//!   segment/loopback warning block, "Conf_load_conf_file: My name: …",
//!   "Membership id is ( rep, time)" followed by the configuration printout
//!   ("Configuration at … is:"); `DebugFlags` GROUPS, MEMBERSHIP and
//!   PROTOCOL add the original's lines of those modules (`G_handle_join: …`,
//!   `Memb_handle_token: …`, `Prot_handle_token: …`), and without them
//!   nothing of those modules is written;
//! * `EventLogFormat = json`: every line is one JSON object; configuration
//!   events, membership changes and session rejections are structured
//!   events with typed fields;
//! * with `SPREAD_REF_PREFIX`, the watched start-up lines are the same as
//!   the original's for one configuration.
//!
//! Ports 27500–27599.

mod daemon_util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use daemon_util::*;

const FAST: &str = "TokenTimeout = 1000\nHurryTimeout = 200\nAliveTimeout = 100\nJoinTimeout = 100\n\
RepTimeout = 300\nSegTimeout = 200\nGatherTimeout = 500\nFormTimeout = 500\nLookupTimeout = 2000\n";

fn dir_for(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rspread-logging-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ring_segments(ports: &[u16]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("Spread_Segment 127.0.0.255:{p} {{\n\tr{}\t127.0.0.1\n}}\n", i + 1))
        .collect()
}

/// The daemon's lines (bounded by `limit`) up to and including the first
/// for which `stop` holds.
fn lines_until(d: &Daemon, limit: Duration, mut stop: impl FnMut(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match d.log.recv_timeout(left) {
            Ok(l) => {
                let done = stop(&l);
                seen.push(l);
                if done {
                    return seen;
                }
            }
            Err(e) => panic!("daemon on port {}: {e}; it logged: {seen:#?}", d.port),
        }
    }
}

fn is_membership_line(l: &str) -> bool {
    // "Membership id is ( -1805764293, 1796691868)", exactly
    let Some(rest) = l.strip_prefix("Membership id is ( ") else { return false };
    let Some(rest) = rest.strip_suffix(')') else { return false };
    let parts: Vec<&str> = rest.split(", ").collect();
    parts.len() == 2 && parts[0].parse::<i32>().is_ok() && parts[1].parse::<i32>().is_ok()
}

#[test]
fn text_lines_keep_the_originals_words_and_debug_flags_add_module_lines() {
    let ports = [27500u16, 27510];
    let segs = ring_segments(&ports);
    // Same segments (so the same hash), different DebugFlags.
    let (d1dir, d2dir) = (dir_for("t1"), dir_for("t2"));
    std::fs::write(d1dir.join("spread.conf"), format!("{FAST}{segs}")).unwrap();
    std::fs::write(
        d2dir.join("spread.conf"),
        format!("{FAST}DebugFlags = {{ PRINT EXIT CONFIGURATION GROUPS MEMBERSHIP PROTOCOL }}\n{segs}"),
    )
    .unwrap();
    let d1 = Daemon::start_named("r1", ports[0], d1dir.clone());
    let mut d2 = Daemon::start_named("r2", ports[1], d2dir.clone());

    // d1's start-up, up to the printout of the two-daemon ring (it may
    // install a ring of one first).
    let mut two = false;
    let mut start = d1.startup.clone();
    start.extend(lines_until(&d1, Duration::from_secs(30), |l| {
        if l == "\t1\t[127.0.0.255]:27510" {
            two = true;
        }
        two && l == "===================="
    }));
    let conf_path = d1dir.join("spread.conf");
    let want_in_order = [
        format!("Conf_load_conf_file: using file: {}", conf_path.display()),
        "Configured daemon 'r1' with IP '127.0.0.1'".to_string(),
        "Successfully configured Segment 0 [127.0.0.255]:27500 with 1 procs:".to_string(),
        "Finished configuration file.".to_string(),
    ];
    let mut at = 0;
    for w in &want_in_order {
        let Some(k) = start[at..].iter().position(|l| l == w) else {
            panic!("missing, or out of order: {w:?} in {start:#?}")
        };
        at += k + 1;
    }
    let warn = start.iter().position(|l| l == "----------- Parse Warning------------------").expect("warning block");
    // the original counts lines from 0: the first segment's "}" is line 12
    let brace = format!("{FAST}{segs}").lines().position(|l| l == "}").unwrap() + 1;
    assert_eq!(brace, 12);
    assert_eq!(
        &start[warn + 1..warn + 4],
        [
            "Warning on or before line 11",
            "Offending token: }",
            "Warning type: Segment configured with a loopback address 127.0.0.255!"
        ],
        "the original's loopback warning"
    );
    let me = start.iter().find(|l| l.starts_with("Conf_load_conf_file: My name: r1, id: ")).expect("My name line");
    assert!(me.ends_with(", addr: 127.0.0.1, port: 27500"), "{me}");
    // the last membership: the original's line, then Conf_print
    let m = start.iter().rposition(|l| is_membership_line(l)).unwrap_or_else(|| panic!("{start:#?}"));
    let block: Vec<&str> = start[m + 1..].iter().map(String::as_str).collect();
    assert_eq!(block[0], "--------------------");
    assert_eq!(block[1], "Configuration at r1 is:");
    assert_eq!(block[2], "Num Segments 2");
    assert_eq!(block[3], "\t1\t[127.0.0.255]:27500");
    assert!(block[4].starts_with("\t\tr1                  \t127.0.0.1\tID: "), "{:?}", block[4]);
    assert_eq!(block[5], "\t1\t[127.0.0.255]:27510");
    assert!(block[6].starts_with("\t\tr2                  \t127.0.0.1\tID: "), "{:?}", block[6]);
    assert_eq!(block.len(), 8);
    assert!(!start.iter().any(|l| l.starts_with("Memb_") || l.starts_with("Prot_") || l.starts_with("G_")));

    // d2 has the module flags: membership, token and groups lines.
    let mut kinds = [false; 3];
    lines_until(&d2, Duration::from_secs(30), |l| {
        kinds[0] |=
            l.starts_with("Memb_handle_token: handling form") || l.starts_with("Memb_handle_message: handling ");
        kinds[1] |= l.starts_with("Prot_handle_token: type = 0x");
        kinds[2] |= l.starts_with("G_handle_reg_memb:  with (");
        kinds.iter().all(|&k| k)
    });
    let mut c2 = connect_tcp(ports[1], "c2", true);
    c2.join("lg");
    wait_members(&mut c2, "lg", 1);
    lines_until(&d2, Duration::from_secs(10), |l| l == "G_handle_join: #c2#r2 joins group lg");
    let mut c1 = connect_tcp(ports[0], "c1", true);
    c1.join("lg");
    wait_members(&mut c1, "lg", 2);

    // Kill d2: d1 prints its ring of one, and nothing of the groups layer
    // came before (GROUPS is not in its flags), though its client joined.
    d2.stop(libc::SIGKILL);
    let mut one = false;
    let after = lines_until(&d1, Duration::from_secs(30), |l| {
        if is_membership_line(l) {
            one = true;
        }
        one && l == "===================="
    });
    assert!(
        !after.iter().any(|l| l.starts_with("G_") || l.starts_with("Memb_") || l.starts_with("Prot_")),
        "{after:#?}"
    );
    assert!(after.contains(&"\t0\t[127.0.0.255]:27510".to_string()), "{after:#?}");
}

fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

#[test]
fn json_lines_carry_structured_events() {
    let port = 27530u16;
    let dir = dir_for("json");
    std::fs::write(
        dir.join("spread.conf"),
        format!(
            "EventLogFormat = json\nEventTimeStamp\nDebugFlags = {{ PRINT EXIT CONFIGURATION SESSION }}\n\
             Spread_Segment 127.0.0.255:{port} {{\n\tj1\t127.0.0.1\n}}\n"
        ),
    )
    .unwrap();
    let d = Daemon::start_named("j1", port, dir.clone());
    // start_named consumed the lines up to "serving clients"; a client
    // joins, then a second session with the same name is refused.
    let mut a = connect_tcp(port, "dup", true);
    a.join("jg");
    wait_members(&mut a, "jg", 1);
    let mut s = tcp(port);
    use std::io::{Read, Write};
    s.write_all(&[5, 0, 1, 1, 3, b'd', b'u', b'p']).unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    assert_eq!(b[0] as i8, -6, "REJECT_NOT_UNIQUE");
    let lines = lines_until(&d, Duration::from_secs(10), |l| l.contains("session_rejected"));
    let evs = json_lines(&lines);
    let rej = evs.last().unwrap();
    assert_eq!(rej["event"], "session_rejected");
    assert_eq!(rej["reason"], "REJECT_NOT_UNIQUE");
    assert_eq!(rej["code"], -6);
    assert_eq!(rej["flag"], "SESSION");
    assert!(rej["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{rej}");
    assert!(rej["message"].as_str().unwrap().contains("rejected: REJECT_NOT_UNIQUE"), "{rej}");
    for e in &evs {
        let t = e["time"].as_str().unwrap_or_else(|| panic!("time: {e}"));
        assert!(t.len() == 27 && t.ends_with('Z') && t.as_bytes()[10] == b'T', "RFC 3339 UTC: {t}");
        for k in ["level", "priority", "flag", "target", "message"] {
            assert!(e[k].is_string(), "{k} in {e}");
        }
    }
    for e in json_lines(&d.startup) {
        assert!(e["message"].is_string(), "{e}");
    }
}

#[test]
fn json_start_up_events_are_typed() {
    let port = 27540u16;
    let dir = dir_for("json2");
    std::fs::write(
        dir.join("spread.conf"),
        format!("EventLogFormat = json\nSpread_Segment 127.0.0.255:{port} {{\n\tj2\t127.0.0.1\n}}\n"),
    )
    .unwrap();
    let d = Daemon::start_named("j2", port, dir.clone());
    let evs = json_lines(&d.startup);
    let text = d.startup.join("\n");
    let by = |name: &str| {
        evs.iter().find(|e| e["event"] == name).unwrap_or_else(|| panic!("no {name} event in {text}")).clone()
    };
    let f = by("config_file");
    assert_eq!(f["file"], dir.join("spread.conf").display().to_string());
    assert!(f["message"].as_str().unwrap().starts_with("Conf_load_conf_file: using file: "));
    let loaded = by("config_loaded");
    assert!(loaded["hash"].is_u64(), "{loaded}");
    assert_eq!(loaded["daemons"], 1);
    assert_eq!(loaded["segments"], 1);
    assert_eq!(loaded["warnings"], 1, "the loopback segment");
    let me = by("config_me");
    assert_eq!(me["name"], "j2");
    assert_eq!(me["port"], port as u64);
    // alone in its file: the ring of one is announced as the original does
    let m = by("membership");
    assert_eq!(m["daemons"], 1);
    assert_eq!(m["names"], "j2");
    assert_eq!(m["vids"], me["vid"].to_string());
    assert_eq!(m["leader"], true);
    assert_eq!(m["ring_rep"].as_i64().map(|v| v as u32 as u64), me["vid"].as_u64(), "{m}");
    assert!(m["ring_time"].is_i64(), "{m}");
    assert!(is_membership_line(m["message"].as_str().unwrap()), "{m}");
    assert_eq!(m["priority"], "INFO");
    assert_eq!(m["flag"], "PRINT");
    // the printout that follows the text line is not repeated in JSON
    assert!(!evs.iter().any(|e| e["message"].as_str().is_some_and(|s| s.starts_with("Configuration at"))));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Everything the daemon wrote to `path` once it holds `what` (bounded).
fn wait_file(path: &Path, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = std::fs::read_to_string(path).unwrap_or_default();
        if t.contains(what) {
            return t;
        }
        assert!(Instant::now() < deadline, "{} never held {what:?}: {t}", path.display());
        // polling a file another process appends to (bounded above)
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The original's start-up lines that scripts watch for, for one file, as
/// they appear in ours (the same lines, the membership time masked; the
/// original writes its segment warning in the middle of the segment's
/// lines and glues the next line to it, so lines are compared as a set).
#[test]
fn watched_start_up_lines_match_the_original() {
    let Some(prefix) = std::env::var_os("SPREAD_REF_PREFIX").filter(|v| !v.is_empty()) else {
        eprintln!("watched_start_up_lines_match_the_original: skipped: SPREAD_REF_PREFIX is not set (an install prefix of the original 5.0.1)");
        return;
    };
    let stdbuf = Path::new("/usr/libexec/coreutils/libstdbuf.so");
    if !stdbuf.is_file() {
        eprintln!("watched_start_up_lines_match_the_original: skipped: coreutils' libstdbuf.so is missing (the original buffers its log)");
        return;
    }
    let ports = [27560u16, 27570];
    let dir = dir_for("orig");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let conf = format!(
        "{FAST}{}DaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = {}\n",
        ring_segments(&ports),
        run.display()
    );
    std::fs::write(dir.join("spread.conf"), &conf).unwrap();
    let outputs: Vec<String> = [PathBuf::from(prefix).join("sbin/spread"), PathBuf::from(env!("CARGO_BIN_EXE_spread"))]
        .iter()
        .enumerate()
        .map(|(k, bin)| {
            let log = dir.join(format!("out{k}.log"));
            let f = std::fs::File::create(&log).unwrap();
            let mut child = std::process::Command::new(bin)
                .args(["-n", "r1", "-c"])
                .arg(dir.join("spread.conf"))
                .current_dir(&dir)
                .env("LD_PRELOAD", stdbuf)
                .env("_STDBUF_O", "L")
                .stdout(f.try_clone().unwrap())
                .stderr(f)
                .spawn()
                .unwrap();
            let text = wait_file(&log, "\n====================\n");
            let _ = child.kill();
            let _ = child.wait();
            text
        })
        .collect();
    let watched = |text: &str| -> Vec<String> {
        let mut v = Vec::new();
        let mut in_block = false;
        for l in text.lines() {
            // the original glues the line after its segment warning on
            let parts: Vec<&str> = match l.find("!Successfully configured Segment") {
                Some(i) => vec![&l[..=i], &l[i + 1..]],
                None => vec![l],
            };
            for part in parts {
                let keep = [
                    "Conf_load_conf_file: ",
                    "Configured daemon",
                    "Auto-generated virtual ID",
                    "Successfully configured Segment",
                    "----------- Parse Warning",
                    "Warning on or before",
                    "Offending token",
                    "Warning type",
                    "Set user name",
                    "Set group name",
                    "Set runtime directory",
                    "Hash value",
                    "Finished configuration file.",
                ]
                .iter()
                .any(|p| part.starts_with(p));
                if is_membership_line(part) {
                    v.push("Membership id is ( <masked>)".to_string());
                    in_block = true;
                } else if in_block {
                    v.push(part.to_string());
                    if part == "====================" {
                        in_block = false;
                    }
                } else if keep {
                    v.push(part.to_string());
                }
            }
        }
        v.sort();
        v.dedup();
        v
    };
    let (o, r) = (watched(&outputs[0]), watched(&outputs[1]));
    assert!(o.iter().any(|l| l.starts_with("Configuration at r1")), "the original printed its ring: {}", outputs[0]);
    assert_eq!(o, r, "original:\n{}\nours:\n{}", outputs[0], outputs[1]);
    let _ = std::fs::remove_dir_all(&dir);
}
