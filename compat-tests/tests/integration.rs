//! Our library (through the `SP_*` C functions of `spread_ffi`) against our
//! daemon over real sockets. Every wait is bounded; every daemon is stopped
//! by PID when its guard drops.
//!
//! Ports 23300–23499 (each daemon uses P, P+1 and /tmp/P).

#![allow(clippy::needless_range_loop)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use compat_tests::daemon::Daemon;
use compat_tests::frames;
use compat_tests::net::{CloseSeen, Conn};
use compat_tests::sp_api::{sp, Received};
use compat_tests::transcript::{s, Transcript};

const UNRELIABLE: i32 = 0x01;
const RELIABLE: i32 = 0x02;
const FIFO: i32 = 0x04;
const CAUSAL: i32 = 0x08;
const AGREED: i32 = 0x10;
const SAFE: i32 = 0x20;
const SELF_DISCARD: i32 = 0x40;
const DROP_RECV: i32 = 0x0100_0000;
const REG_MEMB: i32 = 0x1000;
const TRANSITION: i32 = 0x2000;
const BY_JOIN: i32 = 0x100;
const BY_LEAVE: i32 = 0x200;
const BY_DISCONNECT: i32 = 0x400;
const CONNECTION_CLOSED: i32 = -8;
const NET_ERROR_ON_SESSION: i32 = -18;
const ILLEGAL_SESSION: i32 = -11;
const BUFFER_TOO_SHORT: i32 = -15;
const GROUPS_TOO_SHORT: i32 = -16;

fn daemon(port: u16, extra: &str) -> Daemon {
    Daemon::start_single("d1", port, extra).unwrap_or_else(|e| panic!("daemon on {port}: {e}"))
}

fn connect(d: &Daemon, name: &str, membership: bool) -> i32 {
    let (r, mbox, pg) = sp().sp_connect(&d.spread_name(), Some(name), 0, membership);
    assert_eq!(r, 1, "SP_connect({name}) to {}", d.spread_name());
    assert_eq!(pg, format!("#{name}#d1"));
    mbox
}

fn recv(mbox: i32, what: &str) -> Received {
    sp().sp_receive_by(mbox, Instant::now() + Duration::from_secs(10), 100, 200_000)
        .unwrap_or_else(|| panic!("nothing received within 10 s ({what})"))
}

/// Receives the next membership message, failing on anything else.
fn recv_memb(mbox: i32, what: &str) -> Received {
    let r = recv(mbox, what);
    assert!(r.ret >= 0, "{what}: SP_receive returned {}", r.ret);
    assert!(r.service_type & (REG_MEMB | TRANSITION | BY_LEAVE) != 0, "{what}: expected membership, got {r:?}");
    r
}

fn members(r: &Received) -> Vec<String> {
    r.groups.clone()
}

fn nothing_pending(mbox: i32, what: &str) {
    // a message the daemon would wrongly send is in flight within a moment:
    // wait for readability with a short bound
    assert!(
        !compat_tests::net::poll_readable(mbox, Instant::now() + Duration::from_millis(300)),
        "{what}: unexpected message {:?}",
        sp().sp_receive(mbox, 0, 100, 200_000)
    );
}

