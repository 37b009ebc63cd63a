//! The sans-I/O daemon engine: sessions → ordering → groups → delivery.
//!
//! The engine never touches a socket or a clock. The driver (or a test) tells
//! it what happened — a connection was accepted, bytes arrived, a connection
//! closed, time passed — and then drains [`Action`]s and the per-connection
//! output queues:
//!
//! * [`Engine::accept_mailbox`] (or [`Engine::accept`]) → a [`ConnId`] (or
//!   the quota reject byte);
//! * [`Engine::recv_buf`] + [`Engine::on_received`] (zero-copy: the driver
//!   reads straight into the session's buffer) or [`Engine::on_data`];
//! * [`Engine::on_closed`] for EOF / socket errors;
//! * [`Engine::on_timeout`] when [`Engine::next_timeout`] has passed;
//! * [`Engine::poll_action`]: `Flush(id)` = that connection has queued frames
//!   (write them with [`Engine::out_slices`] / [`Engine::on_written`]);
//!   `Close` = close it (after a best-effort write of `linger`).
//!
//! A delivered message is one [`bytes::Bytes`] frame shared by all its
//! recipients: the client's own frame (header re-stamped in place). Frames
//! over 4 KiB are cut out of the read buffer without a copy; smaller ones are
//! copied into the sending session's small-frame arena (blocks of
//! [`ARENA_BLOCK`] bytes shared by consecutive frames: no allocation per
//! frame, and a queued small frame pins at most one such block, never a read
//! buffer). The last recipient of a message gets the frame itself, the
//! others a reference-counted clone.
//!
//! Layers, as in the original: the session layer ([`session`], handshake,
//! [`auth`]) hands client messages to an [`Ordering`] protocol (here a
//! [`RingOfOne`]); what it delivers goes to the groups layer ([`groups`]:
//! JOIN/LEAVE/KILL, membership notifications, GROUPS state exchange) or is
//! routed to local sessions. A multi-daemon protocol plugs in with
//! [`Engine::with_ordering`] and reports configuration changes through
//! [`Engine::on_transitional_configuration`] /
//! [`Engine::on_regular_configuration`].
//!
//! Whoever wants to know when sessions come and go (the `-l y` session log)
//! installs a [`SessionObserver`] with [`Engine::set_session_observer`]; it
//! is called synchronously with a [`SessionNote`] when a session completes
//! its handshake and when such a session goes away. Without an observer the
//! engine does nothing extra.

pub mod admission;
pub mod auth;
mod fxhash;
pub mod groups;
pub mod monitor;
pub mod ordering;
pub mod pacing;
pub mod queues;
pub mod reload;
pub mod ring;
pub mod session;
pub mod sim;

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use spread_wire::consts::*;
use spread_wire::endian::{set_endian, Order, ARCH_ENDIAN};
use spread_wire::handshake::{self, ConnectParse, ConnectRequest, AUTH_CHOICE_LEN};
use spread_wire::names::{name32, private_group, Name32};
use spread_wire::Header;

pub use auth::{AuthConfig, AuthMethod, IpRule};
use fxhash::FxBuild;
pub use groups::{Groups, GroupsConfig, LocalMember};
pub use ordering::{OrderEvent, OrderedMessage, Ordering, RingFigures, RingOfOne, ServiceClass};
pub use session::{ConnId, ConnKind, Phase, Session};

/// Messages waiting in the ordering layer at which client reading pauses
/// (`WATER_MARK`, `session.c:Sess_block_users_level`).
pub const WATER_MARK: usize = 500;

/// How much the driver should be able to read in one call.
pub const READ_CHUNK: usize = 128 * 1024;

/// Everything the engine needs to know about its daemon.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// This daemon's name (≤ 19 characters).
    pub daemon_name: Vec<u8>,
    /// This daemon's VID (`memb_id.proc_id` of group ids on a ring of one).
    pub vid: u32,
    /// Ring formation time in seconds (`memb_id.time`).
    pub memb_time: i32,
    /// All daemon names of the configuration, in order (this one included).
    pub daemons: Vec<Vec<u8>>,
    /// Their VIDs, in the same order.
    pub daemon_vids: Vec<u32>,
    /// MaxSessionMessages: a blocked session with this many queued messages
    /// is killed when one more is to be written.
    pub max_session_messages: usize,
    /// MaxSessionBytes: the same bound in bytes ([`queues`]).
    pub max_session_bytes: usize,
    /// MaxQueuedBytes: bytes queued for all sessions together ([`queues`]).
    pub max_queued_bytes: usize,
    /// Session slots: connections past their connect request beyond this
    /// get REJECT_QUOTA ([`admission`]).
    pub max_sessions: usize,
    /// Connections that have not yet sent a connect request, at most; one
    /// more evicts the oldest ([`admission`]).
    pub connect_budget: usize,
    /// Time allowed from accept to the connect request.
    pub connect_timeout: Duration,
    pub auth: AuthConfig,
    /// Time allowed from accept to the end of the handshake.
    pub handshake_timeout: Duration,
    /// Seed of the random private names (`r<n>-<mailbox>`).
    pub rng_seed: u64,
}

impl EngineConfig {
    /// Daemon `index` of the configuration `conf` (names, VIDs and
    /// MaxSessionMessages from the file; defaults everywhere else).
    pub fn from_config(conf: &crate::config::Config, index: usize, memb_time: i32) -> EngineConfig {
        let me = &conf.daemons[index];
        let mut c = EngineConfig::single(&me.name_bytes, me.vid, memb_time);
        c.daemons = conf.daemons.iter().map(|d| d.name_bytes.clone()).collect();
        c.daemon_vids = conf.daemons.iter().map(|d| d.vid).collect();
        c.max_session_messages = conf.max_session_messages.max(1) as usize;
        c.max_session_bytes = conf.max_session_bytes.max(1) as usize;
        c.max_queued_bytes = conf.max_queued_bytes.max(1) as usize;
        c
    }

    /// A single daemon `name` with defaults everywhere else.
    pub fn single(name: &[u8], vid: u32, memb_time: i32) -> EngineConfig {
        EngineConfig {
            daemon_name: name.to_vec(),
            vid,
            memb_time,
            daemons: vec![name.to_vec()],
            daemon_vids: vec![vid],
            max_session_messages: DEFAULT_MAX_SESSION_MESSAGES,
            max_session_bytes: queues::DEFAULT_MAX_SESSION_BYTES,
            max_queued_bytes: queues::DEFAULT_MAX_QUEUED_BYTES,
            max_sessions: MAX_SESSIONS,
            connect_budget: admission::CONNECT_BUDGET,
            connect_timeout: Duration::from_secs(2),
            auth: AuthConfig::default(),
            handshake_timeout: Duration::from_secs(10),
            rng_seed: 0x2545_f491_4f6c_dd1d,
        }
    }
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The connection has frames queued: write them (`out_slices`).
    Flush(ConnId),
    /// Close the connection; first try (non-blocking, once) to write `linger`.
    Close { id: ConnId, linger: Vec<Bytes> },
}

