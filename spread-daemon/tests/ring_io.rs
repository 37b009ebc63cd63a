//! Rings of several of our daemons on real sockets (loopback: each daemon
//! alone in its segment, on its own port; daemon spec §2): the ring forms by
//! itself, clients on different daemons see one group membership and one
//! message order, and a daemon killed by SIGKILL leaves the ring, its
//! clients leaving their groups "caused by network".
//!
//! Ports 26600–26699.

mod daemon_util;

use std::time::{Duration, Instant};

use daemon_util::*;

/// Short membership timeouts (all nine must be set) so a test's ring change
/// takes about a second, not the LAN defaults' several.
const FAST: &str = "TokenTimeout = 1000\nHurryTimeout = 200\nAliveTimeout = 100\nJoinTimeout = 100\n\
RepTimeout = 300\nSegTimeout = 200\nGatherTimeout = 500\nFormTimeout = 500\nLookupTimeout = 2000\n";

fn ring_conf(ports: &[u16]) -> String {
    let mut s = String::from(FAST);
    for (i, p) in ports.iter().enumerate() {
        s.push_str(&format!("Spread_Segment 127.0.0.255:{p} {{\n\tr{}\t127.0.0.1\n}}\n", i + 1));
    }
    s
}

fn start_ring(base: u16, n: usize) -> (Vec<Daemon>, Vec<u16>) {
    let ports: Vec<u16> = (0..n as u16).map(|i| base + 10 * i).collect();
    let dir = std::env::temp_dir().join(format!("rspread-ring-{base}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spread.conf"), ring_conf(&ports)).unwrap();
    let ds = (0..n).map(|i| Daemon::start_named(&format!("r{}", i + 1), ports[i], dir.clone())).collect();
    (ds, ports)
}

const REG_MEMB: u32 = 0x1000;
const CAUSED_BY_JOIN: u32 = 0x100;
const CAUSED_BY_NETWORK: u32 = 0x800;
const AGREED: u32 = 0x10;
const SAFE: u32 = 0x20;

/// Read messages (bounded) until one satisfies `f`.
fn recv_until(c: &mut Client, what: &str, mut f: impl FnMut(&Msg) -> bool) -> Msg {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let m = c.recv();
        if f(&m) {
            return m;
        }
    }
    panic!("never received {what}");
}

/// The member names of a group membership message (its group list).
fn members(m: &Msg) -> Vec<String> {
    m.groups.clone()
}

#[test]
fn three_daemons_form_a_ring_and_clients_share_groups_and_order() {
    let _g = serial();
    let (mut ds, ports) = start_ring(26600, 3);
    for d in &ds {
        d.wait_log("with 3 daemons");
    }
    let mut c: Vec<Client> = ports.iter().enumerate().map(|(i, &p)| connect_tcp(p, &format!("c{i}"), true)).collect();
    for (i, cl) in c.iter_mut().enumerate() {
        cl.join("ring-g");
        // Wait until this join is seen before the next one, so the group
        // grows one member at a time.
        recv_until(cl, "own join", |m| {
            m.type_ & REG_MEMB != 0 && m.type_ & CAUSED_BY_JOIN != 0 && members(m).len() == i + 1
        });
    }
    // Everybody ends up seeing all three members.
    for cl in c.iter_mut().take(2) {
        recv_until(cl, "the third join", |m| m.type_ & REG_MEMB != 0 && members(m).len() == 3);
    }
    // 30 messages from each client, interleaved: one order everywhere.
    for k in 0..30u32 {
        for (i, cl) in c.iter_mut().enumerate() {
            let service = if k % 2 == 0 { AGREED } else { SAFE };
            cl.mcast(service, &["ring-g"], 0, format!("{i}:{k}").as_bytes());
        }
    }
    let mut orders = Vec::new();
    for cl in c.iter_mut() {
        let mut got = Vec::new();
        while got.len() < 90 {
            let m = cl.recv();
            if m.type_ & (AGREED | SAFE) != 0 && m.type_ & REG_MEMB == 0 {
                got.push(String::from_utf8_lossy(&m.body).into_owned());
            }
        }
        orders.push(got);
    }
    assert_eq!(orders[0], orders[1], "daemons 1 and 2 delivered in different orders");
    assert_eq!(orders[0], orders[2], "daemons 1 and 3 delivered in different orders");
    // Each sender's messages in its own order (FIFO within the total order).
    for i in 0..3 {
        let mine: Vec<&String> = orders[0].iter().filter(|s| s.starts_with(&format!("{i}:"))).collect();
        let want: Vec<String> = (0..30).map(|k| format!("{i}:{k}")).collect();
        assert_eq!(
            mine.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            want.iter().map(|s| s.as_str()).collect::<Vec<_>>()
        );
    }

    // SIGKILL the middle daemon: the others install a ring of two, and the
    // group loses c1 "caused by network".
    ds[1].stop(libc::SIGKILL);
    for i in [0, 2] {
        let m = recv_until(&mut c[i], "the network change", |m| {
            m.type_ & REG_MEMB != 0 && m.type_ & CAUSED_BY_NETWORK != 0
        });
        assert_eq!(members(&m), vec!["#c0#r1".to_string(), "#c2#r3".to_string()], "daemon {}", i + 1);
    }
    ds[0].wait_log("with 2 daemons");
    // The ring of two still works.
    c[2].mcast(SAFE, &["ring-g"], 0, b"after");
    for i in [0, 2] {
        recv_until(&mut c[i], "the message after the change", |m| m.body == b"after");
    }

    // Restarted, it merges back (the leader's lookup finds it), and a client
    // of it joining the group is seen by everybody with all three members.
    let dir = ds[1].dir.clone();
    ds[1] = Daemon::start_named("r2", ports[1], dir);
    ds[0].wait_log("with 3 daemons");
    ds[1].wait_log("with 3 daemons");
    let mut back = connect_tcp(ports[1], "c1b", true);
    back.join("ring-g");
    let want = vec!["#c0#r1".to_string(), "#c1b#r2".to_string(), "#c2#r3".to_string()];
    let (c0, rest) = c.split_at_mut(1);
    for cl in [&mut c0[0], &mut rest[1], &mut back] {
        let m = recv_until(cl, "the view with the restarted daemon's client", |m| {
            m.type_ & REG_MEMB != 0 && m.type_ & CAUSED_BY_JOIN != 0 && members(m).len() == 3
        });
        assert_eq!(members(&m), want);
    }
}
