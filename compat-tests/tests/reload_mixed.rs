//! Configuration reload (daemon spec §1.9) in a ring that mixes our daemon
//! with an original 5.0.1 (issue 10 item 2): both re-read the file on the
//! monitor's RELOAD packet (the original's only trigger), a daemon added to
//! the file joins the ring of those that re-read it, and one removed is left
//! out while it runs on alone on the old file.
//!
//! Needs `SPREAD_REF_PREFIX` (an installed original: `sbin/spread`);
//! otherwise it prints why and passes. Ports 29300–29399.

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use compat_tests::daemon::{free_ring_ports, Daemon, FAST_RING};
use compat_tests::frames::{self, Head, Member};
use compat_tests::net::Conn;
use compat_tests::paths::reference_daemon;
use spread_wire::daemon::{PacketHeader, RELOAD_TYPE};
use spread_wire::endian::Order;

const LIMIT: Duration = Duration::from_secs(30);

/// The file's text for daemons `names` on 127.0.0.1, each in a segment of
/// its own; `AcceleratedRing` is written out (a reloaded 5.0.1 daemon
/// otherwise changes it, daemon spec §1.8–§1.9).
fn conf(ports: &[u16], names: &[&str]) -> String {
    let mut s = format!("{FAST_RING}AcceleratedRing = false\n");
    for (p, n) in ports.iter().zip(names) {
        s.push_str(&format!("Spread_Segment 127.0.0.255:{p} {{\n\t{n}\t127.0.0.1\n}}\n"));
    }
    s
}

/// Writes `text` as daemon `d`'s file: at its path, and at the same path
/// inside its run directory, where a daemon that chrooted there (as the
/// original does when started as root) reads it on a reload.
fn rewrite(d: &Daemon, text: &str) {
    let run = d.dir().join("run");
    let text = text.replace("@RUN@", &run.display().to_string());
    std::fs::write(&d.conf_path, &text).unwrap();
    let inside = run.join(d.conf_path.strip_prefix("/").unwrap_or(&d.conf_path));
    std::fs::create_dir_all(inside.parent().unwrap_or(Path::new("/"))).unwrap();
    std::fs::write(inside, &text).unwrap();
}

/// The monitor's RELOAD as spmonitor sends it: from a configured daemon's
/// address, with the hash of the file the daemons run.
fn monitor_reload(old: &str, to_port: u16) {
    let cfg = spread_daemon::config::parse_str_with_resolver(
        &old.replace("@RUN@", "/tmp"),
        "spread.conf",
        &spread_daemon::config::offline_resolver,
    )
    .unwrap();
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

fn is_view(h: &Head, m: &[u8], group: &str, n: i32) -> bool {
    h.type_ & frames::REG_MEMB_MESS != 0 && frames::name_str(&m[4..36]) == group && h.num_groups == n
}

fn member(d: &Daemon, name: &str) -> Member {
    Member::login(Conn::tcp(d.port, LIMIT).expect("connect"), name, LIMIT)
}

fn join(m: &mut Member, g: &str) {
    let f = frames::message(frames::JOIN_MESS, m.pg.as_bytes(), &[g.as_bytes()], 0, b"");
    m.c.write_all(&f).expect("join");
}

fn wait_view(m: &mut Member, g: &str, n: i32) {
    m.until_within(&format!("a view of {g} with {n} members"), LIMIT, |h, b| is_view(h, b, g, n));
}

fn wait_body(m: &mut Member, body: &[u8]) {
    m.until_within("the message", LIMIT, |h, b| {
        h.type_ & frames::AGREED_MESS != 0 && frames::body_offset(b).is_some_and(|o| &b[o..] == body)
    });
}

#[test]
fn a_mixed_ring_reloads_on_the_monitors_command() {
    let test = "a_mixed_ring_reloads_on_the_monitors_command";
    let Some(original) = reference_daemon(test) else { return };
    let ports = free_ring_ports(29300, 3, 10).unwrap();
    let two = conf(&ports[..2], &["m1", "m2"]);
    let three = conf(&ports, &["m1", "m2", "m3"]);
    let d1 = Daemon::start("m1", ports[0], &two).unwrap_or_else(|e| panic!("m1: {e}"));
    let d2 = Daemon::start_bin(&original, "m2", ports[1], &two).unwrap_or_else(|e| panic!("m2: {e}"));
    for d in [&d1, &d2] {
        rewrite(d, &two);
        d.wait_operational(LIMIT).unwrap_or_else(|e| panic!("{test}: {e}"));
    }
    let mut a = member(&d1, "a");
    let mut b = member(&d2, "b");
    join(&mut a, "rg");
    join(&mut b, "rg");
    wait_view(&mut a, "rg", 2);
    wait_view(&mut b, "rg", 2);

    // m3 added: both re-read on the monitor's RELOAD; m3 joins them.
    for d in [&d1, &d2] {
        rewrite(d, &three);
    }
    for p in &ports[..2] {
        monitor_reload(&two, *p);
    }
    // (the original logs nothing on a reload it takes; m3 merging proves it)
    let d3 = Daemon::start("m3", ports[2], &three).unwrap_or_else(|e| panic!("m3: {e}"));
    let mut c = member(&d3, "c");
    join(&mut c, "rg");
    for m in [&mut a, &mut b, &mut c] {
        wait_view(m, "rg", 3);
    }
    c.send(frames::AGREED_MESS, "rg", b"from the added daemon");
    wait_body(&mut a, b"from the added daemon");
    wait_body(&mut b, b"from the added daemon");
    assert!(d1.log().contains("taking the new configuration: 3 daemons"), "{}", d1.log());

    // m3 removed again: m1 and m2 re-read and leave it out; m3, still on
    // the three-daemon file, goes on alone.
    for d in [&d1, &d2] {
        rewrite(d, &two);
    }
    for p in &ports[..2] {
        monitor_reload(&three, *p);
    }
    wait_view(&mut a, "rg", 2);
    wait_view(&mut b, "rg", 2);
    wait_view(&mut c, "rg", 1);
    b.send(frames::AGREED_MESS, "rg", b"two of us");
    wait_body(&mut a, b"two of us");
}