#[test]
fn every_service_type_reaches_every_member() {
    let d = daemon(23300, "");
    let a = connect(&d, "alice", true);
    let b = connect(&d, "bob", true);
    assert_eq!(sp().sp_join(a, "svc"), 0);
    recv_memb(a, "alice join");
    assert_eq!(sp().sp_join(b, "svc"), 0);
    recv_memb(a, "bob join seen by alice");
    recv_memb(b, "bob join seen by bob");
    for (n, st) in [UNRELIABLE, RELIABLE, FIFO, CAUSAL, AGREED, SAFE].into_iter().enumerate() {
        let body = format!("body-{st:#x}");
        assert_eq!(sp().sp_multicast(a, st, "svc", 7 + n as i16, body.as_bytes()), body.len() as i32);
        for (who, m) in [("alice", a), ("bob", b)] {
            let r = recv(m, who);
            assert_eq!(r.ret, body.len() as i32, "{who} {st:#x}");
            assert_eq!(r.service_type, st, "{who}");
            assert_eq!(r.sender, "#alice#d1");
            assert_eq!(r.groups, vec!["svc".to_string()]);
            assert_eq!(r.mess_type, 7 + n as i16);
            assert_eq!(r.endian_mismatch, 0);
            assert_eq!(r.body, body.as_bytes());
        }
    }
    // SELF_DISCARD: only bob, and the bit is kept
    assert_eq!(sp().sp_multicast(a, AGREED | SELF_DISCARD, "svc", 1, b"sd"), 2);
    let r = recv(b, "self-discard");
    assert_eq!(r.service_type, AGREED | SELF_DISCARD);
    assert_eq!(r.body, b"sd");
    // unicast to a private group, and a multigroup send arrives once
    assert_eq!(sp().sp_multicast(a, RELIABLE, "#bob#d1", 2, b"uni"), 3);
    let r = recv(b, "unicast");
    assert_eq!((r.groups.clone(), r.body.clone()), (vec!["#bob#d1".to_string()], b"uni".to_vec()));
    assert_eq!(sp().sp_join(b, "other"), 0);
    recv_memb(b, "bob joins other");
    assert_eq!(sp().sp_multigroup_multicast(a, AGREED, &["svc", "other"], 3, b"mg"), 2);
    let r = recv(b, "multigroup");
    assert_eq!(r.groups, vec!["svc".to_string(), "other".to_string()]);
    let r = recv(a, "multigroup at alice");
    assert_eq!(r.body, b"mg");
    // 0-byte and large bodies
    assert_eq!(sp().sp_multicast(a, FIFO, "svc", 0, b""), 0);
    assert_eq!(recv(b, "empty").ret, 0);
    let big: Vec<u8> = (0..100_000).map(|i| (i % 251) as u8).collect();
    assert_eq!(sp().sp_multicast(a, SAFE, "svc", 0, &big), 100_000);
    let r = recv(b, "big");
    assert_eq!(r.body, big);
    nothing_pending(b, "bob after the big message");
    assert_eq!(sp().sp_disconnect(a), 0);
    assert_eq!(sp().sp_disconnect(b), 0);
}

#[test]
fn membership_join_leave_self_leave_disconnect_kill() {
    let d = daemon(23310, "");
    let a = connect(&d, "alice", true);
    let b = connect(&d, "bob", true);
    let c = connect(&d, "carol", true);
    let spx = sp();
    assert_eq!(spx.sp_join(a, "m"), 0);
    let r = recv_memb(a, "a joins");
    assert_eq!(r.service_type, REG_MEMB | BY_JOIN);
    assert_eq!((r.sender.as_str(), members(&r), r.mess_type), ("m", vec!["#alice#d1".to_string()], 0));
    let gid1 = spx.memb_info(&r.buf, r.service_type);
    assert_eq!((gid1.ret, gid1.gid[2], gid1.changed_member.as_str(), gid1.num_vs_sets), (1, 1, "#alice#d1", 1));

    assert_eq!(spx.sp_join(b, "m"), 0);
    for (who, m, idx) in [("alice", a, 0), ("bob", b, 1)] {
        let r = recv_memb(m, who);
        assert_eq!(r.service_type, REG_MEMB | BY_JOIN, "{who}");
        assert_eq!(members(&r), vec!["#alice#d1".to_string(), "#bob#d1".to_string()]);
        assert_eq!(r.mess_type, idx, "{who}: mess_type is the own index");
        let mi = spx.memb_info(&r.buf, r.service_type);
        assert_eq!((mi.gid[0], mi.gid[1], mi.gid[2]), (gid1.gid[0], gid1.gid[1], 2));
        assert_eq!(mi.changed_member, "#bob#d1");
        let (ret, my, sets) = spx.vs_sets(&r.buf, 4);
        assert_eq!((ret, my, sets.len()), (1, 0, 1));
        assert_eq!(spx.vs_members(&r.buf, &sets[0], 4), (1, vec!["#bob#d1".to_string()]));
    }
    assert_eq!(spx.sp_join(c, "m"), 0);
    for m in [a, b, c] {
        let r = recv_memb(m, "carol joins");
        assert_eq!(members(&r).len(), 3);
    }
    // leave: bob gets a self-leave, the others REG|CAUSED_BY_LEAVE
    assert_eq!(spx.sp_leave(b, "m"), 0);
    let r = recv_memb(b, "self-leave");
    assert_eq!((r.ret, r.service_type, r.num_groups, r.mess_type), (0, BY_LEAVE, 0, -1));
    assert_eq!(r.sender, "m");
    for m in [a, c] {
        let r = recv_memb(m, "bob left");
        assert_eq!(r.service_type, REG_MEMB | BY_LEAVE);
        assert_eq!(members(&r), vec!["#alice#d1".to_string(), "#carol#d1".to_string()]);
        assert_eq!(spx.memb_info(&r.buf, r.service_type).changed_member, "#bob#d1");
    }
    nothing_pending(b, "bob after leaving");
    // disconnect: KILL message
    assert_eq!(spx.sp_disconnect(c), 0);
    let r = recv_memb(a, "carol disconnected");
    assert_eq!(r.service_type, REG_MEMB | BY_DISCONNECT);
    assert_eq!(members(&r), vec!["#alice#d1".to_string()]);
    assert_eq!(spx.memb_info(&r.buf, r.service_type).changed_member, "#carol#d1");
    // kill: only the socket closes; same message for the others
    assert_eq!(spx.sp_join(b, "m"), 0);
    recv_memb(a, "bob back");
    recv_memb(b, "bob back (bob)");
    spx.sp_kill(b);
    let r = recv_memb(a, "bob killed");
    assert_eq!(r.service_type, REG_MEMB | BY_DISCONNECT);
    assert_eq!(spx.memb_info(&r.buf, r.service_type).changed_member, "#bob#d1");
    let mi = spx.memb_info(&r.buf, r.service_type);
    assert_eq!(mi.gid[2], 7, "gid index counts every change of m");
    // after SP_kill/SP_disconnect the mailbox is gone
    assert_eq!(spx.sp_join(b, "m"), ILLEGAL_SESSION);
    assert_eq!(spx.sp_disconnect(c), ILLEGAL_SESSION);
    assert_eq!(spx.sp_disconnect(a), 0);
}

