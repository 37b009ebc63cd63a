//! The token ring, sans I/O: daemon⇄daemon datagrams and timers in, datagrams
//! to send and ordered messages out (daemon spec §2–§5).
//!
//! One [`Ring`] per daemon. The driver (sockets, or the seeded simulator in
//! [`sim`]) calls:
//!
//! * [`Ring::on_datagram`] for every UDP datagram received on the data port
//!   `P` or the token port `P+1` (with its source address);
//! * [`Ring::on_timer`] once [`Ring::next_deadline`] has passed;
//! * [`Ring::submit`] (or [`Ordering::submit`]) for a message to order;
//!
//! and then drains [`Ring::poll_send`] (datagrams to send) and
//! [`Ring::poll_up`] (messages in delivery order).
//!
//! The concerns live in their own modules, each an `impl Ring` block over its
//! own state: [`topology`] (who is where, ring order, destinations),
//! [`token`] (the ordering protocol of §4: packets, the regular token, ARU,
//! retransmissions, flow control, delivery), [`membership`] (§5: the states,
//! ALIVE/JOIN/REFER, FORM1/FORM2, EVS and the configurations it hands up),
//! [`timers`], [`monitor`] (what spmonitor reads and sets), [`reload`] (a
//! new spread.conf taken while running). A daemon starts with [`Ring::start`] (a membership round, as
//! the original's `Memb_init`); tests may also install a ring directly with
//! [`Ring::install`].

pub mod engine_sim;
pub mod membership;
pub mod monitor;
pub mod reload;
pub mod sim;
pub mod timers;
pub mod token;
pub mod topology;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use spread_wire::consts::GROUPS_MESS;
use spread_wire::daemon::{
    order_of, AlivePacket, Form1Token, Form2Token, JoinPacket, MembershipId, PacketHeader, TokenHeader, ALIVE_TYPE,
    CONTROL_TYPE, FORM1_TYPE, FORM_TYPE, HURRY_TYPE, JOIN_TYPE, MAX_PACKET_SIZE, MEMBERSHIP_TYPE, PACKET_HEADER_LEN,
    REGULAR_TYPE, ROUTED_TYPE, TOKEN_HEADER_LEN,
};
use spread_wire::endian::Order;
use spread_wire::Header;

use super::ordering::{OrderEvent, OrderedMessage, Ordering, ServiceClass};
use crate::config::{Config, Timeouts};
pub use membership::Memb;
use timers::{Timer, Timers};
use token::TokenState;
pub use topology::{Members, Topology};

/// Most datagram buffers kept for reuse ([`Ring::recycle`]): a few
/// windows' worth of packets in flight.
const SPARE_BUFFERS: usize = 1024;

/// Which socket a datagram arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// `P`: data, membership, hurry and monitor packets.
    Data,
    /// `P+1`: the regular token and the form tokens.
    Token,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the ring hands up, in delivery order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Up {
    /// A whole message (message header, group names, data) as its originator
    /// wrote it.
    Message(Delivered),
    /// A transitional configuration (VIDs, conf order) and its id.
    Transitional { members: Vec<u32>, id: MembershipId },
    /// A regular configuration (VIDs, conf order) and its ring id.
    Regular { members: Vec<u32>, id: MembershipId },
}

/// A delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The originating daemon.
    pub origin: u32,
    /// Ring sequence number of the packet that completed it.
    pub seq: i32,
    /// Packet service it travelled with (`RELIABLE_TYPE` … `SAFE_TYPE`).
    pub service: u32,
    pub frame: Bytes,
}

/// Membership state numbers (§5.1; they appear in the status reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Op = 1,
    Seg = 2,
    Represented = 3,
    Gather = 4,
    Form = 5,
    Evs = 6,
}

/// How often a ring's leader probes configured daemons outside the ring
/// ([`Params::merge_probe`]).
pub const DEFAULT_MERGE_PROBE: Duration = Duration::from_millis(200);

