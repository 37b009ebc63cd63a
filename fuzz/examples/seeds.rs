//! Writes the seed corpora of the fuzz targets into `<out>/<target>/`:
//!
//! * `client_frames`: each recorded connection's client→daemon bytes
//!   (`<ref>/transcripts/*.json`), handshake included;
//! * `session_after_handshake`: the same streams without their handshake,
//!   every message's sender field rewritten to the fuzzed session's `#fz#d1`;
//! * `client_receive`: each connection's daemon→client bytes, whole and
//!   without the handshake reply;
//! * `daemon_packets`: the UDP payloads of `<ref>/pcap/*.pcap` (a few of each
//!   type and length), the whole messages inside data packets and the GROUPS
//!   bodies inside those;
//! * `config`: `<ref>` configurations (pcap/*.conf, each transcript's
//!   daemon.spread_conf), the repository's sample, and every string literal
//!   naming `Spread_Segment` in spread-daemon/tests/*.rs;
//!
//! plus a few built here for what the recordings lack. Each seed starts with
//! the control bytes its target expects (see the targets' docs). Without the
//! recordings only the built seeds are written (with a warning).
//!
//! Usage: `cargo run --example seeds -- [REF_DIR [REPO_DIR [OUT_DIR]]]`;
//! defaults `../../shared/ref`, `..` and `corpus`, relative to the fuzz crate.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use rspread_fuzz::{connect_request, frame, null_auth_choice};
use spread_wire::consts::*;
use spread_wire::daemon::{Datagram, GroupsMessage, Message, Packet};
use spread_wire::header::Header;
use spread_wire::membership::{encode_regular_body, GroupId};
use spread_wire::names::name32;
use spread_wire::Order;

/// Seeds per target, deduplicated.
#[derive(Default)]
struct Seeds {
    by_target: BTreeMap<&'static str, Vec<Vec<u8>>>,
    seen: HashSet<(&'static str, Vec<u8>)>,
}

impl Seeds {
    fn add(&mut self, target: &'static str, seed: Vec<u8>) {
        if self.seen.insert((target, seed.clone())) {
            self.by_target.entry(target).or_default().push(seed);
        }
    }

    fn add_with(&mut self, target: &'static str, control: &[u8], body: &[u8]) {
        let mut v = control.to_vec();
        v.extend_from_slice(body);
        self.add(target, v);
    }

