//! Interop on the daemon⇄daemon protocol on a LAN: original 5.0.1 daemons
//! and ours in ONE ring, all three in one `Spread_Segment` with a broadcast
//! address (daemon spec §2, §2.1: ALIVE/JOIN and data go to the segment's
//! broadcast address, tokens unicast). Each daemon runs in its own network
//! namespace with one veth interface on a bridge, subnet 10.98.0.0/24,
//! broadcast 10.98.0.255 — the layout of the reference captures
//! (`shared/ref/pcap/README.md`, "Setup"); the test makes the namespaces
//! and removes them again, also when it fails ([`compat_tests::netns`]).
//!
//! Each test: the ring forms (clients on every daemon see one view of a
//! probe group); clients on every daemon join one group (identical view
//! frames on every daemon) and exchange AGREED and SAFE messages sent from
//! every daemon (one total order everywhere, FIFO per sender); one daemon
//! is SIGKILLed (the survivors re-form: the group loses its client "caused
//! by network", identical frames, and traffic goes on); the killed daemon is
//! started again and merges back (a client of it joins: one identical
//! three-member view, then one order again).
//!
//! Needs `SPREAD_REF_PREFIX` (an installed original: `sbin/spread`) and
//! root (namespaces); otherwise every test prints why and passes. The
//! tests run one at a time. Every daemon is the test's own child, killed by
//! PID; every wait is bounded.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use compat_tests::daemon::FAST_RING;
use compat_tests::frames;
use compat_tests::net::ReadEnd;
use compat_tests::netns::{self, Lan, NsDaemon};
use compat_tests::paths::reference_daemon;

/// One test at a time: each runs three daemons, and the membership timeouts
/// are short.
static SERIAL: Mutex<()> = Mutex::new(());

const LIMIT: Duration = Duration::from_secs(30);

/// Messages each client sends just before a daemon is killed.
const BURST: usize = 40;

/// The three-host LAN, or `None` (having said why) when namespaces cannot be
/// made here.
fn lan_or_skip(test: &str) -> Option<Lan> {
    if let Some(why) = netns::unavailable() {
        eprintln!("{test}: skipped: {why}");
        return None;
    }
    match Lan::create(3, [10, 98, 0]) {
        Ok(mut l) => {
            // RSPREAD_NETNS_PCAP=<dir>: record the run's daemon traffic.
            if let Some(dir) = std::env::var_os("RSPREAD_NETNS_PCAP") {
                let pcap = PathBuf::from(dir).join(format!("{test}.pcap"));
                l.capture(&pcap).unwrap_or_else(|e| panic!("{test}: capture: {e}"));
                eprintln!("{test}: capturing to {}", pcap.display());
            }
            Some(l)
        }
        Err(e) => {
            eprintln!("{test}: skipped: cannot create the network namespaces: {e}");
            None
        }
    }
}

/// One segment `<broadcast>:port` with daemons d1..d3 at the hosts'
/// addresses; with `interfaces`, each daemon lists its address as its D and
/// C interface (then it receives the segment's broadcasts on an extra
/// socket bound to the segment address, §2.1).
fn lan_conf(lan: &Lan, port: u16, interfaces: bool) -> String {
    let mut s = String::from(FAST_RING);
    s.push_str(&format!("Spread_Segment {}:{port} {{\n", lan.broadcast()));
    for i in 0..3 {
        let a = lan.addr(i);
        if interfaces {
            s.push_str(&format!("\td{}\t{a} {{\n\t\tD {a}\n\t\tC {a}\n\t}}\n", i + 1));
        } else {
            s.push_str(&format!("\td{}\t{a}\n", i + 1));
        }
    }
    s.push_str("}\n");
    s
}

type Client = frames::Member;

/// Test helpers on the shared ring client.
trait RingClient {
    fn until(&mut self, what: &str, f: impl FnMut(&frames::Head, &[u8]) -> bool) -> Vec<u8>;