/// Ring parameters taken from spread.conf (§1.4, §1.8).
#[derive(Clone, Debug)]
pub struct Params {
    pub hash: u32,
    pub window: i32,
    pub personal_window: i32,
    pub accelerated: bool,
    pub accelerated_window: i32,
    /// `Wide_network` (§1.8).
    pub wide: bool,
    pub token_timeout: Duration,
    pub hurry_timeout: Duration,
    /// The other membership timeouts (§1.8).
    pub timeouts: MembTimeouts,
    /// Ours only (docs/ring.md, "Fast merge"): while configured daemons are
    /// outside the ring, its leader sends them a JOIN this often without
    /// leaving OP, so a healed partition merges at once instead of at the
    /// next `Lookup_timeout`. `None`: as the original.
    pub merge_probe: Option<Duration>,
    /// Ours only (docs/ring.md, "Fast merge"): when live rings merge (every
    /// gathered representative is a ring's, this daemon's token is alive)
    /// and every representative any JOIN named has joined this one, the
    /// smallest representative forms the ring this long after the last new
    /// JOIN instead of waiting out `Gather_timeout`. `None`: as the original.
    pub early_form: Option<Duration>,
    /// Byte order this daemon writes (the host's; the simulator can pick
    /// the other one to test mixed rings).
    pub order: Order,
}

impl Params {
    pub fn from_config(cfg: &Config) -> Params {
        let t = cfg.membership_timeouts().unwrap_or(if cfg.wide_area() { Timeouts::WAN } else { Timeouts::LAN });
        Params {
            hash: cfg.hash(),
            window: cfg.window as i32,
            personal_window: cfg.personal_window as i32,
            accelerated: cfg.accelerated_ring(),
            accelerated_window: cfg.accelerated_window as i32,
            wide: cfg.wide_area(),
            token_timeout: Duration::from_millis(t.token as u64),
            hurry_timeout: Duration::from_millis(t.hurry as u64),
            timeouts: MembTimeouts::from(t),
            merge_probe: Some(DEFAULT_MERGE_PROBE.min(Duration::from_millis(t.lookup as u64))),
            early_form: Some(Duration::from_millis(t.join as u64).min(Duration::from_millis(t.gather as u64))),
            order: Order::NATIVE,
        }
    }
}

/// Membership timeouts other than token and hurry.
#[derive(Clone, Copy, Debug)]
pub struct MembTimeouts {
    pub alive: Duration,
    pub join: Duration,
    pub rep: Duration,
    pub seg: Duration,
    pub gather: Duration,
    pub form: Duration,
    pub lookup: Duration,
}

impl From<Timeouts> for MembTimeouts {
    fn from(t: Timeouts) -> MembTimeouts {
        let ms = |v: u32| Duration::from_millis(v as u64);
        MembTimeouts {
            alive: ms(t.alive),
            join: ms(t.join),
            rep: ms(t.rep),
            seg: ms(t.seg),
            gather: ms(t.gather),
            form: ms(t.form),
            lookup: ms(t.lookup),
        }
    }
}

/// Counters (the status reply of §8.4 reports most of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub packets_delivered: u64,
    pub messages_delivered: u64,
    pub retrans: u64,
    pub u_retrans: u64,
    pub s_retrans: u64,
    pub b_retrans: u64,
    pub token_hurry: u64,
    pub tokens_processed: u64,
    /// Token losses (each starts a membership round).
    pub token_losses: u64,
    /// Regular configurations installed.
    pub membership_changes: u64,
    /// Datagrams dropped by the receive checks, malformed ones included.
    pub dropped: u64,
}

