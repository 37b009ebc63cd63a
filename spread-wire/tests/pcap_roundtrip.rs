//! Every UDP payload of the reference captures (`../shared/ref/pcap/*.pcap`,
//! three 5.0.1 daemons on a Linux bridge) decoded, re-encoded byte for byte,
//! re-encoded big-endian and back, counted by kind, and checked field by field
//! against the captures' own decodes (`*.decoded.txt`) and their README.
//!
//! The classic pcap format (24-byte file header, 16-byte record headers) and
//! Ethernet/IPv4/UDP are read by hand below: no dependency is needed for so
//! little.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use spread_wire::consts::*;
use spread_wire::daemon::data::{pad_after, split_message};
use spread_wire::daemon::groups::{sender_name, synced_set_size};
use spread_wire::daemon::*;
use spread_wire::names::{name32, name_bytes};
use spread_wire::Order;

const D1: i32 = 1_552_775_919;
const D2: i32 = 348_480_928;
const D3: i32 = 4_014_350_958_u32 as i32;
/// Ring ids of the README: A formed in (i), B in (iii), C in (iv).
const RING_A: MembershipId = MembershipId { proc_id: D1, time: 1_795_358_372 };
const RING_B: MembershipId = MembershipId { proc_id: D1, time: 1_795_358_390 };
const RING_C: MembershipId = MembershipId { proc_id: D1, time: 1_795_358_402 };

fn pcap_dir() -> PathBuf {
    let d = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/ref/pcap"));
    assert!(
        d.is_dir(),
        "../shared/ref beside the checkout is missing: the reference captures are expected in {}",
        d.display()
    );
    d
}

// ---- pcap, Ethernet, IPv4, UDP ---------------------------------------------

/// One captured UDP datagram. `index` counts from 1 like the decodes do.
struct Udp {
    index: usize,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    payload: Vec<u8>,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn read_pcap(path: &Path) -> Vec<Udp> {
    let f = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(f.len() >= 24, "{}: no pcap file header", path.display());
    let magic = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => panic!("{}: not a classic pcap file (magic {m:08x})", path.display()),
    };
    let u32_at = |b: &[u8]| {
        if le {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        }
    };
    assert_eq!(u32_at(&f[20..24]), 1, "{}: link type must be Ethernet (DLT 1)", path.display());
    let mut out = Vec::new();
    let mut off = 24;
    while off < f.len() {
        let rec = f.get(off..off + 16).expect("truncated pcap record header");
        let (incl, orig) = (u32_at(&rec[8..12]) as usize, u32_at(&rec[12..16]) as usize);
        assert_eq!(incl, orig, "packet cut by the snap length");
        let frame = f.get(off + 16..off + 16 + incl).expect("truncated pcap record");
        off += 16 + incl;
        let mut eth = 14;
        let mut ethertype = be16(&frame[12..14]);
        if ethertype == 0x8100 {
            ethertype = be16(&frame[16..18]);
            eth = 18;
        }
        assert_eq!(ethertype, 0x0800, "only IPv4 frames are expected");
        let ip = &frame[eth..];
        let ihl = (ip[0] & 0x0f) as usize * 4;
        assert_eq!(ip[9], 17, "only UDP is expected");
        assert_eq!(be16(&ip[6..8]) & 0x3fff, 0, "an IP fragment: reassembly would be needed");
        let udp = &ip[ihl..be16(&ip[2..4]) as usize];
        let ulen = be16(&udp[4..6]) as usize;
        out.push(Udp {
            index: out.len() + 1,
            src: ([ip[12], ip[13], ip[14], ip[15]], be16(&udp[0..2])),
            dst: ([ip[16], ip[17], ip[18], ip[19]], be16(&udp[2..4])),
            payload: udp[8..ulen].to_vec(),
        });
    }
    out
}

fn addr(a: ([u8; 4], u16)) -> String {
    format!("{}.{}.{}.{}:{}", a.0[0], a.0[1], a.0[2], a.0[3], a.1)
}

// ---- the captures ------------------------------------------------------------

struct Capture {
    name: &'static str,
    /// Data port P (tokens go to P+1).
    port: u16,
    conf_hash: u32,
    /// Packet counts by kind. From the README where it states them; for `f`,
    /// whose README section gives none, from `f_partition_merge.decoded.txt`.
    counts: &'static [(&'static str, usize)],
}