/// An event for [`Engine::handle_event`] (the same as calling the matching
/// method directly).
#[derive(Debug)]
pub enum Event<'a> {
    /// A connection was accepted.
    Accepted { kind: ConnKind, peer: Option<SocketAddr> },
    /// Bytes arrived for a connection.
    Data { id: ConnId, bytes: &'a [u8] },
    /// Bytes were read into [`Engine::recv_buf`].
    Received { id: ConnId },
    /// EOF or a socket error.
    Closed { id: ConnId },
    /// The socket can take more: ask for a flush if anything is queued.
    Writable { id: ConnId },
    /// [`Engine::next_timeout`] passed.
    Timer,
}

/// What a [`SessionObserver`] is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionNote<'a> {
    /// A session completed its handshake and was accepted.
    Connected {
        /// The driver's mailbox of the connection (its socket descriptor).
        mailbox: i32,
        /// The peer address (`None` for a Unix-socket session).
        peer: Option<SocketAddr>,
        /// The session's private name (without the `#`s and the daemon).
        name: &'a [u8],
        /// [`Ordering::highest_delivered_seq`] at that moment.
        highest_seq: u64,
    },
    /// An accepted session went away: the daemon killed it (slow reader,
    /// invalid message, EOF or socket error) or its client sent a KILL
    /// (`SP_disconnect`). Reported once, when the engine stops serving it.
    Gone {
        mailbox: i32,
        peer: Option<SocketAddr>,
        name: &'a [u8],
        /// Messages that were queued for the session and are dropped.
        queued: usize,
        highest_seq: u64,
    },
}

/// Callback for session connects and disconnects (see [`SessionNote`]).
pub type SessionObserver = Box<dyn FnMut(SessionNote<'_>) + Send>;

/// Result of [`Engine::accept`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    Conn(ConnId),
    /// Too many sessions: write these bytes (REJECT_QUOTA) and close.
    Rejected(Bytes),
}

struct Slot {
    gen: u32,
    sess: Option<Session>,
}

/// Counters for tests, the status reply and the metrics endpoint. Plain
/// integer increments on the message path; read only when asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages_delivered: u64,
    pub sessions_killed: u64,
    /// Data messages local clients sent, per service type
    /// ([`SERVICE_NAMES`], index [`service_index`]), and their bytes (whole
    /// frames: header, group names, body).
    pub received: [u64; 6],
    pub received_bytes: [u64; 6],
    /// Data messages written to local clients (once per recipient), per
    /// service type, and their bytes (whole frames).
    pub delivered: [u64; 6],
    pub delivered_bytes: [u64; 6],
}

/// The service types of data messages, in the order of their bits
/// (`UNRELIABLE_MESS` = bit 0 … `SAFE_MESS` = bit 5).
pub const SERVICE_NAMES: [&str; 6] = ["UNRELIABLE", "RELIABLE", "FIFO", "CAUSAL", "AGREED", "SAFE"];

/// The index in [`SERVICE_NAMES`] of a data message type: its lowest
/// service bit (a valid client message has exactly one).
#[inline]
pub fn service_index(t: u32) -> usize {
    ((t & REGULAR_MESS).trailing_zeros() as usize).min(5)
}

/// What is queued for the local sessions ([`Engine::client_queues`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientQueues {
    /// Messages and bytes queued for all sessions.
    pub messages: usize,
    pub bytes: usize,
    /// The most any one session has queued.
    pub max_messages: usize,
    pub max_bytes: usize,
}

/// The engine, generic over its ordering protocol (a [`RingOfOne`] until the
/// token ring provides another [`Ordering`]).
pub struct Engine<O: Ordering = RingOfOne> {
    cfg: EngineConfig,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    by_name: HashMap<Name32, u32, FxBuild>,
    groups: Groups,
    ordering: O,
    actions: VecDeque<Action>,
    deadlines: VecDeque<(Instant, ConnId)>,
    rng: u64,
    notif: groups::Out,
    targets: Vec<u32>,
    stats: Stats,
    observer: Option<SessionObserver>,
    /// The latest time an event brought (the engine reads no clock).
    now: Option<Instant>,
    /// Sessions at or over the pacing high-water mark ([`pacing`]).
    congested: Vec<ConnId>,
    /// When the congested sessions are next checked.
    pace_check: Option<Instant>,
    /// Paced senders released since the driver last asked.
    resumed: Vec<ConnId>,
    /// Connections that have not sent their connect request ([`admission`]).
    connecting: usize,
    /// Their connect deadlines, in accept order.
    connect_queue: VecDeque<(Instant, ConnId)>,
    /// Bytes queued for all sessions ([`queues`]).
    queued_total: usize,
    /// Bytes freed since the driver last returned memory ([`queues`]).
    released: usize,
    /// Monitor packets ([`monitor`]); `None`: not answered.
    monitor: Option<monitor::Monitor>,
    /// A configuration reload was asked for ([`reload`]).
    reload_requested: bool,
}

impl Engine<RingOfOne> {
    /// A single daemon that is its own ring.
    pub fn new(cfg: EngineConfig) -> Engine<RingOfOne> {
        Engine::with_ordering(cfg, RingOfOne::new())
    }
}

impl<O: Ordering> Engine<O> {
    /// An engine on top of any ordering protocol.
    pub fn with_ordering(cfg: EngineConfig, ordering: O) -> Engine<O> {
        let mut daemons = cfg.daemons.clone();
        let mut vids = cfg.daemon_vids.clone();
        if !daemons.contains(&cfg.daemon_name) {
            daemons.push(cfg.daemon_name.clone());
        }
        vids.resize(daemons.len(), 0);
        let my_idx = daemons.iter().position(|d| *d == cfg.daemon_name).unwrap_or(0);
        vids[my_idx] = cfg.vid;
        let groups = Groups::new(GroupsConfig { daemons, vids, my_idx, memb_id: (cfg.vid as i32, cfg.memb_time) });
        let rng = cfg.rng_seed | 1;
        Engine {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            by_name: HashMap::default(),
            groups,
            ordering,
            actions: VecDeque::new(),
            deadlines: VecDeque::new(),
            rng,
            notif: Vec::new(),
            targets: Vec::new(),
            stats: Stats::default(),
            observer: None,
            now: None,
            congested: Vec::new(),
            pace_check: None,
            resumed: Vec::new(),
            connecting: 0,
            connect_queue: VecDeque::new(),
            queued_total: 0,
            released: 0,
            monitor: None,
            reload_requested: false,
        }
    }

    /// Install (or with `None` remove) the session observer.
    pub fn set_session_observer(&mut self, observer: Option<SessionObserver>) {
        self.observer = observer;
    }

