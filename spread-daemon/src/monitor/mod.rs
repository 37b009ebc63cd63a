//! `spmonitor`, the monitor of the 5.0.1 daemons (daemon spec §8): its state,
//! its menu commands and its timers, independent of the terminal and the
//! socket ([`Io`]); `src/bin/spmonitor.rs` runs it on stdin/stdout and a UDP
//! socket.
//!
//! * [`options`] — command line, banner, configuration loading;
//! * [`packet`] — the control packets it sends;
//! * [`dialog`] — menu, table dialogs and their printouts;
//! * [`report`] — status replies as printed.
//!
//! The monitor runs as one of the configured daemons (its address must be
//! local) and sends from `<that daemon's address>:<monitor port>`. Status
//! queries go once to every daemon chosen with command 0 and again every
//! interval; partitions, flow control, "terminate" and reload go twice to
//! each target's data port. A partition that was sent is sent again every
//! 25 s until it is cancelled (the daemons drop a partition they have not
//! heard of for 60 s).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use spread_wire::daemon::MAX_PROCS_RING;

use crate::config::{Config, MeInfo};

pub mod dialog;
pub mod options;
pub mod packet;
pub mod report;

use dialog::{Pick, MENU, PROMPT};
use packet::{FcTable, PartitionTable, Sender};
use report::Reports;

/// How often an active partition is sent again.
pub const PARTITION_RESEND: Duration = Duration::from_secs(25);

/// Why the monitor stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// End of input or the exit command; `Bye.` has been printed. Exit 0.
    Bye,
    /// A fatal error (a reloaded configuration that cannot be used): print
    /// this and end as the original's fatal log does.
    Fatal(String),
}

/// What the monitor needs from its surroundings.
pub trait Io {
    /// The next input line as `fgets(buf, 70, stdin)` returns it (at most 69
    /// bytes, the newline included if it fits); `None` at end of input.
    /// Pending output must be visible before this blocks.
    fn read_line(&mut self) -> Option<Vec<u8>>;
    /// Print to the user.
    fn print(&mut self, text: &[u8]);
    /// Send one datagram from the monitor's socket.
    fn send(&mut self, to: SocketAddr, packet: &[u8]);
    /// Read the configuration again (command `r`); `Err` is fatal.
    fn load_config(&mut self, previous: &Config) -> Result<(Config, MeInfo), String>;
}

/// Input split into lines the way `fgets` with a 70-byte buffer splits it.
#[derive(Clone, Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    eof: bool,
}

/// The most bytes one `fgets(buf, 70, …)` returns.
pub const MAX_LINE: usize = 69;

impl LineBuffer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// No more input will come.
    pub fn set_eof(&mut self) {
        self.eof = true;
    }

    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// `true` if [`LineBuffer::take`] would return without more input.
    pub fn ready(&self) -> bool {
        self.eof || self.buf.len() >= MAX_LINE || self.buf.contains(&b'\n')
    }

    /// `Some(Some(line))` for a line, `Some(None)` at end of input, `None`
    /// if more input is needed first.
    pub fn take(&mut self) -> Option<Option<Vec<u8>>> {
        let window = &self.buf[..self.buf.len().min(MAX_LINE)];
        let n = match window.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if self.buf.len() >= MAX_LINE => MAX_LINE,
            None if self.eof && !self.buf.is_empty() => self.buf.len(),
            None if self.eof => return Some(None),
            None => return None,
        };
        Some(Some(self.buf.drain(..n).collect()))
    }
}

/// The monitor's state.
#[derive(Clone, Debug)]
pub struct Monitor {
    conf: Config,
    sender: Sender,
    interval: Duration,
    /// The partition last sent (what "terminate" keeps for the others).
    partition: PartitionTable,
    /// The partition being defined (command 1).
    work_partition: PartitionTable,
    fc: FcTable,
    work_fc: FcTable,
    /// Daemons that get periodic status queries, by proc index.
    status_vector: [bool; MAX_PROCS_RING],
    status_due: Option<Instant>,
    partition_due: Option<Instant>,
    reports: Reports,
}