    /// The next view of `group` with `n` members whose cause is in `cause`.
    fn view(&mut self, group: &str, n: usize, cause: u32) -> Vec<u8> {
        self.until(&format!("a view of {group} with {n} members"), |h, _| {
            h.type_ & frames::REG_MEMB_MESS != 0
                && frames::name_str(&h.sender) == group
                && h.num_groups as usize == n
                && h.type_ & cause != 0
        })
    }
}

impl RingClient for Client {
    fn until(&mut self, what: &str, f: impl FnMut(&frames::Head, &[u8]) -> bool) -> Vec<u8> {
        self.until_within(what, LIMIT, f)
    }
}

fn connect(lan: &Lan, d: &NsDaemon, name: &str) -> Client {
    frames::Member::login(d.conn(lan).expect("connect"), name, LIMIT)
}

/// The member names of a view frame, sorted.
fn members(m: &[u8]) -> Vec<String> {
    let h = frames::head(m).expect("frame");
    let mut v: Vec<String> = (0..h.num_groups as usize)
        .map(|j| frames::name_str(&m[frames::HEADER_LEN + 32 * j..frames::HEADER_LEN + 32 * (j + 1)]))
        .collect();
    v.sort();
    v
}

fn assert_same_views(views: &[Vec<u8>], what: &str, want_members: &[String]) {
    for (i, v) in views.iter().enumerate() {
        assert_eq!(&members(v), want_members, "{what}: members seen by client {i}");
        assert_eq!(v, &views[0], "{what}: the view frame of client {i} differs from client 0's");
    }
}

/// Clients on every daemon join a probe group and wait until each sees all
/// of them in it: then the daemons are in one ring.
fn wait_one_ring(clients: &mut [Client]) {
    let n = clients.len();
    for c in clients.iter_mut() {
        c.send(frames::JOIN_MESS, "sync", b"");
    }
    for c in clients.iter_mut() {
        c.view("sync", n, frames::CAUSED_BY_JOIN | frames::CAUSED_BY_NETWORK);
    }
}

/// Every client joins `g` in turn, each waiting to see itself in a view of
/// all who joined so far; the view of the last join is one frame, byte for
/// byte, on every daemon.
fn join_in_turn(clients: &mut [Client], g: &str) {
    let n = clients.len();
    let mut last = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(frames::JOIN_MESS, g, b"");
        let v = c.view(g, i + 1, frames::CAUSED_BY_JOIN);
        if i + 1 == n {
            last.push(v);
        }
    }
    for c in clients.iter_mut().take(n - 1) {
        last.push(c.view(g, n, frames::CAUSED_BY_JOIN));
    }
    last.rotate_right(1);
    let want: Vec<String> = {
        let mut v: Vec<String> = clients.iter().map(|c| c.pg.clone()).collect();
        v.sort();
        v
    };
    assert_same_views(&last, "the view after the last join", &want);
}

/// Message `k`'s body: `tag|` then padding to one of four sizes (a few
/// bytes; 500 B; 2000 B, two packets; 20000 B, fifteen packets).
fn body_for(tag: &str, k: usize) -> Vec<u8> {
    let size = [0, 500, 2000, 20000][k % 4];
    let mut b = format!("{tag}|").into_bytes();
    b.extend((0..size).map(|j| b'a' + (j % 26) as u8));
    b
}

/// The tag of a data frame's body (its padding checked).
fn tag_of(m: &[u8]) -> String {
    let body = &m[frames::body_offset(m).expect("body")..];
    let bar = body.iter().position(|&c| c == b'|').expect("tagged body");
    let pad = &body[bar + 1..];
    assert!(
        [0, 500, 2000, 20000].contains(&pad.len()) && pad.iter().enumerate().all(|(j, &c)| c == b'a' + (j % 26) as u8),
        "corrupt body ({} padding bytes)",
        pad.len()
    );
    String::from_utf8_lossy(&body[..bar]).into_owned()
}

fn is_data(h: &frames::Head) -> bool {
    h.type_ & (frames::AGREED_MESS | frames::SAFE_MESS) != 0
        && h.type_ & (frames::REG_MEMB_MESS | frames::TRANSITION_MESS) == 0
}

