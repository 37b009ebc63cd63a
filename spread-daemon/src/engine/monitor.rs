//! Monitor (control) packets on the data port: `spmonitor`'s status
//! queries, partitions, flow control and reload requests (daemon spec §8).
//!
//! A control packet passes the checks every daemon packet passes (length,
//! configuration hash, configured transmitter sending from its configured
//! IP, §3.4 steps 1–7), but not the partition filter. Then, as the original
//! (`network.c:Net_handle_monitor`, `protocol.c:Prot_handle_bcast`):
//!
//! * PARTITION (only with `DangerousMonitor = true`; at least two bytes per
//!   configured daemon): adopt it, clear it again after 60 s unless another
//!   arrives, and exit if my own entry is −1 (the monitor's "kill");
//! * STATUS: reply from the status socket with the 96-byte status to the
//!   address of the daemon whose VID is in `proc_id`, at the port in `seq`;
//! * FC (only with `DangerousMonitor`, `proc_id` configured): new Window
//!   (entry `num_procs`), PersonalWindow and AcceleratedWindow (my entry),
//!   −1 leaving a value as it is. The original reads past a short payload;
//!   here a payload without those entries is refused;
//! * RELOAD: re-read the configuration (§1.9).
//!
//! Sans I/O: [`Monitor::on_packet`] reads a datagram and says what to do;
//! the engine applies it ([`super::Engine::on_control`]) and the driver
//! sends [`Monitor::poll_reply`] from the status socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use spread_wire::daemon::{
    order_of, ControlBody, ControlPacket, PacketHeader, Status, CONTROL_TYPE, FC_TYPE, PACKET_HEADER_LEN,
    PARTITION_TYPE, RELOAD_TYPE, STATUS_TYPE,
};
use spread_wire::endian::Order;

use super::ring::Datagram;
use super::{Engine, Ordering};
use crate::config::Config;

/// How long a monitor partition lasts unless the monitor sends it again
/// (it re-sends every 25 s).
pub const PARTITION_TIMEOUT: Duration = Duration::from_secs(60);

/// The version a status reply reports (that of the protocol we speak).
pub const VERSION: (i16, i16, i16) = (5, 0, 1);

/// What the monitor code needs of the configuration.
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    pub hash: u32,
    /// VID and address (IP, segment port) of each configured daemon, in
    /// configuration order.
    pub procs: Vec<(u32, SocketAddr)>,
    /// My proc index.
    pub me: usize,
    /// `DangerousMonitor`: partitions and flow control are honoured.
    pub dangerous: bool,
    /// Flow-control figures from the file, for a daemon without a ring.
    pub window: i16,
    pub personal_window: i16,
    pub accelerated_ring: bool,
    pub accelerated_window: i16,
}

impl MonitorConfig {
    pub fn from_config(cfg: &Config, me: usize) -> MonitorConfig {
        MonitorConfig {
            hash: cfg.hash(),
            procs: cfg.daemons.iter().map(|d| (d.vid, d.addr)).collect(),
            me,
            dangerous: cfg.dangerous_monitor,
            window: cfg.window as i16,
            personal_window: cfg.personal_window as i16,
            accelerated_ring: cfg.accelerated_ring(),
            accelerated_window: cfg.accelerated_window as i16,
        }
    }

    fn index_of(&self, vid: i32) -> Option<usize> {
        self.procs.iter().position(|&(v, _)| v == vid as u32)
    }
}

/// What a control packet asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Send a status reply to this address.
    Status { to: SocketAddr },
    /// Adopt this partition (proc index → component), for
    /// [`PARTITION_TIMEOUT`].
    Partition(Vec<i16>),
    /// New flow-control values (`None`: unchanged).
    FlowControl { window: Option<i16>, personal: Option<i16>, accelerated: Option<i16> },
    /// Re-read the configuration file.
    Reload,
}

/// The monitor side of a daemon.
#[derive(Debug)]
pub struct Monitor {
    cfg: MonitorConfig,
    /// When the daemon started (the status reply's `sec`).
    start: Instant,
    /// When the partition in force is cleared.
    clear_at: Option<Instant>,
    replies: VecDeque<Datagram>,
    /// Requests refused or ignored (for tests).
    pub ignored: u64,
}

impl Monitor {
    pub fn new(cfg: MonitorConfig, start: Instant) -> Monitor {
        Monitor { cfg, start, clear_at: None, replies: VecDeque::new(), ignored: 0 }
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.cfg
    }