#[test]
fn receive_short_buffers_against_the_daemon() {
    let d = daemon(23320, "");
    let spx = sp();
    let a = connect(&d, "alice", false);
    let b = connect(&d, "bob", true);
    assert_eq!(spx.sp_join(b, "sb"), 0);
    // the join must be in effect before the (FIFO) messages are sent
    recv_memb(b, "bob joins");
    for (n, body) in [b"abcd".as_slice(), b"abcd", b"abcd", b"abcd"].iter().enumerate() {
        assert_eq!(spx.sp_multicast(a, FIFO, "sb", 77 + n as i16, body), 4);
    }
    assert!(compat_tests::net::poll_readable(b, Instant::now() + Duration::from_secs(10)));
    // client spec §5.4, row by row
    let r = spx.sp_receive(b, 0, 0, 0);
    assert_eq!(
        (r.ret, r.service_type, r.num_groups, r.mess_type, r.endian_mismatch),
        (GROUPS_TOO_SHORT, FIFO, -1, 77, -4)
    );
    let r = spx.sp_receive(b, 0, 1, 3);
    assert_eq!((r.ret, r.num_groups, r.mess_type, r.endian_mismatch), (BUFFER_TOO_SHORT, 0, 77, -4));
    let r = spx.sp_receive(b, 0, 1, 4);
    assert_eq!(
        (r.ret, r.num_groups, r.mess_type, r.endian_mismatch, r.body.as_slice()),
        (4, 1, 77, 0, b"abcd".as_slice())
    );
    let r = spx.sp_receive(b, DROP_RECV, 0, 1000);
    assert_eq!(
        (r.ret, r.num_groups, r.mess_type, r.endian_mismatch, r.body.as_slice()),
        (4, -1, 78, 0, b"abcd".as_slice())
    );
    let r = spx.sp_receive(b, DROP_RECV, 10, 2);
    assert_eq!((r.ret, r.num_groups, r.mess_type, r.endian_mismatch), (BUFFER_TOO_SHORT, 1, 79, 0));
    assert_eq!(&r.buf[..2], b"ab");
    let r = spx.sp_receive(b, 0, 10, 100);
    assert_eq!(
        (r.ret, r.mess_type, r.body.as_slice()),
        (4, 80, b"abcd".as_slice()),
        "stream stays in sync after a DROP_RECV truncation"
    );
    assert_eq!(spx.sp_disconnect(a), 0);
    assert_eq!(spx.sp_disconnect(b), 0);
}

