//! Configuration reload (daemon spec §1.9) on real sockets: our daemons on
//! loopback re-read their spread.conf on SIGHUP and on the monitor's RELOAD
//! packet; a daemon added to the file joins the ring, one removed is left
//! out, and a file that cannot be taken (a syntax error, this daemon's own
//! address changed, a lone daemon given company) is refused with a message
//! while the daemon goes on serving on the configuration in force.
//!
//! Ports 26900–26999 (each daemon uses P, P+1 and /tmp/P).

mod daemon_util;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use daemon_util::*;
use spread_daemon::config;
use spread_wire::daemon::{PacketHeader, RELOAD_TYPE};
use spread_wire::endian::Order;

const FAST: &str = "TokenTimeout = 1000\nHurryTimeout = 200\nAliveTimeout = 100\nJoinTimeout = 100\n\
RepTimeout = 300\nSegTimeout = 200\nGatherTimeout = 500\nFormTimeout = 500\nLookupTimeout = 2000\n";

const REG_MEMB: u32 = spread_wire::consts::REG_MEMB_MESS;
const AGREED: u32 = 0x04;

/// A spread.conf of daemons `m<i>` on 127.0.0.1, each in a segment of its
/// own at `ports[i]`.
fn conf(ports: &[u16], names: &[&str], extra: &str) -> String {
    let mut text = format!("{FAST}{extra}");
    for (p, n) in ports.iter().zip(names) {
        text.push_str(&format!("Spread_Segment 127.0.0.255:{p} {{\n\t{n}\t127.0.0.1\n}}\n"));
    }
    text
}

fn dir(base: u16) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rspread-reload-{base}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, text: &str) {
    std::fs::write(dir.join("spread.conf"), text).unwrap();
}

fn sighup(d: &Daemon) {
    // SAFETY: kill(2) on the pid of a child this test started.
    unsafe { libc::kill(d.pid(), libc::SIGHUP) };
}

/// Read (bounded) until a message with body `body`.
fn wait_body(c: &mut Client, body: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if c.recv().body == body {
            return;
        }
    }
    panic!("no message {body:?}");
}

/// The monitor's RELOAD, sent as spmonitor does: from a socket on a
/// configured daemon's address, with the hash of the file the daemons run.
fn monitor_reload(cfg: &config::Config, to_port: u16) {
    let sock = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    let vid = cfg.daemons[0].vid as i32;
    let h = PacketHeader {
        type_: RELOAD_TYPE,
        transmiter_id: vid,
        proc_id: vid,
        seq: sock.local_addr().unwrap().port() as i32,
        conf_hash: cfg.hash(),
        ..PacketHeader::default()
    };
    let mut b = Vec::new();
    h.encode(Order::NATIVE, &mut b);
    sock.send_to(&b, ("127.0.0.1", to_port)).unwrap();
}

#[test]
fn sighup_takes_a_daemon_added_to_the_file() {
    let _g = serial();
    let ports = [26900u16, 26910, 26920];
    let d = dir(26900);
    write(&d, &conf(&ports[..2], &["m1", "m2"], ""));
    let ds: Vec<Daemon> = ["m1", "m2"].iter().zip(ports).map(|(n, p)| Daemon::start_named(n, p, d.clone())).collect();
    let mut a = connect_tcp(ports[0], "a", true);
    let mut b = connect_tcp(ports[1], "b", true);
    a.join("g");
    wait_members(&mut a, "g", 1);
    b.join("g");
    wait_members(&mut a, "g", 2);
    wait_members(&mut b, "g", 2);

    write(&d, &conf(&ports, &["m1", "m2", "m3"], ""));
    for x in &ds {
        sighup(x);
    }
    for x in &ds {
        x.wait_log("Received SIGHUP");
        x.wait_log("taking the new configuration: 3 daemons");
    }
    let m3 = Daemon::start_named("m3", ports[2], d.clone());
    let mut c = connect_tcp(ports[2], "c", true);
    c.join("g");
    wait_members(&mut c, "g", 3);
    wait_members(&mut a, "g", 3);
    wait_members(&mut b, "g", 3);
    c.mcast(AGREED, &["g"], 0, b"after the reload");
    wait_body(&mut a, b"after the reload");
    wait_body(&mut b, b"after the reload");
    drop(m3);
}