    /// A configuration reload: who may send, the hash and the figures are
    /// the new file's, and any partition is gone (§1.9).
    pub fn reconfigure(&mut self, cfg: MonitorConfig) {
        self.cfg = cfg;
        self.clear_at = None;
    }

    /// Is this datagram a control packet (the driver's quick test before
    /// handing it here rather than to the ring)?
    pub fn is_control(b: &[u8]) -> bool {
        b.len() >= PACKET_HEADER_LEN && order_of(b).is_ok_and(|o| o.read_u32(&b[0..4]) & CONTROL_TYPE != 0)
    }

    /// Read a control packet from `src`; `None` when it is dropped or
    /// refused (logged as the original logs it).
    pub fn on_packet(&mut self, now: Instant, src: SocketAddr, b: &[u8]) -> Option<Request> {
        let r = self.read(now, src, b);
        if r.is_none() {
            self.ignored += 1;
        }
        r
    }

    fn read(&mut self, now: Instant, src: SocketAddr, b: &[u8]) -> Option<Request> {
        if b.len() < PACKET_HEADER_LEN {
            return None;
        }
        let order = order_of(b).ok()?;
        let h = PacketHeader::decode_in(order, b).ok()?;
        if b.len() != PACKET_HEADER_LEN + h.data_len as usize || h.conf_hash != self.cfg.hash {
            return None;
        }
        let t = self.cfg.index_of(h.transmiter_id)?;
        if self.cfg.procs[t].1.ip() != src.ip() {
            return None;
        }
        let body = &b[PACKET_HEADER_LEN..];
        tracing::info!(target: "spread::network", "Net_recv: got monitor control msg of type 0x{:08X} from [{}]:{}",
            h.type_, src.ip(), src.port());
        let n = self.cfg.procs.len();
        if h.type_ & PARTITION_TYPE != 0 {
            if !self.cfg.dangerous {
                tracing::info!(target: "spread::network", print = true,
                    "Net_handle_monitor: Request to set partition or kill daemons from [{}]:{} denied. Daemon in safe mode!",
                    src.ip(), src.port());
                return None;
            }
            if body.len() < 2 * n {
                tracing::warn!(target: "spread::network",
                    "Net_handle_monitor: received monitor partition packet from [{}]:{}; proc_id = {}; msg too small! Ignoring!",
                    src.ip(), src.port(), h.proc_id);
                return None;
            }
            let p: Vec<i16> = body.chunks_exact(2).take(n).map(|c| order.read_i16(c)).collect();
            self.clear_at = Some(now + PARTITION_TIMEOUT);
            return Some(Request::Partition(p));
        }
        if h.type_ & STATUS_TYPE != 0 {
            let Some(p) = self.cfg.index_of(h.proc_id) else {
                tracing::info!(target: "spread::status", "Stat_handle_message: Illegal monitor request");
                return None;
            };
            let to = SocketAddr::new(self.cfg.procs[p].1.ip(), h.seq as u16);
            return Some(Request::Status { to });
        }
        if h.type_ & FC_TYPE != 0 {
            if !self.cfg.dangerous {
                tracing::info!(target: "spread::flow_control",
                    "FC_handle_message: Request to change flow control from ({}) denied. Monitor in safe mode",
                    std::net::Ipv4Addr::from(h.proc_id as u32));
                return None;
            }
            if self.cfg.index_of(h.proc_id).is_none() {
                tracing::info!(target: "spread::flow_control", "FC_handle_message: Illegal monitor request");
                return None;
            }
            let cell = |i: usize, k: usize| {
                let at = 4 * i + 2 * k;
                body.get(at..at + 2).map(|c| order.read_i16(c))
            };
            let me = self.cfg.me;
            let (Some(w), Some(pw), Some(aw)) = (cell(n, 0), cell(me, 0), cell(me, 1)) else {
                tracing::warn!(target: "spread::flow_control",
                    "FC_handle_message: flow-control packet of {} bytes from [{}]:{} is too short for {} daemons; ignored",
                    body.len(), src.ip(), src.port(), n);
                return None;
            };
            let keep = |v: i16| (v != -1).then_some(v);
            return Some(Request::FlowControl { window: keep(w), personal: keep(pw), accelerated: keep(aw) });
        }
        if h.type_ & RELOAD_TYPE != 0 {
            return Some(Request::Reload);
        }
        None
    }

