//! Shared helpers of the engine tests: drive an [`Engine`] directly (no
//! sockets, no clock), collect what it writes and closes per connection, and
//! replay the recorded 5.0.1 transcripts.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

#[path = "../shared_ref/mod.rs"]
pub mod shared_ref;

use spread_daemon::engine::{Accepted, Action, ConnId, ConnKind, Engine, EngineConfig};

pub const VID_D1: u32 = 1_552_775_919;

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A test harness around one engine.
pub struct Harness {
    pub eng: Engine,
    pub now: Instant,
    pub out: HashMap<ConnId, Vec<u8>>,
    pub closed: HashSet<ConnId>,
    /// Connections whose writes are held back (simulating a full socket).
    pub stalled: HashSet<ConnId>,
}

impl Harness {
    pub fn new(cfg: EngineConfig) -> Harness {
        Harness {
            eng: Engine::new(cfg),
            now: Instant::now(),
            out: HashMap::new(),
            closed: HashSet::new(),
            stalled: HashSet::new(),
        }
    }

    pub fn d1(memb_time: i32) -> Harness {
        Harness::new(EngineConfig::single(b"d1", VID_D1, memb_time))
    }

    pub fn connect(&mut self, kind: ConnKind) -> ConnId {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let p = if kind == ConnKind::Tcp { Some(peer) } else { None };
        match self.eng.accept(self.now, kind, p) {
            Accepted::Conn(id) => id,
            Accepted::Rejected(b) => panic!("rejected at accept: {b:?}"),
        }
    }

    /// Drain actions: written bytes go to `out`, closes to `closed`.
    pub fn pump(&mut self) {
        for _ in 0..1_000_000 {
            let Some(a) = self.eng.poll_action() else { return };
            match a {
                Action::Flush(id) => {
                    if !self.stalled.contains(&id) {
                        let b = self.eng.drain_output(id);
                        self.out.entry(id).or_default().extend_from_slice(&b);
                    } else {
                        self.eng.set_write_blocked(id, true);
                    }
                }
                Action::Close { id, linger } => {
                    let o = self.out.entry(id).or_default();
                    for b in linger {
                        o.extend_from_slice(&b);
                    }
                    self.closed.insert(id);
                }
            }
        }
        panic!("engine produced too many actions");
    }

    pub fn send(&mut self, id: ConnId, b: &[u8]) {
        self.eng.on_data(self.now, id, b);
        self.pump();
    }

    pub fn eof(&mut self, id: ConnId) {
        self.eng.on_closed(self.now, id);
        self.pump();
    }

    /// Take what was written to `id` so far.
    pub fn take(&mut self, id: ConnId) -> Vec<u8> {
        // Anything queued but not flushed yet (stalled) stays queued.
        std::mem::take(self.out.entry(id).or_default())
    }

    /// Full 5.0.1 handshake; returns the id and the private group name.
    pub fn login(&mut self, name: &str, membership: bool) -> (ConnId, String) {
        let id = self.connect(ConnKind::Tcp);
        let mut req = vec![5, 0, 1, membership as u8, name.len() as u8];
        req.extend_from_slice(name.as_bytes());
        self.send(id, &req);
        assert_eq!(self.take(id), b"\x05NULL ");
        let mut choice = [0u8; 90];
        choice[..4].copy_from_slice(b"NULL");
        self.send(id, &choice);
        let acc = self.take(id);
        assert_eq!(&acc[..4], &[1, 5, 0, 1]);
        let pg = String::from_utf8(acc[5..].to_vec()).unwrap();
        assert_eq!(acc[4] as usize, pg.len());
        (id, pg)
    }
}

/// A client→daemon message frame, little-endian as written by an x86 library.
pub fn frame(type_: u32, sender: &str, groups: &[&str], mess_type: i16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(type_ | 0x8000_0080).to_le_bytes());
    let mut s = [0u8; 32];
    s[..sender.len()].copy_from_slice(sender.as_bytes());
    v.extend_from_slice(&s);
    v.extend_from_slice(&(groups.len() as i32).to_le_bytes());
    let hint =
        if type_ & 0x3f != 0 { ((((mess_type as i32) << 8) as u32) & 0x00ff_ff00) | 0x8000_0080 } else { 0x8000_0080 };
    v.extend_from_slice(&hint.to_le_bytes());
    v.extend_from_slice(&(body.len() as i32).to_le_bytes());
    for g in groups {
        let mut n = [0u8; 32];
        n[..g.len()].copy_from_slice(g.as_bytes());
        v.extend_from_slice(&n);
    }
    v.extend_from_slice(body);
    v
}

/// Split a daemon→client byte stream into frames (header, groups, body).
pub fn split_frames(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    while b.len() >= 48 {
        let t = u32::from_le_bytes(b[0..4].try_into().unwrap());
        let ng = i32::from_le_bytes(b[36..40].try_into().unwrap()) as usize;
        let dl = i32::from_le_bytes(b[44..48].try_into().unwrap()) as usize;
        let extra = if t & 0x0040_0000 != 0 { 4 } else { 0 };
        let n = 48 + extra + 32 * ng + dl;
        assert!(b.len() >= n, "truncated frame");
        v.push(b[..n].to_vec());
        b = &b[n..];
    }
    assert!(b.is_empty(), "trailing bytes");
    v
}

