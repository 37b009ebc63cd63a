//! Engines joined by the simulator's ideal total order (a stand-in for the
//! token ring): ring formation with a GROUPS exchange, remote members, a
//! partition and a merge. The client streams must equal the two-daemon
//! recording f byte for byte.

mod engine_util;
use engine_util::*;

use std::collections::HashMap;

use spread_daemon::engine::sim::Sim;
use spread_daemon::engine::{Accepted, ConnId, ConnKind};

const D1: u32 = 1_552_775_919;
const D2: u32 = 348_480_928;
const D3: u32 = 4_014_350_958;
const RING1: i32 = 1_795_358_160;
const RING2: i32 = 1_795_358_168;
const RING3: i32 = 1_795_358_199;

#[test]
fn f_partition_and_merge_through_two_engines() {
    let t = load_transcript("f_network_partition");
    let mut sim = Sim::new(&["d1", "d2"], &[D1, D2], RING1 - 1);
    assert_eq!(sim.ring_time(), RING1);
    for n in &sim.nodes {
        assert!(!n.engine.reading_paused(), "formation exchange completed");
        assert_eq!(n.engine.groups().synced_set(), &[D1, D2]);
    }
    let mut ids: HashMap<String, (usize, ConnId)> = HashMap::new();
    let mut expected: HashMap<String, Vec<u8>> = HashMap::new();
    for f in t["frames"].as_array().unwrap() {
        let idx = f["index"].as_u64().unwrap();
        let label = f["conn"].as_str().unwrap().to_string();
        let kind = f["kind"].as_str().unwrap();
        let bytes = hex(f["hex"].as_str().unwrap_or(""));
        // Configuration changes at the recorded points.
        if idx == 15 {
            sim.reconfigure_at(&[&[0], &[1]], RING2);
        }
        if idx == 23 {
            sim.reconfigure_at(&[&[0, 1]], RING3);
        }
        match (f["dir"].as_str(), kind) {
            (_, "transport_connect") => {
                let node = if label == "alice" { 0 } else { 1 };
                let Accepted::Conn(id) = sim.nodes[node].engine.accept(sim.now, ConnKind::Tcp, None) else { panic!() };
                ids.insert(label, (node, id));
            }
            (Some("c2d"), "eof_from_client") => {
                let (node, id) = ids[&label];
                sim.eof(node, id);
            }
            (Some("c2d"), _) => {
                let (node, id) = ids[&label];
                sim.send(node, id, &bytes);
            }
            (Some("d2c"), k) if !k.starts_with("eof") && !k.starts_with("recv_error") => {
                expected.entry(label).or_default().extend_from_slice(&bytes);
            }
            _ => {}
        }
    }
    for (label, (node, id)) in &ids {
        let got = sim.take(*node, *id);
        let exp = &expected[label];
        let (gf, ef) = (split_frames(after_handshake(&got)), split_frames(after_handshake(exp)));
        for (i, (g, e)) in gf.iter().zip(ef.iter()).enumerate() {
            assert_eq!(to_hex(g), to_hex(e), "{label}: frame {i}");
        }
        assert_eq!(gf.len(), ef.len(), "{label}: frame count");
        assert!(ef.len() >= 6, "{label}: the recording has its membership and data frames");
        assert_eq!(&got[..got.len() - after_handshake(&got).len()], &exp[..exp.len() - after_handshake(exp).len()]);
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// (type, sender, member names, gid (proc, time, index)) of a membership frame.
fn memb(f: &[u8]) -> (u32, String, Vec<String>, (u32, u32, u32)) {
    let cstr = |b: &[u8]| String::from_utf8_lossy(name_bytes_of(b)).into_owned();
    let ng = u32_at(f, 36) as usize;
    let names = (0..ng).map(|i| cstr(&f[48 + 32 * i..80 + 32 * i])).collect();
    let b = 48 + 32 * ng;
    (u32_at(f, 0), cstr(&f[4..36]), names, (u32_at(f, b), u32_at(f, b + 4), u32_at(f, b + 8)))
}

fn name_bytes_of(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

#[test]
fn three_daemons_partition_merge_and_data() {
    let mut sim = Sim::new(&["d1", "d2", "d3"], &[D1, D2, D3], 100);
    let a = sim.connect(0, "a", true).unwrap();
    let b = sim.connect(1, "b", true).unwrap();
    let c = sim.connect(2, "c", false).unwrap();
    sim.send(0, a, &frame(0x10000, "#a#d1", &["g"], 0, b""));
    sim.send(1, b, &frame(0x10000, "#b#d2", &["g"], 0, b""));
    sim.send(2, c, &frame(0x10000, "#c#d3", &["g"], 0, b""));
    let fa = split_frames(after_handshake(&sim.take(0, a)));
    assert_eq!(fa.len(), 3, "a sees three joins");
    let (ty, g, names, gid) = memb(&fa[2]);
    assert_eq!((ty, g.as_str()), (0x8000_1180, "g"));
    assert_eq!(names, vec!["#a#d1", "#b#d2", "#c#d3"], "members in configuration order");
    assert_eq!(gid, (D1, 101, 3));
    sim.take(1, b);
    // A message from d3's non-membership client reaches everyone, once.
    sim.send(2, c, &frame(0x10, "#c#d3", &["g", "#a#d1"], 5, b"hi"));
    for (n, id) in [(0, a), (1, b), (2, c)] {
        let f = split_frames(&sim.take(n, id));
        assert_eq!(f.len(), 1);
        assert_eq!(&f[0][f[0].len() - 2..], b"hi");
    }
    // d2 is cut off: a sees TRANS then REG|NETWORK without b.
    sim.reconfigure(&[&[0, 2], &[1]]);
    let fa = split_frames(&sim.take(0, a));
    assert_eq!(fa.len(), 2);
    assert_eq!(u32_at(&fa[0], 0), 0x8000_2080);
    let (ty, _, names, gid) = memb(&fa[1]);
    assert_eq!(ty, 0x8000_1880);
    assert_eq!(names, vec!["#a#d1", "#c#d3"]);
    assert_eq!(gid, (D1, 102, 1));
    let fb = split_frames(&sim.take(1, b));
    let (_, _, names, gid) = memb(&fb[1]);
    assert_eq!(names, vec!["#b#d2"]);
    assert_eq!(gid, (D2, 102, 1));
    // While apart, b's message stays on its side.
    sim.send(1, b, &frame(0x10, "#b#d2", &["g"], 0, b"alone"));
    assert_eq!(split_frames(&sim.take(1, b)).len(), 1);
    assert!(sim.take(0, a).is_empty());
    // Merge: one REG|NETWORK with two vs-sets at every membership client.
    sim.reconfigure(&[&[0, 1, 2]]);
    let fa = split_frames(&sim.take(0, a));
    let fb = split_frames(&sim.take(1, b));
    assert_eq!((fa.len(), fb.len()), (1, 1), "no TRANS for a merge without losses");
    for f in [&fa[0], &fb[0]] {
        let (ty, _, names, gid) = memb(f);
        assert_eq!(ty, 0x8000_1880);
        assert_eq!(names, vec!["#a#d1", "#b#d2", "#c#d3"]);
        assert_eq!(gid, (D1, 103, 1));
        let body = &f[48 + 3 * 32..];
        assert_eq!(u32_at(body, 12), 2, "two vs-sets");
    }
    // Same group view everywhere: a disconnect reaches b with the same gid.
    sim.send(0, a, &frame(0x40000, "#a#d1", &["#a#d1"], 0, b""));
    let fb = split_frames(&sim.take(1, b));
    let (ty, _, names, gid) = memb(&fb[0]);
    assert_eq!(ty, 0x8000_1480);
    assert_eq!(names, vec!["#b#d2", "#c#d3"]);
    assert_eq!(gid, (D1, 103, 2));
    for n in &sim.nodes {
        assert_eq!(n.engine.groups().get(&spread_daemon::engine::name(b"g")).unwrap().gid.index, 2);
    }
}
