//! Interop on the daemon⇄daemon protocol: one ring of original 5.0.1 daemons
//! and ours (a rolling upgrade), on loopback (each daemon alone in its
//! segment on its own port, daemon spec §2). The ring forms, clients on
//! every daemon share a group and see one message order, and after a daemon
//! is SIGKILLed the survivors re-form and keep working: when the one killed
//! is an original, and when it is ours.
//!
//! Needs `SPREAD_REF_PREFIX` (an installed original: `sbin/spread`);
//! without it every test here prints why and passes.
//!
//! Ports 26800–26899 (a ring's daemons 10 apart). Every daemon is ours to
//! kill, by PID; every wait is bounded.

use std::path::Path;
use std::time::Duration;

use compat_tests::daemon::{free_ring_ports, loopback_ring_conf, Daemon};
use compat_tests::frames;
use compat_tests::net::Conn;
use compat_tests::paths::reference_daemon;

/// Start daemon i of `ports` with the original binary when `original[i]`.
fn start_ring(ports: &[u16], original: &[bool], reference: &Path) -> Vec<Daemon> {
    let conf = loopback_ring_conf(ports, "x");
    let ours = compat_tests::paths::spread_binary();
    (0..ports.len())
        .map(|i| {
            let bin = if original[i] { reference } else { &ours };
            Daemon::start_bin(bin, &format!("x{}", i + 1), ports[i], &conf).expect("daemon starts")
        })
        .collect()
}

type Client = frames::Member;

const LIMIT: Duration = Duration::from_secs(30);

/// Test helpers on the shared ring client.
trait RingClient {
    fn until(&mut self, what: &str, f: impl FnMut(&frames::Head, &[u8]) -> bool) -> Vec<u8>;

    /// Wait for a group view of `n` members.
    fn view(&mut self, n: usize, cause: u32) -> Vec<u8> {
        self.until(&format!("a view of {n}"), |h, _| {
            h.type_ & frames::REG_MEMB_MESS != 0 && h.num_groups as usize == n && h.type_ & cause != 0
        })
    }
}

impl RingClient for Client {
    fn until(&mut self, what: &str, f: impl FnMut(&frames::Head, &[u8]) -> bool) -> Vec<u8> {
        self.until_within(what, LIMIT, f)
    }
}

fn connect(port: u16, name: &str) -> Client {
    frames::Member::login(Conn::tcp(port, Duration::from_secs(5)).expect("connect"), name, LIMIT)
}

fn body(m: &[u8]) -> Vec<u8> {
    m[frames::body_offset(m).expect("body")..].to_vec()
}

/// Every client joins `g`, waiting to see itself in a view of all who joined
/// so far; then 20 messages from each, interleaved; every client gets all of
/// them in one order.
fn exercise(clients: &mut [Client], g: &str) {
    let n = clients.len();
    let mut last_view = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(frames::JOIN_MESS, g, b"");
        let v = c.view(i + 1, frames::CAUSED_BY_JOIN);
        if i + 1 == n {
            last_view.push(v);
        }
    }
    for c in clients.iter_mut().take(n - 1) {
        last_view.push(c.view(n, frames::CAUSED_BY_JOIN));
    }
    // The view every client gets for the last join is the same frame, byte
    // for byte, whichever kind of daemon serves it (the group id included:
    // the ring id and the view counter are the ring's).
    for v in &last_view[1..] {
        assert_eq!(v, &last_view[0], "membership frames differ between daemons");
    }
    for k in 0..20 {
        for (i, c) in clients.iter_mut().enumerate() {
            let service = if k % 2 == 0 { frames::AGREED_MESS } else { frames::SAFE_MESS };
            c.send(service, g, format!("{i}:{k}").as_bytes());
        }
    }
    let mut orders = Vec::new();
    for c in clients.iter_mut() {
        let mut got = Vec::new();
        while got.len() < 20 * n {
            let m = c.until("a data message", |h, _| h.type_ & (frames::AGREED_MESS | frames::SAFE_MESS) != 0);
            got.push(String::from_utf8_lossy(&body(&m)).into_owned());
        }
        orders.push(got);
    }
    for (i, o) in orders.iter().enumerate().skip(1) {
        assert_eq!(o, &orders[0], "client {i} saw another order than client 0");
    }
}

fn mixed_ring(test: &str, base: u16, original: [bool; 3], kill: usize) {
    let Some(reference) = reference_daemon(test) else { return };
    let ports = free_ring_ports(base, 3, 10).expect("ports free");
    let mut ds = start_ring(&ports, &original, &reference);
    for d in &ds {
        d.wait_operational(LIMIT).expect("operational");
    }
    let mut clients: Vec<Client> = ports.iter().enumerate().map(|(i, &p)| connect(p, &format!("k{i}"))).collect();
    exercise(&mut clients, "mixed");
    ds[kill].kill_now();
    let mut survivors: Vec<Client> =
        clients.into_iter().enumerate().filter(|(i, _)| *i != kill).map(|(_, c)| c).collect();
    let views: Vec<Vec<u8>> = survivors.iter_mut().map(|c| c.view(2, frames::CAUSED_BY_NETWORK)).collect();
    assert_eq!(views[0], views[1], "the network-change view differs between the survivors");
    exercise(&mut survivors, "after");
}

#[test]
fn ours_between_two_originals_and_an_original_killed() {
    mixed_ring("ours_between_two_originals_and_an_original_killed", 26800, [true, false, true], 0);
}

#[test]
fn ours_between_two_originals_and_ours_killed() {
    mixed_ring("ours_between_two_originals_and_ours_killed", 26830, [true, false, true], 1);
}

#[test]
fn two_of_ours_and_an_original_leader_killed_last() {
    mixed_ring("two_of_ours_and_an_original_leader_killed_last", 26860, [false, true, false], 2);
}