#[test]
fn two_hundred_clients_in_a_hundred_groups() {
    let t0 = Instant::now();
    let d = daemon(23330, "");
    let spx = sp();
    let n = 200usize;
    let groups = 100usize;
    // over the Unix socket: 200 TCP connections would take 200 ephemeral
    // ports, which overlap the fixed test ports on this kernel
    let mut mb = Vec::new();
    for k in 0..n {
        let name = format!("c{k}");
        let (r, mbox, pg) = spx.sp_connect(&d.port.to_string(), Some(&name), 0, true);
        assert_eq!((r, pg), (1, format!("#{name}#d1")));
        mb.push(mbox);
    }
    // client k is in groups k%100 and (k+1)%100: four members per group
    let gname = |g: usize| format!("grp{g}");
    for k in 0..n {
        assert_eq!(spx.sp_join(mb[k], &gname(k % groups)), 0);
        assert_eq!(spx.sp_join(mb[k], &gname((k + 1) % groups)), 0);
    }
    let members_of = |g: usize| -> HashSet<String> {
        (0..n).filter(|k| k % groups == g || (k + 1) % groups == g).map(|k| format!("#c{k}#d1")).collect()
    };
    // everyone ends up seeing the full 4-member view of both its groups
    for k in 0..n {
        let mut full: HashSet<usize> = HashSet::new();
        let mine = [k % groups, (k + 1) % groups];
        for _ in 0..64 {
            if full.len() == 2 {
                break;
            }
            let r = recv_memb(mb[k], &format!("client {k} memberships"));
            let g: usize = r.sender.trim_start_matches("grp").parse().expect("group name");
            assert!(mine.contains(&g), "client {k} got membership of {}", r.sender);
            let got: HashSet<String> = r.groups.iter().cloned().collect();
            if got.len() == 4 {
                assert_eq!(got, members_of(g));
                full.insert(g);
            }
        }
        assert_eq!(full.len(), 2, "client {k} never saw full views");
    }
    // each client sends one AGREED message to its first group
    for k in 0..n {
        let body = format!("from-c{k}");
        assert_eq!(spx.sp_multicast(mb[k], AGREED, &gname(k % groups), 5, body.as_bytes()), body.len() as i32);
    }
    // each client gets the 4 messages of its groups; per group the order is
    // the same at every member (AGREED)
    let mut order: HashMap<usize, Vec<Vec<String>>> = HashMap::new();
    for k in 0..n {
        let mut per_group: HashMap<usize, Vec<String>> = HashMap::new();
        for _ in 0..4 {
            let r = recv(mb[k], &format!("client {k} data"));
            assert_eq!(r.service_type, AGREED, "client {k}: {r:?}");
            let g: usize = r.groups[0].trim_start_matches("grp").parse().unwrap();
            per_group.entry(g).or_default().push(String::from_utf8_lossy(&r.body).into_owned());
        }
        for (g, v) in per_group {
            assert_eq!(v.len(), 2, "client {k}, group {g}");
            order.entry(g).or_default().push(v);
        }
    }
    for (g, views) in order {
        assert_eq!(views.len(), 4, "group {g} members reporting");
        assert!(views.iter().all(|v| *v == views[0]), "group {g}: AGREED order differs between members: {views:?}");
    }
    for m in mb {
        assert_eq!(spx.sp_disconnect(m), 0);
    }
    assert!(t0.elapsed() < Duration::from_secs(120), "took {:?}", t0.elapsed());
}

