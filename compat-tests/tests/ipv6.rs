//! IPv6 end to end (issue 10 item 3; daemon spec §1.2–§1.5, §2.1):
//!
//! * a ring over `::1`, one daemon per segment (each segment's address an
//!   IPv6 multicast group, as the original's Readme.IPv6 advises), with
//!   clients of the client library connecting by `"<port>@::1"`: one
//!   membership, one message order across the two daemons;
//! * the IP authentication method with an IPv6 rule in `spread.access_ip`:
//!   an IPv6 client it names is let in, an IPv4 client it does not name is
//!   refused (the original's IP method refuses every IPv6 peer);
//! * three daemons on ONE multicast segment (`[ff02::5]`) in network
//!   namespaces on a bridge, with IPv6 addresses only in the configuration:
//!   the ring forms, AGREED and SAFE traffic from every daemon is delivered
//!   in one order, and a SIGKILLed daemon leaves the ring (its client
//!   leaves the group "caused by network").
//!
//! With `SPREAD_REF_PREFIX` (an installed original 5.0.1) the ring tests
//! also run mixed: one of the daemons is the original. Without it, or
//! without namespaces, those tests say why and pass.
//!
//! Ports 29100–29299 (the namespaces have their own ports, but the Unix
//! socket `/tmp/<port>` is shared with the host, so theirs are this run's own).

use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use compat_tests::daemon::{free_ring_ports, Daemon, FAST_RING};
use compat_tests::frames::{self, Head};
use compat_tests::net::Conn;
use compat_tests::netns::{self, Lan};
use compat_tests::paths::{reference_daemon, spread_binary};
use compat_tests::sp_api::sp;

/// One test at a time: they run rings with short membership timeouts.
static SERIAL: Mutex<()> = Mutex::new(());

const LIMIT: Duration = Duration::from_secs(30);
const REG_MEMB: i32 = 0x1000;
const AGREED: i32 = 0x10;
const SAFE: i32 = 0x20;

/// `FAST_RING`, then one segment per port, its daemon `v<k>` on `::1`.
fn loopback_conf(ports: &[u16]) -> String {
    let mut s = String::from(FAST_RING);
    for (i, p) in ports.iter().enumerate() {
        s.push_str(&format!("Spread_Segment [ff02::5]:{p} {{\n\tv{}\t::1\n}}\n", i + 1));
    }
    s
}

fn lib_member(port: u16, name: &str) -> i32 {
    let spread_name = format!("{port}@::1");
    let (r, mbox, pg) = sp().sp_connect(&spread_name, Some(name), 0, true);
    assert_eq!(r, 1, "SP_connect({spread_name}) as {name}");
    assert!(pg.starts_with(&format!("#{name}#v")), "{pg}");
    mbox
}

/// Receives (bounded) until a regular membership of `group` with `n`
/// members; returns the member names.
fn lib_wait_members(mbox: i32, group: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let r = sp()
            .sp_receive_by(mbox, deadline, 100, 100_000)
            .unwrap_or_else(|| panic!("no membership of {group} with {n} members within {LIMIT:?}"));
        assert!(r.ret >= 0, "SP_receive: {}", r.ret);
        if r.service_type & REG_MEMB != 0 && r.sender == group && r.groups.len() == n {
            return r.groups;
        }
    }
}