/// A recorded transcript (`../shared/ref/transcripts/<name>.json`).
pub fn load_transcript(name: &str) -> serde_json::Value {
    let text = shared_ref::read_ref(&format!("transcripts/{name}.json"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("transcript {name} is not JSON: {e}"))
}

/// Result of replaying a transcript through the engine.
pub struct Replayed {
    /// Per connection label: (expected daemon→client bytes, actual).
    pub streams: HashMap<String, (Vec<u8>, Vec<u8>)>,
    /// Per label: (daemon closed in the recording, engine closed).
    pub closes: HashMap<String, (bool, bool)>,
    /// The private group name the engine gave each label.
    pub names: HashMap<String, String>,
}

/// Replay every client→daemon frame of a recorded scenario, in recorded
/// order, into an engine configured like the recording daemon (`d1`, its
/// VID and the recorded ring time, so group ids match exactly). `rename`
/// maps a recorded private group name to the one the engine assigned (for
/// daemon-chosen random names).
pub fn replay(t: &serde_json::Value) -> Replayed {
    let time = t["daemon"]["ring_membership_id_during_recording"]["time"].as_i64().unwrap() as i32;
    let mut h = Harness::d1(time);
    let mut ids: HashMap<String, ConnId> = HashMap::new();
    let mut expected: HashMap<String, Vec<u8>> = HashMap::new();
    let mut exp_closed: HashSet<String> = HashSet::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut renames: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for f in t["frames"].as_array().unwrap() {
        let label = f["conn"].as_str().unwrap().to_string();
        let kind = f["kind"].as_str().unwrap();
        let bytes = hex(f["hex"].as_str().unwrap_or(""));
        match (f["dir"].as_str(), kind) {
            (_, "transport_connect") => {
                let k = if label.contains("unix") { ConnKind::Unix } else { ConnKind::Tcp };
                let id = h.connect(k);
                ids.insert(label.clone(), id);
            }
            (Some("c2d"), "eof_from_client") => {
                let id = ids[&label];
                h.eof(id);
            }
            (Some("c2d"), _) => {
                let id = ids[&label];
                let mut b = bytes;
                for (from, to) in &renames {
                    if b.len() >= 36 && b[4..4 + from.len()] == from[..] && b[4 + from.len()] == 0 {
                        let mut s = [0u8; 32];
                        s[..to.len()].copy_from_slice(to);
                        b[4..36].copy_from_slice(&s);
                    }
                }
                h.send(id, &b);
            }
            (Some("d2c"), "eof_from_daemon") | (Some("d2c"), "recv_error_from_daemon") => {
                exp_closed.insert(label.clone());
            }
            (Some("d2c"), k) => {
                if k == "accept" {
                    // Learn the name we gave; map the recorded one to it.
                    let id = ids[&label];
                    let got = h.out.get(&id).cloned().unwrap_or_default();
                    if let Some(pos) = find_accept(&got) {
                        let ours = got[pos + 5..].to_vec();
                        let off = if bytes[3] == 1 && bytes.len() > 4 && bytes[4] as usize == bytes.len() - 5 {
                            5
                        } else {
                            4
                        };
                        let theirs = bytes[off..].to_vec();
                        names.insert(label.clone(), String::from_utf8_lossy(&ours).into_owned());
                        if ours != theirs {
                            renames.push((theirs, ours));
                        }
                    }
                }
                expected.entry(label.clone()).or_default().extend_from_slice(&bytes);
            }
            _ => {}
        }
    }
    let mut streams = HashMap::new();
    let mut closes = HashMap::new();
    for (label, id) in &ids {
        let got = h.out.get(id).cloned().unwrap_or_default();
        let exp = expected.get(label).cloned().unwrap_or_default();
        streams.insert(label.clone(), (exp, got));
        closes.insert(label.clone(), (exp_closed.contains(label), h.closed.contains(id)));
    }
    Replayed { streams, closes, names }
}

/// Offset of a 5.0.1 accept (`01 05 00 01 N`) at the end of a handshake
/// stream.
fn find_accept(b: &[u8]) -> Option<usize> {
    (0..b.len().saturating_sub(4)).rev().find(|&i| b[i..i + 4] == [1, 5, 0, 1] && b[i + 4] as usize == b.len() - i - 5)
}

/// The part of a daemon→client stream after a 5.0.1 handshake (auth list and
/// accept); the whole stream if it does not start with one.
pub fn after_handshake(b: &[u8]) -> &[u8] {
    if b.len() >= 6 && b[0] == 5 && &b[1..6] == b"NULL " {
        let r = &b[6..];
        if r.len() >= 5 && r[..4] == [1, 5, 0, 1] && r.len() >= 5 + r[4] as usize {
            return &r[5 + r[4] as usize..];
        }
    }
    b
}
