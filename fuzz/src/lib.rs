//! Pieces shared by the fuzz targets: reading control bytes off the front of
//! an input, and a small stand-in for the daemon's mio driver that runs the
//! sans-I/O engine the way `spread-daemon/src/driver.rs` does (flushes with
//! partial writes, closes, pacing, timers) but without sockets or a clock.
//!
//! Every target treats a panic or an abort as a finding. The assertions below
//! only state what the engine promises: a well-formed login on a fresh engine
//! succeeds, and a hostile connection never stops other sessions from being
//! served once it has gone.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use spread_daemon::engine::{Accepted, Action, ConnId, ConnKind, Engine, EngineConfig, Event};
use spread_wire::consts::{AGREED_MESS, HEADER_LEN, JOIN_MESS, REJECT_MESS};
use spread_wire::Header;

/// The daemon every engine target runs as (VID and ring time are arbitrary).
pub const DAEMON: &[u8] = b"d1";

/// The first `N` bytes of an input as control bytes (zero when the input is
/// shorter), and the rest.
pub fn split_control<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut c = [0u8; N];
    let n = data.len().min(N);
    c[..n].copy_from_slice(&data[..n]);
    (c, &data[n..])
}

/// A small deterministic generator (xorshift64), seeded from control bytes so
/// that an input always replays the same way.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// How an input is cut into the reads the daemon would see: the low two bits
/// of `mode` pick one read, single bytes, up to 64 bytes, or up to 4 KiB.
pub fn chunks<'a>(data: &'a [u8], mode: u8, rng: &mut Rng) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = match mode & 3 {
            0 => rest.len(),
            1 => 1,
            2 => 1 + rng.below(64) as usize,
            _ => 1 + rng.below(4096) as usize,
        }
        .min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

/// A client→daemon message frame as an x86 library writes it
/// (little-endian, marker bits set).
pub fn frame(type_: u32, sender: &[u8], groups: &[&[u8]], mess_type: i16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(48 + 32 * groups.len() + body.len());
    v.extend_from_slice(&(type_ | 0x8000_0080).to_le_bytes());
    let mut s = [0u8; 32];
    let n = sender.len().min(31);
    s[..n].copy_from_slice(&sender[..n]);
    v.extend_from_slice(&s);
    v.extend_from_slice(&(groups.len() as i32).to_le_bytes());
    let hint =
        if type_ & 0x3f != 0 { ((((mess_type as i32) << 8) as u32) & 0x00ff_ff00) | 0x8000_0080 } else { 0x8000_0080 };
    v.extend_from_slice(&hint.to_le_bytes());
    v.extend_from_slice(&(body.len() as i32).to_le_bytes());
    for g in groups {
        let mut n = [0u8; 32];
        let k = g.len().min(31);
        n[..k].copy_from_slice(&g[..k]);
        v.extend_from_slice(&n);
    }
    v.extend_from_slice(body);
    v
}

/// The 5.0.1 connect request for `name` (`[5, 0, 1, flags, len, name…]`).
pub fn connect_request(name: &[u8], membership: bool) -> Vec<u8> {
    let mut v = vec![5, 0, 1, membership as u8, name.len() as u8];
    v.extend_from_slice(name);
    v
}

/// The 90-byte auth choice naming the NULL method.
pub fn null_auth_choice() -> [u8; 90] {
    let mut c = [0u8; 90];
    c[..4].copy_from_slice(b"NULL");
    c
}

/// Split a daemon→client byte stream into whole frames (header, a reject's
/// old type, names, body), reading each header in the order its marker says,
/// as the client library does. The second value is what is left over: bytes
/// that do not make a whole frame, or that start with a negative count.
pub fn split_frames(mut b: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut v = Vec::new();
    while let Some(h) = Header::decode_slice(b) {
        let Some(rest) = h.rest_len(h.type_ & REJECT_MESS != 0) else { break };
        let n = HEADER_LEN + rest;
        if b.len() < n {
            break;
        }
        v.push(&b[..n]);
        b = &b[n..];
    }
    (v, b)
}

/// A multiplicative hasher for the driver's few connection ids: SipHash under
/// the coverage instrumentation cost a quarter of the run time.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u8(b);
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
type Set<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// How the driver writes a connection's queued output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// Everything at once (`drain_output`).
    All,
    /// Through `out_slices`/`on_written`, at most this many bytes per flush,
    /// then `set_write_blocked` and a later `Writable` event.
    Partial(usize),
    /// The socket takes nothing: `set_write_blocked(true)` on every flush.
    Stalled,
}

/// The engine plus what a driver keeps: written bytes per connection, closed
/// connections, write modes, bytes not yet fed because reading was paused.
pub struct Driver {
    pub eng: Engine,
    pub now: Instant,
    pub out: Map<ConnId, Vec<u8>>,
    pub closed: Set<ConnId>,
    pub writes: Map<ConnId, Writes>,
    /// Connections whose last flush stopped short (they get `Writable`).
    blocked: Set<ConnId>,
    /// Bytes the driver has not handed over yet (reading paused).
    pending: Map<ConnId, Vec<u8>>,
    /// Keep what is written to these connections (others' output is dropped,
    /// to bound memory).
    pub keep: Set<ConnId>,
}

