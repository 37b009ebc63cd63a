//! Two engines joined by a hand-driven total order (a stand-in for the token
//! ring): ring formation with a GROUPS exchange, remote members, a partition
//! and a merge. The client streams must equal the two-daemon recording f
//! byte for byte.

mod engine_util;
use engine_util::*;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use spread_daemon::engine::groups::RegOutcome;
use spread_daemon::engine::{Accepted, Action, ConnId, ConnKind, Engine, EngineConfig, OrderedMessage, Ordering};

const D1: u32 = 1_552_775_919;
const D2: u32 = 348_480_928;
const RING1: i32 = 1_795_358_160;
const RING2: i32 = 1_795_358_168;
const RING3: i32 = 1_795_358_199;

/// Messages wait in `submitted` until the test orders them into `ready`.
#[derive(Default)]
struct Manual {
    submitted: VecDeque<OrderedMessage>,
    ready: VecDeque<OrderedMessage>,
}

impl Ordering for Manual {
    fn submit(&mut self, msg: OrderedMessage) {
        self.submitted.push_back(msg);
    }
    fn poll_deliver(&mut self) -> Option<OrderedMessage> {
        self.ready.pop_front()
    }
    fn pending(&self) -> usize {
        self.submitted.len() + self.ready.len()
    }
}

struct Node {
    eng: Engine<Manual>,
    out: HashMap<ConnId, Vec<u8>>,
}

impl Node {
    fn new(name: &[u8], vid: u32) -> Node {
        let mut cfg = EngineConfig::single(name, vid, 1);
        cfg.daemons = vec![b"d1".to_vec(), b"d2".to_vec()];
        cfg.daemon_vids = vec![D1, D2];
        Node { eng: Engine::with_ordering(cfg, Manual::default()), out: HashMap::new() }
    }
    fn pump(&mut self) {
        for _ in 0..100_000 {
            match self.eng.poll_action() {
                None => return,
                Some(Action::Flush(id)) => {
                    let b = self.eng.drain_output(id);
                    self.out.entry(id).or_default().extend_from_slice(&b);
                }
                Some(Action::Close { id, linger }) => {
                    for b in linger {
                        self.out.entry(id).or_default().extend_from_slice(&b);
                    }
                }
            }
        }
    }
}

/// Order everything the nodes submitted (node order, then submission order)
/// and deliver it to every node of the component.
fn sequence(nodes: &mut [&mut Node]) {
    for _ in 0..100 {
        let mut batch = Vec::new();
        for n in nodes.iter_mut() {
            batch.extend(n.eng.ordering().submitted.drain(..));
        }
        if batch.is_empty() {
            return;
        }
        for n in nodes.iter_mut() {
            n.eng.ordering().ready.extend(batch.iter().cloned());
            n.eng.deliver_ready();
            n.pump();
        }
    }
    panic!("ordering did not settle");
}

fn configure(nodes: &mut [&mut Node], trans: &[&[u32]], reg: &[u32], rid: (i32, i32)) -> Vec<RegOutcome> {
    let mut r = Vec::new();
    for (n, t) in nodes.iter_mut().zip(trans) {
        n.eng.on_transitional_configuration(t, (t[0] as i32, rid.1));
        n.pump();
    }
    for n in nodes.iter_mut() {
        r.push(n.eng.on_regular_configuration(reg, rid));
        n.pump();
    }
    sequence(nodes);
    r
}

#[test]
fn f_partition_and_merge_through_two_engines() {
    let Some(t) = load_transcript("f_network_partition") else { return };
    let mut n1 = Node::new(b"d1", D1);
    let mut n2 = Node::new(b"d2", D2);
    // Ring formation from two singletons: a GROUPS exchange.
    let r = configure(&mut [&mut n1, &mut n2], &[&[D1], &[D2]], &[D1, D2], (D1 as i32, RING1));
    assert_eq!(r, vec![RegOutcome::NeedsStateExchange; 2]);
    assert!(!n1.eng.reading_paused() && !n2.eng.reading_paused(), "exchange completed");
    assert_eq!(n1.eng.groups().synced_set(), &[D1, D2]);

    let now = Instant::now();
    let mut ids: HashMap<String, (usize, ConnId)> = HashMap::new();
    let mut expected: HashMap<String, Vec<u8>> = HashMap::new();
    for f in t["frames"].as_array().unwrap() {
        let idx = f["index"].as_u64().unwrap();
        let label = f["conn"].as_str().unwrap().to_string();
        let kind = f["kind"].as_str().unwrap();
        let bytes = hex(f["hex"].as_str().unwrap_or(""));
        // Configuration changes at the recorded points.
        if idx == 15 {
            configure(&mut [&mut n1], &[&[D1]], &[D1], (D1 as i32, RING2));
            configure(&mut [&mut n2], &[&[D2]], &[D2], (D2 as i32, RING2));
        }
        if idx == 23 {
            let r = configure(&mut [&mut n1, &mut n2], &[&[D1], &[D2]], &[D1, D2], (D1 as i32, RING3));
            assert_eq!(r, vec![RegOutcome::NeedsStateExchange; 2]);
        }
        let partitioned = (15..23).contains(&idx);
        match (f["dir"].as_str(), kind) {
            (_, "transport_connect") => {
                let which = if label == "alice" { 0 } else { 1 };
                let n = if which == 0 { &mut n1 } else { &mut n2 };
                let Accepted::Conn(id) = n.eng.accept(now, ConnKind::Tcp, None) else { panic!() };
                ids.insert(label, (which, id));
            }
            (Some("c2d"), k) => {
                let (which, id) = ids[&label];
                let n = if which == 0 { &mut n1 } else { &mut n2 };
                if k == "eof_from_client" {
                    n.eng.on_closed(now, id);
                } else {
                    n.eng.on_data(now, id, &bytes);
                }
                n.pump();
                if partitioned {
                    sequence(&mut [if which == 0 { &mut n1 } else { &mut n2 }]);
                } else {
                    sequence(&mut [&mut n1, &mut n2]);
                }
            }
            (Some("d2c"), k) if !k.starts_with("eof") && !k.starts_with("recv_error") => {
                expected.entry(label).or_default().extend_from_slice(&bytes);
            }
            _ => {}
        }
    }
    for (label, (which, id)) in &ids {
        let n = if *which == 0 { &n1 } else { &n2 };
        let got = n.out.get(id).cloned().unwrap_or_default();
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