#[test]
fn slow_reader_is_cut_off_while_the_fast_one_gets_everything() {
    let d = daemon(23340, "MaxSessionMessages = 20");
    let spx = sp();
    let sender = connect(&d, "sender", false);
    let fast = connect(&d, "fast", true);
    let slow = connect(&d, "slow", true);
    assert_eq!(spx.sp_join(slow, "flood"), 0);
    assert_eq!(spx.sp_join(fast, "flood"), 0);
    recv_memb(fast, "fast joins");
    let count = 2000usize;
    let size = 8000usize;
    // the sender stays at most WINDOW messages ahead of the fast reader, so
    // the fast reader can never fall behind, while the slow one never reads
    const WINDOW: usize = 10;
    let progress = std::sync::Arc::new((std::sync::Mutex::new(0usize), std::sync::Condvar::new()));
    let p2 = progress.clone();
    let reader = std::thread::spawn(move || {
        let spx = sp();
        let mut data = 0usize;
        let mut slow_gone = false;
        let deadline = Instant::now() + Duration::from_secs(120);
        let result = (|| {
            while data < count {
                let Some(r) = spx.sp_receive_by(fast, deadline, 10, 20_000) else {
                    return Err(format!("fast reader stalled after {data} messages"));
                };
                if r.ret < 0 {
                    return Err(format!("fast reader: SP_receive {} after {data} messages", r.ret));
                }
                if r.service_type & REG_MEMB != 0 {
                    if r.service_type & BY_DISCONNECT != 0
                        && spx.memb_info(&r.buf, r.service_type).changed_member == "#slow#d1"
                    {
                        slow_gone = true;
                    }
                    continue;
                }
                let seq = u32::from_le_bytes(r.body[..4].try_into().unwrap()) as usize;
                if seq != data {
                    return Err(format!("fast reader: message {seq} where {data} was due"));
                }
                data += 1;
                *p2.0.lock().unwrap() = data;
                p2.1.notify_all();
            }
            if !slow_gone {
                // the disconnect may come after the last data message
                if let Some(r) = spx.sp_receive_by(fast, Instant::now() + Duration::from_secs(20), 10, 20_000) {
                    slow_gone = r.service_type & (REG_MEMB | BY_DISCONNECT) == REG_MEMB | BY_DISCONNECT;
                }
            }
            Ok((data, slow_gone))
        })();
        // wake the sender whatever happened
        *p2.0.lock().unwrap() = usize::MAX;
        p2.1.notify_all();
        result
    });
    let mut body = vec![0x5au8; size];
    for k in 0..count {
        {
            let (m, cv) = &*progress;
            let mut done = m.lock().unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while *done != usize::MAX && *done + WINDOW < k {
                let now = Instant::now();
                assert!(now < deadline, "fast reader made no progress for 30 s at message {k}");
                done = cv.wait_timeout(done, deadline - now).unwrap().0;
            }
            if *done == usize::MAX {
                break;
            }
        }
        body[..4].copy_from_slice(&(k as u32).to_le_bytes());
        assert_eq!(spx.sp_multicast(sender, AGREED, "flood", 0, &body), size as i32, "send {k}");
    }
    let (got, slow_gone) = reader.join().expect("reader thread").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, count);
    assert!(slow_gone, "the fast member never saw the slow one disconnected");
    // the slow reader gets what fitted in its socket, then CONNECTION_CLOSED
    let mut closed = false;
    for _ in 0..count + 10 {
        let Some(r) = spx.sp_receive_by(slow, Instant::now() + Duration::from_secs(10), 10, 20_000) else { break };
        if r.ret == CONNECTION_CLOSED {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow session was not closed by the daemon");
    assert_eq!(spx.sp_receive(slow, 0, 10, 100).ret, NET_ERROR_ON_SESSION);
    assert_eq!(spx.sp_disconnect(slow), 0);
    assert_eq!(spx.sp_disconnect(fast), 0);
    assert_eq!(spx.sp_disconnect(sender), 0);
}

#[test]
fn each_malformed_header_of_e_closes_only_its_session() {
    let t = Transcript::load("e");
    let d = daemon(23350, "");
    let spx = sp();
    let alice = connect(&d, "alice", true);
    assert_eq!(spx.sp_join(alice, "g1"), 0);
    recv_memb(alice, "alice joins");
    let log = t.json.get("raw_client_log").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let mut cases = 0;
    for e in log.iter().filter(|e| s(e, "step") == Some("malformed_sent")) {
        let case = e.get("case").and_then(|v| v.as_u64()).unwrap();
        let name = format!("mal{case}");
        let bad = compat_tests::hex::decode(s(e, "hex").unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut c = Conn::tcp(d.port, Duration::from_secs(5)).unwrap();
        let pg = frames::raw_handshake(&mut c, name.as_bytes(), false, deadline).unwrap();
        assert_eq!(pg, format!("#{name}#d1"));
        c.write_all(&frames::message(frames::JOIN_MESS, pg.as_bytes(), &[b"g1"], 0, b"")).unwrap();
        let r = recv_memb(alice, &format!("{name} joins"));
        assert_eq!((r.service_type, r.groups.len()), (REG_MEMB | BY_JOIN, 2), "{name}");
        let _ = c.write_all(&bad);
        match c.wait_close_by(deadline) {
            CloseSeen::Fin | CloseSeen::Rst => {}
            other => panic!(
                "case {case} ({}): the daemon did not close the session: {other:?}",
                s(e, "description").unwrap_or("")
            ),
        }
        let r = recv_memb(alice, &format!("{name} killed"));
        assert_eq!(r.service_type, REG_MEMB | BY_DISCONNECT, "case {case}");
        assert_eq!(spx.memb_info(&r.buf, r.service_type).changed_member, pg);
        cases += 1;
    }
    assert_eq!(cases, 8);
    // alice's own session is untouched
    assert_eq!(spx.sp_multicast(alice, AGREED, "g1", 1, b"still-here"), 10);
    assert_eq!(recv(alice, "alice after the cases").body, b"still-here");
    assert_eq!(spx.sp_disconnect(alice), 0);
}

#[test]
fn daemon_restart_with_clients_connected_binds_again_at_once() {
    let port = 23360;
    let spx = sp();
    let mut d = daemon(port, "");
    let mut mbs = Vec::new();
    for k in 0..5 {
        let m = connect(&d, &format!("r{k}"), true);
        assert_eq!(spx.sp_join(m, "rg"), 0);
        mbs.push(m);
    }
    for _ in 0..5 {
        recv_memb(mbs[0], "r0 sees the joins");
    }
    d.stop();
    // the old sessions see the daemon go away
    for &m in &mbs {
        let mut r = None;
        for _ in 0..10 {
            let x = spx
                .sp_receive_by(m, Instant::now() + Duration::from_secs(10), 10, 1000)
                .expect("EOF after the daemon stops");
            if x.ret < 0 {
                r = Some(x.ret);
                break;
            }
        }
        assert_eq!(r, Some(CONNECTION_CLOSED));
    }
    let t0 = Instant::now();
    let d2 =
        Daemon::start_single_exact("d1", d.port, "").unwrap_or_else(|e| panic!("restart on the same port failed: {e}"));
    assert!(t0.elapsed() < Duration::from_secs(15));
    let m = connect(&d2, "again", true);
    assert_eq!(spx.sp_join(m, "rg"), 0);
    let r = recv_memb(m, "join after restart");
    assert_eq!(members(&r), vec!["#again#d1".to_string()]);
    for m0 in mbs {
        assert_eq!(spx.sp_disconnect(m0), 0);
    }
    assert_eq!(spx.sp_disconnect(m), 0);
}

#[test]
fn unix_socket_sessions_work() {
    let d = daemon(23370, "");
    let spx = sp();
    let (r, u, pg) = spx.sp_connect(&d.port.to_string(), Some("ux"), 0, true);
    assert_eq!((r, pg.as_str()), (1, "#ux#d1"));
    let t = connect(&d, "tcp", true);
    assert_eq!(spx.sp_join(u, "mix"), 0);
    recv_memb(u, "ux joins");
    assert_eq!(spx.sp_multicast(t, SAFE, "mix", 3, b"over-tcp"), 8);
    let r = recv(u, "unix receives");
    assert_eq!((r.sender.as_str(), r.body.as_slice()), ("#tcp#d1", b"over-tcp".as_slice()));
    assert_eq!(spx.sp_disconnect(u), 0);
    assert_eq!(spx.sp_disconnect(t), 0);
}

/// Replays a recording's `api_log` with our library against our daemon (no
/// fake daemon): every call must return what the original returned, except
/// the ring time inside gids and a daemon-invented private name. A sync
/// session orders the calls of different clients as the recording's timing
/// did (its AGREED message to itself comes back only after the daemon has
/// ordered everything sent before).
fn api_log_end_to_end(scenario: &str, base: u16) -> Vec<String> {
    use compat_tests::api_check::{check_membership, check_receive};
    use compat_tests::transcript::{body_from_spec, i, parse_hex_i32};
    let t = Transcript::load(scenario);
    let d = daemon(base, "");
    let spx = sp();
    let (r, sync, sync_pg) = spx.sp_connect(&d.spread_name(), Some("zzsync"), 0, false);
    assert_eq!(r, 1);
    let mut barriers = 0u32;
    let mut barrier = || -> Result<(), String> {
        barriers += 1;
        let body = barriers.to_le_bytes();
        spx.sp_multicast(sync, AGREED, &sync_pg, 0, &body);
        for _ in 0..10 {
            let r = spx
                .sp_receive_by(sync, Instant::now() + Duration::from_secs(10), 10, 100)
                .ok_or("sync: nothing back")?;
            if r.body == body {
                return Ok(());
            }
        }
        Err("sync: own message never came back".into())
    };
    let mut errors = Vec::new();
    let mut mboxes: HashMap<String, i32> = HashMap::new();
    let mut last_actor = String::new();
    for e in t.api_log() {
        let op = s(&e, "op").unwrap_or("");
        let client = s(&e, "client").unwrap_or("").to_string();
        let ctx = format!("{}: api step {} {op} ({client})", t.name, i(&e, "step").unwrap_or(-1));
        let mbox = mboxes.get(&client).copied().unwrap_or(-1);
        let acts = matches!(
            op,
            "SP_connect"
                | "SP_join"
                | "SP_leave"
                | "SP_multicast"
                | "SP_multigroup_multicast"
                | "SP_disconnect"
                | "SP_kill"
        );
        if acts && last_actor != client {
            if let Err(x) = barrier() {
                errors.push(format!("{ctx}: {x}"));
            }
            last_actor = client.clone();
        }
        let want = i(&e, "ret");
        let mut ret_is = |got: i32| {
            if want != Some(got as i64) {
                errors.push(format!("{ctx}: expected {want:?}, got {got}"));
            }
        };
        match op {
            "SP_connect" => {
                let recorded = s(&e, "spread_name").unwrap_or("");
                let sn = if recorded.contains('@') { d.spread_name() } else { d.port.to_string() };
                let (r, mb, pg) = spx.sp_connect(
                    &sn,
                    Some(s(&e, "private_name").unwrap_or("")),
                    i(&e, "priority").unwrap_or(0) as i32,
                    i(&e, "group_membership").unwrap_or(1) != 0,
                );
                ret_is(r);
                if r == 1 {
                    let exp = s(&e, "private_group").unwrap_or("");
                    let ok = if frames::is_random_private_name(exp, "d1") {
                        frames::is_random_private_name(&pg, "d1")
                    } else {
                        exp == pg
                    };
                    if !ok {
                        errors.push(format!("{ctx}: private group expected {exp}, got {pg}"));
                    }
                    mboxes.insert(client, mb);
                }
            }
            "SP_join" => ret_is(spx.sp_join(mbox, s(&e, "group").unwrap_or(""))),
            "SP_leave" => ret_is(spx.sp_leave(mbox, s(&e, "group").unwrap_or(""))),
            "SP_multicast" | "SP_multigroup_multicast" => {
                let st = s(&e, "service_type").and_then(parse_hex_i32).unwrap_or(0);
                let body = body_from_spec(s(&e, "body_spec").unwrap_or("empty")).unwrap_or_default();
                let mt = i(&e, "mess_type").unwrap_or(0) as i16;
                let groups: Vec<&str> = s(&e, "groups").unwrap_or("").split(',').collect();
                ret_is(if op == "SP_multicast" {
                    spx.sp_multicast(mbox, st, groups[0], mt, &body)
                } else {
                    spx.sp_multigroup_multicast(mbox, st, &groups, mt, &body)
                });
            }
            "SP_receive" => match spx.sp_receive_by(mbox, Instant::now() + Duration::from_secs(10), 100, 200_000) {
                None => errors.push(format!("{ctx}: nothing received within 10 s")),
                Some(r) => {
                    check_receive(&ctx, &e, &r, true, &mut errors);
                    if r.ret >= 0 {
                        check_membership(spx, &ctx, &e, &r, true, &mut errors);
                    }
                }
            },
            "idle_done"
                if i(&e, "extra_messages") == Some(0)
                    && mbox >= 0
                    && compat_tests::net::poll_readable(mbox, Instant::now() + Duration::from_millis(200)) =>
            {
                let r = spx.sp_receive(mbox, 0, 100, 200_000);
                errors.push(format!("{ctx}: the recording got nothing here; ours got {r:?}"));
            }
            "SP_disconnect" => ret_is(spx.sp_disconnect(mbox)),
            "SP_kill" => spx.sp_kill(mbox),
            _ => {}
        }
    }
    spx.sp_disconnect(sync);
    errors
}

#[test]
fn recorded_api_logs_end_to_end() {
    let mut errors = Vec::new();
    for (k, sc) in ["a", "b", "c", "d", "h"].into_iter().enumerate() {
        errors.extend(api_log_end_to_end(sc, 23380 + 10 * k as u16));
    }
    assert!(errors.is_empty(), "{} mismatch(es):\n{}", errors.len(), errors.join("\n"));
}