const CAPTURES: &[Capture] = &[
    Capture {
        name: "i_ring_formation",
        port: 34823,
        conf_hash: 3_053_132_190,
        counts: &[
            ("packet ALIVE", 16),
            ("packet JOIN", 5),
            ("token FORM1", 4),
            ("token FORM2", 6),
            ("token REGULAR_TOKEN", 68),
            ("packet AGREED+GROUPS_MESS", 3),
        ],
    },
    Capture {
        name: "ii_steady_state",
        port: 34823,
        conf_hash: 3_053_132_190,
        counts: &[
            ("packet AGREED", 342),
            ("packet AGREED+JOIN_MESS", 1),
            ("packet AGREED+KILL_MESS", 1),
            ("packet SAFE", 342),
            ("packet HURRY", 1),
            ("token REGULAR_TOKEN", 165),
        ],
    },
    Capture {
        name: "iii_daemon_killed",
        port: 34823,
        conf_hash: 3_053_132_190,
        counts: &[
            ("packet ALIVE", 9),
            ("packet JOIN", 5),
            ("token FORM1", 2),
            ("token FORM2", 4),
            ("token REGULAR_TOKEN", 62),
        ],
    },
    Capture {
        name: "iv_daemon_restarted_merge",
        port: 34823,
        conf_hash: 3_053_132_190,
        counts: &[
            ("packet ALIVE", 2),
            ("packet JOIN", 14),
            ("token FORM1", 4),
            ("token FORM2", 6),
            ("token REGULAR_TOKEN", 96),
            ("packet AGREED+GROUPS_MESS", 2),
        ],
    },
    Capture {
        name: "v_client_join_leave",
        port: 34823,
        conf_hash: 3_053_132_190,
        counts: &[
            ("packet AGREED+JOIN_MESS", 2),
            ("packet AGREED+LEAVE_MESS", 1),
            ("packet AGREED+KILL_MESS", 1),
            ("packet SAFE+KILL_MESS", 1),
            ("packet HURRY", 5),
            ("token REGULAR_TOKEN", 93),
        ],
    },
    Capture {
        name: "f_partition_merge",
        port: 34813,
        conf_hash: 1_290_242_998,
        counts: &[
            ("packet AGREED", 2),
            ("packet AGREED+GROUPS_MESS", 4),
            ("packet AGREED+JOIN_MESS", 2),
            ("packet AGREED+KILL_MESS", 2),
            ("packet ALIVE", 11),
            ("packet HURRY", 2),
            ("packet JOIN", 20),
            ("token FORM1", 4),
            ("token FORM2", 8),
            ("token REGULAR_TOKEN", 108),
        ],
    },
];

/// VID of the daemon at 10.98.0.N (all captures use d1..d3 there).
fn vid_of(ip: [u8; 4]) -> i32 {
    match ip {
        [10, 98, 0, 1] => D1,
        [10, 98, 0, 2] => D2,
        [10, 98, 0, 3] => D3,
        _ => panic!("unexpected source address {ip:?}"),
    }
}

/// A decoded datagram with where it came from.
struct Decoded {
    udp: Udp,
    dg: Datagram,
}

/// The first message of a data packet, if its first fragment starts one.
fn first_message_type(p: &DataPacket) -> Option<u32> {
    p.fragments[0].message_header().map(|h| h.type_ & !ENDIAN_RESERVED)
}

/// The kind label the decodes use: `packet ALIVE`, `packet AGREED+GROUPS_MESS`,
/// `token FORM1`, ...
fn label(dg: &Datagram) -> String {
    match dg {
        Datagram::Packet(p) => {
            let k = match p {
                Packet::Data(d) => {
                    let svc = Service::of_type(d.header.type_).unwrap().name().to_string();
                    let special = first_message_type(d).and_then(|t| {
                        [
                            (GROUPS_MESS, "GROUPS_MESS"),
                            (JOIN_MESS, "JOIN_MESS"),
                            (LEAVE_MESS, "LEAVE_MESS"),
                            (KILL_MESS, "KILL_MESS"),
                        ]
                        .into_iter()
                        .find(|(bit, _)| t & bit != 0)
                        .map(|(_, n)| n)
                    });
                    match special {
                        Some(s) => format!("{svc}+{s}"),
                        None => svc,
                    }
                }
                Packet::Alive(_) => "ALIVE".into(),
                Packet::Join(_) => "JOIN".into(),
                Packet::Refer(_) => "REFER".into(),
                Packet::Hurry(_) => "HURRY".into(),
                Packet::Control(_) => "CONTROL".into(),
            };
            format!("packet {k}")
        }
        Datagram::Token(Token::Regular(_)) => "token REGULAR_TOKEN".into(),
        Datagram::Token(Token::Form1(_)) => "token FORM1".into(),
        Datagram::Token(Token::Form2(_)) => "token FORM2".into(),
    }
}

// ---- uninitialised bytes -----------------------------------------------------