impl Default for Driver {
    fn default() -> Self {
        Driver::new()
    }
}

impl Driver {
    pub fn new() -> Driver {
        Driver::with_config(EngineConfig::single(DAEMON, 7, 1))
    }

    /// A driver around an engine for `cfg`.
    pub fn with_config(cfg: EngineConfig) -> Driver {
        Driver {
            eng: Engine::new(cfg),
            now: Instant::now(),
            out: Map::default(),
            closed: Set::default(),
            writes: Map::default(),
            blocked: Set::default(),
            pending: Map::default(),
            keep: Set::default(),
        }
    }

    /// Accept a connection (the engine may answer with a quota reject).
    pub fn accept(&mut self, kind: ConnKind) -> Option<ConnId> {
        let peer = match kind {
            ConnKind::Tcp => Some("127.0.0.1:40000".parse().expect("literal address")),
            ConnKind::Unix => None,
        };
        match self.eng.accept(self.now, kind, peer) {
            Accepted::Conn(id) => Some(id),
            Accepted::Rejected(_) => None,
        }
    }

    /// Run every queued action, as `Driver::drain_actions` does.
    pub fn pump(&mut self) {
        for _ in 0..1_000_000 {
            let Some(a) = self.eng.poll_action() else { return };
            match a {
                Action::Flush(id) => self.flush(id),
                Action::Close { id, linger } => {
                    if self.keep.contains(&id) {
                        let o = self.out.entry(id).or_default();
                        for b in linger {
                            o.extend_from_slice(&b);
                        }
                    }
                    self.closed.insert(id);
                    self.blocked.remove(&id);
                    self.pending.remove(&id);
                }
            }
        }
        panic!("the engine produced a million actions without running dry");
    }

    fn flush(&mut self, id: ConnId) {
        if self.closed.contains(&id) {
            return;
        }
        match self.writes.get(&id).copied().unwrap_or(Writes::All) {
            Writes::All => {
                // The driver's own path (`out_slices` + `on_written`) until the queue is empty.
                let keep = self.keep.contains(&id);
                loop {
                    let mut sl = Vec::new();
                    let n = self.eng.out_slices(id, &mut sl, 64);
                    if n == 0 {
                        break;
                    }
                    if keep {
                        let o = self.out.entry(id).or_default();
                        for s in &sl {
                            o.extend_from_slice(s);
                        }
                    }
                    self.eng.on_written(id, n);
                }
                self.eng.set_write_blocked(id, false);
                self.blocked.remove(&id);
            }
            Writes::Stalled => {
                self.eng.set_write_blocked(id, true);
                self.blocked.insert(id);
            }
            Writes::Partial(max) => {
                let mut written = Vec::new();
                let offered = {
                    let mut sl = Vec::new();
                    let n = self.eng.out_slices(id, &mut sl, 64);
                    let mut left = max.min(n);
                    for s in &sl {
                        if left == 0 {
                            break;
                        }
                        let k = s.len().min(left);
                        written.extend_from_slice(&s[..k]);
                        left -= k;
                    }
                    n
                };
                let n = written.len();
                self.eng.on_written(id, n);
                if self.keep.contains(&id) {
                    self.out.entry(id).or_default().extend_from_slice(&written);
                }
                if n < offered {
                    self.eng.set_write_blocked(id, true);
                    self.blocked.insert(id);
                } else {
                    self.eng.set_write_blocked(id, false);
                    self.blocked.remove(&id);
                }
            }
        }
    }

    /// Sockets that stopped short become writable again.
    pub fn writable(&mut self) {
        let mut ids: Vec<ConnId> = self.blocked.drain().collect();
        ids.sort_by_key(|c| (c.idx, c.gen));
        for id in ids {
            if self.writes.get(&id) == Some(&Writes::Stalled) {
                self.blocked.insert(id);
                continue;
            }
            let _ = self.eng.handle_event(self.now, Event::Writable { id });
        }
        self.pump();
    }

    /// The bytes `b` arrived on `id`; `zero_copy` picks `recv_buf` +
    /// `on_received` (what the driver uses) over `on_data`. While the engine
    /// says not to read `id`, the bytes wait in the driver.
    pub fn feed(&mut self, id: ConnId, b: &[u8], zero_copy: bool) {
        if self.closed.contains(&id) {
            return;
        }
        self.pending.entry(id).or_default().extend_from_slice(b);
        self.try_read(id, zero_copy);
    }