/// One daemon's ring protocol.
pub struct Ring {
    pub(crate) topo: Topology,
    pub(crate) params: Params,
    pub(crate) memb: Memb,
    pub tok: TokenState,
    pub(crate) timers: Timers,
    sends: VecDeque<Datagram>,
    ups: VecDeque<Up>,
    /// When set, a copy of every configuration change handed up (for
    /// simulators whose engine consumes `ups`).
    pub config_tap: Option<VecDeque<Up>>,
    pub(crate) stats: RingStats,
    /// The time of the latest event (what a submission is stamped with).
    pub(crate) now: Instant,
    /// A monotonic instant and the wall-clock seconds it corresponds to (ring
    /// ids carry wall-clock seconds).
    pub(crate) epoch: (Instant, i64),
    scratch: Vec<u8>,
    /// Datagram buffers handed back by the driver after sending
    /// ([`Ring::recycle`]), reused for the next datagrams: no allocation
    /// per packet once the pool is warm.
    spare: Vec<Vec<u8>>,
    /// Destinations of one broadcast (kept for its memory).
    dests: Vec<(SocketAddr, bool)>,
    /// The monitor's partition by proc index; empty: none ([`monitor`]).
    partition: Vec<i16>,
    /// The singleton step of a reload is under way ([`reload`]).
    reload_singleton: bool,
}

impl Ring {
    /// The ring of daemon `me` (proc index) of `cfg`.
    pub fn new(cfg: &Config, me: usize) -> Ring {
        Ring::with_parts(Topology::from_config(cfg, me), Params::from_config(cfg))
    }