/// Byte ranges of a datagram that the C daemon sends without initialising them,
/// so that the original may hold anything there while our encoder writes zeros.
/// Each range is named after the spec section that documents it. Nothing else
/// is masked: the FORM2 placeholder id, JOIN `rep_index`, REFER header fields
/// and the KILL group-name tail are decoded and reproduced exactly.
fn uninitialised_ranges(dg: &Datagram) -> Vec<(&'static str, Range<usize>)> {
    const H: usize = 40;
    let mut v = Vec::new();
    let members_tail = |m: &MemberList| H + 4 + 4 * (m.members.len() + m.pending.len())..H + 516;
    match dg {
        // §3.11, §12 item 6: FORM1/FORM2 send the full 516-byte members_info;
        // entries beyond num_members + num_pending are left-over values.
        Datagram::Token(Token::Form1(f)) => {
            v.push(("FORM1 members_info entries beyond the counts (§3.11, §12.6)", members_tail(&f.members)));
            // §3.11, §12 item 6: the full 204-byte reps_info; reps beyond num_reps.
            v.push((
                "FORM1 reps_info entries beyond num_reps (§3.11, §12.6)",
                H + 516 + 4 + 8 * f.reps.reps.len()..H + 516 + 204,
            ));
        }
        Datagram::Token(Token::Form2(f)) => {
            v.push(("FORM2 members_info entries beyond the counts (§3.11, §12.6)", members_tail(&f.members)));
        }
        // §3.6, §12 item 6: the 0..3 pad bytes before each further fragment.
        Datagram::Packet(Packet::Data(d)) => {
            let mut pos = 0;
            for (i, f) in d.fragments.iter().enumerate() {
                if i > 0 {
                    let pad = pad_after(pos);
                    if pad > 0 {
                        v.push(("pad bytes between fragments (§3.6, §12.6)", H + pos..H + pos + pad));
                    }
                    pos += pad + 4;
                }
                pos += f.data.len();
            }
        }
        _ => {}
    }
    v
}

// ---- the summary lines of *.decoded.txt --------------------------------------

/// `d1(1552775919)` or `0` / `-1` → the i32 on the wire (the decodes print
/// VIDs unsigned).
fn parse_id(s: &str) -> i32 {
    let s = match (s.find('('), s.rfind(')')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    };
    s.parse::<i64>().unwrap_or_else(|_| panic!("not an id: {s}")) as i32
}

/// The value of `key=` in a summary line, up to the next space.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let i = line.find(&pat)? + pat.len();
    Some(line[i..].split(' ').next().unwrap())
}

/// `(d1(1552775919),1795358372)` → (proc_id, time).
fn parse_memb(s: &str) -> (i32, i32) {
    let inner = s.strip_prefix('(').and_then(|s| s.strip_suffix(')')).expect("memb=(…)");
    let comma = inner.rfind(',').unwrap();
    (parse_id(&inner[..comma]), parse_id(&inner[comma + 1..]))
}

/// Names of message type bits, in ascending bit order, as the decodes print them.
fn message_type_names(t: u32) -> String {
    let names = [
        (UNRELIABLE_MESS, "UNRELIABLE_MESS"),
        (RELIABLE_MESS, "RELIABLE_MESS"),
        (FIFO_MESS, "FIFO_MESS"),
        (CAUSAL_MESS, "CAUSAL_MESS"),
        (AGREED_MESS, "AGREED_MESS"),
        (SAFE_MESS, "SAFE_MESS"),
        (JOIN_MESS, "JOIN_MESS"),
        (LEAVE_MESS, "LEAVE_MESS"),
        (KILL_MESS, "KILL_MESS"),
        (GROUPS_MESS, "GROUPS_MESS"),
    ];
    let v: Vec<&str> = names.iter().filter(|(b, _)| t & b != 0).map(|(_, n)| *n).collect();
    v.join("|")
}

/// Compare one summary line of the decode with what we decoded.
fn check_summary_line(line: &str, d: &Decoded) {
    let ctx = || format!("#{}: {line}", d.udp.index);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0].parse::<usize>().unwrap(), d.udp.index, "{}", ctx());
    assert!(words[2].starts_with(&addr(d.udp.src)), "{}", ctx());
    assert_eq!(words[4], addr(d.udp.dst), "{}", ctx());
    assert_eq!(words[5], format!("len={}", d.udp.payload.len()), "{}", ctx());
    let kind = words[6];
    let num = |k: &str| -> i64 { field(line, k).unwrap_or_else(|| panic!("no {k}= in {line}")).parse().unwrap() };
    match &d.dg {
        Datagram::Packet(p) => {
            let h = p.header();
            let expect_kind = match p {
                Packet::Data(x) => Service::of_type(x.header.type_).unwrap().name(),
                Packet::Alive(_) => "ALIVE",
                Packet::Join(_) => "JOIN",
                Packet::Refer(_) => "REFER",
                Packet::Hurry(_) => "HURRY",
                Packet::Control(_) => "CONTROL",
            };
            assert_eq!(kind, expect_kind, "{}", ctx());
            assert_eq!(parse_id(field(line, "tx").unwrap()), h.transmiter_id, "{}", ctx());
            assert_eq!(parse_id(field(line, "proc").unwrap()), h.proc_id, "{}", ctx());
            assert_eq!(parse_memb(field(line, "memb").unwrap()), (h.memb_id.proc_id, h.memb_id.time));
            assert_eq!(num("seq"), h.seq as i64, "{}", ctx());
            assert_eq!(num("round"), h.token_round as i64, "{}", ctx());
            assert_eq!(num("dlen"), h.data_len as i64, "{}", ctx());
            let frag = format!("[{}, {}]", h.first_frag.index, h.first_frag.len);
            assert!(line.contains(&format!(" frag={frag}")), "{}", ctx());
            if let Packet::Data(x) = p {
                assert_eq!(num("nfrags"), x.fragments.len() as i64, "{}", ctx());
                let msgs: Vec<String> = x
                    .fragments
                    .iter()
                    .filter_map(|f| f.message_header())
                    .map(|m| format!("'{}'", message_type_names(m.type_ & !ENDIAN_RESERVED)))
                    .collect();
                if msgs.is_empty() {
                    assert!(!line.contains(" msgs="), "{}", ctx());
                } else {
                    assert!(line.ends_with(&format!(" msgs=[{}]", msgs.join(", "))), "{}", ctx());
                }
            }
        }
        Datagram::Token(t) => {
            let h = t.header();
            let expect_kind = match t {
                Token::Regular(_) => "REGULAR_TOKEN",
                Token::Form1(_) => "FORM1",
                Token::Form2(_) => "FORM2",
            };
            assert_eq!(kind, expect_kind, "{}", ctx());
            assert_eq!(num("ARQ"), h.arq() as i64, "{}", ctx());
            assert_eq!(num("RETRANS"), h.retrans() as i64, "{}", ctx());
            assert_eq!(parse_memb(field(line, "memb").unwrap()), (h.memb_id.proc_id, h.memb_id.time));
            assert_eq!(num("seq"), h.seq as i64, "{}", ctx());
            assert_eq!(num("aru"), h.aru as i64, "{}", ctx());
            assert_eq!(parse_id(field(line, "aru_last").unwrap()), h.aru_last_id, "{}", ctx());
            assert_eq!(num("fc"), h.flow_control as i64, "{}", ctx());
            assert_eq!(num("rtr_len"), h.rtr_len as i64, "{}", ctx());
            if let Token::Form1(Form1Token { members, .. }) | Token::Form2(Form2Token { members, .. }) = t {
                let list: Vec<String> = members.all().map(|m| format!("'{}'", name_of(m))).collect();
                let want = format!(" members=[{}]/{}", list.join(", "), members.pending.len());
                assert!(line.ends_with(&want), "{}: want {want}", ctx());
            }
        }
    }
}

