//! Whole daemons in the ring simulator: each node of a
//! [`RingSim<EngineDaemon>`] is the daemon's real [`Engine`] (sessions,
//! groups, delivery to clients) over its real [`Ring`], exactly as the mio
//! driver runs them, with clients as byte streams. The simulator's network,
//! clock, faults, partitions, crashes and restarts are those of
//! [`RingSim`]; what the tests check is what the clients receive.
//!
//! Client input reaches the engine as the driver reads it: not while
//! [`Engine::reading_paused`] (a state exchange, a full down queue), in
//! arrival order once reading resumes.
//!
//! A crash loses the daemon and every client connected to it; a restart
//! boots a fresh daemon process with no clients.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::sim::{RingSim, SimDaemon, SIM_WALL_START};
use super::{Port, Ring, Up};
use crate::config::Config;
use crate::engine::sim::{handshake, pump};
use crate::engine::{ConnId, Engine, EngineConfig};

/// One simulated daemon: engine, ring, and its clients' byte streams.
pub struct EngineDaemon {
    pub engine: Engine<Ring>,
    /// Bytes the daemon wrote to each client and the test has not taken.
    pub out: HashMap<ConnId, Vec<u8>>,
    /// Connections the daemon closed.
    pub closed: HashSet<ConnId>,
    /// Client input not read yet (`None`: the client closed).
    unread: VecDeque<(ConnId, Option<Vec<u8>>)>,
}

impl EngineDaemon {
    /// Client inputs not read yet.
    pub fn unread_len(&self) -> usize {
        self.unread.len()
    }

    /// Let the engine take what the ring delivered, read client input while
    /// reading is not paused, and carry out the engine's actions.
    fn settle(&mut self, now: Instant) {
        self.engine.deliver_ready();
        // Bounded by the input queued.
        while !self.engine.reading_paused() {
            let Some((id, input)) = self.unread.pop_front() else { break };
            match input {
                Some(b) => self.engine.on_data(now, id, &b),
                None => self.engine.on_closed(now, id),
            }
        }
        pump(&mut self.engine, &mut self.out, &mut self.closed);
    }
}

impl SimDaemon for EngineDaemon {
    fn boot(cfg: &Config, index: usize) -> EngineDaemon {
        let ecfg = EngineConfig::from_config(cfg, index, SIM_WALL_START as i32);
        let mut ring = Ring::new(cfg, index);
        ring.config_tap = Some(VecDeque::new());
        EngineDaemon {
            engine: Engine::with_ordering(ecfg, ring),
            out: HashMap::new(),
            closed: HashSet::new(),
            unread: VecDeque::new(),
        }
    }
    fn ring(&self) -> &Ring {
        self.engine.ordering_ref()
    }
    fn ring_mut(&mut self) -> &mut Ring {
        self.engine.ordering()
    }
    fn next_deadline(&mut self) -> Option<Instant> {
        match (self.engine.next_timeout(), self.ring().next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    fn on_timer(&mut self, now: Instant) {
        if self.engine.next_timeout().is_some_and(|t| t <= now) {
            self.engine.on_timeout(now);
        }
        if self.ring().next_deadline().is_some_and(|t| t <= now) {
            self.ring_mut().on_timer(now);
        }
        self.settle(now);
    }
    fn on_datagram(&mut self, now: Instant, port: Port, src: SocketAddr, b: &[u8]) {
        self.ring_mut().on_datagram(now, port, src, b);
        self.settle(now);
    }
    fn reload_ready(&self) -> bool {
        self.engine.ordering_ref().reload_ready()
    }
    fn reload(&mut self, now: Instant, r: &crate::engine::reload::Reload) {
        self.engine.request_reload();
        self.engine.apply_reload(now, r);
        self.settle(now);
    }
    fn poll_up(&mut self) -> Option<Up> {
        // The engine consumes everything the ring hands up; the simulator
        // logs copies of the configuration changes.
        self.ring_mut().config_tap.as_mut()?.pop_front()
    }
}

/// Clients of the simulated daemons.
impl RingSim<EngineDaemon> {
    /// Connect a client named `name` to daemon `node` (TCP, no
    /// authentication); `None` if the daemon is down or refused.
    pub fn connect(&mut self, node: usize, name: &str, membership: bool) -> Option<ConnId> {
        if self.down[node] {
            return None;
        }
        let now = self.now();
        let n = &mut self.nodes[node];
        let id = handshake(&mut n.engine, now, name, membership, &mut n.out, &mut n.closed);
        self.drain(node);
        id
    }

    /// Bytes from client `id` of daemon `node` (a frame or several).
    pub fn client_send(&mut self, node: usize, id: ConnId, bytes: &[u8]) {
        if self.down[node] {
            return;
        }
        let now = self.now();
        let n = &mut self.nodes[node];
        n.unread.push_back((id, Some(bytes.to_vec())));
        n.settle(now);
        self.drain(node);
    }

    /// Client `id` of daemon `node` closed its socket.
    pub fn client_close(&mut self, node: usize, id: ConnId) {
        if self.down[node] {
            return;
        }
        let now = self.now();
        let n = &mut self.nodes[node];
        n.unread.push_back((id, None));
        n.settle(now);
        self.drain(node);
    }

    /// Everything daemon `node` wrote to client `id` since the last take.
    pub fn take(&mut self, node: usize, id: ConnId) -> Vec<u8> {
        self.nodes[node].out.remove(&id).unwrap_or_default()
    }

    /// Whether daemon `node` closed client `id`.
    pub fn closed(&self, node: usize, id: ConnId) -> bool {
        self.nodes[node].closed.contains(&id)
    }
}