    pub fn with_parts(topo: Topology, params: Params) -> Ring {
        let me = topo.me;
        let vid = topo.my_vid() as i32;
        let now = Instant::now();
        let wall =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Ring {
            tok: TokenState::new(topo.procs.len()),
            memb: Memb::new(me, vid),
            topo,
            params,
            timers: Timers::default(),
            sends: VecDeque::new(),
            ups: VecDeque::new(),
            config_tap: None,
            stats: RingStats::default(),
            now,
            epoch: (now, wall),
            scratch: Vec::new(),
            spare: Vec::new(),
            dests: Vec::new(),
            partition: Vec::new(),
            reload_singleton: false,
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topo
    }
    /// Turn our merge probe off (`None`: merge as the original does, at the
    /// next lookup) or set its interval ([`Params::merge_probe`]).
    pub fn set_merge_probe(&mut self, probe: Option<Duration>) {
        self.params.merge_probe = probe;
        if probe.is_none() {
            self.timers.cancel(Timer::MergeProbe);
        }
    }

    /// Turn our early form off (`None`: gather for `Gather_timeout` as the
    /// original) or set its quiet time ([`Params::early_form`]).
    pub fn set_early_form(&mut self, quiet: Option<Duration>) {
        self.params.early_form = quiet;
    }

    pub fn params(&self) -> &Params {
        &self.params
    }
    pub fn stats(&self) -> RingStats {
        self.stats
    }
    pub fn state(&self) -> State {
        self.memb.state
    }
    /// Messages waiting in the (NORMAL, GROUPS) down queues, and whether
    /// the GROUPS queue is the one served.
    pub fn down_queues(&self) -> (usize, usize, bool) {
        let (n, g) = if self.tok.groups_queue {
            (self.tok.other.len(), self.tok.down.len())
        } else {
            (self.tok.down.len(), self.tok.other.len())
        };
        (n, g, self.tok.groups_queue)
    }
    pub fn members(&self) -> &Members {
        &self.memb.members
    }
    pub fn ring_id(&self) -> MembershipId {
        self.memb.id
    }
    pub fn my_vid(&self) -> u32 {
        self.topo.my_vid()
    }

    /// Install a regular configuration directly, as the end of a membership
    /// round does (§5.6, §5.7): sequence state starts from 0, the token is
    /// alive, and the last member (conf order) sends the first regular token
    /// (twice). `members` are proc indexes.
    pub fn install(&mut self, now: Instant, members: &[usize], id: MembershipId) {
        self.now = now;
        self.memb.members = Members::new(members.to_vec());
        self.memb.reg_members = self.memb.members.clone();
        self.memb.net_members = self.memb.members.clone();
        self.memb.future = self.memb.members.clone();
        self.memb.future_id = id;
        self.memb.id = id;
        self.memb.state = State::Op;
        self.memb.token_alive = true;
        self.memb.just_installed = true;
        self.tok.reset_for_install();
        self.timers.cancel(Timer::Hurry);
        self.timers.arm(Timer::TokenLoss, now + self.params.token_timeout);
        let last = self.memb.members.as_slice().last().copied();
        if last == Some(self.topo.me) {
            let h = TokenHeader {
                type_: 0,
                proc_id: self.my_vid() as i32,
                memb_id: id,
                seq: 0,
                aru: 0x7FFF_FFFF,
                aru_last_id: -1,
                ..TokenHeader::default()
            };
            self.send_token_header(&h, &[]);
            self.send_token_header(&h, &[]);
            self.tok.token_rounds = 1;
        } else {
            self.tok.token_rounds = 0;
        }
    }

    /// A message to send: `frame` is message header, group names and data in
    /// one byte order (§3.7); `service` its packet service bit. `now` is the
    /// time of the event that produced it.
    pub fn submit_at(&mut self, now: Instant, service: u32, frame: Bytes) {
        self.now = now;
        self.queue_message(service, frame);
    }

    /// [`Ring::submit_at`] at the time of the latest event.
    pub fn submit(&mut self, service: u32, frame: Bytes) {
        self.queue_message(service, frame);
    }

    /// A datagram arrived from `src` on `port`.
    pub fn on_datagram(&mut self, now: Instant, port: Port, src: SocketAddr, b: &[u8]) {
        self.now = now;
        match port {
            Port::Data => self.recv_data_port(now, src, b),
            Port::Token => self.recv_token_port(now, src, b),
        }
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Run every timer due at `now`.
    pub fn on_timer(&mut self, now: Instant) {
        self.now = now;
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                Timer::Hurry => self.token_hurry(now),
                Timer::DeliverReliable | Timer::DeliverAgreed => self.delivery_timer(t),
                _ => self.memb_timer(now, t),
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_send(&mut self) -> Option<Datagram> {
        self.sends.pop_front()
    }

    /// The next delivered item.
    pub fn poll_up(&mut self) -> Option<Up> {
        self.ups.pop_front()
    }

    /// Messages waiting to be sent (the down queue).
    pub fn down_queue_len(&self) -> usize {
        self.tok.down.len()
    }

    /// Set the wall-clock time that corresponds to `at` (ring ids carry
    /// wall-clock seconds; the simulator sets its own).
    pub fn set_wall_clock(&mut self, at: Instant, unix_secs: i64) {
        self.epoch = (at, unix_secs);
    }

    /// Lower or raise the delivery threshold (the groups layer: AGREED during
    /// a state exchange, UNRELIABLE when it is over).
    pub fn set_delivery_threshold(&mut self, service: u32) {
        self.set_threshold(service);
    }

    /// Highest sequence number known.
    pub fn highest_seq(&self) -> i32 {
        self.tok.highest_seq
    }
    /// All seqs up to this one are present here.
    pub fn my_aru(&self) -> i32 {
        self.tok.my_aru
    }
    /// All seqs up to this one are present at every member.
    pub fn aru(&self) -> i32 {
        self.tok.aru
    }

    /// True while the token socket should be served before the data sockets
    /// (accelerated ring scheduling, §4.9).
    pub fn token_has_priority(&self) -> bool {
        self.tok.token_priority
    }

    pub(crate) fn push_up(&mut self, u: Up) {
        self.ups.push_back(u);
    }

    pub(crate) fn push_datagram(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.sends.push_back(Datagram { to, bytes });
    }

    // ---- sending ----------------------------------------------------------

    /// Encode `h` + `body` as a data-port datagram from me (transmitter,
    /// hash, my byte order) and send one copy to each destination;
    /// `routed` copies carry ROUTED.
    pub(crate) fn send_packet(&mut self, h: &PacketHeader, body: &[u8], dests: &[(SocketAddr, bool)]) {
        if dests.is_empty() {
            return;
        }
        let mut h = *h;
        h.transmiter_id = self.my_vid() as i32;
        h.conf_hash = self.params.hash;
        h.data_len = body.len() as u16;
        let order = self.params.order;
        for &(to, routed) in dests {
            let mut hh = h;
            if routed {
                hh.type_ |= ROUTED_TYPE;
            } else {
                hh.type_ &= !ROUTED_TYPE;
            }
            let mut bytes = self.buffer(PACKET_HEADER_LEN + body.len());
            hh.encode(order, &mut bytes);
            bytes.extend_from_slice(body);
            self.sends.push_back(Datagram { to, bytes });
        }
    }

    /// `Net_bcast` of a packet.
    pub(crate) fn bcast_packet(&mut self, h: &PacketHeader, body: &[u8]) {
        let mut d = std::mem::take(&mut self.dests);
        d.clear();
        self.topo.bcast(&self.memb.net_members, |a, r| d.push((a, r)));
        self.send_packet(h, body, &d);
        self.dests = d;
    }

    /// `Net_scast(seg)` of a packet.
    pub(crate) fn scast_packet(&mut self, seg: usize, h: &PacketHeader, body: &[u8]) {
        let mut d = std::mem::take(&mut self.dests);
        d.clear();
        self.topo.scast(&self.memb.net_members, seg, |a, r| d.push((a, r)));
        self.send_packet(h, body, &d);
        self.dests = d;
    }

    /// `Net_ucast(vid)` of a packet.
    pub(crate) fn ucast_packet(&mut self, vid: u32, h: &PacketHeader, body: &[u8]) {
        if let Some(p) = self.topo.index_of(vid) {
            let to = self.topo.data_addr(p);
            self.send_packet(h, body, &[(to, false)]);
        }
    }

    /// `Net_send_token`: the token to my successor in the active
    /// configuration, port `P+1`, with my transmitter id and hash.
    pub(crate) fn send_token_header(&mut self, h: &TokenHeader, body: &[u8]) {
        let succ = self.topo.successor(&self.memb.net_members, self.topo.me);
        let to = self.topo.token_addr(succ);
        let mut h = *h;
        h.transmiter_id = self.my_vid() as i32;
        h.conf_hash = self.params.hash;
        h.rtr_len = body.len() as u16;
        let mut bytes = self.buffer(TOKEN_HEADER_LEN + body.len());
        h.encode(self.params.order, &mut bytes);
        bytes.extend_from_slice(body);
        self.sends.push_back(Datagram { to, bytes });
    }

    // ---- receiving (§3.4, §3.8) -------------------------------------------

    /// Checks common to both ports: hash, transmitter configured, source IP
    /// is the transmitter's address. Returns the transmitter's proc index.
    fn check_sender(&self, hash: u32, transmitter: i32, src: SocketAddr) -> Option<usize> {
        if hash != self.params.hash {
            return None;
        }
        let p = self.topo.index_of(transmitter as u32)?;
        (self.topo.procs[p].addr.ip() == src.ip()).then_some(p)
    }

    fn recv_data_port(&mut self, now: Instant, src: SocketAddr, b: &[u8]) {
        if b.len() < PACKET_HEADER_LEN {
            self.stats.dropped += 1;
            return;
        }
        let Ok(order) = order_of(b) else {
            self.stats.dropped += 1;
            return;
        };
        let Ok(h) = PacketHeader::decode_in(order, b) else {
            self.stats.dropped += 1;
            return;
        };
        if b.len() != PACKET_HEADER_LEN + h.data_len as usize {
            self.stats.dropped += 1;
            return;
        }
        let Some(from) = self.check_sender(h.conf_hash, h.transmiter_id, src) else {
            self.stats.dropped += 1;
            return;
        };
        if h.type_ & CONTROL_TYPE != 0 {
            // Monitor packets (§8) are the engine's (engine::monitor); the
            // driver hands them there, not here.
            return;
        }
        if h.transmiter_id as u32 == self.my_vid() {
            return;
        }
        if !self.in_my_component(from) {
            return;
        }
        if h.type_ & ROUTED_TYPE != 0 && self.topo.seg_is_shared(self.topo.my_seg()) {
            self.rebroadcast_routed(order, b);
        }
        let mut h = h;
        h.type_ &= !ROUTED_TYPE;
        let body = &b[PACKET_HEADER_LEN..];
        if h.type_ & MEMBERSHIP_TYPE != 0 {
            if h.type_ & ALIVE_TYPE != 0 {
                if AlivePacket::decode_body(order, h, body).is_ok() {
                    self.handle_alive(now, h.proc_id);
                }
            } else if h.type_ & JOIN_TYPE != 0 {
                match JoinPacket::decode_body(order, h, body) {
                    Ok(j) => self.handle_join(now, h.proc_id, &j.reps.reps),
                    Err(_) => self.stats.dropped += 1,
                }
            } else {
                self.handle_refer(h.memb_id.proc_id, h.memb_id.time);
            }
            return;
        }
        if h.type_ & HURRY_TYPE != 0 {
            self.handle_hurry(now, h.proc_id);
            return;
        }
        if h.type_ & REGULAR_TYPE == 0 {
            self.stats.dropped += 1;
            return;
        }
        if h.memb_id != self.memb.id {
            self.note_ring_id(h.memb_id);
            self.handle_foreign(now, &h, body);
            return;
        }
        self.handle_data(now, order, h, body);
    }

    /// Step 10 of §3.4: an exact copy, ROUTED cleared and my transmitter id,
    /// in the original sender's byte order, to my segment's addresses.
    fn rebroadcast_routed(&mut self, order: Order, b: &[u8]) {
        let t = order.read_u32(&b[0..4]) & !ROUTED_TYPE;
        let me = self.my_vid();
        let seg = self.topo.my_seg();
        for i in 0..self.topo.segs[seg].addrs.len() {
            let to = self.topo.segs[seg].addrs[i];
            let mut copy = self.buffer(b.len());
            copy.extend_from_slice(b);
            order.write_u32(&mut copy[0..4], t);
            order.write_u32(&mut copy[4..8], me);
            self.sends.push_back(Datagram { to, bytes: copy });
        }
    }

    fn recv_token_port(&mut self, now: Instant, src: SocketAddr, b: &[u8]) {
        let Ok((order, h)) = TokenHeader::decode(b) else {
            self.stats.dropped += 1;
            return;
        };
        let Some(from) = self.check_sender(h.conf_hash, h.transmiter_id, src) else {
            self.stats.dropped += 1;
            return;
        };
        if !self.in_my_component(from) {
            return;
        }
        if h.type_ & FORM_TYPE != 0 {
            let body = &b[TOKEN_HEADER_LEN..];
            if body.len() != h.rtr_len as usize {
                self.stats.dropped += 1;
                return;
            }
            if h.type_ & FORM1_TYPE != 0 {
                match Form1Token::decode_body(order, h, body) {
                    Ok(t) => self.handle_form1(now, t),
                    Err(_) => self.stats.dropped += 1,
                }
            } else {
                match Form2Token::decode_body(order, h, body) {
                    Ok(t) => self.handle_form2(now, t),
                    Err(_) => self.stats.dropped += 1,
                }
            }
            return;
        }
        if h.memb_id != self.memb.id {
            self.note_ring_id(h.memb_id);
        }
        self.handle_token(now, order, h, b);
    }

    /// An empty datagram buffer with room for `cap` bytes, from the pool
    /// when it has one.
    pub(crate) fn buffer(&mut self, cap: usize) -> Vec<u8> {
        match self.spare.pop() {
            Some(mut v) => {
                v.clear();
                v.reserve(cap);
                v
            }
            None => Vec::with_capacity(cap.max(MAX_PACKET_SIZE)),
        }
    }

    /// Hand a sent datagram's buffer back for reuse (the pool is bounded;
    /// buffers beyond it, or grown past a packet, are freed).
    pub fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && bytes.capacity() <= 2 * MAX_PACKET_SIZE {
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    /// Encode into the reusable scratch buffer.
    pub(crate) fn take_scratch(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.scratch);
        v.clear();
        v
    }
    pub(crate) fn put_scratch(&mut self, v: Vec<u8>) {
        self.scratch = v;
    }
}

/// The packet service bit a message of client type `t` travels with.
pub fn service_of(class: ServiceClass) -> u32 {
    use spread_wire::daemon::{AGREED_TYPE, FIFO_TYPE, RELIABLE_TYPE, SAFE_TYPE};
    match class {
        ServiceClass::Reliable => RELIABLE_TYPE,
        ServiceClass::Fifo => FIFO_TYPE,
        ServiceClass::Agreed => AGREED_TYPE,
        ServiceClass::Safe => SAFE_TYPE,
    }
}

/// The engine's view: messages go down with their class, come back up in
/// the ring's order with their header in this daemon's byte order (GROUPS
/// messages stay as their sender wrote them: the groups layer reads their
/// body in the sender's order).
impl Ordering for Ring {
    fn submit(&mut self, msg: OrderedMessage) {
        let s = service_of(msg.class);
        self.queue_message(s, msg.frame);
    }

    fn poll_deliver(&mut self) -> Option<OrderedMessage> {
        loop {
            match self.poll_event()? {
                OrderEvent::Message(m) => return Some(m),
                _ => continue,
            }
        }
    }

    fn poll_event(&mut self) -> Option<OrderEvent> {
        loop {
            let d = match self.ups.pop_front()? {
                Up::Message(d) => d,
                Up::Transitional { members, id } => {
                    return Some(OrderEvent::Transitional { members, id: (id.proc_id, id.time) })
                }
                Up::Regular { members, id } => return Some(OrderEvent::Regular { members, id: (id.proc_id, id.time) }),
            };
            let Some(mut h) = Header::decode_slice(&d.frame) else { continue };
            let foreign = h.is_foreign();
            h.type_ = spread_wire::endian::set_endian(h.type_);
            let frame = if foreign && h.type_ & GROUPS_MESS == 0 {
                let mut f = BytesMut::from(&d.frame[..]);
                let o = Order::NATIVE;
                o.write_u32(&mut f[0..4], h.type_);
                o.write_i32(&mut f[36..40], h.num_groups);
                o.write_i32(&mut f[44..48], h.data_len);
                f.freeze()
            } else {
                d.frame
            };
            let mut m = OrderedMessage::new(h, frame);
            m.seq = d.seq.max(0) as u64;
            return Some(OrderEvent::Message(m));
        }
    }

    fn state_exchange(&mut self, active: bool) {
        self.tok.set_groups_queue(active);
        use spread_wire::daemon::{AGREED_TYPE, UNRELIABLE_TYPE};
        self.set_threshold(if active { AGREED_TYPE } else { UNRELIABLE_TYPE });
    }

    fn pending(&self) -> usize {
        self.tok.down.len()
    }

    fn highest_delivered_seq(&self) -> u64 {
        self.tok.highest_seq.max(0) as u64
    }

    fn fill_status(&self, s: &mut spread_wire::daemon::Status) {
        Ring::fill_status(self, s)
    }

    fn ring_figures(&self) -> crate::engine::ordering::RingFigures {
        let st = &self.stats;
        let states = crate::engine::ordering::RingFigures::STATES;
        crate::engine::ordering::RingFigures {
            state: states.get((self.memb.state as usize).wrapping_sub(1)).copied().unwrap_or("OP"),
            members: self.memb.reg_members.as_slice().len(),
            membership_changes: st.membership_changes,
            token_rotations: st.tokens_processed,
            token_losses: st.token_losses,
            retransmissions: st.retrans,
            packets_sent: st.packets_sent,
            packets_received: st.packets_recv,
            dropped: st.dropped,
        }
    }

    fn set_partition(&mut self, p: &[i16]) {
        Ring::set_partition(self, p)
    }

    fn set_flow_control(&mut self, window: Option<i16>, personal: Option<i16>, accelerated: Option<i16>) {
        Ring::set_flow_control(self, window, personal, accelerated)
    }

    fn reload_ready(&self) -> bool {
        Ring::reload_ready(self)
    }

    fn reload(&mut self, now: Instant, cfg: &Config, me: usize, singleton: bool) {
        Ring::reload(self, now, cfg, me, singleton)
    }
}