fn name_of(vid: i32) -> String {
    let n = match vid {
        D1 => "d1",
        D2 => "d2",
        D3 => "d3",
        _ => return vid.to_string(),
    };
    format!("{n}({})", vid as u32)
}

/// `(index, line)` of every summary line, and the `counts by` table.
fn read_decoded(name: &str) -> (BTreeMap<usize, String>, BTreeMap<String, usize>) {
    let p = pcap_dir().join(format!("{name}.decoded.txt"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    let mut lines = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let mut in_counts = false;
    for l in text.lines() {
        if l.starts_with("# counts by") {
            in_counts = true;
            continue;
        }
        if in_counts {
            match l.strip_prefix("#   ") {
                Some(rest) => {
                    let (k, n) = rest.trim_end().rsplit_once(' ').unwrap();
                    let k = k.split_whitespace().collect::<Vec<_>>().join(" ");
                    counts.insert(k, n.parse().unwrap());
                    continue;
                }
                None => in_counts = false,
            }
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        if l.starts_with(' ') && w.len() > 6 && w[3] == "->" {
            if let Ok(i) = w[0].parse::<usize>() {
                lines.insert(i, l.to_string());
            }
        }
    }
    (lines, counts)
}

// ---- the test ----------------------------------------------------------------

/// Decode one capture and check everything that holds for every datagram.
/// Returns the decoded datagrams for the per-capture checks.
fn decode_capture(c: &Capture) -> Vec<Decoded> {
    let udps = read_pcap(&pcap_dir().join(format!("{}.pcap", c.name)));
    let (summary, listed_counts) = read_decoded(c.name);
    let mut out = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut masked: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for udp in udps {
        let b = &udp.payload;
        let at = format!("{} #{}", c.name, udp.index);
        // Which decoder the receiving daemon would use is decided by the port.
        let (order, dg) = if udp.dst.1 == c.port {
            let (o, p) = Packet::decode(b).unwrap_or_else(|e| panic!("{at}: packet does not decode: {e}"));
            (o, Datagram::Packet(p))
        } else {
            assert_eq!(udp.dst.1, c.port + 1, "{at}: unexpected port");
            let (o, t) = Token::decode(b).unwrap_or_else(|e| panic!("{at}: token does not decode: {e}"));
            (o, Datagram::Token(t))
        };
        assert_eq!(order, Order::Little, "{at}");
        // The type-based router agrees with the port.
        assert_eq!(Datagram::decode(b).unwrap(), (order, dg.clone()), "{at}");
        let (hash, tx) = match &dg {
            Datagram::Packet(p) => (p.header().conf_hash, p.header().transmiter_id),
            Datagram::Token(t) => (t.header().conf_hash, t.header().transmiter_id),
        };
        assert_eq!(hash, c.conf_hash, "{at}: conf_hash");
        assert_eq!(tx, vid_of(udp.src.0), "{at}: transmiter_id is the sender's VID");

        // Byte-exact re-encoding, except the named uninitialised ranges.
        let again = dg.to_bytes(Order::Little).unwrap();
        let mut want = b.clone();
        for (what, r) in uninitialised_ranges(&dg) {
            let e = masked.entry(what).or_default();
            e.0 += r.len();
            e.1 += want[r.clone()].iter().filter(|&&x| x != 0).count();
            want[r].fill(0);
        }
        assert_eq!(again.len(), b.len(), "{at}: length");
        if again != want {
            let i = again.iter().zip(&want).position(|(a, b)| a != b).unwrap();
            let end = (i + 16).min(want.len());
            panic!("{at}: re-encoded bytes differ from offset {i}: {:02x?} vs {:02x?}", &again[i..end], &want[i..end]);
        }
        // Big-endian and back.
        let be = dg.to_bytes(Order::Big).unwrap();
        assert_ne!(be, again, "{at}: big-endian bytes differ");
        let (bo, back) = Datagram::decode(&be).unwrap();
        assert_eq!((bo, &back), (Order::Big, &dg), "{at}: big-endian round trip");
        assert_eq!(back.to_bytes(Order::Little).unwrap(), again, "{at}");

        let d = Decoded { udp, dg };
        let line = summary.get(&d.udp.index).unwrap_or_else(|| panic!("{at}: no summary line"));
        check_summary_line(line, &d);
        *counts.entry(label(&d.dg)).or_default() += 1;
        out.push(d);
    }
    let want: BTreeMap<String, usize> = c.counts.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    assert_eq!(counts, want, "{}: packet counts by kind (README)", c.name);
    assert_eq!(counts, listed_counts, "{}: packet counts by kind ({}.decoded.txt)", c.name, c.name);
    assert_eq!(out.len(), want.values().sum::<usize>());
    eprintln!("{}: {} datagrams, all decoded and re-encoded: {counts:?}", c.name, out.len());
    for (what, (n, nonzero)) in masked {
        eprintln!("  masked {what}: {n} bytes, {nonzero} of them non-zero in the capture");
    }
    out
}

fn capture(name: &str) -> &'static Capture {
    CAPTURES.iter().find(|c| c.name == name).unwrap()
}

fn at(v: &[Decoded], index: usize) -> &Datagram {
    &v[index - 1].dg
}

fn data(v: &[Decoded], index: usize) -> &DataPacket {
    match at(v, index) {
        Datagram::Packet(Packet::Data(d)) => d,
        other => panic!("#{index} is not a data packet: {other:?}"),
    }
}

fn regular(v: &[Decoded], index: usize) -> &RegularToken {
    match at(v, index) {
        Datagram::Token(Token::Regular(t)) => t,
        other => panic!("#{index} is not a regular token: {other:?}"),
    }
}

/// The single message of a packet's only fragment.
fn only_message(v: &[Decoded], index: usize) -> Message {
    let d = data(v, index);
    assert_eq!(d.fragments.len(), 1, "#{index}");
    assert_eq!(d.fragments[0].index, -1, "#{index}");
    let m = Message::decode(&d.fragments[0].data).unwrap();
    assert_eq!(m.to_bytes().unwrap(), d.fragments[0].data);
    m
}

fn groups_of(v: &[Decoded], index: usize) -> (Message, GroupsMessage) {
    let m = only_message(v, index);
    assert_eq!(m.header.type_ & !ENDIAN_RESERVED, GROUPS_MESS | AGREED_MESS, "#{index}");
    assert_eq!(m.header.num_groups, 0);
    let g = GroupsMessage::decode(m.order, &m.data).unwrap();
    assert_eq!(g.to_bytes(m.order).unwrap(), m.data, "#{index}: GROUPS data re-encodes");
    (m, g)
}

#[test]
fn pcap_dir_holds_every_capture() {
    let mut names: Vec<String> = std::fs::read_dir(pcap_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".pcap").map(str::to_string))
        .collect();
    names.sort();
    let mut known: Vec<String> = CAPTURES.iter().map(|c| c.name.to_string()).collect();
    known.sort();
    assert_eq!(names, known, "every capture in the directory is checked, and only those");
}

#[test]
fn i_ring_formation() {
    let v = decode_capture(capture("i_ring_formation"));
    let Datagram::Packet(Packet::Alive(a)) = at(&v, 1) else { panic!() };
    assert_eq!((a.header.proc_id, a.members.as_slice()), (D2, &[D2][..]));
    let Datagram::Packet(Packet::Join(j)) = at(&v, 7) else { panic!() };
    assert_eq!(j.members, [D1, D3, D2]);
    assert_eq!(
        j.reps,
        RepList { rep_index: 0, reps: vec![RepInfo { proc_id: D1, rep_type: RepType::Seg, seg_index: 0 }] }
    );

    // #22 FORM1 d1 -> d3: attempt id, Last_seq, F_members in ALIVE-arrival order.
    let Datagram::Token(Token::Form1(f)) = at(&v, 22) else { panic!() };
    assert_eq!(f.header.memb_id, MembershipId { proc_id: D1, time: 0x6b02_fea2 });
    assert_eq!((f.header.seq, f.header.rtr_len), (3333, 756));
    assert_eq!(f.members, MemberList { members: vec![D1], pending: vec![D3, D2] });
    assert_eq!(f.reps.rep_index, 1);
    assert_eq!(f.reps.reps, [RepInfo { proc_id: D1, rep_type: RepType::Seg, seg_index: 0 }]);
    assert_eq!(
        f.rings,
        [RingRecord {
            memb_id: MembershipId { proc_id: D1, time: -1 },
            trans_time: 0,
            aru: 0,
            highest_seq: 0,
            holes: vec![],
            trans: vec![D1],
            commit_rest: vec![],
        }]
    );
    // Each hop sends it twice: #22 and #25 are the same bytes.
    assert_eq!(v[21].udp.payload, v[24].udp.payload);

    // #26 FORM2 d2 -> d1: conf order, the placeholder id, three singleton rings.
    let Datagram::Token(Token::Form2(f)) = at(&v, 26) else { panic!() };
    assert_eq!(f.members, MemberList { members: vec![], pending: vec![D1, D2, D3] });
    assert_eq!(f.new_memb_id, MembershipId { proc_id: 0x0001_0001, time: D1 });
    let ring_ids: Vec<_> = f.rings.iter().map(|r| r.memb_id).collect();
    assert_eq!(ring_ids, [D1, D3, D2].map(|p| MembershipId { proc_id: p, time: -1 }));
    // #28: d1 wrote the new ring id A and forwards it.
    let Datagram::Token(Token::Form2(f)) = at(&v, 28) else { panic!() };
    assert_eq!((f.new_memb_id, f.members.members.as_slice()), (RING_A, &[D1][..]));

    // #32 first regular token d3 -> d1 (sent twice), #33 d1's answer.
    let t = regular(&v, 32);
    assert_eq!((t.header.proc_id, t.header.memb_id), (D3, RING_A));
    assert_eq!((t.header.seq, t.header.aru, t.header.aru_last_id), (0, i32::MAX, -1));
    assert_eq!(v[31].udp.payload, v[33].udp.payload);
    let t = regular(&v, 33);
    assert_eq!((t.header.arq(), t.header.aru, t.header.aru_last_id), (1, 3333, D1));

    // #40, #42, #44: one GROUPS message from each daemon, synced set = itself.
    for (index, vid, name, seq) in [(40, D1, "d1", 1), (42, D2, "d2", 2), (44, D3, "d3", 3)] {
        let p = data(&v, index);
        assert_eq!((p.header.proc_id, p.header.memb_id, p.header.seq), (vid, RING_A, seq), "#{index}");
        let (m, g) = groups_of(&v, index);
        assert_eq!(sender_name(&m.header), name.as_bytes());
        assert_eq!(synced_set_size(&m.header, m.order), 1);
        assert_eq!(g, GroupsMessage { memb_id: RING_A, synced_set: Some(vec![vid]), groups: vec![] }, "#{index}");
    }
    assert_eq!(data(&v, 40).header.token_round, 2);

    // #55: the idle leader's hurry round, RETRANS 1.
    let t = regular(&v, 55);
    assert_eq!((t.header.arq(), t.header.retrans(), t.header.type_), (7, 1, 0x0017_0000));
}

#[test]
fn ii_steady_state() {
    let v = decode_capture(capture("ii_steady_state"));
    let Datagram::Packet(Packet::Hurry(h)) = at(&v, 4) else { panic!() };
    assert_eq!((h.proc_id, v[3].udp.dst.0), (D3, [10, 98, 0, 1]));
    let m = only_message(&v, 7);
    assert_eq!(m.header.type_ & !ENDIAN_RESERVED, JOIN_MESS);
    assert_eq!((name_bytes(&m.header.sender), m.groups.as_slice()), (&b"#rx#d3"[..], &[name32(b"pg")][..]));

    // #24: six 90-byte messages packed in one packet, 2 pad bytes before each
    // further fragment header.
    let p = data(&v, 24);
    assert_eq!((p.header.seq, p.header.token_round, p.header.data_len), (5, 29, 570));
    assert_eq!(p.fragments.len(), 6);
    assert!(p.fragments.iter().all(|f| f.index == -1 && f.data.len() == 90));
    assert!(p.follows_packing_rule());
    assert_eq!(&v[23].udp.payload[40 + 90..40 + 96], &[0, 0, 0xff, 0xff, 90, 0]);
    let m = Message::decode(&p.fragments[0].data).unwrap();
    assert_eq!(name_bytes(&m.header.sender), b"#tx#d1");
    assert_eq!((m.header.mess_type().0, m.data.as_slice()), (10, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9][..]));
    assert_eq!(data(&v, 28).fragments.len(), 14);
    // #31/#32: a 2080-byte message in two elements.
    let f31 = &data(&v, 31).fragments;
    let f32 = &data(&v, 32).fragments;
    assert_eq!((f31.len(), f31[0].index, f31[0].data.len()), (1, 1, 1432));
    assert_eq!((f32.len(), f32[0].index, f32[0].data.len()), (1, -2, 648));

    // Reassemble every message d1 sent, in sequence order, and compare with
    // what the receiver rx logged (logs/api_rx.jsonl).
    let mut packets: Vec<&DataPacket> = (1..=v.len())
        .filter_map(|i| match at(&v, i) {
            Datagram::Packet(Packet::Data(d)) if d.header.proc_id == D1 => Some(d),
            _ => None,
        })
        .collect();
    packets.sort_by_key(|d| d.header.seq);
    packets.dedup_by_key(|d| d.header.seq);
    let mut messages: Vec<(Service, Vec<Fragment>)> = Vec::new();
    let mut current: Option<(Service, Vec<Fragment>)> = None;
    for d in packets {
        let svc = Service::of_type(d.header.type_).unwrap();
        for f in &d.fragments {
            if f.starts_message() {
                assert!(current.is_none(), "a message starts inside another");
                current = Some((svc, Vec::new()));
            }
            let (s, frags) = current.as_mut().expect("a continuation without a start");
            assert_eq!(*s, svc);
            frags.push(f.clone());
            if f.ends_message() {
                messages.push(current.take().unwrap());
            }
        }
    }
    assert!(current.is_none());
    let kill = messages.pop().unwrap();
    let km = Message::decode(&kill.1.concat_data()).unwrap();
    assert_eq!((kill.0, km.header.type_ & !ENDIAN_RESERVED), (Service::Agreed, KILL_MESS));
    assert_eq!(messages.len(), 120);
    let rx = rx_log_receives();
    assert_eq!(rx.len(), 120);
    for (i, ((svc, frags), (rx_service, rx_mess_type, rx_len))) in messages.iter().zip(&rx).enumerate() {
        let bytes = frags.concat_data();
        // The C daemon's element split is reproduced.
        assert_eq!(&split_message(&bytes).unwrap(), frags, "message {i}");
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.to_bytes().unwrap(), bytes);
        let size = [10, 2000, 20000][i / 40];
        let (want_svc, want_mess) =
            if (i / 20) % 2 == 0 { (Service::Agreed, AGREED_MESS) } else { (Service::Safe, SAFE_MESS) };
        assert_eq!((*svc, m.header.type_ & !ENDIAN_RESERVED), (want_svc, want_mess), "message {i}");
        assert_eq!((m.header.mess_type().0 as usize, m.data.len()), (size, size), "message {i}");
        assert!(m.data.iter().enumerate().all(|(k, &b)| b as usize == k % 251), "message {i} body");
        assert_eq!(m.groups, [name32(b"pg")]);
        assert_eq!((*rx_service, *rx_mess_type, *rx_len), (want_mess, size, size), "rx log entry {i}");
        let n_elements = (48 + 32 + size).div_ceil(1432);
        assert_eq!(frags.len(), n_elements);
    }
}