    fn try_read(&mut self, id: ConnId, zero_copy: bool) {
        if self.closed.contains(&id) || self.eng.reading_paused() || self.eng.read_paused(id) {
            return;
        }
        let Some(data) = self.pending.remove(&id) else { return };
        if data.is_empty() {
            return;
        }
        if zero_copy {
            let Some(buf) = self.eng.recv_buf(id) else { return };
            buf.extend_from_slice(&data);
            self.eng.on_received(self.now, id);
        } else {
            self.eng.on_data(self.now, id, &data);
        }
        self.pump();
    }

    /// Read again what pacing held back, as `Driver::resume_paced` does.
    pub fn resume(&mut self, zero_copy: bool) {
        let mut ids = Vec::new();
        self.eng.take_resumed(&mut ids);
        for id in ids {
            if self.eng.read_paused(id) {
                continue;
            }
            if self.pending.get(&id).is_some_and(|p| !p.is_empty()) {
                self.try_read(id, zero_copy);
            } else if !self.closed.contains(&id) {
                self.eng.on_received(self.now, id);
                self.pump();
            }
        }
        let mut waiting: Vec<ConnId> = self.pending.keys().copied().collect();
        waiting.sort_by_key(|c| (c.idx, c.gen));
        for id in waiting {
            self.try_read(id, zero_copy);
        }
    }

    /// Let `step` pass and run the timers that are due.
    pub fn advance(&mut self, step: Duration) {
        self.now += step;
        if self.eng.next_timeout().is_some_and(|t| t <= self.now) {
            self.eng.on_timeout(self.now);
        }
        self.pump();
    }

    /// EOF on `id`.
    pub fn eof(&mut self, id: ConnId) {
        if self.closed.contains(&id) {
            return;
        }
        self.pending.remove(&id);
        self.eng.on_closed(self.now, id);
        self.closed.insert(id);
        self.pump();
    }

    /// Take what was written to `id` so far.
    pub fn take(&mut self, id: ConnId) -> Vec<u8> {
        std::mem::take(self.out.entry(id).or_default())
    }

    /// Take what was written to the operational session `id`, whose writes
    /// always complete: it must be whole, well-formed frames.
    pub fn take_frames(&mut self, id: ConnId) -> Vec<u8> {
        let b = self.take(id);
        let (_, rest) = split_frames(&b);
        assert!(rest.is_empty(), "{} bytes written to a session are not a whole frame: {:02x?}", rest.len(), rest);
        b
    }

    /// A full 5.0.1 handshake on a new connection. On a fresh engine with
    /// free slots it must succeed: anything else is a finding.
    pub fn login(&mut self, name: &str, membership: bool) -> ConnId {
        let id = self.accept(ConnKind::Unix).expect("a login on a fresh engine is accepted");
        self.keep.insert(id);
        self.feed(id, &connect_request(name.as_bytes(), membership), false);
        assert_eq!(self.take(id), b"\x05NULL ", "auth list for {name}");
        self.feed(id, &null_auth_choice(), false);
        let acc = self.take(id);
        let mut pg = format!("#{name}#").into_bytes();
        pg.extend_from_slice(&self.eng.config().daemon_name);
        let mut want = vec![1, 5, 0, 1, pg.len() as u8];
        want.extend_from_slice(&pg);
        assert_eq!(acc, want, "accept for {name}");
        id
    }

    /// `id` (private group `pg`) joins `group`.
    pub fn join(&mut self, id: ConnId, pg: &str, group: &str) {
        self.feed(id, &frame(JOIN_MESS, pg.as_bytes(), &[group.as_bytes()], 0, b""), false);
    }

    /// The watchers still work: each sends an AGREED message to itself and
    /// gets it back, and a message to `group` reaches both. Call after the
    /// hostile connections have gone (EOF) and time has moved on.
    pub fn check_watchers(&mut self, watchers: &[(ConnId, &str)], group: &str) {
        for &(id, _) in watchers {
            assert!(!self.closed.contains(&id), "a watcher session was closed");
            let _ = self.take_frames(id);
        }
        for &(id, pg) in watchers {
            let body = format!("ping {pg}");
            self.feed(id, &frame(AGREED_MESS, pg.as_bytes(), &[pg.as_bytes()], 3, body.as_bytes()), false);
            let out = self.take_frames(id);
            let (f, _) = split_frames(&out);
            assert!(
                f.last().is_some_and(|f| f.ends_with(body.as_bytes())),
                "watcher {pg} did not get its own message back ({} bytes written)",
                out.len()
            );
        }
        let (first, pg) = watchers[0];
        let body = b"to the group";
        self.feed(first, &frame(AGREED_MESS, pg.as_bytes(), &[group.as_bytes()], 4, body), false);
        for &(id, pg) in watchers {
            let out = self.take_frames(id);
            let (f, _) = split_frames(&out);
            assert!(f.last().is_some_and(|f| f.ends_with(body)), "watcher {pg} missed the message to {group}");
        }
        for &(id, _) in watchers {
            assert!(!self.closed.contains(&id), "a watcher session was closed");
        }
    }
}