    /// Tell the observer, if any, that the session in `idx` went away with
    /// `queued` messages still queued for it.
    fn note_gone(&mut self, idx: u32, queued: usize) {
        let Some(obs) = self.observer.as_mut() else { return };
        let Some(s) = self.slots.get(idx as usize).and_then(|x| x.sess.as_ref()) else { return };
        let highest_seq = self.ordering.highest_delivered_seq();
        obs(SessionNote::Gone { mailbox: s.mailbox, peer: s.peer, name: &s.name, queued, highest_seq });
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// The groups layer, for configuration changes and GROUPS messages
    /// delivered by a multi-daemon ordering protocol.
    pub fn groups_mut(&mut self) -> &mut Groups {
        &mut self.groups
    }

    /// The ordering protocol (the ring driver feeds it packets and timers).
    pub fn ordering(&mut self) -> &mut O {
        &mut self.ordering
    }

    /// The ordering protocol, read-only.
    pub fn ordering_ref(&self) -> &O {
        &self.ordering
    }

    /// Deliver whatever the ordering protocol has made deliverable (call after
    /// feeding it from the network).
    pub fn deliver_ready(&mut self) {
        self.run_ordering();
    }

    /// Live connections (handshaking, operational or dying).
    pub fn num_connections(&self) -> usize {
        self.live
    }

    /// Sessions that completed the handshake and are not dead.
    pub fn num_sessions(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s.sess.as_ref().map(|x| &x.phase), Some(Phase::Op))).count()
    }

    /// What is queued for the operational sessions, in total and at most
    /// per session (walks the sessions: for the metrics endpoint, not the
    /// message path).
    pub fn client_queues(&self) -> ClientQueues {
        let mut q = ClientQueues::default();
        for s in self.slots.iter().filter_map(|s| s.sess.as_ref()).filter(|s| s.phase == Phase::Op) {
            q.messages += s.out.len();
            q.bytes += s.queued_bytes;
            q.max_messages = q.max_messages.max(s.out.len());
            q.max_bytes = q.max_bytes.max(s.queued_bytes);
        }
        q
    }

    /// The session behind a connection id, if it is still alive.
    pub fn session(&self, id: ConnId) -> Option<&Session> {
        let s = self.slots.get(id.idx as usize)?;
        if s.gen != id.gen {
            return None;
        }
        s.sess.as_ref()
    }

    fn sess_mut(&mut self, id: ConnId) -> Option<&mut Session> {
        let s = self.slots.get_mut(id.idx as usize)?;
        if s.gen != id.gen {
            return None;
        }
        s.sess.as_mut()
    }

    #[inline]
    fn slot_mut(&mut self, idx: u32) -> Option<&mut Session> {
        self.slots.get_mut(idx as usize).and_then(|s| s.sess.as_mut())
    }

    /// While true the driver should not read client sockets (the ordering
    /// layer holds `WATER_MARK` or more messages); it resumes when false.
    pub fn reading_paused(&self) -> bool {
        self.ordering.pending() >= WATER_MARK
            || matches!(self.groups.state(), groups::GState::Gather | groups::GState::GatherTrans)
    }

    /// The ordering protocol delivered a transitional configuration (VIDs of
    /// the daemons that move on together, and its id).
    pub fn on_transitional_configuration(&mut self, members: &[u32], id: groups::MembId) {
        self.transitional_configuration(members, id);
        self.run_ordering();
    }

    fn transitional_configuration(&mut self, members: &[u32], id: groups::MembId) {
        let mut out = std::mem::take(&mut self.notif);
        self.groups.handle_trans_memb(members, id, &mut out);
        for (slot, f) in out.drain(..) {
            self.enqueue(slot, f);
        }
        self.notif = out;
    }

    /// The ordering protocol delivered a regular configuration. If group
    /// state must be exchanged, the GROUPS messages are submitted to the
    /// ordering layer (a multi-daemon protocol must send them ahead of client
    /// messages) and client reading pauses until the exchange completes.
    pub fn on_regular_configuration(&mut self, members: &[u32], id: groups::MembId) -> groups::RegOutcome {
        let r = self.regular_configuration(members, id);
        self.run_ordering();
        r
    }

    fn regular_configuration(&mut self, members: &[u32], id: groups::MembId) -> groups::RegOutcome {
        let mut out = std::mem::take(&mut self.notif);
        let r = self.groups.handle_reg_memb(members, id, &mut out);
        for (slot, f) in out.drain(..) {
            self.enqueue(slot, f);
        }
        self.notif = out;
        self.ordering.state_exchange(r == groups::RegOutcome::NeedsStateExchange);
        for gm in self.groups.take_groups_messages() {
            if let Some(h) = Header::decode_slice(&gm.frame) {
                self.ordering.submit_groups(OrderedMessage::new(h, gm.frame));
            }
        }
        r
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ------------------------------------------------------------------ events

    /// Feed one event; returns the accept result for [`Event::Accepted`].
    pub fn handle_event(&mut self, now: Instant, ev: Event<'_>) -> Option<Accepted> {
        match ev {
            Event::Accepted { kind, peer } => return Some(self.accept(now, kind, peer)),
            Event::Data { id, bytes } => self.on_data(now, id, bytes),
            Event::Received { id } => self.on_received(now, id),
            Event::Closed { id } => self.on_closed(now, id),
            Event::Writable { id } => {
                if self.has_output(id) {
                    self.actions.push_back(Action::Flush(id));
                }
            }
            Event::Timer => self.on_timeout(now),
        }
        None
    }

    /// A connection was accepted; its mailbox is its slot index (sans-I/O
    /// users without descriptors). See [`Engine::accept_mailbox`].
    pub fn accept(&mut self, now: Instant, kind: ConnKind, peer: Option<SocketAddr>) -> Accepted {
        let mailbox = match self.free.last() {
            Some(&i) => i,
            None => self.slots.len() as u32,
        };
        self.accept_mailbox(now, kind, peer, mailbox as i32)
    }

    /// A connection was accepted; `mailbox` is the driver's number for it
    /// (the socket descriptor, as the original uses): it ends invented
    /// private names (`r<n>-<mailbox>`) and is reported to the observer.
    pub fn accept_mailbox(&mut self, now: Instant, kind: ConnKind, peer: Option<SocketAddr>, mailbox: i32) -> Accepted {
        self.now = Some(now);
        if self.slots_used() >= self.cfg.max_sessions {
            let peer = peer.map(|p| p.to_string()).unwrap_or_else(|| "local".into());
            tracing::info!(
                target: "spread::session",
                event = "session_rejected",
                peer = %peer,
                code = REJECT_QUOTA,
                reason = "REJECT_QUOTA",
                "Session from {peer} rejected: REJECT_QUOTA ({REJECT_QUOTA}), {} sessions in use",
                self.cfg.max_sessions
            );
            return Accepted::Rejected(Bytes::from_static(&[REJECT_QUOTA as i8 as u8]));
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { gen: 0, sess: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[idx as usize];
        let id = ConnId { idx, gen: slot.gen };
        let mut s = Session::new(id, kind, peer);
        s.mailbox = mailbox;
        s.connecting = true;
        let deadline = now + self.cfg.handshake_timeout;
        s.deadline = Some(deadline);
        slot.sess = Some(s);
        self.live += 1;
        self.deadlines.push_back((deadline, id));
        self.admit_connecting(now, id);
        Accepted::Conn(id)
    }

    /// The buffer the driver reads into for `id` (with at least `READ_CHUNK`
    /// bytes of spare capacity); `None` if the engine no longer reads it.
    pub fn recv_buf(&mut self, id: ConnId) -> Option<&mut BytesMut> {
        let s = self.sess_mut(id)?;
        if s.phase == Phase::Dead {
            return None;
        }
        if s.rbuf.capacity() - s.rbuf.len() < READ_CHUNK / 4 {
            s.rbuf.reserve(READ_CHUNK);
        }
        Some(&mut s.rbuf)
    }

    /// Bytes were appended to `recv_buf(id)`: parse and act on them.
    pub fn on_received(&mut self, now: Instant, id: ConnId) {
        if self.session(id).is_none() {
            return;
        }
        self.now = Some(now);
        self.process(now, id.idx);
        self.run_ordering();
    }

    /// Convenience for tests and simulators: feed `data` for `id`.
    pub fn on_data(&mut self, now: Instant, id: ConnId, data: &[u8]) {
        match self.sess_mut(id) {
            Some(s) if s.phase != Phase::Dead => s.rbuf.extend_from_slice(data),
            _ => return,
        }
        self.on_received(now, id);
    }

    /// The connection hit EOF or an error.
    pub fn on_closed(&mut self, now: Instant, id: ConnId) {
        self.now = Some(now);
        let Some(s) = self.sess_mut(id) else { return };
        if s.phase == Phase::Dead {
            return;
        }
        if s.phase == Phase::Op {
            self.kill(id.idx);
        } else {
            self.drop_conn(id.idx, false);
        }
        self.run_ordering();
    }

    /// When the engine next needs [`Engine::on_timeout`].
    pub fn next_timeout(&mut self) -> Option<Instant> {
        let early =
            [self.pace_deadline(), self.connect_deadline(), self.monitor_deadline()].into_iter().flatten().min();
        while let Some(&(t, id)) = self.deadlines.front() {
            let live = self.session(id).is_some_and(|s| s.phase.is_handshake());
            if live {
                return Some(early.map_or(t, |p| p.min(t)));
            }
            self.deadlines.pop_front();
        }
        early
    }

    /// Time passed: close handshakes that took too long, check congested
    /// readers ([`pacing`]).
    pub fn on_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        self.pace_on_timeout(now);
        self.connect_on_timeout(now);
        self.monitor_on_timeout(now);
        while let Some(&(t, id)) = self.deadlines.front() {
            if t > now {
                break;
            }
            self.deadlines.pop_front();
            if self.session(id).is_some_and(|s| s.phase.is_handshake()) {
                self.drop_conn(id.idx, false);
            }
        }
    }

    // ------------------------------------------------------------------ output

    /// Fill `out` with the queued frames of `id` (at most `max` slices);
    /// returns the number of bytes offered.
    pub fn out_slices<'a>(&'a self, id: ConnId, out: &mut Vec<IoSlice<'a>>, max: usize) -> usize {
        let Some(s) = self.session(id) else { return 0 };
        let mut n = 0;
        for (i, b) in s.out.iter().enumerate() {
            if out.len() >= max {
                break;
            }
            let sl = if i == 0 { &b[s.out_off..] } else { &b[..] };
            n += sl.len();
            out.push(IoSlice::new(sl));
        }
        n
    }

    /// `n` bytes of the offered slices were written.
    pub fn on_written(&mut self, id: ConnId, n: usize) {
        let Some(s) = self.sess_mut(id) else { return };
        let before = s.queued_bytes;
        s.consume_out(n);
        let done = before - s.queued_bytes;
        if s.out.is_empty() {
            s.blocked = false;
        }
        self.queued_total -= done;
        self.note_released(done);
        self.pace_after_written(id.idx, done);
    }

    /// The socket could not take everything (`true`) or the queue was drained.
    pub fn set_write_blocked(&mut self, id: ConnId, blocked: bool) {
        if let Some(s) = self.sess_mut(id) {
            s.blocked = blocked && !s.out.is_empty();
        }
    }

    /// Whether `id` has queued output.
    pub fn has_output(&self, id: ConnId) -> bool {
        self.session(id).is_some_and(|s| !s.out.is_empty())
    }

    /// Test helper: take everything queued for `id` as if it had been written.
    pub fn drain_output(&mut self, id: ConnId) -> Vec<u8> {
        let Some(s) = self.sess_mut(id) else { return Vec::new() };
        let (frames, n) = s.take_out();
        s.blocked = false;
        let v: Vec<u8> = frames.iter().flat_map(|b| b.iter().copied()).collect();
        self.queued_total -= n;
        self.note_released(n);
        self.pace_after_written(id.idx, v.len());
        v
    }

    // ------------------------------------------------------------- internals

    fn queue_out(&mut self, idx: u32, b: Bytes) {
        let Some(s) = self.slot_mut(idx) else { return };
        let was_empty = s.out.is_empty();
        let n = b.len();
        s.push_out(b);
        let id = s.id;
        self.queued_total += n;
        if was_empty {
            self.actions.push_back(Action::Flush(id));
        }
    }

    /// Forget a connection now (handshake failures, EOF before operational):
    /// tell the driver to close it after writing what is queued if `linger`.
    fn drop_conn(&mut self, idx: u32, linger: bool) {
        self.pace_release(idx);
        self.uncount_connecting(idx);
        let Some(slot) = self.slots.get_mut(idx as usize) else { return };
        let Some(mut s) = slot.sess.take() else { return };
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(idx);
        self.live -= 1;
        if s.named {
            self.by_name.remove(&s.pg);
        }
        let (frames, n) = s.take_out();
        self.queued_total -= n;
        self.note_released(n + s.rbuf.capacity());
        if !s.closed {
            let l = if linger { frames } else { Vec::new() };
            self.actions.push_back(Action::Close { id: s.id, linger: l });
        }
    }

    /// Free the slot of a dead session (its KILL was delivered).
    fn free_session(&mut self, idx: u32) {
        self.pace_release(idx);
        self.uncount_connecting(idx);
        let Some(slot) = self.slots.get_mut(idx as usize) else { return };
        let Some(mut s) = slot.sess.take() else { return };
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(idx);
        self.live -= 1;
        if s.named {
            self.by_name.remove(&s.pg);
        }
        let (_, n) = s.take_out();
        self.queued_total -= n;
        self.note_released(n + s.rbuf.capacity());
        if !s.closed {
            self.actions.push_back(Action::Close { id: s.id, linger: Vec::new() });
        }
    }

    /// Reject during the handshake: one byte, close.
    fn reject(&mut self, idx: u32, code: i32) {
        let peer = self.slot_mut(idx).and_then(|s| s.peer).map(|p| p.to_string()).unwrap_or_else(|| "local".into());
        tracing::info!(
            target: "spread::session",
            event = "session_rejected",
            connection = idx,
            peer = %peer,
            code,
            reason = reject_reason(code),
            "Session from {peer} rejected: {} ({code})",
            reject_reason(code)
        );
        self.queue_out_silent(idx, Bytes::from(vec![handshake::reject_byte(code)]));
        self.drop_conn(idx, true);
    }

    fn queue_out_silent(&mut self, idx: u32, b: Bytes) {
        if let Some(s) = self.slot_mut(idx) {
            let n = b.len();
            s.push_out(b);
            self.queued_total += n;
        }
    }

    /// Daemon-side kill (`Sess_kill`): stop reading and writing, close, and
    /// announce it with a SAFE KILL through the ordering layer.
    fn kill(&mut self, idx: u32) {
        let Some(s) = self.slot_mut(idx) else { return };
        match s.phase {
            Phase::Op => {}
            Phase::Dead => return,
            _ => {
                self.drop_conn(idx, false);
                return;
            }
        }
        s.phase = Phase::Dead;
        let queued = s.out.len();
        self.pace_release(idx);
        let Some(s) = self.slot_mut(idx) else { return };
        tracing::info!(
            target: "spread::session",
            "session {} on mailbox {} killed ({queued} messages queued)",
            String::from_utf8_lossy(&s.name),
            s.mailbox
        );
        self.note_gone(idx, queued);
        let Some(s) = self.slot_mut(idx) else { return };
        let (_, n) = s.take_out();
        let freed = n + s.rbuf.capacity();
        s.rbuf = BytesMut::new();
        s.arena = BytesMut::new();
        let pg = s.pg;
        let id = s.id;
        let closed = std::mem::replace(&mut s.closed, true);
        self.queued_total -= n;
        self.note_released(freed);
        if !closed {
            self.actions.push_back(Action::Close { id, linger: Vec::new() });
        }
        self.stats.sessions_killed += 1;
        self.submit_kill(pg, KILL_MESS | SAFE_MESS, ARCH_ENDIAN);
    }

    fn submit_kill(&mut self, pg: Name32, type_: u32, hint: u32) {
        let h = Header { type_: set_endian(type_), sender: pg, num_groups: 0, hint, data_len: 0 };
        let frame = Bytes::copy_from_slice(&h.encode());
        self.ordering.submit(OrderedMessage::new(h, frame));
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Parse what is buffered for session `idx`, phase by phase.
    fn process(&mut self, now: Instant, idx: u32) {
        // Bounded: every iteration either consumes input, changes phase to a
        // later one, or returns.
        for _ in 0..8 {
            let Some(s) = self.slot_mut(idx) else { return };
            match s.phase {
                Phase::Connect => match handshake::parse_connect_request(&s.rbuf) {
                    ConnectParse::Incomplete => return,
                    ConnectParse::Reject { code, .. } => {
                        self.reject(idx, code);
                        return;
                    }
                    ConnectParse::Done { req, consumed } => {
                        s.rbuf.advance(consumed);
                        self.connect_done(idx, req);
                    }
                },
                Phase::AuthChoice => {
                    if s.rbuf.len() < AUTH_CHOICE_LEN {
                        return;
                    }
                    let mut choice = [0u8; AUTH_CHOICE_LEN];
                    choice.copy_from_slice(&s.rbuf[..AUTH_CHOICE_LEN]);
                    s.rbuf.advance(AUTH_CHOICE_LEN);
                    let req = handshake::parse_auth_choice(&choice);
                    match self.cfg.auth.methods_for_choice(&req) {
                        None => {
                            self.deny(idx);
                            return;
                        }
                        Some(methods) => {
                            if let Some(s) = self.slot_mut(idx) {
                                s.phase = Phase::AuthRun { methods, next: 0, ok: true };
                            }
                        }
                    }
                }
                Phase::AuthRun { .. } => {
                    if !self.run_auth(idx) {
                        return;
                    }
                }
                Phase::Op => {
                    self.read_messages(now, idx);
                    return;
                }
                Phase::Dead => {
                    s.rbuf.clear();
                    return;
                }
            }
        }
    }

    /// The connect request is complete: name, uniqueness, then auth.
    fn connect_done(&mut self, idx: u32, req: ConnectRequest) {
        if self.slots_used() >= self.cfg.max_sessions {
            // The last slot was taken while this one was connecting.
            self.reject(idx, REJECT_QUOTA);
            return;
        }
        let daemon = self.cfg.daemon_name.clone();
        let name: Vec<u8> = if req.name.is_empty() {
            // r<0..9998>-<mailbox>, at most 9 characters, unique (the
            // mailbox printed unsigned, as the original's format does).
            let mailbox = self.slot_mut(idx).map_or(idx as i32, |s| s.mailbox) as u32;
            let mut found = None;
            for _ in 0..100_000 {
                let r = self.next_rand() % 9999;
                let mut n = format!("r{r}-{mailbox}").into_bytes();
                n.truncate(MAX_PRIVATE_NAME - 1);
                if !self.by_name.contains_key(&private_group(&n, &daemon)) {
                    found = Some(n);
                    break;
                }
            }
            match found {
                Some(n) => n,
                None => {
                    self.drop_conn(idx, false);
                    return;
                }
            }
        } else {
            req.name.clone()
        };
        let pg = private_group(&name, &daemon);
        if self.by_name.contains_key(&pg) {
            self.reject(idx, REJECT_NOT_UNIQUE);
            return;
        }
        self.by_name.insert(pg, idx);
        let legacy = !req.negotiates_auth();
        let Some(s) = self.slot_mut(idx) else { return };
        s.sender = session::SenderName::new(&name, &daemon);
        s.name = name;
        s.pg = pg;
        s.named = true;
        s.memb = req.wants_membership();
        s.req = Some(req);
        let peer = s.peer;
        if legacy {
            let auth = &self.cfg.auth;
            let ok =
                if auth.is_enabled(AuthMethod::Ip) { auth.ip_allows(peer) } else { auth.is_enabled(AuthMethod::Null) };
            if ok {
                self.authorized(idx);
            } else {
                self.deny(idx);
            }
            return;
        }
        let list = self.cfg.auth.allowed_list();
        let mut b = Vec::with_capacity(1 + list.len());
        b.push(list.len() as u8);
        b.extend_from_slice(&list);
        self.queue_out(idx, Bytes::from(b));
        if list.is_empty() {
            self.deny(idx);
            return;
        }
        if let Some(s) = self.slot_mut(idx) {
            s.phase = Phase::AuthChoice;
        }
    }

    /// Run auth methods until one needs more input (false) or all ran and a
    /// verdict was sent (true).
    fn run_auth(&mut self, idx: u32) -> bool {
        let auth = &self.cfg.auth;
        let Some(s) = self.slots.get_mut(idx as usize).and_then(|x| x.sess.as_mut()) else { return false };
        let Phase::AuthRun { methods, mut next, mut ok } = std::mem::replace(&mut s.phase, Phase::Connect) else {
            return false;
        };
        let mut reply: Option<u8> = None;
        while next < methods.len() {
            match methods[next] {
                AuthMethod::Null => {}
                AuthMethod::Ip => ok &= auth.ip_allows(s.peer),
                AuthMethod::Pword => {
                    if s.rbuf.len() < 40 {
                        s.phase = Phase::AuthRun { methods, next, ok };
                        return false;
                    }
                    let user = spread_wire::names::name_bytes(&s.rbuf[..32]).to_vec();
                    let pw = spread_wire::names::name_bytes(&s.rbuf[32..40]).to_vec();
                    s.rbuf.advance(40);
                    let good = auth.pword.as_ref().is_some_and(|f| f(&user, &pw));
                    ok &= good;
                    reply = Some(good as u8);
                }
            }
            next += 1;
            if reply.is_some() {
                break;
            }
        }
        if let Some(r) = reply {
            // PWORD answers at once; the remaining methods run on the next pass.
            s.phase = Phase::AuthRun { methods, next, ok };
            self.queue_out(idx, Bytes::from(vec![r]));
            return true;
        }
        // PERMIT: open_connection always allows.
        if ok {
            self.authorized(idx);
        } else {
            self.deny(idx);
        }
        true
    }

    fn deny(&mut self, idx: u32) {
        self.reject(idx, REJECT_AUTH);
    }

    fn authorized(&mut self, idx: u32) {
        if self.slots_used() >= self.cfg.max_sessions {
            self.reject(idx, REJECT_QUOTA);
            return;
        }
        self.uncount_connecting(idx);
        let Some(s) = self.slot_mut(idx) else { return };
        let Some(req) = s.req.as_ref() else { return };
        let pg_bytes = spread_wire::names::name_bytes(&s.pg).to_vec();
        let acc = handshake::encode_accept(req, &pg_bytes);
        s.phase = Phase::Op;
        s.deadline = None;
        tracing::info!(
            target: "spread::session",
            "session {} accepted on mailbox {} ({:?}, {:?})",
            String::from_utf8_lossy(&s.name),
            s.mailbox,
            s.kind,
            s.peer
        );
        if let Some(obs) = self.observer.as_mut() {
            let highest_seq = self.ordering.highest_delivered_seq();
            if let Some(s) = self.slots.get(idx as usize).and_then(|x| x.sess.as_ref()) {
                obs(SessionNote::Connected { mailbox: s.mailbox, peer: s.peer, name: &s.name, highest_seq });
            }
        }
        self.queue_out(idx, Bytes::from(acc));
    }

    /// Operational session: cut frames out of the read buffer and act on them.
    fn read_messages(&mut self, _now: Instant, idx: u32) {
        self.read_messages_inner(idx);
    }

    fn read_messages_inner(&mut self, idx: u32) {
        let batch = pacing::PARSE_BATCH.min(pacing::high_water(self.cfg.max_session_messages));
        let mut parsed = 0usize;
        loop {
            if parsed == batch {
                // Deliver what this batch made deliverable: a recipient it
                // congests paces this sender before the next batch.
                parsed = 0;
                self.run_ordering();
            }
            let Some(s) = self.slot_mut(idx) else { return };
            if s.phase != Phase::Op || s.rbuf.len() < HEADER_LEN || s.pace.paced_by > 0 {
                return;
            }
            let mut h = Header::decode_slice(&s.rbuf).expect("48 bytes present");
            let foreign = h.is_foreign();
            h.type_ = set_endian(h.type_);
            if let Err(why) = session::validate_header_with(&h, &s.sender) {
                tracing::info!(
                    target: "spread::session",
                    "session {} sent an invalid header ({why:?}, type 0x{:x}): killed",
                    String::from_utf8_lossy(&s.name),
                    h.type_
                );
                self.kill(idx);
                return;
            }
            let total = HEADER_LEN + MAX_GROUP_NAME * h.num_groups as usize + h.data_len as usize;
            if s.rbuf.len() < total {
                let need = total - s.rbuf.len();
                if s.rbuf.capacity() - s.rbuf.len() < need {
                    s.rbuf.reserve(need.max(READ_CHUNK));
                }
                return;
            }
            // Small frames are copied into the session's arena (one copy, an
            // allocation only per ARENA_BLOCK): a queued small frame then never
            // pins a whole read buffer, and the read buffer stays unshared and
            // is reused in place. Large frames are cut out of the read buffer
            // without copying.
            let frame = if total <= SMALL_FRAME {
                if s.arena.capacity() < total {
                    // The old block lives on in the frames cut from it.
                    s.arena = BytesMut::with_capacity(ARENA_BLOCK);
                }
                s.arena.extend_from_slice(&s.rbuf[..total]);
                s.rbuf.advance(total);
                let mut f = s.arena.split_to(total);
                fix_header(&mut f, &h, foreign);
                f.freeze()
            } else {
                let mut f = s.rbuf.split_to(total);
                fix_header(&mut f, &h, foreign);
                f.freeze()
            };
            parsed += 1;
            self.client_message(idx, h, frame);
        }
    }

    /// One valid message from an operational session.
    fn client_message(&mut self, idx: u32, h: Header, frame: Bytes) {
        let t = h.type_;
        let Some(s) = self.slot_mut(idx) else { return };
        let pg = s.pg;
        if t & KILL_MESS != 0 {
            // SP_disconnect: stop reading at once; the group KILL is agreed.
            let queued = s.out.len();
            tracing::info!(
                target: "spread::session",
                "session {} on mailbox {} disconnects ({queued} messages queued)",
                String::from_utf8_lossy(&s.name),
                s.mailbox
            );
            self.note_gone(idx, queued);
            let Some(s) = self.slot_mut(idx) else { return };
            s.phase = Phase::Dead;
            let (_, n) = s.take_out();
            let freed = n + s.rbuf.capacity();
            s.rbuf = BytesMut::new();
            s.arena = BytesMut::new();
            let id = s.id;
            self.queued_total -= n;
            self.note_released(freed);
            let Some(s) = self.slot_mut(idx) else { return };
            if !std::mem::replace(&mut s.closed, true) {
                self.actions.push_back(Action::Close { id, linger: Vec::new() });
            }
            self.submit_kill(pg, t, h.hint);
            return;
        }
        if t & (JOIN_MESS | LEAVE_MESS) != 0 {
            if h.num_groups < 1 {
                // Nothing to join or leave; the original would read a stale name.
                return;
            }
            if t & JOIN_MESS != 0 {
                let g = groups::norm_name(&frame[HEADER_LEN..HEADER_LEN + MAX_GROUP_NAME]);
                if self.groups.num_local(&g) >= groups::MAX_LOCAL_GROUP_MEMBERS {
                    let old = (t & !JOIN_MESS) | CAUSED_BY_JOIN;
                    let rej = groups::reject_message(&h, old, &frame, &pg);
                    if t & SELF_DISCARD == 0 {
                        self.enqueue(idx, rej);
                    }
                    return;
                }
            }
        }
        if t & REGULAR_MESS != 0 {
            let i = service_index(t);
            self.stats.received[i] += 1;
            self.stats.received_bytes[i] += frame.len() as u64;
        }
        self.ordering.submit(OrderedMessage::new(h, frame));
    }

    /// Write one frame to a session, killing it if it is a slow reader.
    fn enqueue(&mut self, idx: u32, frame: Bytes) {
        self.enqueue_from(idx, frame, None);
    }

    /// Write one frame from local session `from` (if any) to a session: kill
    /// it if it is a slow reader, pace `from` if it is congested ([`pacing`]).
    fn enqueue_from(&mut self, idx: u32, frame: Bytes, from: Option<u32>) {
        let Some(s) = self.slot_mut(idx) else { return };
        if s.phase != Phase::Op {
            return;
        }
        let queued = s.out.len();
        let len = frame.len();
        if s.blocked && (self.pace_cuts(idx, queued) || self.bytes_cut(idx, len)) {
            self.kill(idx);
            return;
        }
        let Some(s) = self.slot_mut(idx) else { return };
        let was_empty = s.out.is_empty();
        s.push_out(frame);
        let id = s.id;
        self.queued_total += len;
        if was_empty {
            self.actions.push_back(Action::Flush(id));
        }
        if let Some(from) = from {
            self.pace_after_enqueue(idx, from, queued + 1);
        }
    }

    fn local_member(&self, pg: &Name32) -> Option<LocalMember> {
        let idx = *self.by_name.get(pg)?;
        let s = self.slots.get(idx as usize)?.sess.as_ref()?;
        Some(LocalMember { slot: idx, memb: s.memb })
    }

    /// Deliver everything the ordering layer has ready.
    fn run_ordering(&mut self) {
        while let Some(ev) = self.ordering.poll_event() {
            let m = match ev {
                OrderEvent::Message(m) => m,
                OrderEvent::Transitional { members, id } => {
                    self.transitional_configuration(&members, id);
                    continue;
                }
                OrderEvent::Regular { members, id } => {
                    self.regular_configuration(&members, id);
                    continue;
                }
            };
            let t = m.header.type_;
            let sender = groups::norm_name(&m.header.sender);
            if t & (JOIN_MESS | LEAVE_MESS | KILL_MESS) != 0 {
                let local = self.local_member(&sender);
                let mut out = std::mem::take(&mut self.notif);
                if t & JOIN_MESS != 0 {
                    if m.num_groups() >= 1 {
                        let g = groups::norm_name(m.group(0));
                        self.groups.join(&sender, &g, local, &mut out);
                    }
                } else if t & LEAVE_MESS != 0 {
                    if m.num_groups() >= 1 {
                        let g = groups::norm_name(m.group(0));
                        self.groups.leave(&sender, &g, local, &mut out);
                    }
                } else {
                    self.groups.kill(&sender, local.map(|l| l.slot), &mut out);
                    if let Some(l) = local {
                        self.free_session(l.slot);
                    }
                }
                for (slot, f) in out.drain(..) {
                    self.enqueue(slot, f);
                }
                self.notif = out;
                continue;
            }
            if t & GROUPS_MESS != 0 {
                let mut out = std::mem::take(&mut self.notif);
                if self.groups.handle_groups(&m.frame, &mut out) == groups::GatherOutcome::Done {
                    self.ordering.state_exchange(false);
                }
                for (slot, f) in out.drain(..) {
                    self.enqueue(slot, f);
                }
                self.notif = out;
                continue;
            }
            // Data message.
            let mut targets = std::mem::take(&mut self.targets);
            targets.clear();
            let ng = m.num_groups();
            {
                let by_name = &self.by_name;
                let names = (0..ng).map(|i| groups::norm_name(m.group(i)));
                self.groups.route(names, ng > 1, |n| by_name.get(n).copied(), &mut targets);
            }
            let from = self.by_name.get(&sender).copied();
            if t & SELF_DISCARD != 0 {
                if let Some(me) = from {
                    targets.retain(|&s| s != me);
                }
            }
            if t & REGULAR_MESS != 0 {
                let (i, n) = (service_index(t), targets.len() as u64);
                self.stats.delivered[i] += n;
                self.stats.delivered_bytes[i] += n * m.frame.len() as u64;
            }
            if let Some((&last, rest)) = targets.split_last() {
                for &slot in rest {
                    self.enqueue_from(slot, m.frame.clone(), from);
                }
                self.enqueue_from(last, m.frame, from);
            }
            self.stats.messages_delivered += 1;
            self.targets = targets;
        }
    }
}

/// Frames up to this size are copied out of the read buffer.
const SMALL_FRAME: usize = 4096;
/// Size of the blocks small frames are copied into.
pub const ARENA_BLOCK: usize = 16 * 1024;

/// Put a client header into this daemon's byte order: if the writer was
/// foreign, re-encode `type`, `num_groups` and `data_len` (`hint` stays raw);
/// otherwise only refresh the marker of `type`.
fn fix_header(f: &mut [u8], h: &Header, foreign: bool) {
    let o = Order::NATIVE;
    if foreign {
        o.write_u32(&mut f[0..4], h.type_);
        o.write_i32(&mut f[36..40], h.num_groups);
        o.write_i32(&mut f[44..48], h.data_len);
    } else if h.type_ != o.read_u32(&f[0..4]) {
        o.write_u32(&mut f[0..4], h.type_);
    }
}

/// The private group name this daemon gives a session called `name`.
pub fn private_group_of(name: &[u8], daemon: &[u8]) -> Name32 {
    private_group(name, daemon)
}

/// Build a 32-byte name (helper re-exported for tests).
pub fn name(s: &[u8]) -> Name32 {
    name32(s)
}

/// The name of a handshake rejection code (`sp.h`).
fn reject_reason(code: i32) -> &'static str {
    match code {
        REJECT_QUOTA => "REJECT_QUOTA",
        REJECT_NO_NAME => "REJECT_NO_NAME",
        REJECT_ILLEGAL_NAME => "REJECT_ILLEGAL_NAME",
        REJECT_NOT_UNIQUE => "REJECT_NOT_UNIQUE",
        REJECT_VERSION => "REJECT_VERSION",
        REJECT_AUTH => "REJECT_AUTH",
        _ => "rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn pump(e: &mut Engine, hold: &[ConnId], out: &mut HashMap<ConnId, Vec<u8>>) {
        for _ in 0..100_000 {
            match e.poll_action() {
                None => return,
                Some(Action::Flush(id)) if !hold.contains(&id) => {
                    let b = e.drain_output(id);
                    out.entry(id).or_default().extend_from_slice(&b);
                }
                Some(Action::Flush(id)) => e.set_write_blocked(id, true),
                Some(Action::Close { .. }) => panic!("unexpected close"),
            }
        }
        panic!("too many actions");
    }

    /// Carry out the engine's actions, writing nothing to `hold` (their
    /// sockets are full); returns the connections it closed.
    pub(super) fn pump_hold(e: &mut Engine, hold: &[ConnId], out: &mut HashMap<ConnId, Vec<u8>>) -> Vec<ConnId> {
        let mut closed = Vec::new();
        while let Some(a) = e.poll_action() {
            match a {
                Action::Flush(id) if hold.contains(&id) => e.set_write_blocked(id, true),
                Action::Flush(id) => out.entry(id).or_default().extend(e.drain_output(id)),
                Action::Close { id, .. } => closed.push(id),
            }
        }
        closed
    }

    pub(super) fn login(e: &mut Engine, now: Instant, name: &str, out: &mut HashMap<ConnId, Vec<u8>>) -> ConnId {
        let Accepted::Conn(id) = e.accept(now, ConnKind::Unix, None) else { panic!("rejected") };
        let mut req = vec![5, 0, 1, 0, name.len() as u8];
        req.extend_from_slice(name.as_bytes());
        e.on_data(now, id, &req);
        let mut choice = [0u8; AUTH_CHOICE_LEN];
        choice[..4].copy_from_slice(b"NULL");
        e.on_data(now, id, &choice);
        pump(e, &[], out);
        out.remove(&id);
        id
    }

    pub(super) fn frame(type_: u32, sender: &str, group: &str, body: &[u8]) -> Vec<u8> {
        let h = Header {
            type_: type_ | ARCH_ENDIAN,
            sender: name32(sender.as_bytes()),
            num_groups: 1,
            hint: ARCH_ENDIAN,
            data_len: body.len() as i32,
        };
        let mut v = h.encode().to_vec();
        v.extend_from_slice(&name32(group.as_bytes()));
        v.extend_from_slice(body);
        v
    }

    type Notes = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

    fn recording(e: &mut Engine) -> Notes {
        let notes: Notes = Default::default();
        let n2 = notes.clone();
        e.set_session_observer(Some(Box::new(move |n: SessionNote<'_>| {
            let line = match n {
                SessionNote::Connected { mailbox, peer, name, highest_seq } => {
                    format!("C {mailbox} {peer:?} {} {highest_seq}", String::from_utf8_lossy(name))
                }
                SessionNote::Gone { mailbox, peer, name, queued, highest_seq } => {
                    format!("D {mailbox} {peer:?} {} {queued} {highest_seq}", String::from_utf8_lossy(name))
                }
            };
            n2.lock().unwrap().push(line);
        })));
        notes
    }

    fn login_mbox(e: &mut Engine, now: Instant, name: &str, mbox: i32, peer: Option<SocketAddr>) -> (ConnId, Vec<u8>) {
        let Accepted::Conn(id) = e.accept_mailbox(now, ConnKind::Tcp, peer, mbox) else { panic!("rejected") };
        let mut req = vec![5, 0, 1, 0, name.len() as u8];
        req.extend_from_slice(name.as_bytes());
        e.on_data(now, id, &req);
        let mut choice = [0u8; AUTH_CHOICE_LEN];
        choice[..4].copy_from_slice(b"NULL");
        e.on_data(now, id, &choice);
        let mut out = HashMap::new();
        pump(e, &[], &mut out);
        (id, out.remove(&id).unwrap_or_default())
    }

    /// The observer hears of every accepted session once when it connects and
    /// once when it goes, whichever way, with its mailbox, peer, name, the
    /// messages still queued for it and the ordering layer's sequence number;
    /// invented names end with the mailbox.
    #[test]
    fn session_observer_reports_connects_and_departures() {
        let now = Instant::now();
        let mut e = Engine::new(EngineConfig::single(b"d1", 7, 1));
        let notes = recording(&mut e);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let (a, _) = login_mbox(&mut e, now, "alice", 17, Some(peer));
        let (b, _) = login_mbox(&mut e, now, "bob", 23, None);
        let (c, _) = login_mbox(&mut e, now, "carol", 31, None);
        // A handshake that never finishes is not reported, not even when it closes.
        let Accepted::Conn(h) = e.accept_mailbox(now, ConnKind::Unix, None, 40) else { panic!() };
        e.on_data(now, h, &[5, 0, 1, 0]);
        e.on_closed(now, h);
        assert!(matches!(e.poll_action(), Some(Action::Close { id, .. }) if id == h));
        assert_eq!(
            *notes.lock().unwrap(),
            vec!["C 17 Some(127.0.0.1:5000) alice 0", "C 23 None bob 0", "C 31 None carol 0"]
        );
        let mut out = HashMap::new();
        for (id, n) in [(a, "#alice#d1"), (b, "#bob#d1"), (c, "#carol#d1")] {
            e.on_data(now, id, &frame(JOIN_MESS, n, "g", b""));
        }
        pump(&mut e, &[], &mut out);
        // Two messages to g while bob's socket takes nothing; then bob
        // disconnects with them (at least) still queued.
        for _ in 0..2 {
            e.on_data(now, a, &frame(AGREED_MESS, "#alice#d1", "g", b"hi"));
        }
        pump(&mut e, &[b], &mut out);
        let queued_b = e.session(b).unwrap().out.len();
        assert!(queued_b >= 2, "{queued_b}");
        let seq = e.ordering().highest_delivered_seq();
        assert!(seq >= 5, "3 joins and 2 messages delivered: {seq}");
        e.on_data(now, b, &frame(KILL_MESS, "#bob#d1", "#bob#d1", b""));
        // carol's socket closes (EOF) with nothing queued.
        out.clear();
        while let Some(act) = e.poll_action() {
            if let Action::Flush(id) = act {
                e.drain_output(id);
            }
        }
        e.on_closed(now, c);
        let n = notes.lock().unwrap().clone();
        assert_eq!(n.len(), 5, "{n:?}");
        assert_eq!(n[3], format!("D 23 None bob {queued_b} {seq}"));
        assert!(n[4].starts_with("D 31 None carol 0 "), "{n:?}");
        // Closing again or the KILLs coming back do not report twice.
        e.on_closed(now, c);
        e.on_closed(now, b);
        while e.poll_action().is_some() {}
        assert_eq!(notes.lock().unwrap().len(), 5);

        // An invented name: r<0..9998>-<mailbox>.
        let Accepted::Conn(r) = e.accept_mailbox(now, ConnKind::Unix, None, 123) else { panic!() };
        e.on_data(now, r, &[5, 0, 1, 0, 0]);
        let mut choice = [0u8; AUTH_CHOICE_LEN];
        choice[..4].copy_from_slice(b"NULL");
        e.on_data(now, r, &choice);
        let name = String::from_utf8(e.session(r).unwrap().name.clone()).unwrap();
        let (num, mb) = name[1..].split_once('-').unwrap();
        assert!(name.starts_with('r') && num.parse::<u32>().unwrap() < 9999 && mb == "123", "{name}");
        assert!(notes.lock().unwrap()[5].starts_with(&format!("C 123 None {name} ")));
        // Without an observer nothing is recorded.
        e.set_session_observer(None);
        login_mbox(&mut e, now, "dave", 50, None);
        assert_eq!(notes.lock().unwrap().len(), 6);
    }

    /// Frames of many sizes (small ones copied into arena blocks, large ones
    /// cut from the read buffer), fed in odd-sized pieces, reach every member
    /// byte for byte, also when one member's queue is held until the end.
    #[test]
    fn frames_survive_arena_blocks_and_shared_delivery() {
        let now = Instant::now();
        // r2 holds all 600 messages: a limit high enough that it never paces
        // the sender (pacing has its own tests).
        let mut cfg = EngineConfig::single(b"d1", 7, 1);
        cfg.max_session_messages = 4 * 1000;
        let mut e = Engine::new(cfg);
        let mut out = HashMap::new();
        let s = login(&mut e, now, "s", &mut out);
        let r1 = login(&mut e, now, "r1", &mut out);
        let r2 = login(&mut e, now, "r2", &mut out);
        for (id, n) in [(s, "#s#d1"), (r1, "#r1#d1"), (r2, "#r2#d1")] {
            e.on_data(now, id, &frame(JOIN_MESS, n, "g", b""));
        }
        pump(&mut e, &[], &mut out);
        out.clear();
        let mut stream = Vec::new();
        let mut sent = Vec::new();
        let mut x = 12345u32;
        for i in 0..600u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let len = if i % 17 == 0 { 5000 + (x as usize >> 8) % 20_000 } else { (x as usize >> 8) % 4000 };
            let body: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
            // Every third message SELF_DISCARD: the sender gets the others.
            let t = if i % 3 == 0 { RELIABLE_MESS | SELF_DISCARD } else { RELIABLE_MESS };
            let f = frame(t, "#s#d1", "g", &body);
            stream.extend_from_slice(&f);
            sent.push((f, t & SELF_DISCARD != 0));
        }
        for piece in stream.chunks(7777) {
            e.on_data(now, s, piece);
            pump(&mut e, &[r2], &mut out);
        }
        out.insert(r2, e.drain_output(r2));
        let all: Vec<u8> = sent.iter().flat_map(|(f, _)| f.clone()).collect();
        let own: Vec<u8> = sent.iter().filter(|(_, d)| !d).flat_map(|(f, _)| f.clone()).collect();
        assert!(out[&r1] == all, "r1 stream differs");
        assert!(out[&r2] == all, "held r2 stream differs");
        assert!(out[&s] == own, "sender stream differs");
        assert_eq!(e.stats().messages_delivered, 600);
    }
}