trait ConcatData {
    fn concat_data(&self) -> Vec<u8>;
}

impl ConcatData for Vec<Fragment> {
    fn concat_data(&self) -> Vec<u8> {
        self.iter().flat_map(|f| f.data.iter().copied()).collect()
    }
}

/// `(service_type, mess_type, len)` of each data message rx received, from its
/// API log (membership notifications left out).
fn rx_log_receives() -> Vec<(u32, usize, usize)> {
    let p = pcap_dir().join("logs/api_rx.jsonl");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    let value = |l: &str, key: &str| -> String {
        let pat = format!("\"{key}\": ");
        let i = l.find(&pat).unwrap_or_else(|| panic!("no {key} in {l}")) + pat.len();
        l[i..].split([',', '}']).next().unwrap().trim().trim_matches('"').to_string()
    };
    text.lines()
        .filter(|l| l.contains("\"op\": \"SP_receive\""))
        .map(|l| {
            let svc = u32::from_str_radix(value(l, "service_type").trim_start_matches("0x"), 16).unwrap();
            (svc, value(l, "mess_type").parse().unwrap(), value(l, "ret").parse().unwrap())
        })
        .filter(|(svc, _, _)| svc & (AGREED_MESS | SAFE_MESS) != 0 && svc & MEMBERSHIP_MESS == 0)
        .collect()
}