    fn write(&self, out: &Path) -> std::io::Result<()> {
        for (target, seeds) in &self.by_target {
            let dir = out.join(target);
            fs::create_dir_all(&dir)?;
            for s in seeds {
                fs::write(dir.join(format!("seed-{:016x}", fnv(s))), s)?;
            }
            println!("seeds: {target}: {} inputs in {}", seeds.len(), dir.display());
        }
        Ok(())
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x0100_0000_01b3))
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

// ---- transcripts --------------------------------------------------------------

const HANDSHAKE_C2D: &[&str] = &["connect_request", "connect_request_version_only", "auth_choice"];
const HANDSHAKE_D2C: &[&str] = &["auth_methods", "accept", "reject_byte"];

/// One connection of a recording: its frames per direction, in order, as
/// (kind, bytes).
#[derive(Default)]
struct Conn {
    c2d: Vec<(String, Vec<u8>)>,
    d2c: Vec<(String, Vec<u8>)>,
}

fn transcripts(dir: &Path, seeds: &mut Seeds, confs: &mut Vec<String>) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    files.sort();
    for path in &files {
        let Ok(text) = fs::read_to_string(path) else { continue };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            eprintln!("seeds: {} is not JSON, skipped", path.display());
            continue;
        };
        let many = json.get("daemons").and_then(|d| d.as_object()).into_iter().flat_map(|m| m.values());
        for d in many.chain(json.get("daemon")) {
            if let Some(c) = d.get("spread_conf").and_then(|c| c.as_str()) {
                confs.push(c.to_string());
            }
        }
        let mut conns: BTreeMap<String, Conn> = BTreeMap::new();
        for f in json.get("frames").and_then(|f| f.as_array()).into_iter().flatten() {
            let (Some(label), Some(kind)) = (f["conn"].as_str(), f["kind"].as_str()) else { continue };
            let bytes = unhex(f["hex"].as_str().unwrap_or(""));
            if bytes.is_empty() {
                continue;
            }
            let c = conns.entry(label.to_string()).or_default();
            match f["dir"].as_str() {
                Some("c2d") => c.c2d.push((kind.to_string(), bytes)),
                Some("d2c") => c.d2c.push((kind.to_string(), bytes)),
                _ => {}
            }
        }
        for c in conns.values() {
            let whole: Vec<u8> = c.c2d.iter().flat_map(|(_, b)| b.clone()).collect();
            if !whole.is_empty() {
                seeds.add_with("client_frames", &[0, 0, 0, 0], &whole);
                seeds.add_with("client_frames", &[0x01, 0x02, 0, 7], &whole);
            }
            let mut after = Vec::new();
            for (kind, b) in c.c2d.iter().filter(|(k, _)| !HANDSHAKE_C2D.contains(&k.as_str())) {
                let mut b = b.clone();
                if kind != "unparsed_trailing_bytes" && b.len() >= 36 {
                    b[4..36].copy_from_slice(&name32(b"#fz#d1"));
                }
                after.extend_from_slice(&b);
            }
            if !after.is_empty() {
                seeds.add_with("session_after_handshake", &[0x03, 0, 0, 0], &after);
                seeds.add_with("session_after_handshake", &[0x0b, 0x02, 0, 3], &after);
            }
            let d2c: Vec<u8> = c.d2c.iter().flat_map(|(_, b)| b.clone()).collect();
            if !d2c.is_empty() {
                seeds.add_with("client_receive", &[0x02, 0, 0], &d2c);
            }
            let frames: Vec<u8> = c
                .d2c
                .iter()
                .filter(|(k, _)| !HANDSHAKE_D2C.contains(&k.as_str()))
                .flat_map(|(_, b)| b.clone())
                .collect();
            if !frames.is_empty() {
                seeds.add_with("client_receive", &[0x03, 0, 0], &frames);
                seeds.add_with("client_receive", &[0x13, 0x5a, 0xa5], &frames);
            }
        }
    }
    files.len()
}

// ---- pcap ---------------------------------------------------------------------

/// UDP payloads of a classic pcap file with Ethernet link type (IPv4 only, as
/// the reference captures are).
fn udp_payloads(path: &Path) -> Vec<Vec<u8>> {
    let Ok(f) = fs::read(path) else { return Vec::new() };
    if f.len() < 24 {
        return Vec::new();
    }
    let le = match u32::from_le_bytes([f[0], f[1], f[2], f[3]]) {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        _ => return Vec::new(),
    };
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    if u32_at(&f[20..24]) != 1 {
        return Vec::new();
    }
    let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]) as usize;
    let mut out = Vec::new();
    let mut off = 24;
    while let Some(rec) = f.get(off..off + 16) {
        let incl = u32_at(&rec[8..12]) as usize;
        let Some(frame) = f.get(off + 16..off + 16 + incl) else { break };
        off += 16 + incl;
        let mut eth = 14;
        if frame.len() < 14 {
            continue;
        }
        let mut ethertype = be16(&frame[12..14]);
        if ethertype == 0x8100 && frame.len() >= 18 {
            ethertype = be16(&frame[16..18]);
            eth = 18;
        }
        let Some(ip) = frame.get(eth..) else { continue };
        if ethertype != 0x0800 || ip.len() < 20 || ip[9] != 17 {
            continue;
        }
        let ihl = (ip[0] & 0x0f) as usize * 4;
        let Some(udp) = ip.get(ihl..) else { continue };
        if udp.len() < 8 {
            continue;
        }
        let ulen = be16(&udp[4..6]);
        if let Some(p) = udp.get(8..ulen) {
            out.push(p.to_vec());
        }
    }
    out
}

