//! A seeded, deterministic simulator of a ring of daemons: every [`Ring`] of
//! a configuration joined by a simulated UDP network that loses, duplicates
//! and delays (hence reorders) datagrams, on a virtual clock. No sockets, no
//! threads, no real time: a run is a function of its seed, so a failing seed
//! replays exactly.
//!
//! The network routes by address as the real one does: a daemon's `P` and
//! `P+1`, and each segment address to every daemon of that segment (the
//! sender included, like multicast loopback). [`RingSim::check`] verifies
//! the ring's promises over everything delivered so far; the tests and
//! `make sim` run it over many seeds.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use spread_wire::daemon::{MembershipId, RELIABLE_TYPE, SAFE_TYPE};
use spread_wire::endian::Order;

use super::{Delivered, Port, Ring, Up};
use crate::config::{self, Config};

/// SplitMix64: small, fast, and the same on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// What the network does to each datagram copy.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// Probability a copy is lost.
    pub loss: f64,
    /// Probability a copy arrives twice.
    pub dup: f64,
    /// Delay range in microseconds (uniform): a wide range reorders.
    pub min_delay_us: u64,
    pub max_delay_us: u64,
}

impl Faults {
    /// A perfect LAN: 50 µs, nothing lost.
    pub const NONE: Faults = Faults { loss: 0.0, dup: 0.0, min_delay_us: 50, max_delay_us: 50 };
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: u64,
    n: u64,
    to: usize,
    port: PortKey,
    src: SocketAddr,
    bytes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PortKey {
    Data,
    Token,
}

/// One message as the simulator's clients send them; its data starts with
/// (origin node, counter), which identifies it in the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MsgId {
    pub node: u32,
    pub n: u32,
}

/// A delivery as logged by the simulator.
#[derive(Clone, Debug)]
pub struct Logged {
    pub id: MsgId,
    pub service: u32,
    pub at_us: u64,
    /// The configuration it was delivered in: the id of the last regular
    /// or transitional configuration handed up before it, and which kind.
    pub conf: (MembershipId, bool),
}

/// A configuration change as a node handed it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conf {
    pub transitional: bool,
    pub members: Vec<u32>,
    pub id: MembershipId,
    pub at_us: u64,
}

/// A daemon as the simulator runs it: a bare [`Ring`] (the ordering and
/// membership protocols alone, their deliveries and configurations logged
/// and checked by the simulator), or a whole daemon engine over its ring
/// ([`EngineDaemon`](super::engine_sim::EngineDaemon): sessions, groups and
/// the client streams, checked by the tests that read those streams).
pub trait SimDaemon {
    /// Daemon `index` of `cfg` as a freshly started process (before
    /// [`Ring::start`]).
    fn boot(cfg: &Config, index: usize) -> Self;
    fn ring(&self) -> &Ring;
    fn ring_mut(&mut self) -> &mut Ring;
    /// The earliest time a timer of this daemon is due.
    fn next_deadline(&mut self) -> Option<Instant> {
        self.ring().next_deadline()
    }
    /// Run the timers due at `now`.
    fn on_timer(&mut self, now: Instant) {
        self.ring_mut().on_timer(now)
    }
    /// A datagram arrived.
    fn on_datagram(&mut self, now: Instant, port: Port, src: SocketAddr, b: &[u8]) {
        self.ring_mut().on_datagram(now, port, src, b)
    }
    /// What the ring handed up and nobody above it consumed (an engine
    /// consumes everything: nothing is left for the simulator's log).
    fn poll_up(&mut self) -> Option<Up> {
        self.ring_mut().poll_up()
    }
    /// Whether a configuration reload may be taken now.
    fn reload_ready(&self) -> bool {
        self.ring().reload_ready()
    }
    /// Take a reloaded configuration (§1.9).
    fn reload(&mut self, now: Instant, r: &crate::engine::reload::Reload) {
        self.ring_mut().reload(now, &r.config, r.me, r.singleton)
    }
}

impl SimDaemon for Ring {
    fn boot(cfg: &Config, index: usize) -> Ring {
        Ring::new(cfg, index)
    }
    fn ring(&self) -> &Ring {
        self
    }
    fn ring_mut(&mut self) -> &mut Ring {
        self
    }
}