impl Monitor {
    /// A monitor running as daemon `me` of `conf`, with its socket on `port`.
    pub fn new(conf: Config, me: &MeInfo, port: u16, interval: Duration) -> Monitor {
        let sender = Sender { vid: me.daemon.vid, port, conf_hash: conf.hash() };
        Monitor {
            conf,
            sender,
            interval,
            partition: [0; MAX_PROCS_RING],
            work_partition: [0; MAX_PROCS_RING],
            fc: [[0; 2]; MAX_PROCS_RING],
            work_fc: [[0; 2]; MAX_PROCS_RING],
            status_vector: [false; MAX_PROCS_RING],
            status_due: None,
            partition_due: None,
            reports: Reports::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.conf
    }

    pub fn sender(&self) -> Sender {
        self.sender
    }

    /// The partition last sent.
    pub fn partition(&self) -> &PartitionTable {
        &self.partition
    }

    /// The flow-control table last sent.
    pub fn flow_control(&self) -> &FcTable {
        &self.fc
    }

    /// Daemons chosen for periodic status queries.
    pub fn status_targets(&self) -> Vec<usize> {
        (0..self.conf.daemons.len()).filter(|&i| self.status_vector[i]).collect()
    }

    /// `true` while a sent partition is re-sent periodically.
    pub fn partition_active(&self) -> bool {
        self.partition_due.is_some()
    }

    /// `true` while status queries go out periodically.
    pub fn status_active(&self) -> bool {
        self.status_due.is_some()
    }

    fn num_procs(&self) -> usize {
        self.conf.daemons.len()
    }

    fn accelerated(&self) -> bool {
        self.conf.accelerated_ring()
    }

    /// Proc indexes segment by segment, as every loop of the original goes.
    fn procs_in_order(&self) -> Vec<usize> {
        self.conf.segments.iter().flat_map(|s| s.daemons.iter().copied()).collect()
    }

    /// Print the menu (at start-up, and after an unknown command).
    pub fn print_menu(&self, io: &mut dyn Io) {
        io.print(MENU.as_bytes());
    }

    /// When a timer is due next.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.status_due, self.partition_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run the timers that are due at `now`.
    pub fn on_timers(&mut self, now: Instant, io: &mut dyn Io) {
        if self.status_due.is_some_and(|t| t <= now) {
            self.send_status_query(now, io);
        }
        if self.partition_due.is_some_and(|t| t <= now) {
            self.send_partition(now, io);
        }
    }

    /// A datagram arrived on the monitor's socket: print it as a status report.
    pub fn receive(&mut self, data: &[u8], io: &mut dyn Io) {
        if data.is_empty() {
            return;
        }
        let text = self.reports.receive(&self.conf, data);
        io.print(&text);
    }

    fn later(now: Instant, d: Duration) -> Instant {
        // An interval too long for the clock: as good as never.
        now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
    }

    fn send_status_query(&mut self, now: Instant, io: &mut dyn Io) {
        io.print(b"Monitor: send status query\n");
        let pkt = self.sender.status_query();
        for p in self.procs_in_order() {
            if self.status_vector[p] {
                io.send(self.conf.daemons[p].addr, &pkt);
            }
        }
        self.status_due = Some(Self::later(now, self.interval));
    }

    fn send_twice(&self, to: &[usize], pkt: &[u8], io: &mut dyn Io) {
        for &p in to {
            let a = self.conf.daemons[p].addr;
            io.send(a, pkt);
            io.send(a, pkt);
        }
    }

    fn send_partition(&mut self, now: Instant, io: &mut dyn Io) {
        io.print(b"Monitor: send partition\n");
        let pkt = self.sender.partition(&self.partition);
        self.send_twice(&self.procs_in_order(), &pkt, io);
        self.partition_due = Some(Self::later(now, PARTITION_RESEND));
    }

    fn send_flow_control(&mut self, io: &mut dyn Io) {
        io.print(b"Monitor: send flow control params\n");
        let pkt = self.sender.flow_control(&self.fc);
        self.send_twice(&self.procs_in_order(), &pkt, io);
    }

    /// Command 0: choose the daemons that get status queries.
    fn activate_status(&mut self, now: Instant, io: &mut dyn Io) -> Result<(), Stop> {
        io.print(b"\n=============\nActivate Status\n-------------\n\n");
        let n = self.num_procs();
        let v = &mut self.status_vector;
        dialog::pick_procs(&self.conf, "\tEnter Proc Name: ", io, &mut |p| match p {
            Pick::All => v[..n].fill(true),
            Pick::None => v[..n].fill(false),
            Pick::One(i) => v[i] = true,
        })?;
        self.status_due = None;
        if self.status_vector[..n].iter().any(|&b| b) {
            self.send_status_query(now, io);
        }
        Ok(())
    }

    /// Command 8: a partition with −1 for each victim (the others keep the
    /// partition in force), sent only to the victims.
    fn kill(&mut self, io: &mut dyn Io) -> Result<(), Stop> {
        let n = self.num_procs();
        let mut kill: PartitionTable = [0; MAX_PROCS_RING];
        dialog::pick_procs(&self.conf, "\tEnter Proc Name to Terminate: ", io, &mut |p| match p {
            Pick::All => kill[..n].fill(-1),
            Pick::None => kill[..n].fill(0),
            Pick::One(i) => kill[i] = -1,
        })?;
        for (k, &current) in kill[..n].iter_mut().zip(&self.partition[..n]) {
            if *k != -1 {
                *k = current;
            }
        }
        let pkt = self.sender.partition(&kill);
        for p in self.procs_in_order() {
            if kill[p] == -1 {
                io.print(b"Monitor: Terminating ");
                io.print(&self.conf.daemons[p].name_bytes);
                io.print(b"\n");
                self.send_twice(&[p], &pkt, io);
            }
        }
        Ok(())
    }

    /// Command r: tell every daemon of the configuration in force to reload,
    /// then read the file again and forget every table and timer.
    fn reload(&mut self, io: &mut dyn Io) -> Result<(), Stop> {
        io.print(format!("Old configuration hash is: {}\n", self.conf.hash()).as_bytes());
        io.print(b"Monitor: send conf reload command\n");
        let pkt = self.sender.reload();
        self.send_twice(&self.procs_in_order(), &pkt, io);
        let (conf, me) = io.load_config(&self.conf).map_err(Stop::Fatal)?;
        self.sender = Sender { vid: me.daemon.vid, port: self.sender.port, conf_hash: conf.hash() };
        self.conf = conf;
        let n = self.num_procs();
        self.partition[..n].fill(0);
        self.work_partition[..n].fill(0);
        self.fc[..n].fill([0, 0]);
        self.work_fc[..n].fill([0, 0]);
        self.status_vector[..n].fill(false);
        self.partition_due = None;
        self.status_due = None;
        io.print(format!("New configuration hash is: {}\n", self.conf.hash()).as_bytes());
        io.print(b"All Status, Partition, FC, etc commands are reset by configuration reload!\n");
        Ok(())
    }

    /// Read one command line and carry it out.
    pub fn user_command(&mut self, now: Instant, io: &mut dyn Io) -> Result<(), Stop> {
        let line = dialog::answer(io)?;
        match line.first() {
            Some(b'0') => {
                self.activate_status(now, io)?;
                io.print(PROMPT.as_bytes());
            }
            Some(b'1') => {
                dialog::define_partition(&self.conf, &mut self.work_partition, io)?;
                dialog::print_partition(&self.conf, &self.work_partition, io);
            }
            Some(b'2') => {
                let n = self.num_procs();
                self.partition[..n].copy_from_slice(&self.work_partition[..n]);
                self.send_partition(now, io);
                io.print(PROMPT.as_bytes());
            }
            Some(b'3') => dialog::print_partition(&self.conf, &self.partition, io),
            Some(b'4') => {
                let n = self.num_procs();
                self.partition[..n].fill(0);
                self.work_partition[..n].fill(0);
                self.send_partition(now, io);
                self.partition_due = None;
                io.print(PROMPT.as_bytes());
            }
            Some(b'5') => {
                dialog::define_flow_control(&self.conf, self.accelerated(), &mut self.work_fc, io)?;
                dialog::print_flow_control(&self.conf, self.accelerated(), &self.work_fc, io);
            }
            Some(b'6') => {
                let n = (self.num_procs() + 1).min(MAX_PROCS_RING);
                self.fc[..n].copy_from_slice(&self.work_fc[..n]);
                self.send_flow_control(io);
                io.print(PROMPT.as_bytes());
            }
            Some(b'7') => dialog::print_flow_control(&self.conf, self.accelerated(), &self.fc, io),
            Some(b'8') => {
                self.kill(io)?;
                io.print(PROMPT.as_bytes());
            }
            Some(b'r') => {
                self.reload(io)?;
                io.print(b"Reload Membership. \n");
            }
            Some(b'9') | Some(b'q') => {
                io.print(b"Bye.\n");
                return Err(Stop::Bye);
            }
            _ => {
                io.print(b"\nUnknown commnad\n");
                self.print_menu(io);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testio {
    use super::*;

    /// Scripted input, recorded output and datagrams.
    pub struct TestIo {
        pub input: LineBuffer,
        pub out: Vec<u8>,
        pub sent: Vec<(SocketAddr, Vec<u8>)>,
        pub next_config: Option<Result<(Config, MeInfo), String>>,
    }

    impl TestIo {
        pub fn new(input: &[u8]) -> TestIo {
            let mut b = LineBuffer::default();
            b.push(input);
            b.set_eof();
            TestIo { input: b, out: Vec::new(), sent: Vec::new(), next_config: None }
        }

        pub fn output(&self) -> String {
            String::from_utf8_lossy(&self.out).into_owned()
        }

        /// Output and datagrams so far, then forget them.
        pub fn take(&mut self) -> (String, Vec<(SocketAddr, Vec<u8>)>) {
            let o = self.output();
            self.out.clear();
            (o, std::mem::take(&mut self.sent))
        }
    }

    impl Io for TestIo {
        fn read_line(&mut self) -> Option<Vec<u8>> {
            self.input.take().flatten()
        }
        fn print(&mut self, text: &[u8]) {
            self.out.extend_from_slice(text);
        }
        fn send(&mut self, to: SocketAddr, packet: &[u8]) {
            self.sent.push((to, packet.to_vec()));
        }
        fn load_config(&mut self, _previous: &Config) -> Result<(Config, MeInfo), String> {
            self.next_config.take().unwrap_or_else(|| Err("no configuration scripted\n".to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testio::TestIo;
    use super::*;
    use spread_wire::daemon::{ControlBody, Packet, PacketHeader, FC_TYPE, PARTITION_TYPE, RELOAD_TYPE, STATUS_TYPE};

    const TWO_SEGMENTS: &str = "Spread_Segment 127.0.0.255:4803 {\n da 127.0.0.1\n db 127.0.0.2\n}\n\
                                Spread_Segment 127.0.1.255:4813 {\n dc 127.0.1.1\n}\n";

    fn setup(text: &str) -> (Config, MeInfo) {
        let c = crate::config::parse_str_with_resolver(text, "t.conf", &crate::config::offline_resolver).unwrap();
        let locals = [SocketAddr::from(([127, 0, 0, 1], 0))];
        let me = c.find_me_among(None, &locals).unwrap();
        (c, me)
    }

    fn monitor() -> Monitor {
        let (c, me) = setup(TWO_SEGMENTS);
        Monitor::new(c, &me, 28150, Duration::from_secs(10))
    }

    fn decode(b: &[u8]) -> (PacketHeader, ControlBody) {
        match Packet::decode(b).unwrap().1 {
            Packet::Control(c) => (c.header, c.body),
            p => panic!("not a control packet: {p:?}"),
        }
    }

    fn run(m: &mut Monitor, io: &mut TestIo, now: Instant) -> Result<(), Stop> {
        m.user_command(now, io)
    }

    #[test]
    fn line_buffer_splits_like_fgets() {
        let mut b = LineBuffer::default();
        b.push(b"ab");
        assert!(!b.ready());
        assert_eq!(b.take(), None);
        b.push(b"\ncd");
        assert_eq!(b.take(), Some(Some(b"ab\n".to_vec())));
        b.push(&[b'x'; 80]);
        assert_eq!(b.take().unwrap().unwrap().len(), MAX_LINE);
        b.set_eof();
        assert_eq!(b.take().unwrap().unwrap().len(), 2 + 80 - MAX_LINE);
        assert_eq!(b.take(), Some(None));
    }

    #[test]
    fn status_queries_once_to_the_chosen_and_again_every_interval() {
        let mut m = monitor();
        let t0 = Instant::now();
        let mut io = TestIo::new(b"0\ndb\ndc\n\n");
        run(&mut m, &mut io, t0).unwrap();
        let (out, sent) = io.take();
        assert_eq!(
            out,
            "\n=============\nActivate Status\n-------------\n\n\
             \tEnter Proc Name: \tEnter Proc Name: \tEnter Proc Name: Monitor: send status query\n\nMonitor> "
        );
        let to: Vec<SocketAddr> = sent.iter().map(|s| s.0).collect();
        assert_eq!(to, vec![m.config().daemons[1].addr, m.config().daemons[2].addr]);
        let (h, body) = decode(&sent[0].1);
        assert_eq!(h.type_, STATUS_TYPE);
        assert_eq!(body, ControlBody::StatusQuery);
        assert_eq!(h.seq, 28150);
        assert_eq!(h.proc_id as u32, m.config().daemons[0].vid);
        assert_eq!(h.transmiter_id as u32, m.config().daemons[0].vid);
        assert_eq!(h.conf_hash, m.config().hash());
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_secs(10)));
        m.on_timers(t0 + Duration::from_secs(9), &mut io);
        assert!(io.take().1.is_empty());
        m.on_timers(t0 + Duration::from_secs(10), &mut io);
        let (out, sent) = io.take();
        assert_eq!(out, "Monitor: send status query\n");
        assert_eq!(sent.len(), 2);
        // "none" stops them
        let mut io = TestIo::new(b"0\nnone\n\n");
        run(&mut m, &mut io, t0).unwrap();
        assert!(io.sent.is_empty());
        assert!(!m.status_active());
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn partition_define_send_resend_and_cancel() {
        let mut m = monitor();
        let t0 = Instant::now();
        let mut io = TestIo::new(b"1\n1\n1\n2\n");
        run(&mut m, &mut io, t0).unwrap();
        assert!(io.sent.is_empty(), "defining sends nothing");
        assert_eq!(m.partition()[..3], [0, 0, 0]);
        let mut io = TestIo::new(b"2\n");
        run(&mut m, &mut io, t0).unwrap();
        let (out, sent) = io.take();
        assert_eq!(out, "Monitor: send partition\n\nMonitor> ");
        assert_eq!(sent.len(), 6, "twice to each of three daemons");
        let d = &m.config().daemons;
        let to: Vec<SocketAddr> = sent.iter().map(|s| s.0).collect();
        assert_eq!(to, vec![d[0].addr, d[0].addr, d[1].addr, d[1].addr, d[2].addr, d[2].addr]);
        let (h, body) = decode(&sent[0].1);
        assert_eq!(h.type_, PARTITION_TYPE);
        assert_eq!(h.data_len, 256);
        let mut want = vec![0i16; MAX_PROCS_RING];
        want[..3].copy_from_slice(&[1, 1, 2]);
        assert_eq!(body, ControlBody::Partition(want.clone()));
        assert!(m.partition_active());
        m.on_timers(t0 + PARTITION_RESEND, &mut io);
        let (out, sent) = io.take();
        assert_eq!(out, "Monitor: send partition\n");
        assert_eq!(sent.len(), 6);
        assert_eq!(decode(&sent[5].1).1, ControlBody::Partition(want));
        // review, cancel
        let mut io = TestIo::new(b"3\n");
        run(&mut m, &mut io, t0).unwrap();
        assert!(io.output().contains("\tda\t1\n\tdb\t1\n\n\tdc\t2\n"), "{}", io.output());
        let mut io = TestIo::new(b"4\n");
        run(&mut m, &mut io, t0).unwrap();
        let (out, sent) = io.take();
        assert_eq!(out, "Monitor: send partition\n\nMonitor> ");
        assert_eq!(sent.len(), 6);
        assert_eq!(decode(&sent[0].1).1, ControlBody::Partition(vec![0; MAX_PROCS_RING]));
        assert!(!m.partition_active());
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn flow_control_define_and_send() {
        let mut m = monitor();
        let now = Instant::now();
        let mut io = TestIo::new(b"5\n300\n30\n\n25\n");
        run(&mut m, &mut io, now).unwrap();
        assert!(io.output().ends_with("Window size:  300\n\n\tda personal window\t30\n\tdb personal window\t-1\n\n\tdc personal window\t25\n\n\nMonitor> "), "{}", io.output());
        let mut io = TestIo::new(b"7\n");
        run(&mut m, &mut io, now).unwrap();
        assert!(io.output().contains("Window size:  0\n"), "not sent yet: {}", io.output());
        let mut io = TestIo::new(b"6\n");
        run(&mut m, &mut io, now).unwrap();
        let (out, sent) = io.take();
        assert_eq!(out, "Monitor: send flow control params\n\nMonitor> ");
        assert_eq!(sent.len(), 6);
        let (h, body) = decode(&sent[0].1);
        assert_eq!(h.type_, FC_TYPE);
        assert_eq!(h.data_len, 512);
        let ControlBody::FlowControl(t) = body else { panic!() };
        assert_eq!(&t[..4], &[[30, 0], [-1, 0], [25, 0], [300, 0]]);
        assert_eq!(m.flow_control()[3], [300, 0]);
    }

    #[test]
    fn terminate_sends_only_to_the_victims() {
        let mut m = monitor();
        let now = Instant::now();
        let mut io = TestIo::new(b"1\n3\n4\n5\n2\n");
        run(&mut m, &mut io, now).unwrap();
        run(&mut m, &mut io, now).unwrap();
        io.take();
        let mut io = TestIo::new(b"8\ndb\n\n");
        run(&mut m, &mut io, now).unwrap();
        let (out, sent) = io.take();
        assert_eq!(
            out,
            "\tEnter Proc Name to Terminate: \tEnter Proc Name to Terminate: Monitor: Terminating db\n\nMonitor> "
        );
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|s| s.0 == m.config().daemons[1].addr));
        let mut want = vec![0i16; MAX_PROCS_RING];
        want[..3].copy_from_slice(&[3, -1, 5]);
        assert_eq!(decode(&sent[0].1).1, ControlBody::Partition(want));
        let mut io = TestIo::new(b"8\nall\nnone\n\n");
        run(&mut m, &mut io, now).unwrap();
        assert!(io.sent.is_empty(), "none after all: nobody");
    }

    #[test]
    fn reload_tells_the_old_daemons_then_resets() {
        let mut m = monitor();
        let now = Instant::now();
        let mut io = TestIo::new(b"0\nall\n\n1\n1\n2\n3\n2\n");
        for _ in 0..3 {
            run(&mut m, &mut io, now).unwrap();
        }
        assert!(m.status_active() && m.partition_active());
        io.take();
        let old_hash = m.config().hash();
        let new_text = "Spread_Segment 127.0.0.255:4803 {\n da 127.0.0.1\n}\n";
        let mut io = TestIo::new(b"r\n");
        io.next_config = Some(Ok(setup(new_text)));
        let old_addrs: Vec<SocketAddr> = m.config().daemons.iter().map(|d| d.addr).collect();
        run(&mut m, &mut io, now).unwrap();
        let (out, sent) = io.take();
        let new_hash = m.config().hash();
        assert_ne!(old_hash, new_hash);
        assert_eq!(
            out,
            format!(
                "Old configuration hash is: {old_hash}\nMonitor: send conf reload command\n\
                 New configuration hash is: {new_hash}\n\
                 All Status, Partition, FC, etc commands are reset by configuration reload!\nReload Membership. \n"
            )
        );
        assert_eq!(sent.len(), 6);
        let to: Vec<SocketAddr> = sent.iter().map(|s| s.0).collect();
        assert_eq!(to, old_addrs.iter().flat_map(|a| [*a, *a]).collect::<Vec<_>>());
        let (h, body) = decode(&sent[0].1);
        assert_eq!((h.type_, body, h.conf_hash), (RELOAD_TYPE, ControlBody::Reload, old_hash));
        assert!(!m.status_active() && !m.partition_active());
        assert_eq!(m.partition()[0], 0);
        assert!(m.status_targets().is_empty());
        assert_eq!(m.sender().conf_hash, new_hash);
        // a reload that fails is fatal
        let mut io = TestIo::new(b"r\n");
        io.next_config = Some(Err("Conf_load_conf_file: error opening config file x and alternates!\n".into()));
        assert!(matches!(run(&mut m, &mut io, now), Err(Stop::Fatal(_))));
    }

    #[test]
    fn unknown_commands_exit_and_end_of_input() {
        let mut m = monitor();
        let now = Instant::now();
        let mut io = TestIo::new(b"\nx\nq\n");
        run(&mut m, &mut io, now).unwrap();
        assert_eq!(io.output(), format!("\nUnknown commnad\n{MENU}"));
        run(&mut m, &mut io, now).unwrap();
        io.take();
        assert_eq!(run(&mut m, &mut io, now), Err(Stop::Bye));
        assert_eq!(io.output(), "Bye.\n");
        let mut io = TestIo::new(b"9\n");
        assert_eq!(run(&mut m, &mut io, now), Err(Stop::Bye));
        let mut io = TestIo::new(b"");
        assert_eq!(run(&mut m, &mut io, now), Err(Stop::Bye));
        assert_eq!(io.output(), "Bye.\n");
        // end of input inside a dialog
        let mut io = TestIo::new(b"0\nda\n");
        assert_eq!(run(&mut m, &mut io, now), Err(Stop::Bye));
        assert!(io.output().ends_with("\tEnter Proc Name: \tEnter Proc Name: Bye.\n"), "{}", io.output());
    }

    #[test]
    fn a_status_reply_is_printed() {
        let mut m = monitor();
        let s = spread_wire::daemon::Status {
            my_id: m.config().daemons[2].vid as i32,
            leader_id: m.config().daemons[2].vid as i32,
            major_version: 5,
            patch_version: 1,
            ..Default::default()
        };
        let pkt = spread_wire::daemon::ControlPacket {
            header: PacketHeader { type_: STATUS_TYPE, proc_id: s.my_id, ..PacketHeader::default() },
            body: ControlBody::StatusReply(s),
        };
        let mut b = Vec::new();
        pkt.encode(spread_wire::Order::NATIVE, &mut b).unwrap();
        let mut io = TestIo::new(b"");
        m.receive(&b, &mut io);
        assert!(io.output().starts_with("\n============================\nStatus at dc V 5.00. 1 (state 0, gstate 0) after 0 seconds :\nMembership  :  0  procs in 0 segments, leader is dc, regular protocol\n"), "{}", io.output());
        assert!(io.output().ends_with("\nMonitor> "));
    }
}
