//! A deterministic simulator: several daemon engines joined by an ideal,
//! hand-driven total order instead of the token ring. No sockets, no clock,
//! no threads — for tests of everything above the ordering protocol (remote
//! members, configuration changes, the GROUPS state exchange).
//!
//! * Every node is an [`Engine<SimOrder>`]; what a node submits waits in its
//!   [`SimOrder`] until [`Sim::settle`] orders it: inside each connected
//!   component, node by node in submission order, and delivers the batch to
//!   every node of the component.
//! * [`Sim::reconfigure`] installs new components the way the membership
//!   algorithm would report them: at each node a transitional configuration
//!   (old component ∩ new component) then a regular one (the new component,
//!   id = (first VID in configuration order, next ring time)).
//! * Clients are byte streams: [`Sim::connect`] runs the 5.0.1 handshake,
//!   [`Sim::send`] feeds client bytes, [`Sim::take`] takes what the daemon
//!   wrote to that client.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use super::{Accepted, Action, ConnId, ConnKind, Engine, EngineConfig, OrderedMessage, Ordering};

/// The simulator's ordering: submitted messages wait for [`Sim::settle`].
#[derive(Default, Debug)]
pub struct SimOrder {
    submitted: VecDeque<OrderedMessage>,
    ready: VecDeque<OrderedMessage>,
}

impl Ordering for SimOrder {
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

/// One simulated daemon.
pub struct SimNode {
    pub engine: Engine<SimOrder>,
    pub vid: u32,
    /// Bytes written to each client so far (not yet taken).
    pub out: HashMap<ConnId, Vec<u8>>,
    /// Connections the daemon closed.
    pub closed: HashSet<ConnId>,
}

impl SimNode {
    fn pump(&mut self) {
        pump(&mut self.engine, &mut self.out, &mut self.closed);
    }
}

/// Carry out what `engine` asks: frames written to a connection go to its
/// byte buffer in `out`, closed connections into `closed`.
pub fn pump<O: Ordering>(engine: &mut Engine<O>, out: &mut HashMap<ConnId, Vec<u8>>, closed: &mut HashSet<ConnId>) {
    // Bounded by what the engine queued.
    for _ in 0..1_000_000 {
        match engine.poll_action() {
            None => return,
            Some(Action::Flush(id)) => {
                let b = engine.drain_output(id);
                out.entry(id).or_default().extend_from_slice(&b);
            }
            Some(Action::Close { id, linger }) => {
                let o = out.entry(id).or_default();
                for b in linger {
                    o.extend_from_slice(&b);
                }
                closed.insert(id);
            }
        }
    }
}

/// Accept a TCP connection and run the 5.0.1 handshake (no authentication)
/// for private name `name`; `None` if the daemon refused. The handshake's
/// answer bytes are consumed.
pub fn handshake<O: Ordering>(
    engine: &mut Engine<O>,
    now: Instant,
    name: &str,
    membership: bool,
    out: &mut HashMap<ConnId, Vec<u8>>,
    closed: &mut HashSet<ConnId>,
) -> Option<ConnId> {
    let Accepted::Conn(id) = engine.accept(now, ConnKind::Tcp, None) else { return None };
    let mut req = vec![5, 0, 1, membership as u8, name.len() as u8];
    req.extend_from_slice(name.as_bytes());
    engine.on_data(now, id, &req);
    let mut choice = [0u8; 90];
    choice[..4].copy_from_slice(b"NULL");
    engine.on_data(now, id, &choice);
    pump(engine, out, closed);
    let got = out.remove(&id).unwrap_or_default();
    (got.len() > 10 && got[6] == 1).then_some(id)
}

/// Several engines and an ideal total order per connected component.
pub struct Sim {
    pub nodes: Vec<SimNode>,
    pub now: Instant,
    /// Component of each node (node indexes, configuration order).
    component: Vec<Vec<usize>>,
    ring_time: i32,
}

impl Sim {
    /// Daemons `names` (configuration order) with `vids`, each starting as
    /// its own singleton ring at time `start_time`, then formed into one ring
    /// of all at `start_time + 1` (a GROUPS exchange), as at start-up.
    pub fn new(names: &[&str], vids: &[u32], start_time: i32) -> Sim {
        let daemons: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let nodes = names
            .iter()
            .zip(vids)
            .map(|(n, v)| {
                let mut cfg = EngineConfig::single(n.as_bytes(), *v, start_time);
                cfg.daemons = daemons.clone();
                cfg.daemon_vids = vids.to_vec();
                SimNode {
                    engine: Engine::with_ordering(cfg, SimOrder::default()),
                    vid: *v,
                    out: HashMap::new(),
                    closed: HashSet::new(),
                }
            })
            .collect::<Vec<_>>();
        let component = (0..nodes.len()).map(|i| vec![i]).collect();
        let mut sim = Sim { nodes, now: Instant::now(), component, ring_time: start_time };
        let all: Vec<usize> = (0..sim.nodes.len()).collect();
        sim.reconfigure(&[&all]);
        sim
    }