fn pcaps(dir: &Path, seeds: &mut Seeds) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "pcap")).collect();
    files.sort();
    // At most a few datagrams per (type word, length): the steady-state capture
    // repeats the same tokens thousands of times.
    let mut per_shape: BTreeMap<(u32, usize), usize> = BTreeMap::new();
    for path in &files {
        for p in udp_payloads(path) {
            let t = p.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
            let n = per_shape.entry((t, p.len())).or_default();
            *n += 1;
            if *n > 3 {
                continue;
            }
            if let Ok((_, Datagram::Packet(Packet::Data(d)))) = Datagram::decode(&p) {
                for f in d.fragments.iter().filter(|f| f.index == -1) {
                    if let Ok(m) = Message::decode(&f.data) {
                        if m.header.type_ & GROUPS_MESS != 0 && GroupsMessage::decode(m.order, &m.data).is_ok() {
                            seeds.add("daemon_packets", m.data.clone());
                        }
                    }
                    seeds.add("daemon_packets", f.data.clone());
                }
            }
            seeds.add("daemon_packets", p);
        }
    }
    files.len()
}

// ---- configurations -----------------------------------------------------------

/// String literals (plain `"…"` and raw `r#"…"#`) of a Rust source that
/// contain `Spread_Segment`, with the common escapes undone.
fn conf_literals(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'r' && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) {
            let mut j = i + 1;
            while j < b.len() && b[j] == b'#' {
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let close = format!("\"{}", "#".repeat(j - i - 1));
                if let Some(end) = src[j + 1..].find(&close) {
                    out.push(src[j + 1..j + 1 + end].to_string());
                    i = j + 1 + end + close.len();
                    continue;
                }
            }
        }
        if b[i] == b'"' {
            let mut s = String::new();
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' && j + 1 < b.len() {
                    match b[j + 1] {
                        b'n' => s.push('\n'),
                        b't' => s.push('\t'),
                        b'r' => s.push('\r'),
                        b'0' => s.push('\0'),
                        b'\n' => {
                            // A line continuation skips the next line's indentation.
                            j += 2;
                            while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                                j += 1;
                            }
                            continue;
                        }
                        c => s.push(c as char),
                    }
                    j += 2;
                    continue;
                }
                let ch = src[j..].chars().next().unwrap_or('?');
                s.push(ch);
                j += ch.len_utf8();
            }
            out.push(s);
            i = j + 1;
            continue;
        }
        i += 1;
    }
    out.retain(|s| s.contains("Spread_Segment"));
    out.into_iter().map(|s| if s.contains("{{") || s.contains("}}") { unformat(&s) } else { s }).collect()
}

/// A `format!` string made concrete: `{{`/`}}` undone, each `{name}` a number.
fn unformat(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '{' if it.peek() == Some(&'{') => {
                it.next();
                out.push('{');
            }
            '}' if it.peek() == Some(&'}') => {
                it.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                for d in it.by_ref() {
                    if d == '}' {
                        break;
                    }
                    name.push(d);
                }
                out.push_str(if name.contains("port") { "4803" } else { "1" });
            }
            c => out.push(c),
        }
    }
    out
}

