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

/// How a test reaches daemon `i` with a client named `name`.
type Connect = Box<dyn Fn(usize, &str) -> Client>;

/// Three daemons and how to reach them.
struct RingUnderTest {
    ds: Vec<Daemon>,
    /// A client named `name` of daemon `i`.
    connect: Connect,
    /// Start daemon `i` again (after it was killed).
    restart: Box<dyn Fn(usize) -> Daemon>,
}

#[test]
fn three_daemons_form_a_ring_and_clients_share_groups_and_order() {
    let _g = serial();
    let (ds, ports) = start_ring(26600, 3);
    let dir = ds[0].dir.clone();
    let p2 = ports.clone();
    let mut r = RingUnderTest {
        ds,
        connect: Box::new(move |i, name| connect_tcp(p2[i], name, true)),
        restart: Box::new(move |i| Daemon::start_named(&format!("r{}", i + 1), ports[i], dir.clone())),
    };
    scenario(&mut r);
}

/// A network namespace this test creates and removes.
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Option<Netns> {
        let ok = |args: &[&str]| std::process::Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        if !ok(&["netns", "add", name]) {
            return None;
        }
        let ns = Netns(name.to_string());
        // The daemons' addresses must be addresses of the host (§1.5).
        let up = ok(&["netns", "exec", name, "ip", "link", "set", "lo", "up"])
            && ok(&["netns", "exec", name, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo"])
            && ok(&["netns", "exec", name, "ip", "addr", "add", "127.0.0.3/8", "dev", "lo"]);
        up.then_some(ns)
    }

    /// A TCP connection to `addr` made from inside the namespace (a thread
    /// enters it; the socket stays in it).
    fn connect(&self, addr: std::net::SocketAddr) -> std::net::TcpStream {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path).expect("netns file");
            use std::os::fd::AsRawFd;
            // SAFETY: setns(2) on a namespace file this thread opened; only
            // this thread changes its network namespace.
            let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            let s = std::net::TcpStream::connect(addr).expect("connect in netns");
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            s
        })
        .join()
        .expect("netns connect thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn three_daemons_on_one_broadcast_segment_in_a_namespace() {
    let _g = serial();
    let name = format!("rsring{}", std::process::id());
    let Some(ns) = Netns::create(&name) else {
        eprintln!("three_daemons_on_one_broadcast_segment_in_a_namespace: skipped: cannot create a network namespace (needs root and iproute2)");
        return;
    };
    let ns = std::sync::Arc::new(ns);
    let port = 26650;
    let mut conf = String::from(FAST);
    conf.push_str(&format!("Spread_Segment 127.255.255.255:{port} {{\n"));
    for i in 1..=3 {
        conf.push_str(&format!("\tr{i}\t127.0.0.{i} {{\n\t\tD 127.0.0.{i}\n\t\tC 127.0.0.{i}\n\t}}\n"));
    }
    conf.push_str("}\n");
    let dir = std::env::temp_dir().join(format!("rspread-ring-ns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spread.conf"), conf).unwrap();
    let wrap = ["ip", "netns", "exec", name.as_str()];
    let start = {
        let dir = dir.clone();
        let name = name.clone();
        move |i: usize| {
            let wrap = ["ip", "netns", "exec", name.as_str()];
            Daemon::start_wrapped(&wrap, &format!("r{}", i + 1), port, dir.clone())
        }
    };
    let ds = (0..3).map(|i| Daemon::start_wrapped(&wrap, &format!("r{}", i + 1), port, dir.clone())).collect();
    let ns2 = ns.clone();
    let mut r = RingUnderTest {
        ds,
        connect: Box::new(move |i, cname| {
            let s = ns2.connect(std::net::SocketAddr::from(([127, 0, 0, i as u8 + 1], port)));
            handshake(Box::new(s), cname, true)
        }),
        restart: Box::new(start),
    };
    scenario(&mut r);
    drop(r);
    drop(ns);
}