    /// The ring time of the last configuration installed.
    pub fn ring_time(&self) -> i32 {
        self.ring_time
    }

    /// Install new components (each a list of node indexes); every node must
    /// be in exactly one. Runs the transitional and regular configurations
    /// and settles the resulting state exchanges.
    pub fn reconfigure(&mut self, parts: &[&[usize]]) {
        let t = self.ring_time.wrapping_add(1);
        self.reconfigure_at(parts, t);
    }

    /// [`Sim::reconfigure`] with an explicit ring time.
    pub fn reconfigure_at(&mut self, parts: &[&[usize]], time: i32) {
        self.ring_time = time;
        let mut new_comp = vec![Vec::new(); self.nodes.len()];
        for p in parts {
            let mut p: Vec<usize> = p.iter().copied().filter(|&i| i < self.nodes.len()).collect();
            p.sort_unstable();
            p.dedup();
            for &i in &p {
                if i < new_comp.len() {
                    new_comp[i] = p.clone();
                }
            }
        }
        // A node left out of every part forms its own component.
        for (i, c) in new_comp.iter_mut().enumerate() {
            if c.is_empty() {
                c.push(i);
            }
        }
        let vids: Vec<u32> = self.nodes.iter().map(|n| n.vid).collect();
        for (i, comp) in new_comp.iter().enumerate() {
            let old = &self.component[i];
            let trans: Vec<u32> = comp.iter().filter(|j| old.contains(j)).map(|&j| vids[j]).collect();
            let leader = trans.first().copied().unwrap_or(vids[i]);
            self.nodes[i].engine.on_transitional_configuration(&trans, (leader as i32, time));
            self.nodes[i].pump();
        }
        for (i, comp) in new_comp.iter().enumerate() {
            let reg: Vec<u32> = comp.iter().map(|&j| vids[j]).collect();
            self.nodes[i].engine.on_regular_configuration(&reg, (vids[comp[0]] as i32, time));
            self.nodes[i].pump();
        }
        self.component = new_comp;
        self.settle();
    }

    /// Order and deliver everything submitted, component by component, until
    /// nothing is left (bounded).
    pub fn settle(&mut self) {
        for _ in 0..1000 {
            let mut any = false;
            let mut seen = HashSet::new();
            for i in 0..self.nodes.len() {
                let comp = self.component[i].clone();
                if !seen.insert(comp.clone()) {
                    continue;
                }
                let mut batch = Vec::new();
                for &j in &comp {
                    batch.extend(self.nodes[j].engine.ordering().submitted.drain(..));
                }
                if batch.is_empty() {
                    continue;
                }
                any = true;
                for &j in &comp {
                    let n = &mut self.nodes[j];
                    n.engine.ordering().ready.extend(batch.iter().cloned());
                    n.engine.deliver_ready();
                    n.pump();
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Accept a connection at `node` and run the 5.0.1 handshake for `name`;
    /// `None` if the daemon did not accept it. The handshake bytes are taken.
    pub fn connect(&mut self, node: usize, name: &str, membership: bool) -> Option<ConnId> {
        let n = &mut self.nodes[node];
        handshake(&mut n.engine, self.now, name, membership, &mut n.out, &mut n.closed)
    }

    /// Client bytes for connection `id` at `node`; then settle.
    pub fn send(&mut self, node: usize, id: ConnId, bytes: &[u8]) {
        self.nodes[node].engine.on_data(self.now, id, bytes);
        self.nodes[node].pump();
        self.settle();
    }

    /// The client side closed; then settle.
    pub fn eof(&mut self, node: usize, id: ConnId) {
        self.nodes[node].engine.on_closed(self.now, id);
        self.nodes[node].pump();
        self.settle();
    }

    /// Everything written to the client so far.
    pub fn take(&mut self, node: usize, id: ConnId) -> Vec<u8> {
        self.nodes[node].out.remove(&id).unwrap_or_default()
    }
}