const KITCHEN_SINK: &str = "\
# every keyword once
EventLogFile = /tmp/spread-%h.log
EventTimeStamp = \"[%a %d %b %Y %H:%M:%S]\"
EventPreciseTimeStamp
EventPriority = INFO
DebugFlags = { PRINT EXIT CONFIGURATION MEMBERSHIP !DEBUG }
DangerousMonitor = false
SocketPortReuse = AUTO
RuntimeDir = /var/run/spread
DaemonUser = spread
DaemonGroup = spread
AllowedAuthMethods = \"NULL IP\"
RequiredAuthMethods = \"NULL\"
AccessControlPolicy = PERMIT
MaxSessionMessages = 5000
MaxSessionBytes = 1000000
MaxQueuedBytes = 100000000
ActiveIPVersion = IPv4
Window = 200
PersonalWindow = 40
AcceleratedRing = true
AcceleratedWindow = 20
TokenTimeout = 1250
HurryTimeout = 500
AliveTimeout = 250
JoinTimeout = 250
RepTimeout = 625
SegTimeout = 500
GatherTimeout = 1250
FormTimeout = 1250
LookupTimeout = 30000
WideAreaNetwork = false
ExcludeSegAddrsFromHash = true
IgnoreMulticastJoinErrors = true
Spread_Segment 225.1.2.3:4803 239.0.0.1 {
\td1 10.0.0.1 { D 10.0.0.1 C 127.0.0.1 M 10.0.0.1 }
\td2 10.0.0.2 VirtualID = 77
\t10.0.0.3
}
Spread_Segment [ff02::1]:4903 {
\td6 [fe80::1%lo]
\td7 ::1
}
";

fn configs(ref_dir: &Path, repo: &Path, mut texts: Vec<String>, seeds: &mut Seeds) {
    texts.push(spread_daemon::config::DEFAULT_CONFIG_TEXT.to_string());
    texts.push(KITCHEN_SINK.to_string());
    let mut files = vec![repo.join("dist/spread.conf.sample")];
    if let Ok(entries) = fs::read_dir(ref_dir.join("pcap")) {
        files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "conf")));
    }
    files.sort();
    for f in files {
        if let Ok(t) = fs::read_to_string(&f) {
            texts.push(t);
        }
    }
    if let Ok(entries) = fs::read_dir(repo.join("spread-daemon/tests")) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths.iter().filter(|p| p.extension().is_some_and(|x| x == "rs")) {
            if let Ok(src) = fs::read_to_string(p) {
                texts.extend(conf_literals(&src));
            }
        }
    }
    for t in texts {
        seeds.add("config", t.into_bytes());
    }
}

// ---- built seeds ----------------------------------------------------------------