/// Five daemons in two segments, `a b c` and `x y` (broadcast inside a
/// segment, unicast between them): the layout of the ring tests that split
/// a ring along and across segments.
pub const TWO_SEGMENTS: &str = "
Spread_Segment 10.0.0.255:4803 {
    a 10.0.0.1
    b 10.0.0.2
    c 10.0.0.3
}
Spread_Segment 10.0.9.255:4803 {
    x 10.0.9.1
    y 10.0.9.2
}
";

/// The seeds of a simulator test: `RSPREAD_SIM_SEED=S` replays one,
/// `RSPREAD_SIM_SEEDS=N` runs 1..=N, else 1..=`default`.
pub fn seeds(default: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("RSPREAD_SIM_SEED") {
        return vec![s.parse().expect("RSPREAD_SIM_SEED is a number")];
    }
    let n: u64 = std::env::var("RSPREAD_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    (1..=n).collect()
}

/// A spread.conf text of `k` daemons in segments of up to four (a
/// broadcast address each): `n<segment>x<index>` at `10.1.<segment>.<index+1>`.
pub fn conf_for(k: usize) -> String {
    let mut s = String::new();
    for seg in 0..k.div_ceil(4) {
        s.push_str(&format!("Spread_Segment 10.1.{seg}.255:4803 {{\n"));
        for i in 0..4.min(k - 4 * seg) {
            s.push_str(&format!("    n{}x{} 10.1.{seg}.{}\n", seg, i, i + 1));
        }
        s.push_str("}\n");
    }
    s
}

/// The wall-clock seconds every simulated daemon's clock starts at.
pub const SIM_WALL_START: i64 = 1_700_000_000;

/// A ring of simulated daemons.
pub struct RingSim<N: SimDaemon = Ring> {
    pub nodes: Vec<N>,
    pub cfg: Config,
    base: Instant,
    pub now_us: u64,
    net: BinaryHeap<Reverse<InFlight>>,
    routes: HashMap<SocketAddr, Vec<(usize, PortKey)>>,
    pub rng: Rng,
    pub faults: Faults,
    seq: u64,
    /// Per node: what it delivered, in order.
    pub log: Vec<Vec<Logged>>,
    /// Per node: the configurations it handed up, in order.
    pub configs: Vec<Vec<Conf>>,
    /// Component of each node (nodes in different components cannot reach
    /// each other); all 0 when the network is whole.
    pub component: Vec<usize>,
    /// Crashed nodes process nothing and send nothing.
    pub down: Vec<bool>,
    /// Nodes that crashed at some time (self-delivery is not owed by them).
    pub ever_crashed: Vec<bool>,
    /// When each node was restarted.
    pub restarts: Vec<Vec<u64>>,
    /// Every message submitted, with its frame.
    pub sent: HashMap<MsgId, Bytes>,
    counters: Vec<u32>,
    /// Violations found while running (SAFE delivered before every member
    /// had the packet, a frame that differs from the one sent).
    pub violations: Vec<String>,
    pub datagrams: u64,
    /// Largest `Highest_seq - Aru` seen at any node.
    pub max_gap: i32,
}

impl RingSim<Ring> {
    /// [`RingSim::launch`] of bare rings.
    pub fn start(conf: &str, seed: u64, faults: Faults, orders: &[Order]) -> RingSim {
        RingSim::launch(conf, seed, faults, orders)
    }

    /// Every daemon of the configuration `conf` (spread.conf text), each
    /// writing in `orders[i]` (default: native), installed directly as one
    /// ring (no membership round).
    pub fn new(conf: &str, seed: u64, faults: Faults, orders: &[Order]) -> RingSim {
        let mut sim = Self::build(conf, seed, faults, orders);
        let k = sim.nodes.len();
        let all: Vec<usize> = (0..k).collect();
        let id = MembershipId { proc_id: sim.nodes[0].my_vid() as i32, time: 1_000_000 };
        let now = sim.now();
        // The first round runs on a perfect network so that every node has
        // seen the installed ring's token before faults start.
        sim.faults = Faults::NONE;
        for i in 0..k {
            sim.nodes[i].install(now, &all, id);
        }
        for i in 0..k {
            sim.drain(i);
        }
        for _ in 0..100_000 {
            if sim.nodes.iter().all(|n| n.stats().tokens_processed > 0) || !sim.step(u64::MAX) {
                break;
            }
        }
        sim.faults = faults;
        sim
    }

    /// Queue a message of `len` data bytes (≥ 8) at `node` with `service`
    /// (packet service bit). The frame is a valid message: header in the
    /// node's byte order, one group, data beginning with its id.
    pub fn submit(&mut self, node: usize, service: u32, len: usize) -> MsgId {
        let id = MsgId { node: node as u32, n: self.counters[node] };
        self.counters[node] += 1;
        let order = self.nodes[node].params.order;
        let len = len.max(8);
        let mut f = Vec::with_capacity(48 + 32 + len);
        let mess_type = match service {
            RELIABLE_TYPE => spread_wire::consts::RELIABLE_MESS,
            SAFE_TYPE => spread_wire::consts::SAFE_MESS,
            spread_wire::daemon::FIFO_TYPE => spread_wire::consts::FIFO_MESS,
            _ => spread_wire::consts::AGREED_MESS,
        };
        order.push_u32(&mut f, mess_type | order.marker());
        let mut name = [0u8; 32];
        let s = format!("#u{node}#d{node}");
        name[..s.len()].copy_from_slice(s.as_bytes());
        f.extend_from_slice(&name);
        order.push_i32(&mut f, 1);
        order.push_u32(&mut f, order.marker());
        order.push_i32(&mut f, len as i32);
        let mut g = [0u8; 32];
        g[..5].copy_from_slice(b"group");
        f.extend_from_slice(&g);
        f.extend_from_slice(&id.node.to_le_bytes());
        f.extend_from_slice(&id.n.to_le_bytes());
        let fill = (self.rng.next_u64() & 0xff) as u8;
        f.extend((8..len).map(|i| fill.wrapping_add(i as u8)));
        let frame = Bytes::from(f);
        self.sent.insert(id, frame.clone());
        let now = self.now();
        self.nodes[node].submit_at(now, service, frame);
        self.drain(node);
        id
    }
}

impl<N: SimDaemon> RingSim<N> {
    /// Every daemon started as the original starts (`Memb_init`: a
    /// membership round); the ring forms by itself.
    pub fn launch(conf: &str, seed: u64, faults: Faults, orders: &[Order]) -> RingSim<N> {
        let mut sim = Self::build(conf, seed, faults, orders);
        let now = sim.now();
        for i in 0..sim.nodes.len() {
            sim.nodes[i].ring_mut().start(now);
            sim.drain(i);
        }
        sim
    }

    fn build(conf: &str, seed: u64, faults: Faults, orders: &[Order]) -> RingSim<N> {
        let cfg = match config::parse_str_with_resolver(conf, "sim.conf", &config::offline_resolver) {
            Ok(c) => c,
            Err(e) => panic!("simulator configuration does not parse: {e}"),
        };
        let mut nodes: Vec<N> = (0..cfg.daemons.len()).map(|i| N::boot(&cfg, i)).collect();
        for (i, o) in orders.iter().enumerate() {
            if let Some(n) = nodes.get_mut(i) {
                n.ring_mut().params.order = *o;
            }
        }
        let mut routes: HashMap<SocketAddr, Vec<(usize, PortKey)>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            routes.entry(n.ring().topo.data_addr(i)).or_default().push((i, PortKey::Data));
            routes.entry(n.ring().topo.token_addr(i)).or_default().push((i, PortKey::Token));
        }
        for s in &cfg.segments {
            for a in &s.addrs {
                let e = routes.entry(*a).or_default();
                for &d in &s.daemons {
                    if !e.contains(&(d, PortKey::Data)) {
                        e.push((d, PortKey::Data));
                    }
                }
            }
        }
        let k = nodes.len();
        let mut sim = RingSim {
            nodes,
            cfg,
            base: Instant::now(),
            now_us: 0,
            net: BinaryHeap::new(),
            routes,
            rng: Rng::new(seed),
            faults,
            seq: 0,
            log: vec![Vec::new(); k],
            configs: vec![Vec::new(); k],
            component: vec![0; k],
            down: vec![false; k],
            ever_crashed: vec![false; k],
            restarts: vec![Vec::new(); k],
            sent: HashMap::new(),
            counters: vec![0; k],
            violations: Vec::new(),
            datagrams: 0,
            max_gap: 0,
        };
        let base = sim.base;
        for n in &mut sim.nodes {
            n.ring_mut().set_wall_clock(base, SIM_WALL_START);
        }
        sim
    }

    /// Split the network: `parts` are lists of nodes; nodes in different
    /// parts (or in none) cannot reach each other. Datagrams in flight
    /// across the new boundaries are lost.
    pub fn partition(&mut self, parts: &[&[usize]]) {
        let k = self.nodes.len();
        let mut comp: Vec<usize> = (0..k).map(|i| 1000 + i).collect();
        for (c, p) in parts.iter().enumerate() {
            for &i in *p {
                if i < k {
                    comp[i] = c;
                }
            }
        }
        self.component = comp;
    }

    /// Join every part again.
    pub fn heal(&mut self) {
        self.component = vec![0; self.nodes.len()];
    }

    /// Crash a node: it stops at once, losing everything it held.
    pub fn crash(&mut self, node: usize) {
        self.down[node] = true;
        self.ever_crashed[node] = true;
    }

    /// Restart a crashed node as a new daemon process.
    pub fn restart(&mut self, node: usize) {
        let cfg = self.cfg.clone();
        self.restart_with(node, &cfg, node);
    }

    /// Restart `node` (crashed or not) as a new daemon process on the
    /// configuration `cfg`, in which it is proc index `index`. (The
    /// network's routes stay those of the simulator's configuration.)
    pub fn restart_with(&mut self, node: usize, cfg: &Config, index: usize) {
        let order = self.nodes[node].ring().params.order;
        let mut r = N::boot(cfg, index);
        r.ring_mut().params.order = order;
        r.ring_mut().set_wall_clock(self.base, SIM_WALL_START);
        self.nodes[node] = r;
        self.down[node] = false;
        self.restarts[node].push(self.now_us);
        let now = self.now();
        self.nodes[node].ring_mut().start(now);
        self.drain(node);
    }

    /// Give the live `node` the reloaded configuration `cfg` (in which it is
    /// proc index `me`), as its driver does once the reload is due; false
    /// (nothing done) while its ring is not in OP.
    pub fn reload(&mut self, node: usize, cfg: &Config, me: usize, singleton: bool) -> bool {
        if self.down[node] || !self.nodes[node].reload_ready() {
            return false;
        }
        let now = self.now();
        let r = crate::engine::reload::Reload { config: cfg.clone(), me, singleton };
        self.nodes[node].reload(now, &r);
        self.drain(node);
        true
    }

    /// Run until every live node is in OP with exactly the ring `want[node]`
    /// (proc indexes), checking every 100 ms of virtual time, for at most
    /// `limit_us`; whether it got there.
    pub fn run_until_rings(&mut self, want: &[Vec<usize>], limit_us: u64) -> bool {
        let end = self.now_us + limit_us;
        loop {
            let there = (0..self.nodes.len()).filter(|&i| !self.down[i]).all(|i| {
                let r = self.nodes[i].ring();
                r.state() == super::State::Op && want.get(i).is_some_and(|w| r.members().as_slice() == w.as_slice())
            });
            if there {
                return true;
            }
            if self.now_us >= end {
                return false;
            }
            let t = (self.now_us + 100_000).min(end);
            self.run_until(t, 5_000_000);
        }
    }

    /// True when every live node is in OP with the same ring of exactly the
    /// live nodes of its component.
    pub fn settled(&self) -> bool {
        let k = self.nodes.len();
        (0..k).filter(|&i| !self.down[i]).all(|i| {
            let n = self.nodes[i].ring();
            let want: Vec<usize> =
                (0..k).filter(|&j| !self.down[j] && self.component[j] == self.component[i]).collect();
            n.state() == super::State::Op
                && n.members().as_slice() == want.as_slice()
                && want.iter().all(|&j| self.nodes[j].ring().ring_id() == n.ring_id())
        })
    }

    /// Run until [`RingSim::settled`] (bounded); whether it settled.
    pub fn run_until_settled(&mut self, limit_us: u64, max_events: u64) -> bool {
        for _ in 0..max_events {
            if self.settled() {
                return true;
            }
            if !self.step(limit_us) {
                break;
            }
        }
        self.settled()
    }

    pub fn now(&self) -> Instant {
        self.base + Duration::from_micros(self.now_us)
    }

    /// Move a node's outputs into the network and the delivery log.
    pub(crate) fn drain(&mut self, i: usize) {
        let topo = &self.nodes[i].ring().topo;
        let src = topo.data_addr(topo.me);
        while let Some(d) = self.nodes[i].ring_mut().poll_send() {
            self.datagrams += 1;
            if let Some(dests) = self.routes.get(&d.to) {
                for &(to, port) in dests {
                    if self.component[to] != self.component[i] {
                        continue;
                    }
                    let copies = if self.rng.chance(self.faults.loss) {
                        0
                    } else if self.rng.chance(self.faults.dup) {
                        2
                    } else {
                        1
                    };
                    for _ in 0..copies {
                        let span = self.faults.max_delay_us.saturating_sub(self.faults.min_delay_us);
                        let at = self.now_us + self.faults.min_delay_us + self.rng.below(span + 1);
                        self.seq += 1;
                        self.net.push(Reverse(InFlight { at, n: self.seq, to, port, src, bytes: d.bytes.clone() }));
                    }
                }
            }
            // The buffer goes back to the ring, as the driver returns it
            // after sending: the pool's reuse is exercised here too.
            self.nodes[i].ring_mut().recycle(d.bytes);
        }
        while let Some(u) = self.nodes[i].poll_up() {
            match u {
                Up::Message(d) => self.log_delivery(i, d),
                Up::Transitional { members, id } => {
                    self.configs[i].push(Conf { transitional: true, members, id, at_us: self.now_us })
                }
                Up::Regular { members, id } => {
                    self.configs[i].push(Conf { transitional: false, members, id, at_us: self.now_us })
                }
            }
        }
        let gap = self.nodes[i].ring().highest_seq() - self.nodes[i].ring().aru();
        self.max_gap = self.max_gap.max(gap);
    }

    fn log_delivery(&mut self, i: usize, d: Delivered) {
        let Some(id) = frame_id(&d.frame) else {
            self.violations.push(format!("node {i}: delivered a frame without an id ({} bytes)", d.frame.len()));
            return;
        };
        if self.sent.get(&id) != Some(&d.frame) {
            self.violations.push(format!("node {i}: message {id:?} delivered with different bytes"));
        }
        let conf = self.configs[i].last().map(|c| (c.id, c.transitional)).unwrap_or_default();
        if d.service == SAFE_TYPE && !conf.1 {
            let me = self.nodes[i].ring();
            for (j, n) in self.nodes.iter().map(|n| n.ring()).enumerate() {
                if self.down[j] || !me.members().contains(j) || n.ring_id() != me.ring_id() {
                    continue;
                }
                if n.my_aru() < d.seq {
                    self.violations.push(format!(
                        "node {i}: SAFE {id:?} (seq {}) delivered while node {j} has only up to {}",
                        d.seq,
                        n.my_aru()
                    ));
                }
            }
        }
        self.log[i].push(Logged { id, service: d.service, at_us: self.now_us, conf });
    }

    /// Run one event (a datagram arrival or a timer); false when nothing is
    /// left to happen before `until_us`.
    pub fn step(&mut self, until_us: u64) -> bool {
        let next_net = self.net.peek().map(|Reverse(p)| p.at);
        let mut next_timer: Option<(u64, usize)> = None;
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if self.down[i] {
                continue;
            }
            if let Some(d) = n.next_deadline() {
                let us = d.saturating_duration_since(self.base).as_micros() as u64;
                if next_timer.is_none_or(|(t, _)| us < t) {
                    next_timer = Some((us, i));
                }
            }
        }
        let take_net = match (next_net, next_timer) {
            (None, None) => return false,
            (Some(a), Some((b, _))) => a <= b,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if take_net {
            let at = next_net.unwrap_or(0);
            if at > until_us {
                self.now_us = until_us;
                return false;
            }
            let Some(Reverse(p)) = self.net.pop() else { return false };
            self.now_us = self.now_us.max(p.at);
            if self.down[p.to] {
                return true;
            }
            let now = self.now();
            let port = if p.port == PortKey::Data { Port::Data } else { Port::Token };
            self.nodes[p.to].on_datagram(now, port, p.src, &p.bytes);
            self.drain(p.to);
        } else if let Some((at, i)) = next_timer {
            if at > until_us {
                self.now_us = until_us;
                return false;
            }
            self.now_us = self.now_us.max(at);
            let now = self.now();
            self.nodes[i].on_timer(now);
            self.drain(i);
        }
        true
    }

    /// Run until `until_us` of virtual time (bounded by `max_events`).
    pub fn run_until(&mut self, until_us: u64, max_events: u64) {
        for _ in 0..max_events {
            if !self.step(until_us) {
                return;
            }
        }
    }

    /// Run until every node delivered every message sent, or `limit_us`
    /// passes. Returns whether everything was delivered.
    pub fn run_until_delivered(&mut self, limit_us: u64, max_events: u64) -> bool {
        let want = self.sent.len();
        for _ in 0..max_events {
            if self.log.iter().all(|l| l.len() >= want) {
                return true;
            }
            if !self.step(limit_us) {
                break;
            }
        }
        self.log.iter().all(|l| l.len() >= want)
    }

    /// Check everything delivered so far: no node delivers a message twice
    /// or one never sent; within each configuration (regular or
    /// transitional), the non-RELIABLE messages come in one order at every
    /// node that delivered in it (each node's sequence a prefix of the
    /// longest); no two nodes install the same ring id with different
    /// members; and the violations noted while running. Returns the
    /// problems found.
    pub fn check(&self) -> Vec<String> {
        let mut bad = self.violations.clone();
        type PerNode = Vec<(usize, Vec<MsgId>)>;
        let mut per_conf: HashMap<(MembershipId, bool), PerNode> = HashMap::new();
        for (i, l) in self.log.iter().enumerate() {
            let mut seen = HashSet::new();
            let mut seqs: HashMap<(MembershipId, bool), Vec<MsgId>> = HashMap::new();
            for e in l {
                if !seen.insert(e.id) {
                    bad.push(format!("node {i}: {:?} delivered twice", e.id));
                }
                if !self.sent.contains_key(&e.id) {
                    bad.push(format!("node {i}: {:?} was never sent", e.id));
                }
                if e.service != RELIABLE_TYPE {
                    seqs.entry(e.conf).or_default().push(e.id);
                }
            }
            for (k, v) in seqs {
                per_conf.entry(k).or_default().push((i, v));
            }
        }
        for (conf, lists) in &per_conf {
            let longest = lists.iter().map(|(_, v)| v).max_by_key(|v| v.len()).cloned().unwrap_or_default();
            for (i, v) in lists {
                if let Some(k) = v.iter().zip(&longest).position(|(a, b)| a != b) {
                    bad.push(format!(
                        "node {i}: order in configuration {conf:?} differs at position {k}: {:?} where another node has {:?}",
                        v[k], longest[k]
                    ));
                }
            }
        }
        // Per-sender FIFO: at every node, the non-RELIABLE messages of one
        // sender come in the order it sent them.
        for (i, l) in self.log.iter().enumerate() {
            let mut last: HashMap<u32, u32> = HashMap::new();
            for e in l.iter().filter(|e| e.service != RELIABLE_TYPE) {
                if let Some(&p) = last.get(&e.id.node) {
                    if e.id.n <= p {
                        bad.push(format!("node {i}: {:?} delivered after message {p} of the same sender", e.id));
                    }
                }
                last.insert(e.id.node, e.id.n);
            }
        }
        // Any two nodes install the regular configurations they share in
        // the same order.
        let regs: Vec<Vec<MembershipId>> =
            self.configs.iter().map(|cs| cs.iter().filter(|c| !c.transitional).map(|c| c.id).collect()).collect();
        for i in 0..regs.len() {
            for j in i + 1..regs.len() {
                let common_i: Vec<&MembershipId> = regs[i].iter().filter(|x| regs[j].contains(x)).collect();
                let common_j: Vec<&MembershipId> = regs[j].iter().filter(|x| regs[i].contains(x)).collect();
                if common_i != common_j {
                    bad.push(format!("nodes {i} and {j} installed common configurations in different orders"));
                }
            }
        }
        // Virtual synchrony: two nodes that go from one regular
        // configuration to the same next one delivered the same messages in
        // it (its regular part and the transitional part that ends it).
        let mut moved: HashMap<(MembershipId, MembershipId), (usize, HashSet<MsgId>)> = HashMap::new();
        for (i, cs) in self.configs.iter().enumerate() {
            let regs: Vec<usize> = (0..cs.len()).filter(|&x| !cs[x].transitional).collect();
            for w in regs.windows(2) {
                let (from, to) = (&cs[w[0]], &cs[w[1]]);
                // A restart in between: a new process, not a move.
                if self.restarts[i].iter().any(|&t| t >= from.at_us && t <= to.at_us) {
                    continue;
                }
                // What node i delivered in `from` and in the transitional
                // configuration(s) installed between the two.
                let confs: Vec<(MembershipId, bool)> =
                    std::iter::once((from.id, false)).chain(cs[w[0] + 1..w[1]].iter().map(|c| (c.id, true))).collect();
                let got: HashSet<MsgId> =
                    self.log[i].iter().filter(|e| confs.contains(&e.conf)).map(|e| e.id).collect();
                match moved.get(&(from.id, to.id)) {
                    Some((j, other)) if *other != got => {
                        let j = *j;
                        let mut diff: Vec<String> = Vec::new();
                        for (n, x, y) in [(j, other, &got), (i, &got, other)] {
                            for id in x.difference(y).take(3) {
                                let e = self.log[n].iter().find(|e| e.id == *id).expect("logged");
                                diff.push(format!(
                                    "{id:?} (service {:#x}) only at node {n}, at {} µs in {:?}",
                                    e.service, e.at_us, e.conf
                                ));
                            }
                        }
                        bad.push(format!(
                            "nodes {j} and {i} went from ring {:?} to ring {:?} together but delivered different messages in it ({} and {}): {}",
                            from.id,
                            to.id,
                            other.len(),
                            got.len(),
                            diff.join("; ")
                        ))
                    }
                    Some(_) => {}
                    None => {
                        moved.insert((from.id, to.id), (i, got));
                    }
                }
            }
        }
        let mut rings: HashMap<MembershipId, Vec<u32>> = HashMap::new();
        for (i, cs) in self.configs.iter().enumerate() {
            for c in cs.iter().filter(|c| !c.transitional) {
                if let Some(m) = rings.get(&c.id) {
                    if *m != c.members {
                        bad.push(format!("node {i}: ring {:?} installed as {:?}, elsewhere as {m:?}", c.id, c.members));
                    }
                } else {
                    rings.insert(c.id, c.members.clone());
                }
            }
        }
        bad
    }

    /// [`RingSim::check`] plus self-delivery: every node that never
    /// crashed delivered every message it sent. For the end of a run, once
    /// the network has settled.
    pub fn check_final(&self) -> Vec<String> {
        let mut bad = self.check();
        for (i, l) in self.log.iter().enumerate() {
            if self.ever_crashed[i] {
                continue;
            }
            let got: HashSet<MsgId> = l.iter().map(|e| e.id).collect();
            let lost = self.sent.keys().filter(|k| k.node as usize == i && !got.contains(k)).count();
            if lost > 0 {
                bad.push(format!("node {i}: {lost} of its own messages never delivered to itself"));
            }
        }
        bad
    }

    /// Messages sent but not delivered at `node`.
    pub fn missing(&self, node: usize) -> usize {
        let got: HashSet<MsgId> = self.log[node].iter().map(|e| e.id).collect();
        self.sent.keys().filter(|k| !got.contains(k)).count()
    }
}

fn frame_id(f: &[u8]) -> Option<MsgId> {
    let d = f.get(48 + 32..48 + 32 + 8)?;
    Some(MsgId { node: u32::from_le_bytes([d[0], d[1], d[2], d[3]]), n: u32::from_le_bytes([d[4], d[5], d[6], d[7]]) })
}