    /// When the partition in force is to be cleared.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.clear_at
    }

    /// The partition's time is up: the caller clears it.
    pub fn partition_expired(&mut self, now: Instant) -> bool {
        if self.clear_at.is_some_and(|t| t <= now) {
            self.clear_at = None;
            true
        } else {
            false
        }
    }

    /// A status with the figures known without a ring (the engine and the
    /// ring then fill in theirs): time since start, version, my VID, and
    /// for a daemon alone in its configuration an operational ring of one.
    pub fn base_status(&self, now: Instant) -> Status {
        let vid = self.cfg.procs[self.cfg.me].0 as i32;
        Status {
            sec: now.saturating_duration_since(self.start).as_secs() as i32,
            state: 1,
            gstate: 1,
            my_id: vid,
            leader_id: vid,
            membership_changes: 1,
            num_procs: 1,
            num_segments: 1,
            window: self.cfg.window,
            personal_window: self.cfg.personal_window,
            accelerated_ring: self.cfg.accelerated_ring as i16,
            accelerated_window: self.cfg.accelerated_window,
            major_version: VERSION.0,
            minor_version: VERSION.1,
            patch_version: VERSION.2,
            ..Status::default()
        }
    }

    /// Queue the reply to a status query: STATUS type, my VID in `proc_id`,
    /// 96 bytes of status; every other header field 0 (as 5.0.1 sends it).
    pub fn queue_reply(&mut self, to: SocketAddr, s: &Status) {
        let header = PacketHeader {
            type_: STATUS_TYPE,
            proc_id: self.cfg.procs[self.cfg.me].0 as i32,
            ..PacketHeader::default()
        };
        let mut bytes = Vec::with_capacity(PACKET_HEADER_LEN + spread_wire::daemon::control::STATUS_LEN);
        let reply = ControlPacket { header, body: ControlBody::StatusReply(*s) };
        if reply.encode(Order::NATIVE, &mut bytes).is_ok() {
            self.replies.push_back(Datagram { to, bytes });
        }
    }

    /// The next status reply to send (from the status socket).
    pub fn poll_reply(&mut self) -> Option<Datagram> {
        self.replies.pop_front()
    }
}

/// What the driver must do after a control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlOutcome {
    /// Nothing (a reply may be queued: [`Engine::poll_status_reply`]).
    Done,
    /// The monitor killed this daemon: log this and exit as on a fatal error.
    Exit(String),
    /// Re-read the configuration.
    Reload,
}

impl<O: Ordering> Engine<O> {
    /// Answer monitor packets (none are taken until this is called).
    pub fn set_monitor(&mut self, m: Monitor) {
        self.monitor = Some(m);
    }

    pub fn monitor(&self) -> Option<&Monitor> {
        self.monitor.as_ref()
    }

    /// A control packet arrived on the data port from `src`.
    pub fn on_control(&mut self, now: Instant, src: SocketAddr, b: &[u8]) -> ControlOutcome {
        self.now = Some(now);
        let Some(m) = self.monitor.as_mut() else { return ControlOutcome::Done };
        let Some(req) = m.on_packet(now, src, b) else { return ControlOutcome::Done };
        match req {
            Request::Status { to } => {
                let s = self.status(now);
                if let Some(m) = self.monitor.as_mut() {
                    m.queue_reply(to, &s);
                }
            }
            Request::Partition(p) => {
                let me = m.config().me;
                self.ordering.set_partition(&p);
                if p.get(me) == Some(&-1) {
                    return ControlOutcome::Exit("Net_handle_monitor: Instructed to exit by monitor!".into());
                }
                tracing::info!(target: "spread::network", print = true,
                    "Net_handle_monitor: Got monitor partition message; I'm in component {}", p.get(me).copied().unwrap_or(0));
            }
            Request::FlowControl { window, personal, accelerated } => {
                self.ordering.set_flow_control(window, personal, accelerated);
                let s = self.status(now);
                tracing::info!(target: "spread::flow_control",
                    "FC_handle_message: Got monitor mess, Window {} Personal {} Accelerated {}",
                    s.window, s.personal_window, s.accelerated_window);
            }
            Request::Reload => return ControlOutcome::Reload,
        }
        ControlOutcome::Done
    }

    /// The status reply's figures now: the monitor's, the ordering
    /// protocol's, then the groups and sessions layers'.
    pub fn status(&self, now: Instant) -> Status {
        let mut s = match &self.monitor {
            Some(m) => m.base_status(now),
            None => Status::default(),
        };
        self.ordering.fill_status(&mut s);
        s.gstate = self.groups.state() as i32;
        s.num_groups = self.groups.num_groups() as i16;
        s.num_sessions = self.num_sessions() as i16;
        s.message_delivered = self.stats.messages_delivered as i32;
        s
    }

