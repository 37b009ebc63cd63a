//! The monitor protocol (daemon spec §8) on real sockets: a ring of two of
//! our daemons on loopback answers status queries with its figures, and
//! with `DangerousMonitor = true` obeys partitions (the ring splits and
//! merges again when the partition is cancelled) and the monitor's kill.
//! Without it a partition is refused and logged. With `SPREAD_REF_PREFIX`
//! the original's `spmonitor` drives our daemons and prints their figures.
//!
//! Ports 26700–26799 (each daemon uses P, P+1 and /tmp/P).

mod daemon_util;

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemon_util::*;
use spread_daemon::config;
use spread_wire::daemon::{PacketHeader, Status, PARTITION_TYPE, STATUS_TYPE};
use spread_wire::endian::Order;

const FAST: &str = "TokenTimeout = 1000\nHurryTimeout = 200\nAliveTimeout = 100\nJoinTimeout = 100\n\
RepTimeout = 300\nSegTimeout = 200\nGatherTimeout = 500\nFormTimeout = 500\nLookupTimeout = 2000\n";

struct Ring {
    ds: Vec<Daemon>,
    ports: Vec<u16>,
    cfg: config::Config,
}

fn start(base: u16, extra: &str) -> Ring {
    let ports = vec![base, base + 10];
    let mut text = format!("{FAST}{extra}");
    for (i, p) in ports.iter().enumerate() {
        text.push_str(&format!("Spread_Segment 127.0.0.255:{p} {{\n\tm{}\t127.0.0.1\n}}\n", i + 1));
    }
    let dir = std::env::temp_dir().join(format!("rspread-mon-{base}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spread.conf"), &text).unwrap();
    let cfg = config::parse_str_with_resolver(&text, "spread.conf", &config::offline_resolver).unwrap();
    let ds = (0..2).map(|i| Daemon::start_named(&format!("m{}", i + 1), ports[i], dir.clone())).collect();
    Ring { ds, ports, cfg }
}

/// spmonitor's socket: bound to the address of daemon `as_daemon`, at `port`.
struct Mon<'a> {
    sock: UdpSocket,
    ring: &'a Ring,
    vid: i32,
    port: u16,
}

impl<'a> Mon<'a> {
    fn new(ring: &'a Ring, as_daemon: usize, port: u16) -> Mon<'a> {
        let sock = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Mon { sock, ring, vid: ring.cfg.daemons[as_daemon].vid as i32, port }
    }

    fn send(&self, to: usize, type_: u32, body: &[u8]) {
        let h = PacketHeader {
            type_,
            transmiter_id: self.vid,
            proc_id: self.vid,
            seq: self.port as i32,
            conf_hash: self.ring.cfg.hash(),
            data_len: body.len() as u16,
            ..PacketHeader::default()
        };
        let mut b = Vec::new();
        h.encode(Order::NATIVE, &mut b);
        b.extend_from_slice(body);
        self.sock.send_to(&b, ("127.0.0.1", self.ring.ports[to])).unwrap();
    }

    /// Query daemon `to` until its status satisfies `f` (bounded).
    fn status_until(&self, to: usize, what: &str, f: impl Fn(&Status) -> bool) -> (PacketHeader, Status) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            self.send(to, STATUS_TYPE, &[]);
            let mut buf = [0u8; 2000];
            while let Ok((n, from)) = self.sock.recv_from(&mut buf) {
                let b = &buf[..n];
                let (order, h) = PacketHeader::decode(b).expect("a packet header");
                assert_eq!(n, 40 + 96, "status reply length");
                assert_eq!(from.ip(), "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
                assert_ne!(from.port(), self.ring.ports[to], "replies come from the status socket, not the data port");
                let s = Status::decode(order, &b[40..]).unwrap();
                if s.my_id as u32 == self.ring.cfg.daemons[to].vid {
                    if f(&s) {
                        return (h, s);
                    }
                    last = Some(s);
                }
            }
        }
        panic!("daemon {to} never reported {what}; last status {last:?}");
    }

    fn partition(&self, to: usize, table: &[i16]) {
        let mut full = vec![0i16; 128];
        full[..table.len()].copy_from_slice(table);
        let mut b = Vec::new();
        full.iter().for_each(|&v| Order::NATIVE.push_i16(&mut b, v));
        self.send(to, PARTITION_TYPE, &b);
        self.send(to, PARTITION_TYPE, &b);
    }
}

#[test]
fn status_queries_are_answered_with_each_daemons_figures() {
    let _g = serial();
    let ring = start(26700, "");
    let mon = Mon::new(&ring, 0, 26795);
    let (h, s) = mon.status_until(0, "a ring of two", |s| s.num_procs == 2 && s.state == 1);
    assert_eq!(h.type_ & STATUS_TYPE, STATUS_TYPE);
    assert_eq!(h.proc_id as u32, ring.cfg.daemons[0].vid);
    assert_eq!((h.transmiter_id, h.seq, h.conf_hash, h.data_len), (0, 0, 0, 96));
    assert_eq!((s.major_version, s.minor_version, s.patch_version), (5, 0, 1));
    assert_eq!(s.num_segments, 2);
    assert_eq!(s.leader_id as u32, ring.cfg.daemons[0].vid, "the ring leader: first in conf order");
    assert_eq!((s.window, s.personal_window, s.accelerated_window), (160, 20, 15));
    assert_eq!((s.num_sessions, s.num_groups), (0, 0));

    // Sessions, groups and traffic show up, at both daemons.
    let mut a = connect_tcp(ring.ports[0], "a", true);
    let mut b = connect_tcp(ring.ports[1], "b", true);
    a.join("g");
    wait_members(&mut a, "g", 1);
    b.join("g");
    wait_members(&mut b, "g", 2);
    wait_members(&mut a, "g", 2);
    for k in 0..10 {
        a.mcast(0x08, &["g"], 0, format!("m{k}").as_bytes());
    }
    for _ in 0..10 {
        b.recv();
    }
    let (_, s) = mon.status_until(1, "its session, group and traffic", |s| {
        s.num_sessions == 1 && s.num_groups == 1 && s.message_delivered >= 10
    });
    assert_eq!(s.num_procs, 2);
    // Small messages share packets.
    assert!(s.packet_recv >= 1 && s.highest_seq >= 1 && s.token_rounds > 0, "{s:?}");
    let (_, s) = mon.status_until(0, "its sent packets", |s| s.packet_sent >= 1 && s.message_delivered >= 10);
    assert_eq!((s.num_sessions, s.num_groups), (1, 1));
}