fn built(seeds: &mut Seeds) {
    let me: &[u8] = b"#fz#d1";
    let mut login = connect_request(b"fz", true);
    login.extend_from_slice(&null_auth_choice());
    // Client side: every service, joins, leaves, unicasts, a multigroup
    // message, a KILL; and oddities the recordings have no example of.
    let mut session = Vec::new();
    session.extend(frame(JOIN_MESS, me, &[b"g1"], 0, b""));
    for t in [UNRELIABLE_MESS, RELIABLE_MESS, FIFO_MESS, CAUSAL_MESS, AGREED_MESS, SAFE_MESS] {
        session.extend(frame(t, me, &[b"g1"], 7, b"hello"));
    }
    session.extend(frame(AGREED_MESS, me, &[b"#w1#d1"], -3, b"to w1"));
    session.extend(frame(FIFO_MESS, me, &[b"g1", b"g2", b"#w2#d1"], 1, &[0xab; 300]));
    session.extend(frame(AGREED_MESS | SELF_DISCARD, me, &[b"g1"], 0, b""));
    session.extend(frame(LEAVE_MESS, me, &[b"g1"], 0, b""));
    session.extend(frame(JOIN_MESS, me, &[b"g2"], 0, b""));
    let many: Vec<Vec<u8>> = (0..100).map(|i| format!("g{i}").into_bytes()).collect();
    let many_refs: Vec<&[u8]> = many.iter().map(|g| &g[..]).collect();
    let big = frame(SAFE_MESS, me, &many_refs, 0, &[1; 2000]);
    let kill = frame(KILL_MESS, me, &[me], 0, b"");
    seeds.add_with("session_after_handshake", &[0x01, 0, 0, 0], &session);
    seeds.add_with("session_after_handshake", &[0x1b, 0x03, 0x40, 1], &[&session[..], &big, &kill].concat());
    seeds.add_with("session_after_handshake", &[0x30, 0x02, 0, 0], &[&session[..], &session].concat());
    seeds.add_with("client_frames", &[0x00, 0, 0, 0], &[&login[..], &session].concat());
    seeds.add_with("client_frames", &[0x02, 0x01, 0x10, 0], &[&login[..], &login].concat());
    seeds.add_with("client_frames", &[0x09, 0x03, 0xff, 0], &login[..20]);

    // Daemon side: a membership message from a big-endian daemon (the body
    // is converted in place), a reject carrying the original type, a
    // transitional message and a frame longer than any buffer.
    let gid = GroupId { proc_id: 7, time: 1, index: 3 };
    let set1 = [name32(b"#w1#d1"), name32(b"#fz#d1")];
    let set2 = [name32(b"#x#d2")];
    let mut frames = Vec::new();
    for order in [Order::Little, Order::Big] {
        let mut body = Vec::new();
        encode_regular_body(order, &gid, &[&set1, &set2], 0, &mut body);
        let h = Header {
            type_: REG_MEMB_MESS | CAUSED_BY_JOIN,
            sender: name32(b"g1"),
            num_groups: 2,
            hint: 0,
            data_len: body.len() as i32,
        }
        .with_marker(order);
        let mut hb = [0u8; HEADER_LEN];
        h.encode_in(order, &mut hb);
        frames.extend_from_slice(&hb);
        frames.extend_from_slice(&name32(b"#w1#d1"));
        frames.extend_from_slice(&name32(b"#fz#d1"));
        frames.extend_from_slice(&body);
    }
    let mut gidb = Vec::new();
    gid.encode_in(Order::Little, &mut gidb);
    frames.extend(frame(TRANSITION_MESS, b"g1", &[], 0, &gidb));
    let mut reject = frame(REJECT_MESS, me, &[b"g1"], 0, b"no");
    reject.splice(48..48, (AGREED_MESS | 0x8000_0080).to_le_bytes());
    frames.extend(reject);
    let mut huge = frame(AGREED_MESS, b"#w1#d1", &[b"g1"], 0, b"");
    huge[44..48].copy_from_slice(&100_000i32.to_le_bytes());
    huge.extend_from_slice(&[7; 64]);
    seeds.add_with("client_receive", &[0x03, 0, 0], &frames);
    seeds.add_with("client_receive", &[0x03, 0x11, 0x22], &[&frames[..], &huge].concat());
    let mut raw = b"\x05NULL \x01\x05\x00\x01\x06#fz#d1".to_vec();
    raw.extend_from_slice(&frames);
    seeds.add_with("client_receive", &[0x02, 0, 0], &raw);
    seeds.add_with("client_receive", &[0x00, 0, 0], b"\xfa");
    seeds.add_with("client_receive", &[0x04, 0, 0], b"\x05NULL \x01\x03\x07\x00\x06#fz#d1");
}

fn main() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let ref_dir = args.first().cloned().unwrap_or_else(|| here.join("../../shared/ref"));
    let repo = args.get(1).cloned().unwrap_or_else(|| here.join(".."));
    let out = args.get(2).cloned().unwrap_or_else(|| here.join("corpus"));

    let mut seeds = Seeds::default();
    let mut confs = Vec::new();
    let nt = transcripts(&ref_dir.join("transcripts"), &mut seeds, &mut confs);
    let np = pcaps(&ref_dir.join("pcap"), &mut seeds);
    if nt == 0 || np == 0 {
        eprintln!(
            "seeds: warning: the recordings are not in {} ({nt} transcripts, {np} captures found); \
             writing the built seeds only for what is missing",
            ref_dir.display()
        );
    }
    configs(&ref_dir, &repo, confs, &mut seeds);
    built(&mut seeds);
    if let Err(e) = seeds.write(&out) {
        eprintln!("seeds: cannot write to {}: {e}", out.display());
        std::process::exit(1);
    }
}