/// The tags of sender `i` in `order` are `phase:i:0..n` in order.
fn assert_fifo(order: &[String], phase: &str, i: usize, n: usize) {
    let mine: Vec<&str> =
        order.iter().map(|s| s.as_str()).filter(|s| s.starts_with(&format!("{phase}:{i}:"))).collect();
    let want: Vec<String> = (0..n).map(|k| format!("{phase}:{i}:{k}")).collect();
    assert_eq!(mine, want.iter().map(|s| s.as_str()).collect::<Vec<_>>(), "{phase}: sender {i} out of FIFO order");
}

/// 20 messages from each client to `g` (members all), AGREED and SAFE
/// interleaved, of four sizes: every client delivers all of them in one
/// order, each sender's in the order sent.
fn traffic(clients: &mut [Client], g: &str, phase: &str) {
    let n = clients.len();
    for k in 0..20 {
        for (i, c) in clients.iter_mut().enumerate() {
            let service = if k % 2 == 0 { frames::AGREED_MESS } else { frames::SAFE_MESS };
            c.send(service, g, &body_for(&format!("{phase}:{i}:{k}"), k));
        }
    }
    let mut orders = Vec::new();
    for c in clients.iter_mut() {
        let mut got = Vec::new();
        while got.len() < 20 * n {
            let m = c.until("a data message", |h, _| is_data(h));
            got.push(tag_of(&m));
        }
        orders.push(got);
    }
    for (i, o) in orders.iter().enumerate().skip(1) {
        assert_eq!(o, &orders[0], "{phase}: client {i} delivered in another order than client 0");
    }
    for i in 0..n {
        assert_fifo(&orders[0], phase, i, 20);
    }
}

/// The next thing `c` delivers that concerns group `g`: a data tag, the
/// transitional signal, or a view of `g` (with its frame).
fn next_event(c: &mut Client, g: &str, deadline: Instant) -> (String, Option<Vec<u8>>) {
    loop {
        let m = frames::read_msg(&mut c.c, deadline).unwrap_or_else(|e| panic!("{}: around the change: {e}", c.pg));
        let h = frames::head(&m).expect("frame");
        if is_data(&h) {
            return (tag_of(&m), None);
        }
        if frames::name_str(&h.sender) != g {
            continue;
        }
        if h.type_ & frames::TRANSITION_MESS != 0 {
            return ("<transitional>".to_string(), None);
        }
        if h.type_ & frames::REG_MEMB_MESS != 0 {
            assert!(
                h.type_ & frames::CAUSED_BY_NETWORK != 0,
                "{}: view of {g} not caused by network: {:#x}",
                c.pg,
                h.type_
            );
            return (format!("<view of {}>", h.num_groups), Some(m));
        }
    }
}

/// What a survivor's client delivers around the SIGKILL (continuing `seq`,
/// what it delivered before): data tags, the transitional signal and the
/// network view of `g`, in delivery order, until it has the view and the
/// `want` burst messages of every sender in `from`; and the view frame.
fn deliveries_around_change(
    c: &mut Client,
    g: &str,
    from: &[usize],
    want: usize,
    mut seq: Vec<String>,
) -> (Vec<String>, Vec<u8>) {
    let deadline = Instant::now() + LIMIT;
    let counts =
        |seq: &[String]| seq.iter().filter(|t| from.iter().any(|i| t.starts_with(&format!("burst:{i}:")))).count();
    let mut view = None;
    while view.is_none() || counts(&seq) < from.len() * want {
        let (e, v) = next_event(c, g, deadline);
        if let Some(v) = v {
            assert!(view.is_none(), "{}: a second view of {g} ({seq:?})", c.pg);
            view = Some(v);
        }
        seq.push(e);
    }
    (seq, view.expect("view"))
}