#[test]
fn the_monitors_reload_leaves_a_removed_daemon_out() {
    let _g = serial();
    let ports = [26930u16, 26940, 26950];
    let d = dir(26930);
    let old = conf(&ports, &["m1", "m2", "m3"], "");
    write(&d, &old);
    let old_cfg = config::parse_str_with_resolver(&old, "spread.conf", &config::offline_resolver).unwrap();
    let ds: Vec<Daemon> =
        ["m1", "m2", "m3"].iter().zip(ports).map(|(n, p)| Daemon::start_named(n, p, d.clone())).collect();
    let mut cs: Vec<Client> = ports.iter().zip(["a", "b", "c"]).map(|(p, n)| connect_tcp(*p, n, true)).collect();
    for c in cs.iter_mut() {
        c.join("g");
    }
    for c in cs.iter_mut() {
        wait_members(c, "g", 3);
    }

    write(&d, &conf(&ports[..2], &["m1", "m2"], ""));
    for p in &ports[..2] {
        monitor_reload(&old_cfg, *p);
    }
    for x in &ds[..2] {
        x.wait_log("the monitor at 127.0.0.1");
        x.wait_log("taking the new configuration: 2 daemons");
    }
    wait_members(&mut cs[0], "g", 2);
    wait_members(&mut cs[1], "g", 2);
    // m3 still runs the old file, alone now.
    wait_members(&mut cs[2], "g", 1);
    cs[1].mcast(AGREED, &["g"], 0, b"two of us");
    wait_body(&mut cs[0], b"two of us");
}

#[test]
fn a_file_that_cannot_be_taken_is_refused_and_the_daemon_goes_on() {
    let _g = serial();
    let ports = [26960u16, 26970];
    let d = dir(26960);
    let good = conf(&ports, &["m1", "m2"], "");
    write(&d, &good);
    let ds: Vec<Daemon> = ["m1", "m2"].iter().zip(ports).map(|(n, p)| Daemon::start_named(n, p, d.clone())).collect();
    let mut a = connect_tcp(ports[0], "a", true);
    let mut b = connect_tcp(ports[1], "b", true);
    a.join("g");
    b.join("g");
    wait_members(&mut a, "g", 2);
    wait_members(&mut b, "g", 2);

    // A syntax error: refused, with the line.
    write(&d, &format!("{good}\nSpread_Segment {{ nonsense\n"));
    sighup(&ds[0]);
    let l = ds[0].wait_log("Configuration reload refused:");
    assert!(l.contains("spread.conf:") && l.contains("keeps running"), "{l}");

    // This daemon's own port changed: the original exits; ours refuses.
    write(&d, &conf(&[26965, ports[1]], &["m1", "m2"], ""));
    sighup(&ds[0]);
    let l = ds[0].wait_log("Configuration reload refused:");
    assert!(l.contains("My daemon parameters have changed!"), "{l}");

    // The ring is as it was: no membership change, messages flow.
    a.mcast(AGREED, &["g"], 0, b"still here");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "b never got the message");
        let m = b.recv();
        assert_eq!(m.type_ & REG_MEMB, 0, "a membership change after a refused reload");
        if m.body == b"still here" {
            break;
        }
    }

    // A daemon started alone in its file runs no ring: other daemons need
    // a restart.
    let lone_port = 26980u16;
    let lone_dir = dir(26980);
    write(&lone_dir, &conf(&[lone_port], &["l1"], ""));
    let lone = Daemon::start_named("l1", lone_port, lone_dir.clone());
    write(&lone_dir, &conf(&[lone_port, 26990], &["l1", "l2"], ""));
    sighup(&lone);
    let l = lone.wait_log("Configuration reload refused:");
    assert!(l.contains("needs a restart"), "{l}");
    let mut c = connect_tcp(lone_port, "c", true);
    c.join("h");
    wait_members(&mut c, "h", 1);
    // An unchanged file is taken.
    write(&lone_dir, &conf(&[lone_port], &["l1"], "MaxSessionMessages = 500\n"));
    sighup(&lone);
    lone.wait_log("taking the new configuration: 1 daemons");
}