#[test]
fn iii_daemon_killed() {
    let v = decode_capture(capture("iii_daemon_killed"));
    // #14..#16: the unanswered token re-sent three times with RETRANS 2.
    for i in 14..=16 {
        let t = regular(&v, i);
        assert_eq!(v[i - 1].udp.payload[..4], [0x80, 0x00, 0x23, 0x80]);
        assert_eq!((t.header.arq(), t.header.retrans(), t.header.seq, t.header.aru), (3, 2, 689, 689));
        assert_eq!((t.header.aru_last_id, t.header.memb_id, t.header.rtr_len), (D1, RING_A, 0));
    }
    let Datagram::Token(Token::Form1(f)) = at(&v, 31) else { panic!() };
    assert_eq!(f.header.seq, 689 + 3333);
    assert_eq!(f.members, MemberList { members: vec![D1], pending: vec![D3] });
    for i in [37, 38] {
        assert_eq!(regular(&v, i).header.memb_id, RING_B);
    }
    assert!(!v.iter().any(|d| matches!(d.dg, Datagram::Packet(Packet::Data(_)))), "no GROUPS exchange");
}

#[test]
fn iv_daemon_restarted_merge() {
    let v = decode_capture(capture("iv_daemon_restarted_merge"));
    // #14: the ring leader answers d2's JOIN by unicast, as RING_REP.
    let Datagram::Packet(Packet::Join(j)) = at(&v, 14) else { panic!() };
    assert_eq!((j.header.proc_id, v[13].udp.dst), (D1, ([10, 98, 0, 2], 34823)));
    assert!(j.members.is_empty());
    assert_eq!(j.reps.rep_index, 1);
    assert_eq!(j.reps.reps.iter().map(|r| (r.proc_id, r.rep_type)).collect::<Vec<_>>(), [(D1, RepType::Ring)]);
    // #33: d2, the smallest rep, creates FORM1.
    let Datagram::Token(Token::Form1(f)) = at(&v, 33) else { panic!() };
    assert_eq!((f.header.memb_id.proc_id, f.members.clone()), (D2, MemberList { members: vec![D2], pending: vec![] }));
    let Datagram::Token(Token::Form2(f)) = at(&v, 39) else { panic!() };
    assert_eq!(f.new_memb_id, RING_C);

    // #51 from d1: synced set {d1, d3}, group pg with d3's member.
    let (m, g) = groups_of(&v, 51);
    assert_eq!((sender_name(&m.header), synced_set_size(&m.header, m.order)), (&b"d1"[..], 2));
    assert_eq!(m.data.len(), 115);
    let want = GroupsMessage {
        memb_id: RING_C,
        synced_set: Some(vec![D1, D3]),
        groups: vec![GroupRecord {
            name: name32(b"pg"),
            group_id: spread_wire::GroupId { proc_id: D1, time: RING_A.time, index: 1 },
            changed: 0,
            // The daemon record carries the group's memb id (§6.4).
            daemons: vec![DaemonRecord { proc_id: D3, memb_id: RING_A, members: vec![name32(b"#rx#d3")] }],
        }],
    };
    assert_eq!(g, want);
    // #53 from d2: only itself, no groups.
    let (m, g) = groups_of(&v, 53);
    assert_eq!((sender_name(&m.header), synced_set_size(&m.header, m.order)), (&b"d2"[..], 1));
    assert_eq!(g, GroupsMessage { memb_id: RING_C, synced_set: Some(vec![D2]), groups: vec![] });
}