fn loopback_ring(test: &str, original_second: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let second = if original_second {
        let Some(r) = reference_daemon(test) else { return };
        r
    } else {
        spread_binary()
    };
    let ports = free_ring_ports(29100 + if original_second { 40 } else { 0 }, 2, 10).unwrap();
    let conf = loopback_conf(&ports);
    let d1 = Daemon::start("v1", ports[0], &conf).unwrap_or_else(|e| panic!("{test}: v1: {e}"));
    let d2 = Daemon::start_bin(&second, "v2", ports[1], &conf).unwrap_or_else(|e| panic!("{test}: v2: {e}"));
    for d in [&d1, &d2] {
        d.wait_operational(LIMIT).unwrap_or_else(|e| panic!("{test}: {e}"));
    }
    assert!(d1.log().contains("addr: ::1"), "{}", d1.log());

    let a = lib_member(ports[0], "la");
    let b = lib_member(ports[1], "lb");
    // Both join; each sees the other on the other daemon (bounded: the two
    // daemons may still be merging their one-daemon rings).
    assert_eq!(sp().sp_join(a, "v6grp"), 0);
    assert_eq!(sp().sp_join(b, "v6grp"), 0);
    let want = vec!["#la#v1".to_string(), "#lb#v2".to_string()];
    assert_eq!(lib_wait_members(a, "v6grp", 2), want, "{test}");
    assert_eq!(lib_wait_members(b, "v6grp", 2), want, "{test}");

    // AGREED and SAFE from both sides: one order on both.
    const N: usize = 20;
    for k in 0..N {
        let st = if k % 2 == 0 { AGREED } else { SAFE };
        let ba = format!("a{k}");
        let bb = format!("b{k}");
        assert_eq!(sp().sp_multicast(a, st, "v6grp", 1, ba.as_bytes()), ba.len() as i32);
        assert_eq!(sp().sp_multicast(b, st, "v6grp", 2, bb.as_bytes()), bb.len() as i32);
    }
    let order = |m: i32, who: &str| -> Vec<String> {
        let deadline = Instant::now() + LIMIT;
        let mut got = Vec::new();
        while got.len() < 2 * N {
            let r = sp()
                .sp_receive_by(m, deadline, 10, 1000)
                .unwrap_or_else(|| panic!("{test}: {who} got {} of {} messages", got.len(), 2 * N));
            assert!(r.ret >= 0, "{test}: {who}: SP_receive {}", r.ret);
            if r.service_type & (AGREED | SAFE) != 0 && r.service_type & REG_MEMB == 0 {
                got.push(String::from_utf8_lossy(&r.body).into_owned());
            }
        }
        got
    };
    let oa = order(a, "la");
    let ob = order(b, "lb");
    assert_eq!(oa, ob, "{test}: one order on both daemons");
    for p in ["a", "b"] {
        let mine: Vec<&String> = oa.iter().filter(|s| s.starts_with(p)).collect();
        let want: Vec<String> = (0..N).map(|k| format!("{p}{k}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>(), "{test}: FIFO per sender");
    }
    sp().sp_disconnect(a);
    sp().sp_disconnect(b);
}

#[test]
fn ring_over_ipv6_loopback_with_library_clients() {
    loopback_ring("ring_over_ipv6_loopback_with_library_clients", false);
}

#[test]
fn ring_over_ipv6_loopback_mixed_with_the_original() {
    loopback_ring("ring_over_ipv6_loopback_mixed_with_the_original", true);
}

/// The 5.0.1 handshake choosing the IP method, over `c`: `Ok(private
/// group)` when accepted, `Err(first byte of the answer)` when refused.
fn ip_handshake(mut c: Conn, name: &str) -> Result<String, i8> {
    let deadline = Instant::now() + LIMIT;
    c.write_all(&frames::connect_request(name.as_bytes(), false, false)).expect("send connect");
    let n = c.read_exact_by(1, deadline).expect("auth list length")[0];
    let list = c.read_exact_by(n as usize, deadline).expect("auth list");
    assert_eq!(list, b"IP ", "the daemon offers IP only");
    let mut choice = [0u8; 90];
    choice[..2].copy_from_slice(b"IP");
    c.write_all(&choice).expect("send auth choice");
    let first = c.read_exact_by(1, deadline).expect("answer")[0];
    if first != 1 {
        return Err(first as i8);
    }
    let rest = c.read_exact_by(4, deadline).expect("accept");
    let pg = c.read_exact_by(rest[3] as usize, deadline).expect("private group");
    Ok(String::from_utf8_lossy(&pg).into_owned())
}

#[test]
fn ip_authentication_understands_ipv6_peers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let port = free_ring_ports(29080, 1, 10).unwrap()[0];
    let conf = format!(
        "{FAST_RING}Spread_Segment [ff02::5]:{port} {{\n\ta1\t::1\n}}\nAllowedAuthMethods = IP\n\
         RequiredAuthMethods = IP\n"
    );
    // the IPv6 loopback only; the IPv4 one is not named
    let d = Daemon::start_with_files(&spread_binary(), "a1", port, &conf, &[("spread.access_ip", "::1\n")])
        .unwrap_or_else(|e| panic!("a1: {e}"));
    let v6 = |name: &str| {
        let s = TcpStream::connect_timeout(&SocketAddr::from((Ipv6Addr::LOCALHOST, port)), LIMIT).expect("connect ::1");
        ip_handshake(Conn::Tcp(s), name)
    };
    assert_eq!(v6("six"), Ok("#six#a1".to_string()), "an IPv6 peer named by an IPv6 rule; log:\n{}", d.log());
    let v4 = Conn::tcp(port, LIMIT).expect("connect 127.0.0.1");
    assert_eq!(ip_handshake(v4, "four"), Err(-9), "REJECT_AUTH for an IPv4 peer no rule names");
    // the daemon goes on serving
    assert_eq!(v6("again"), Ok("#again#a1".to_string()));
}

/// The three-host LAN with IPv6 addresses, or `None` (having said why).
fn lan_or_skip(test: &str) -> Option<Lan> {
    if let Some(why) = netns::unavailable() {
        eprintln!("{test}: skipped: {why}");
        return None;
    }
    match Lan::create(3, [10, 96, 0]) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("{test}: skipped: cannot create the network namespaces: {e}");
            None
        }
    }
}