#[test]
fn a_dangerous_monitor_partitions_merges_and_kills() {
    let _g = serial();
    let mut ring = start(26720, "DangerousMonitor = true\n");
    let mut a = connect_tcp(ring.ports[0], "a", true);
    let mut b = connect_tcp(ring.ports[1], "b", true);
    {
        let mon = Mon::new(&ring, 0, 26796);
        mon.status_until(1, "a ring of two", |s| s.num_procs == 2 && s.state == 1);
        a.join("g");
        wait_members(&mut a, "g", 1);
        b.join("g");
        wait_members(&mut b, "g", 2);
        wait_members(&mut a, "g", 2);

        for to in 0..2 {
            mon.partition(to, &[1, 2]);
        }
        ring.ds[1].wait_log("Got monitor partition message; I'm in component 2");
        wait_members(&mut a, "g", 1);
        wait_members(&mut b, "g", 1);
        mon.status_until(0, "a ring of one", |s| s.num_procs == 1);

        // Cancel: all zeros, and the two merge.
        for to in 0..2 {
            mon.partition(to, &[0, 0]);
        }
        wait_members(&mut a, "g", 2);
        wait_members(&mut b, "g", 2);

        // Kill m2: its entry −1, sent to it alone.
        mon.partition(1, &[0, -1]);
    }
    ring.ds[1].wait_log("Instructed to exit by monitor!");
    let mut child = ring.ds[1].child.take().expect("m2 is running");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx.recv_timeout(Duration::from_secs(20)).expect("m2 did not exit").unwrap();
    assert!(!status.success());
    wait_members(&mut a, "g", 1);
}

#[test]
fn without_dangerous_monitor_a_partition_is_refused() {
    let _g = serial();
    let ring = start(26740, "");
    let mon = Mon::new(&ring, 0, 26797);
    mon.status_until(1, "a ring of two", |s| s.num_procs == 2);
    mon.partition(1, &[0, -1]);
    ring.ds[1].wait_log("denied. Daemon in safe mode!");
    let (_, s) = mon.status_until(1, "a ring of two still", |s| s.num_procs == 2);
    assert_eq!(s.state, 1);
}

/// The original's spmonitor (statically linked, from SPREAD_REF_PREFIX)
/// asks our daemons for their status and prints it.
#[test]
fn the_originals_spmonitor_reads_our_daemons() {
    let Some(prefix) = std::env::var_os("SPREAD_REF_PREFIX") else {
        eprintln!("the_originals_spmonitor_reads_our_daemons: skipped: SPREAD_REF_PREFIX is not set (an install prefix of the original 5.0.1)");
        return;
    };
    spmonitor_reads_our_daemons(&std::path::Path::new(&prefix).join("bin/spmonitor"), 26760);
}

/// Our spmonitor does the same.
#[test]
fn our_spmonitor_reads_our_daemons() {
    spmonitor_reads_our_daemons(std::path::Path::new(env!("CARGO_BIN_EXE_spmonitor")), 26780);
}

/// `bin` (menu 0, "all") prints the status of both daemons of a ring
/// started at `base` (monitor ports `base + 33`, `base + 34`).
fn spmonitor_reads_our_daemons(bin: &std::path::Path, base: u16) {
    let _g = serial();
    let ring = start(base, "");
    Mon::new(&ring, 0, base + 33).status_until(1, "a ring of two", |s| s.num_procs == 2 && s.state == 1);
    let _c = connect_tcp(ring.ports[1], "c", true);
    let mport = (base + 34).to_string();
    let mut child = Command::new(bin)
        .args(["-c", "spread.conf", "-n", "m1", "-p", &mport, "-t", "1"])
        .current_dir(&ring.ds[0].dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the original spmonitor");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"0\nall\n\n").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen: Vec<String> = Vec::new();
    let mut report: Option<Vec<String>> = None;
    while report.is_none() && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => {
                seen.push(l);
                if let Some(i) = seen.iter().rposition(|l| l.starts_with("Status at m2 V 5.00. 1 (state 1, gstate 1)"))
                {
                    if seen.len() >= i + 9 {
                        report = Some(seen[i..i + 9].to_vec());
                    }
                }
            }
            Err(_) => continue,
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let r = report.unwrap_or_else(|| panic!("no status of m2 printed; spmonitor printed {seen:#?}"));
    assert!(r[1].starts_with("Membership  :  2  procs in 2 segments, leader is m1, regular protocol"), "{r:#?}");
    assert!(r[6].starts_with("Sessions :       1\tGroups    :       0\tWindow     :     160"), "{r:#?}");
    assert!(r[7].contains("P/A Window :      20/15"), "{r:#?}");
}