    /// The next status reply to send from the status socket.
    pub fn poll_status_reply(&mut self) -> Option<Datagram> {
        self.monitor.as_mut()?.poll_reply()
    }

    pub(super) fn monitor_deadline(&self) -> Option<Instant> {
        self.monitor.as_ref()?.next_deadline()
    }

    /// The monitor partition's 60 s are up: clear it.
    pub(super) fn monitor_on_timeout(&mut self, now: Instant) {
        if self.monitor.as_mut().is_some_and(|m| m.partition_expired(now)) {
            self.ordering.set_partition(&[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dangerous: bool) -> MonitorConfig {
        MonitorConfig {
            hash: 0xABCD_1234,
            procs: vec![
                (0x7F00_0001, "127.0.0.1:4803".parse().unwrap()),
                (0x7F00_0002, "127.0.0.2:4803".parse().unwrap()),
                (0x7F00_0003, "127.0.0.3:4803".parse().unwrap()),
            ],
            me: 1,
            dangerous,
            window: 160,
            personal_window: 20,
            accelerated_ring: false,
            accelerated_window: 15,
        }
    }

    /// A control packet as spmonitor on daemon `from` (proc index) writes it.
    fn packet(order: Order, type_: u32, from: usize, seq: i32, hash: u32, body: &[u8]) -> Vec<u8> {
        let vid = cfg(false).procs[from].0 as i32;
        let h = PacketHeader {
            type_,
            transmiter_id: vid,
            proc_id: vid,
            seq,
            conf_hash: hash,
            data_len: body.len() as u16,
            ..PacketHeader::default()
        };
        let mut out = Vec::new();
        h.encode(order, &mut out);
        out.extend_from_slice(body);
        out
    }

    fn src(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    #[test]
    fn status_query_is_answered_at_the_querying_daemons_address_and_seq_port() {
        let now = Instant::now();
        let mut m = Monitor::new(cfg(false), now);
        for order in [Order::Little, Order::Big] {
            let b = packet(order, STATUS_TYPE, 0, 6543, 0xABCD_1234, &[]);
            assert!(Monitor::is_control(&b));
            let r = m.on_packet(now, src("127.0.0.1", 6543), &b);
            assert_eq!(r, Some(Request::Status { to: src("127.0.0.1", 6543) }));
        }
    }

    #[test]
    fn packets_failing_the_daemon_checks_are_dropped() {
        let now = Instant::now();
        let mut m = Monitor::new(cfg(true), now);
        let ok = packet(Order::NATIVE, STATUS_TYPE, 0, 6543, 0xABCD_1234, &[]);
        // Wrong hash, wrong source IP, unknown transmitter, bad length, short.
        assert_eq!(m.on_packet(now, src("127.0.0.1", 1), &packet(Order::NATIVE, STATUS_TYPE, 0, 1, 7, &[])), None);
        assert_eq!(m.on_packet(now, src("127.0.0.9", 1), &ok), None);
        let mut stranger = ok.clone();
        Order::NATIVE.write_u32(&mut stranger[4..8], 0x0A00_0001);
        assert_eq!(m.on_packet(now, src("127.0.0.1", 1), &stranger), None);
        let mut long = ok.clone();
        long.push(0);
        assert_eq!(m.on_packet(now, src("127.0.0.1", 1), &long), None);
        assert_eq!(m.on_packet(now, src("127.0.0.1", 1), &ok[..39]), None);
        assert_eq!(m.ignored, 5);
        assert!(m.on_packet(now, src("127.0.0.1", 1), &ok).is_some());
    }

    fn i16s(order: Order, v: &[i16]) -> Vec<u8> {
        let mut b = Vec::new();
        v.iter().for_each(|&x| order.push_i16(&mut b, x));
        b
    }

    #[test]
    fn partitions_need_dangerous_monitor_and_one_entry_per_daemon() {
        let now = Instant::now();
        let mut table = vec![0i16; 128];
        table[0] = 1;
        let full = i16s(Order::Big, &table);
        let b = packet(Order::Big, PARTITION_TYPE, 0, 6543, 0xABCD_1234, &full);
        let mut safe = Monitor::new(cfg(false), now);
        assert_eq!(safe.on_packet(now, src("127.0.0.1", 6543), &b), None);
        assert_eq!(safe.next_deadline(), None);

        let mut m = Monitor::new(cfg(true), now);
        assert_eq!(m.on_packet(now, src("127.0.0.1", 6543), &b), Some(Request::Partition(vec![1, 0, 0])));
        assert_eq!(m.next_deadline(), Some(now + PARTITION_TIMEOUT));
        assert!(!m.partition_expired(now + Duration::from_secs(59)));
        assert!(m.partition_expired(now + PARTITION_TIMEOUT));
        assert_eq!(m.next_deadline(), None);
        // Exactly three entries (odd payloads of enough bytes are taken too).
        let short = packet(Order::Big, PARTITION_TYPE, 0, 6543, 0xABCD_1234, &full[..6]);
        assert_eq!(m.on_packet(now, src("127.0.0.1", 6543), &short), Some(Request::Partition(vec![1, 0, 0])));
        let too_short = packet(Order::Big, PARTITION_TYPE, 0, 6543, 0xABCD_1234, &full[..5]);
        assert_eq!(m.on_packet(now, src("127.0.0.1", 6543), &too_short), None);
    }

    #[test]
    fn flow_control_reads_the_window_after_the_daemons_and_my_own_pair() {
        let now = Instant::now();
        let mut table = vec![-1i16; 256];
        table[2 * 3] = 300; // Window: the entry after the 3 daemons.
        table[2] = 40; // my PersonalWindow (proc index 1, first of its pair)
        table[3] = -1; // my AcceleratedWindow: unchanged
        for order in [Order::Little, Order::Big] {
            let b = packet(order, FC_TYPE, 2, 6543, 0xABCD_1234, &i16s(order, &table));
            assert_eq!(Monitor::new(cfg(false), now).on_packet(now, src("127.0.0.3", 6543), &b), None);
            let r = Monitor::new(cfg(true), now).on_packet(now, src("127.0.0.3", 6543), &b);
            assert_eq!(r, Some(Request::FlowControl { window: Some(300), personal: Some(40), accelerated: None }));
            // A payload that ends before the Window entry is refused.
            let short = packet(order, FC_TYPE, 2, 6543, 0xABCD_1234, &i16s(order, &table[..6]));
            assert_eq!(Monitor::new(cfg(true), now).on_packet(now, src("127.0.0.3", 6543), &short), None);
        }
    }

    #[test]
    fn reload_is_passed_on() {
        let now = Instant::now();
        let mut m = Monitor::new(cfg(false), now);
        let b = packet(Order::NATIVE, RELOAD_TYPE, 1, 6543, 0xABCD_1234, &[]);
        assert_eq!(m.on_packet(now, src("127.0.0.2", 6543), &b), Some(Request::Reload));
    }

    #[test]
    fn status_reply_bytes_are_the_original_layout() {
        let now = Instant::now();
        let mut m = Monitor::new(cfg(false), now);
        let mut s = m.base_status(now + Duration::from_millis(2500));
        s.packet_sent = 0x0102_0304;
        s.num_sessions = 7;
        m.queue_reply(src("127.0.0.1", 6543), &s);
        let d = m.poll_reply().unwrap();
        assert_eq!(d.to, src("127.0.0.1", 6543));
        assert_eq!(d.bytes.len(), 40 + 96);
        let o = Order::NATIVE;
        assert_eq!(o.read_u32(&d.bytes[0..4]) & !spread_wire::consts::ENDIAN_RESERVED, STATUS_TYPE);
        assert_eq!(o.read_u32(&d.bytes[8..12]), 0x7F00_0002, "proc_id: my VID");
        assert_eq!(o.read_u16(&d.bytes[32..34]), 96, "data_len");
        // Everything else in the header is 0: transmitter, ring id, seq, round, hash, padding, fragment.
        assert!(d.bytes[4..8].iter().chain(&d.bytes[12..32]).chain(&d.bytes[34..40]).all(|&x| x == 0));
        let p = &d.bytes[40..];
        assert_eq!(o.read_i32(&p[0..4]), 2, "sec");
        assert_eq!(o.read_i32(&p[12..16]), 0x0102_0304, "packet_sent");
        assert_eq!(o.read_i32(&p[60..64]), 0x7F00_0002, "my_id");
        assert_eq!(o.read_i16(&p[78..80]), 160, "window");
        assert_eq!(o.read_i16(&p[86..88]), 7, "num_sessions");
        assert_eq!([o.read_i16(&p[90..92]), o.read_i16(&p[92..94]), o.read_i16(&p[94..96])], [5, 0, 1]);
        assert!(m.poll_reply().is_none());
    }
}