fn is_view(h: &Head, m: &[u8], group: &str) -> bool {
    h.type_ & frames::REG_MEMB_MESS != 0 && frames::name_str(&m[4..36]) == group
}

fn is_data(h: &Head) -> bool {
    h.type_ & (frames::AGREED_MESS | frames::SAFE_MESS) != 0
        && h.type_ & (frames::REG_MEMB_MESS | frames::TRANSITION_MESS) == 0
}

fn body(m: &[u8]) -> String {
    let off = frames::body_offset(m).expect("frame");
    String::from_utf8_lossy(&m[off..]).into_owned()
}

fn lan_ring(test: &str, original: [bool; 3]) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reference: Option<PathBuf> = if original.contains(&true) {
        let Some(r) = reference_daemon(test) else { return };
        Some(r)
    } else {
        None
    };
    let Some(lan) = lan_or_skip(test) else { return };
    let port = 29200 + 2 * (std::process::id() % 50) as u16;
    let mut conf = String::from(FAST_RING);
    conf.push_str(&format!("Spread_Segment [ff02::5]:{port} {{\n"));
    for i in 0..3 {
        conf.push_str(&format!("\td{}\t{}\n", i + 1, lan.addr6(i)));
    }
    conf.push_str("}\n");
    let ours = spread_binary();
    let bins: Vec<&Path> =
        original.iter().map(|&o| if o { reference.as_deref().expect("reference") } else { &ours }).collect();
    let addrs: Vec<SocketAddr> = (0..3).map(|i| SocketAddr::from((lan.addr6(i), port))).collect();
    let mut ds = netns::start_ring(&lan, &bins, &addrs, &conf, LIMIT).unwrap_or_else(|e| panic!("{test}: {e}"));
    // Every client joins, then waits for the three-member view: the ring
    // has formed across the segment.
    let mut cs = netns::members_joined(&lan, &ds, "v6lan", LIMIT).unwrap_or_else(|e| panic!("{test}: {e}"));
    let mut views = Vec::new();
    for c in cs.iter_mut() {
        let v = c.until_within("the three-member view", LIMIT, |h, m| is_view(h, m, "v6lan") && h.num_groups == 3);
        views.push(frames::mask_gid_time(&v));
    }
    assert!(views.iter().all(|v| v == &views[0]), "{test}: one view frame on every daemon");

    // AGREED and SAFE from every daemon: one order everywhere.
    const N: usize = 15;
    for k in 0..N {
        for (i, c) in cs.iter_mut().enumerate() {
            let st = if k % 2 == 0 { frames::AGREED_MESS } else { frames::SAFE_MESS };
            c.send(st, "v6lan", format!("c{i}-{k}").as_bytes());
        }
    }
    let mut orders = Vec::new();
    for c in cs.iter_mut() {
        let mut got = Vec::new();
        while got.len() < 3 * N {
            let m = c.until_within("traffic", LIMIT, |h, _| is_data(h));
            got.push(body(&m));
        }
        orders.push(got);
    }
    assert!(orders.iter().all(|o| o == &orders[0]), "{test}: one order: {orders:?}");
    for i in 0..3 {
        let mine: Vec<&String> = orders[0].iter().filter(|s| s.starts_with(&format!("c{i}-"))).collect();
        assert_eq!(mine.len(), N, "{test}: every message of c{i}");
    }

    // SIGKILL d3: the two survivors' clients see k2 leave "caused by network".
    ds[2].kill_now();
    for c in cs.iter_mut().take(2) {
        let v = c.until_within("the view without d3", LIMIT, |h, m| is_view(h, m, "v6lan") && h.num_groups == 2);
        let h = frames::head(&v).expect("frame");
        assert!(h.type_ & frames::CAUSED_BY_NETWORK != 0, "{test}: caused by network: {:#x}", h.type_);
    }
    drop(cs);
    for d in ds.iter_mut() {
        d.stop();
    }
    let _ = std::fs::remove_file(format!("/tmp/{port}"));
}

#[test]
fn lan_ring_on_one_ipv6_multicast_segment() {
    lan_ring("lan_ring_on_one_ipv6_multicast_segment", [false; 3]);
}

#[test]
fn lan_ring_on_one_ipv6_multicast_segment_mixed_with_the_original() {
    lan_ring("lan_ring_on_one_ipv6_multicast_segment_mixed_with_the_original", [false, true, false]);
}