#[test]
fn v_client_join_leave() {
    let v = decode_capture(capture("v_client_join_leave"));
    let Datagram::Packet(Packet::Hurry(h)) = at(&v, 13) else { panic!() };
    assert_eq!((h.proc_id, h.data_len, v[12].udp.dst), (D2, 0, ([10, 98, 0, 1], 34823)));
    let kinds = [(15, JOIN_MESS, "#jl#d2"), (32, LEAVE_MESS, "#jl#d2"), (66, JOIN_MESS, "#jk#d2")];
    for (i, t, who) in kinds {
        let m = only_message(&v, i);
        assert_eq!(m.header.type_ & !ENDIAN_RESERVED, t, "#{i}");
        assert_eq!(name_bytes(&m.header.sender), who.as_bytes(), "#{i}");
        assert_eq!((m.groups.as_slice(), m.data.len()), (&[name32(b"pg")][..], 0), "#{i}");
        assert_eq!(data(&v, i).header.memb_id, RING_C);
    }
    // #49: SP_disconnect, AGREED KILL_MESS naming its own private group; the
    // bytes after the NUL are the library's stack garbage, kept verbatim.
    let m = only_message(&v, 49);
    assert_eq!(Service::of_type(data(&v, 49).header.type_), Some(Service::Agreed));
    assert_eq!(m.header.type_ & !ENDIAN_RESERVED, KILL_MESS);
    assert_eq!(name_bytes(&m.groups[0]), b"#jl#d2");
    assert!(m.groups[0][7..].iter().any(|&b| b != 0), "garbage after the NUL");
    // #83: the daemon-generated kill of SP_kill: SAFE, no groups.
    let m = only_message(&v, 83);
    assert_eq!(Service::of_type(data(&v, 83).header.type_), Some(Service::Safe));
    assert_eq!(m.header.type_, KILL_MESS | SAFE_MESS | ENDIAN_RESERVED);
    assert_eq!((name_bytes(&m.header.sender), m.groups.len(), m.data.len()), (&b"#jk#d2"[..], 0, 0));
}

#[test]
fn f_partition_merge() {
    let v = decode_capture(capture("f_partition_merge"));
    // Every GROUPS message names its sender and carries a synced set that
    // contains it; all of them re-encode (checked in groups_of).
    let mut senders = Vec::new();
    for i in 1..=v.len() {
        if let Datagram::Packet(Packet::Data(d)) = at(&v, i) {
            if first_message_type(d).is_some_and(|t| t & GROUPS_MESS != 0) {
                let (m, g) = groups_of(&v, i);
                let set = g.synced_set.expect("single-buffer exchange: the set is in it");
                assert!(set.contains(&d.header.proc_id));
                assert_eq!(synced_set_size(&m.header, m.order) as usize, set.len());
                senders.push(String::from_utf8(sender_name(&m.header).to_vec()).unwrap());
            }
        }
    }
    assert_eq!(senders, ["d1", "d2", "d1", "d2"]);
}