fn scenario(r: &mut RingUnderTest) {
    let ds = &mut r.ds;
    for d in ds.iter() {
        d.wait_ring_of(3);
    }
    let mut c: Vec<Client> = (0..3).map(|i| (r.connect)(i, &format!("c{i}"))).collect();
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
    ds[0].wait_ring_of(2);
    // The ring of two still works.
    c[2].mcast(SAFE, &["ring-g"], 0, b"after");
    for i in [0, 2] {
        recv_until(&mut c[i], "the message after the change", |m| m.body == b"after");
    }

    // Restarted, it merges back (the leader's lookup finds it), and a client
    // of it joining the group is seen by everybody with all three members.
    ds[1] = (r.restart)(1);
    ds[0].wait_ring_of(3);
    ds[1].wait_ring_of(3);
    let mut back = (r.connect)(1, "c1b");
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

/// Hostile datagrams never disturb a ring (issue 11 item 3): to every data
/// and token port of a 3-daemon ring, from an address that is not in the
/// configuration (127.0.0.2), well-formed packets of every type carrying the
/// right configuration hash and a member's VID (forged JOINs among them);
/// and from the members' own
/// address, malformed ones (cut headers, lengths that do not match, the
/// wrong hash, no byte-order marker, random bytes). Meanwhile two clients on
/// different daemons exchange 300 AGREED messages: every one arrives in
/// order, nobody sees a membership change, every daemon is alive.
#[test]
fn hostile_datagrams_never_disturb_the_ring() {
    use spread_wire::daemon::{MembershipId, PacketHeader, TokenHeader, PACKET_HEADER_LEN};
    use spread_wire::endian::Order;
    let _g = serial();
    let (mut ds, ports) = start_ring(26660, 3);
    let text = std::fs::read_to_string(ds[0].dir.join("spread.conf")).unwrap();
    let conf = spread_daemon::config::parse_str(&text, "ring").expect("config");
    let (hash, vids): (u32, Vec<i32>) = (conf.hash, conf.daemons.iter().map(|d| d.vid as i32).collect());
    let mut a = connect_tcp(ports[0], "a", true);
    let mut b = connect_tcp(ports[2], "b", true);
    a.join("g");
    b.join("g");
    recv_until(&mut b, "both members", |m| m.type_ & REG_MEMB != 0 && members(m).len() == 2);
    recv_until(&mut a, "both members", |m| m.type_ & REG_MEMB != 0 && members(m).len() == 2);

    // The datagrams.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let types: Vec<u32> = (0..28).map(|i| 1u32 << i).chain([0, 0x1f, 0x3000, 0x0f00_0000, 0xffff_ffff]).collect();
    let header = |t: u32, vid: i32, hash: u32, len: u16, r: u64| {
        let h = PacketHeader {
            type_: t,
            transmiter_id: vid,
            proc_id: vid,
            memb_id: MembershipId { proc_id: r as i32, time: (r >> 32) as i32 },
            seq: r as i32 & 0xffff,
            token_round: 1,
            conf_hash: hash,
            data_len: len,
            ..Default::default()
        };
        let mut v = Vec::new();
        h.encode(Order::NATIVE, &mut v);
        v
    };
    let token = |t: u32, vid: i32, hash: u32, rtr: u16, r: u64| {
        let h = TokenHeader {
            type_: t,
            transmiter_id: vid,
            proc_id: vid,
            memb_id: MembershipId { proc_id: r as i32, time: 7 },
            seq: r as i32 & 0xffff,
            aru: 0,
            aru_last_id: vid,
            flow_control: 0,
            rtr_len: rtr,
            conf_hash: hash,
        };
        let mut v = Vec::new();
        h.encode(Order::NATIVE, &mut v);
        v
    };
    let mut stranger: Vec<Vec<u8>> = Vec::new();
    let mut member: Vec<Vec<u8>> = Vec::new();
    for &t in &types {
        for &vid in &vids {
            let r = rnd();
            let body: Vec<u8> = (0..(r % 300) as usize).map(|_| rnd() as u8).collect();
            let mut p = header(t, vid, hash, body.len() as u16, r);
            p.extend_from_slice(&body);
            // From a stranger: well formed, right hash, a member's VID.
            stranger.push(p.clone());
            let mut tk = token(t, vid, hash, body.len() as u16, r);
            tk.extend_from_slice(&body);
            stranger.push(tk.clone());
            // From a member's address: malformed.
            for cut in [0, 1, 4, 20, PACKET_HEADER_LEN - 1] {
                member.push(p[..cut.min(p.len())].to_vec());
                member.push(tk[..cut.min(tk.len())].to_vec());
            }
            let mut long = p.clone();
            long.push(0);
            member.push(long);
            if p.len() > PACKET_HEADER_LEN {
                member.push(p[..p.len() - 1].to_vec());
            }
            let mut wrong = header(t, vid, hash ^ 1, body.len() as u16, r);
            wrong.extend_from_slice(&body);
            member.push(wrong);
            let mut no_marker = p.clone();
            no_marker[0..4].copy_from_slice(&t.to_ne_bytes());
            no_marker[3] &= 0x7f;
            no_marker[0] &= 0x7f;
            member.push(no_marker);
            let mut form = token(t | 0x1000, vid, hash, body.len() as u16 + 8, r);
            form.extend_from_slice(&body);
            member.push(form);
        }
        member.push((0..(rnd() % 1400) as usize).map(|_| rnd() as u8).collect());
    }
    // A stranger forging a member's JOIN ("I am alone"): accepted, it would
    // start a membership change.
    for (i, &vid) in vids.iter().enumerate() {
        use spread_wire::daemon::memb::{JoinPacket, RepInfo, RepList, RepType};
        let j = JoinPacket {
            header: PacketHeader {
                type_: spread_wire::daemon::JOIN_TYPE,
                transmiter_id: vid,
                proc_id: vid,
                memb_id: MembershipId { proc_id: vid, time: 1 },
                conf_hash: hash,
                ..Default::default()
            },
            members: vec![vid],
            num_pending: 0,
            reps: RepList {
                rep_index: 0,
                reps: vec![RepInfo { proc_id: vid, rep_type: RepType::Seg, seg_index: i as i16 }],
            },
        };
        let mut v = Vec::new();
        j.encode(Order::NATIVE, &mut v).expect("join");
        for _ in 0..20 {
            stranger.push(v.clone());
        }
    }
    let from_stranger = std::net::UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let from_member = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let targets: Vec<u16> = ports.iter().flat_map(|&p| [p, p + 1]).collect();

    // Interleave the storm with the clients' traffic.
    const N: u32 = 300;
    let per = (stranger.len() + member.len()) / N as usize + 1;
    let mut all = stranger.iter().map(|p| (&from_stranger, p)).chain(member.iter().map(|p| (&from_member, p)));
    let mut sent = 0usize;
    for i in 0..N {
        for (sock, p) in all.by_ref().take(per) {
            for &port in &targets {
                let _ = sock.send_to(p, ("127.0.0.1", port));
                sent += 1;
            }
        }
        a.mcast(AGREED, &["g"], 0, &i.to_le_bytes());
    }
    for i in 0..N {
        for c in [&mut a, &mut b] {
            let m = c.recv();
            assert_eq!(m.type_ & REG_MEMB, 0, "no membership change during the storm (got {:#x})", m.type_);
            assert_eq!(m.body, i.to_le_bytes(), "message {i} in order");
        }
    }
    // One more round trip after the storm, and every daemon still runs.
    b.mcast(AGREED, &["g"], 0, b"end");
    for c in [&mut a, &mut b] {
        let m = c.recv();
        assert_eq!(m.type_ & REG_MEMB, 0);
        assert_eq!(&m.body[..], b"end");
    }
    for d in &mut ds {
        assert!(d.child.as_mut().unwrap().try_wait().unwrap().is_none(), "daemon on port {} died", d.port);
    }
    eprintln!(
        "hostile_datagrams: {sent} datagrams sent ({} kinds from a stranger, {} malformed from a member)",
        stranger.len(),
        member.len()
    );
}