/// Removes the Unix socket `/tmp/<port>` a killed daemon may have left (all
/// three daemons of the segment share the port, hence the path).
fn remove_unix_socket(port: u16) {
    use std::os::unix::fs::FileTypeExt;
    let p = format!("/tmp/{port}");
    if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(p);
    }
}

/// A ring of d1..d3 (d`i+1` the original when `original[i]`) on the LAN;
/// daemon `kill` is SIGKILLed, then started again.
fn lan_ring(test: &str, original: [bool; 3], kill: usize, interfaces: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(reference) = reference_daemon(test) else { return };
    let Some(lan) = lan_or_skip(test) else { return };
    let started = Instant::now();
    // Each namespace has its own ports; only the Unix socket path /tmp/<port>
    // is shared with the host, so the port is this run's own.
    let port = 28000 + 2 * (std::process::id() % 500) as u16;
    let conf = lan_conf(&lan, port, interfaces);
    let ours = compat_tests::paths::spread_binary();
    let start = |i: usize| {
        let bin = if original[i] { &reference } else { &ours };
        let addr = SocketAddr::from((lan.addr(i), port));
        NsDaemon::start(&lan, i, bin, &format!("d{}", i + 1), addr, &conf)
            .unwrap_or_else(|e| panic!("{test}: d{} starts: {e}", i + 1))
    };
    let mut ds = Daemons((0..3).map(start).collect(), port);
    for d in ds.iter() {
        d.wait_operational(&lan, LIMIT).unwrap_or_else(|e| panic!("{test}: {e}"));
    }

    // (a) one ring; one group on every daemon; one order.
    let mut clients: Vec<Client> = (0..3).map(|i| connect(&lan, &ds[i], &format!("k{i}"))).collect();
    wait_one_ring(&mut clients);
    join_in_turn(&mut clients, "mixed");
    traffic(&mut clients, "mixed", "three");

    // (b)/(c) SIGKILL one while every client has a burst of messages on
    // the way: the survivors re-form, their clients deliver the same
    // messages in the same order around the transitional signal (the killed
    // daemon's client's a FIFO prefix of its burst, all of the survivors'),
    // and the group loses the client "caused by network", the same frame on
    // both.
    for k in 0..BURST {
        for (i, c) in clients.iter_mut().enumerate() {
            let service = if k % 2 == 0 { frames::AGREED_MESS } else { frames::SAFE_MESS };
            c.send(service, "mixed", &body_for(&format!("burst:{i}:{k}"), k));
        }
    }
    // Kill it once its burst is being ordered: a survivor has delivered its
    // first message (flow control spreads the burst over many token rounds,
    // so most of it is still on the way).
    let first_survivor = if kill == 0 { 1 } else { 0 };
    let mut before = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while !before.iter().any(|t: &String| t == &format!("burst:{kill}:0")) {
        before.push(next_event(&mut clients[first_survivor], "mixed", deadline).0);
    }
    ds[kill].kill_now();
    let mut gone = clients.remove(kill);
    // It may still hold messages delivered before the kill: read them,
    // then the close.
    let deadline = Instant::now() + LIMIT;
    let end = loop {
        match gone.c.read_message_by(deadline) {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(matches!(end, ReadEnd::Eof(_) | ReadEnd::Reset(_)), "{test}: the killed daemon's client saw {end:?}");
    // The killed daemon closed that connection first; were it closed with
    // a FIN now, its side would sit in TIME_WAIT for a minute, and an
    // original restarted on an implicit interface (no SO_REUSEADDR with
    // SocketPortReuse AUTO) could not bind its port.
    gone.c.close_with_reset();
    let from: Vec<usize> = (0..3).filter(|&i| i != kill).collect();
    let first_survivor = from.iter().position(|&i| i == first_survivor).expect("a survivor");
    let (seqs, views): (Vec<Vec<String>>, Vec<Vec<u8>>) = clients
        .iter_mut()
        .enumerate()
        .map(|(j, c)| {
            let seq = if j == first_survivor { std::mem::take(&mut before) } else { Vec::new() };
            deliveries_around_change(c, "mixed", &from, BURST, seq)
        })
        .unzip();
    assert_eq!(seqs[0], seqs[1], "{test}: the survivors delivered differently around the change");
    for &i in &from {
        assert_fifo(&seqs[0], "burst", i, BURST);
    }
    let lost: Vec<&String> = seqs[0].iter().filter(|t| t.starts_with(&format!("burst:{kill}:"))).collect();
    let prefix: Vec<String> = (0..lost.len()).map(|k| format!("burst:{kill}:{k}")).collect();
    assert_eq!(lost, prefix.iter().collect::<Vec<_>>(), "{test}: the killed sender's messages are not a FIFO prefix");
    let at = |m: &str| seqs[0].iter().position(|t| t.starts_with(m)).unwrap_or(usize::MAX);
    eprintln!(
        "{test}: around the change: {} of the killed sender's {BURST} messages delivered; transitional signal at \
         {}, view at {} of {} deliveries",
        lost.len(),
        at("<transitional>"),
        at("<view"),
        seqs[0].len()
    );
    let mut want: Vec<String> = clients.iter().map(|c| c.pg.clone()).collect();
    want.sort();
    assert_same_views(&views, "the view after the SIGKILL", &want);
    traffic(&mut clients, "mixed", "two");

    // (d) started again, it merges back: a client of it joins the group, and
    // every member sees one three-member view (caused by the join, or by the
    // merge if the join came first).
    lan.wait_tcp_port_free(kill, port, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{test}: {e}"));
    ds[kill] = start(kill);
    ds[kill].wait_operational(&lan, LIMIT).unwrap_or_else(|e| panic!("{test}: restarted: {e}"));
    let mut back = connect(&lan, &ds[kill], "kb");
    back.send(frames::JOIN_MESS, "mixed", b"");
    clients.insert(kill, back);
    let views: Vec<Vec<u8>> =
        clients.iter_mut().map(|c| c.view("mixed", 3, frames::CAUSED_BY_JOIN | frames::CAUSED_BY_NETWORK)).collect();
    let mut want: Vec<String> = clients.iter().map(|c| c.pg.clone()).collect();
    want.sort();
    assert_same_views(&views, "the view after the merge", &want);
    traffic(&mut clients, "mixed", "merged");

    drop(clients);
    for d in ds.0.iter_mut() {
        assert!(d.alive(), "{test}: {} died; log:\n{}", d.name, d.log());
    }
    drop(ds);
    drop(lan);
    eprintln!("{test}: passed in {:.1?}", started.elapsed());
}

/// The ring's daemons (all on `port`); on a panic their logs are printed
/// before they are stopped; then the Unix socket `/tmp/<port>` they shared
/// is removed.
struct Daemons(Vec<NsDaemon>, u16);

impl std::ops::Deref for Daemons {
    type Target = Vec<NsDaemon>;
    fn deref(&self) -> &Vec<NsDaemon> {
        &self.0
    }
}

impl std::ops::DerefMut for Daemons {
    fn deref_mut(&mut self) -> &mut Vec<NsDaemon> {
        &mut self.0
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for d in &self.0 {
                eprintln!("--- {} ({}) log ---\n{}", d.name, d.dir().display(), d.log());
            }
        }
        for d in self.0.iter_mut() {
            d.stop();
        }
        remove_unix_socket(self.1);
    }
}

#[test]
fn lan_ours_between_two_originals_original_leader_killed() {
    lan_ring("lan_ours_between_two_originals_original_leader_killed", [true, false, true], 0, false);
}

#[test]
fn lan_ours_between_two_originals_ours_killed() {
    lan_ring("lan_ours_between_two_originals_ours_killed", [true, false, true], 1, true);
}

#[test]
fn lan_original_between_two_of_ours_original_killed() {
    lan_ring("lan_original_between_two_of_ours_original_killed", [false, true, false], 1, false);
}

#[test]
fn lan_original_between_two_of_ours_our_leader_killed() {
    lan_ring("lan_original_between_two_of_ours_our_leader_killed", [false, true, false], 0, true);
}
