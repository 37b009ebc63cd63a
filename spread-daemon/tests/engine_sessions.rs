//! Engine-level tests of the session layer: handshake variants, every reject
//! byte, authentication, quota, header validation, byte order, sizes and the
//! slow-reader kill. Deterministic: no sockets, no clock, no sleeps.

mod engine_util;
use engine_util::*;

use std::time::Duration;

use spread_daemon::engine::auth::{parse_access_ip, AuthMethod};
use spread_daemon::engine::{Accepted, AuthConfig, ConnKind, EngineConfig};

fn localhost() -> Harness {
    Harness::new(EngineConfig::single(b"localhost", 0x1234_5678, 1000))
}

fn choice(names: &[&str]) -> [u8; 90] {
    let mut c = [0u8; 90];
    for (i, n) in names.iter().enumerate() {
        c[i * 30..i * 30 + n.len()].copy_from_slice(n.as_bytes());
    }
    c
}

#[test]
fn tv1_tv2_tv3_handshakes() {
    let mut h = localhost();
    // TV-1
    let id = h.connect(ConnKind::Unix);
    h.send(id, b"\x05\x00\x01\x01\x05user1");
    assert_eq!(h.take(id), b"\x05NULL ");
    h.send(id, &choice(&["NULL"]));
    assert_eq!(h.take(id), b"\x01\x05\x00\x01\x10#user1#localhost");
    assert!(h.eng.session(id).unwrap().memb);
    // TV-2: priority, no membership, over TCP
    let id2 = h.connect(ConnKind::Tcp);
    h.send(id2, b"\x05\x00\x01\x10\x05user2");
    h.send(id2, &choice(&["NULL"]));
    assert_eq!(h.take(id2), b"\x05NULL \x01\x05\x00\x01\x10#user2#localhost");
    assert!(!h.eng.session(id2).unwrap().memb);
    // TV-3: one-letter name, flags 0x11; the request may arrive byte by byte
    let id3 = h.connect(ConnKind::Tcp);
    for b in b"\x05\x00\x01\x11\x01u" {
        h.send(id3, &[*b]);
    }
    assert_eq!(h.take(id3), b"\x05NULL ");
    let c = choice(&["NULL"]);
    h.send(id3, &c[..50]);
    assert!(h.take(id3).is_empty());
    h.send(id3, &c[50..]);
    assert_eq!(h.take(id3), b"\x01\x05\x00\x01\x0c#u#localhost");
    // empty name: the daemon picks r<n>-<id>, unique
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let id = h.connect(ConnKind::Tcp);
        h.send(id, b"\x05\x00\x01\x01\x00");
        h.send(id, &choice(&["NULL"]));
        let out = h.take(id);
        let name = String::from_utf8(out[11..].to_vec()).unwrap();
        assert_eq!(out[10] as usize, name.len());
        let user = name.strip_prefix('#').unwrap().strip_suffix("#localhost").unwrap();
        assert!(user.starts_with('r') && user.contains('-') && user.len() <= 9, "{user}");
        assert!(seen.insert(name));
    }
    assert_eq!(h.eng.num_sessions(), 23);
}

#[test]
fn tv4_reject_bytes() {
    let mut h = localhost();
    let (_a, _) = h.login("a", true);
    let cases: &[(&[u8], u8)] = &[
        (b"\x05\x00\x01\x01\x01a", 0xfa),           // not unique
        (b"\x05\x00\x01\x01\x03a#b", 0xfb),         // illegal character
        (b"\x05\x00\x01\x01\x03a b", 0xfb),         // space
        (b"\x05\x00\x01\x01\x0babcdefghijk", 0xfb), // length 11
        (b"\x05\x00\x01\x01\xff", 0xfb),            // negative length
        (b"\x02\x09", 0xf9),                        // version 2.9
        (b"\x03\x00\x63\x00\x01x", 0xf9),           // 3.0.99 < 3.1.0
    ];
    for (req, byte) in cases {
        let id = h.connect(ConnKind::Tcp);
        h.send(id, req);
        assert_eq!(h.take(id), vec![*byte], "request {req:02x?}");
        assert!(h.closed.contains(&id));
        assert!(h.eng.session(id).is_none(), "slot freed");
    }
    // auth: a method that is not enabled, an empty choice
    for c in [choice(&["IP"]), choice(&[]), choice(&["NULL", "BOGUS"])] {
        let id = h.connect(ConnKind::Tcp);
        h.send(id, b"\x05\x00\x01\x01\x01z");
        h.send(id, &c);
        assert_eq!(h.take(id), b"\x05NULL \xf7");
        assert!(h.closed.contains(&id));
    }
    // the denied name is free again
    let (_z, pg) = h.login("z", true);
    assert_eq!(pg, "#z#localhost");
}

#[test]
fn legacy_handshakes() {
    let mut h = Harness::d1(1);
    // 3.14: two version bytes, no auth list, no patch byte in the accept.
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x03\x0e\x01\x05leg14");
    assert_eq!(h.take(id), b"\x01\x05\x00\x09#leg14#d1");
    // 3.15.0: patch byte, still no auth negotiation.
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x03\x0f\x00\x01\x05leg15");
    assert_eq!(h.take(id), b"\x01\x05\x00\x01\x09#leg15#d1");
    // 3.16.0: negotiates.
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x03\x10\x00\x01\x05leg16");
    assert_eq!(h.take(id), b"\x05NULL ");
    h.send(id, &choice(&["NULL"]));
    assert_eq!(h.take(id), b"\x01\x05\x00\x01\x09#leg16#d1");
    // A legacy library with only IP enabled and no rules file: denied.
    let mut cfg = EngineConfig::single(b"d1", VID_D1, 1);
    cfg.auth = AuthConfig { enabled: vec![AuthMethod::Ip], ..AuthConfig::default() };
    let mut h = Harness::new(cfg);
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x03\x0e\x01\x05leg14");
    assert_eq!(h.take(id), b"\xf7");
}

#[test]
fn auth_methods_ip_and_required() {
    let mut cfg = EngineConfig::single(b"d1", VID_D1, 1);
    cfg.auth = AuthConfig {
        enabled: vec![AuthMethod::Null, AuthMethod::Ip],
        required: vec![AuthMethod::Ip],
        ip_rules: Some(parse_access_ip("local\n")),
        pword: None,
    };
    let mut h = Harness::new(cfg);
    // TCP from 127.0.0.1: NULL requested, IP required → allowed.
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x05\x00\x01\x01\x01a");
    assert_eq!(h.take(id), b"\x08NULL IP ");
    h.send(id, &choice(&["NULL"]));
    assert_eq!(h.take(id), b"\x01\x05\x00\x01\x05#a#d1");
    // Unix socket: IP never allows it.
    let id = h.connect(ConnKind::Unix);
    h.send(id, b"\x05\x00\x01\x01\x01b");
    h.take(id);
    h.send(id, &choice(&["NULL"]));
    assert_eq!(h.take(id), b"\xf7");
    // No method enabled at all: empty list, then denied.
    let mut cfg = EngineConfig::single(b"d1", VID_D1, 1);
    cfg.auth = AuthConfig { enabled: vec![], ..AuthConfig::default() };
    let mut h = Harness::new(cfg);
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x05\x00\x01\x01\x01a");
    assert_eq!(h.take(id), b"\x00\xf7");
}

#[test]
fn pword_exchange() {
    let mut cfg = EngineConfig::single(b"d1", VID_D1, 1);
    cfg.auth = AuthConfig {
        enabled: vec![AuthMethod::Pword],
        pword: Some(std::sync::Arc::new(|u: &[u8], p: &[u8]| u == b"alice" && p == b"secret")),
        ..AuthConfig::default()
    };
    let mut h = Harness::new(cfg);
    let creds = |user: &str, pw: &str| {
        let mut v = vec![0u8; 40];
        v[..user.len()].copy_from_slice(user.as_bytes());
        v[32..32 + pw.len()].copy_from_slice(pw.as_bytes());
        v
    };
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x05\x00\x01\x01\x01a");
    assert_eq!(h.take(id), b"\x06PWORD ");
    h.send(id, &choice(&["PWORD"]));
    assert!(h.take(id).is_empty(), "waits for the 40 credential bytes");
    h.send(id, &creds("alice", "secret"));
    assert_eq!(h.take(id), b"\x01\x01\x05\x00\x01\x05#a#d1");
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x05\x00\x01\x01\x01b");
    h.send(id, &choice(&["PWORD"]));
    h.take(id);
    h.send(id, &creds("alice", "wrong"));
    assert_eq!(h.take(id), b"\x00\xf7");
}

#[test]
fn quota_and_997_sessions() {
    let mut h = Harness::d1(1);
    for i in 0..997 {
        h.login(&format!("u{i}"), false);
    }
    assert_eq!(h.eng.num_sessions(), 997);
    match h.eng.accept(h.now, ConnKind::Tcp, None) {
        Accepted::Rejected(b) => assert_eq!(&b[..], &[0xfd]),
        Accepted::Conn(_) => panic!("998th connection accepted"),
    }
}

#[test]
fn handshake_timeout_closes_silently() {
    let mut h = Harness::d1(1);
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x05\x00");
    let t = h.eng.next_timeout().expect("a deadline");
    h.eng.on_timeout(t - Duration::from_millis(1));
    h.pump();
    assert!(!h.closed.contains(&id));
    h.eng.on_timeout(t);
    h.pump();
    assert!(h.closed.contains(&id));
    assert!(h.take(id).is_empty());
    assert!(h.eng.next_timeout().is_none());
}

#[test]
fn bad_header_kills_only_its_session() {
    let mut h = Harness::d1(7);
    let (a, _) = h.login("alice", true);
    let (b, _) = h.login("bob", true);
    h.send(a, &frame(0x10000, "#alice#d1", &["g"], 0, b""));
    h.send(b, &frame(0x10000, "#bob#d1", &["g"], 0, b""));
    h.take(a);
    h.take(b);
    // bob sends RELIABLE|AGREED: killed; alice gets REG|DISCONNECT.
    h.send(b, &frame(0x12, "#bob#d1", &["g"], 0, b"x"));
    assert!(h.closed.contains(&b));
    assert!(h.take(b).is_empty());
    let f = split_frames(&h.take(a));
    assert_eq!(f.len(), 1);
    assert_eq!(&f[0][0..4], &[0x80, 0x14, 0, 0x80]);
    // alice still works
    h.send(a, &frame(0x10, "#alice#d1", &["g"], 3, b"hi"));
    let f = split_frames(&h.take(a));
    assert_eq!(f.len(), 1);
    assert_eq!(&f[0][f[0].len() - 2..], b"hi");
    // a client sending GROUPS_MESS is refused too
    let (c, _) = h.login("carol", false);
    h.send(c, &frame(0x80010, "#carol#d1", &["g"], 0, b""));
    assert!(h.closed.contains(&c));
}

#[test]
fn big_endian_sender_is_converted() {
    let mut h = Harness::d1(7);
    let (a, _) = h.login("alice", false);
    let (b, _) = h.login("bob", false);
    h.send(a, &frame(0x10000, "#alice#d1", &["g"], 0, b""));
    // bob writes big-endian: markers clear, integers BE, hint BE.
    let mut f = Vec::new();
    f.extend_from_slice(&0x10u32.to_be_bytes());
    let mut s = [0u8; 32];
    s[..7].copy_from_slice(b"#bob#d1");
    f.extend_from_slice(&s);
    f.extend_from_slice(&1i32.to_be_bytes());
    f.extend_from_slice(&[0, 0x12, 0x34, 0]);
    f.extend_from_slice(&4i32.to_be_bytes());
    let mut g = [0u8; 32];
    g[0] = b'g';
    f.extend_from_slice(&g);
    f.extend_from_slice(b"data");
    h.send(b, &f);
    let got = split_frames(&h.take(a));
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(&m[0..4], &[0x90, 0, 0, 0x80], "type in daemon order with its marker");
    assert_eq!(&m[36..40], &[1, 0, 0, 0]);
    assert_eq!(&m[40..44], &[0, 0x12, 0x34, 0], "hint untouched");
    assert_eq!(&m[44..48], &[4, 0, 0, 0]);
    assert_eq!(&m[80..], b"data");
}

#[test]
fn sizes_up_to_the_validation_limit() {
    let mut h = Harness::d1(7);
    let (a, _) = h.login("alice", false);
    let (b, _) = h.login("bob", false);
    h.send(b, &frame(0x10000, "#bob#d1", &["g"], 0, b""));
    for len in [0usize, 1, 143_120, 143_152 - 32, 143_920, 143_952 - 32] {
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let f = frame(0x20, "#alice#d1", &["g"], 1, &body);
        // delivered in pieces, as a socket would
        for chunk in f.chunks(65_536) {
            h.send(a, chunk);
        }
        let got = h.take(b);
        assert_eq!(got.len(), 48 + 32 + len, "len {len}");
        assert_eq!(&got[80..], &body[..]);
    }
    // one byte over the limit kills the sender
    let f = frame(0x20, "#alice#d1", &["g"], 1, &vec![0u8; 143_952 - 32 + 1]);
    h.send(a, &f[..48]);
    assert!(h.closed.contains(&a));
}

#[test]
fn slow_reader_is_killed_others_unaffected() {
    let mut cfg = EngineConfig::single(b"d1", VID_D1, 7);
    cfg.max_session_messages = 50;
    let mut h = Harness::new(cfg);
    let (snd, _) = h.login("snd", false);
    let (fast, _) = h.login("fast", false);
    let (slow, _) = h.login("slow", false);
    let (watch, _) = h.login("watch", true);
    for (id, n) in [(fast, "#fast#d1"), (slow, "#slow#d1"), (watch, "#watch#d1")] {
        h.send(id, &frame(0x10000, n, &["g"], 0, b""));
    }
    h.take(watch);
    // The slow reader's socket is full from now on.
    h.stalled.insert(slow);
    // Queue not blocked yet: a burst in one read is fine.
    let mut burst = Vec::new();
    for i in 0..100u32 {
        burst.extend(frame(0x10, "#snd#d1", &["g"], 0, &i.to_le_bytes()));
    }
    h.send(snd, &burst);
    assert!(!h.closed.contains(&slow), "not blocked before the driver says so");
    // Now the driver has reported a blocked socket (in pump), and 100 ≥ 50 are queued.
    h.send(snd, &frame(0x10, "#snd#d1", &["g"], 0, b"last"));
    assert!(h.closed.contains(&slow), "slow reader killed");
    let fast_frames = split_frames(&h.take(fast));
    assert_eq!(fast_frames.len(), 101, "fast reader keeps the full stream");
    let w = split_frames(&h.take(watch));
    assert_eq!(w.len(), 102);
    let disc = w.iter().filter(|f| f[0..4] == [0x80, 0x14, 0, 0x80]).count();
    assert_eq!(disc, 1, "one CAUSED_BY_DISCONNECT for the slow reader");
    assert!(!h.closed.contains(&fast) && !h.closed.contains(&snd));
}

#[test]
fn kill_frees_the_name_and_eof_in_handshake() {
    let mut h = Harness::d1(7);
    let (a, _) = h.login("alice", true);
    h.send(a, &frame(0x40000, "#alice#d1", &["#alice#d1"], 0, b""));
    assert!(h.closed.contains(&a));
    assert!(h.eng.session(a).is_none());
    let (_a2, pg) = h.login("alice", true);
    assert_eq!(pg, "#alice#d1");
    let id = h.connect(ConnKind::Tcp);
    h.send(id, b"\x05\x00\x01\x01\x03bob");
    h.eof(id);
    assert!(h.closed.contains(&id));
    let (_b, pg) = h.login("bob", true);
    assert_eq!(pg, "#bob#d1");
}

#[test]
fn self_discard_multigroup_and_unicast() {
    let mut h = Harness::d1(7);
    let (a, _) = h.login("alice", false);
    let (b, _) = h.login("bob", false);
    let (c, _) = h.login("carol", false);
    h.send(a, &frame(0x10000, "#alice#d1", &["g1"], 0, b""));
    h.send(b, &frame(0x10000, "#bob#d1", &["g1"], 0, b""));
    h.send(b, &frame(0x10000, "#bob#d1", &["g2"], 0, b""));
    // SELF_DISCARD: alice does not get her own copy; the bit is kept.
    h.send(a, &frame(0x50, "#alice#d1", &["g1"], 0, b"sd"));
    assert!(h.take(a).is_empty());
    let f = split_frames(&h.take(b));
    assert_eq!(&f[0][0..4], &[0xd0, 0, 0, 0x80]);
    // Multigroup with duplicates and unknown names: one copy each.
    h.send(a, &frame(0x10, "#alice#d1", &["g1", "g2", "g1", "nope", "#bob#d1", "#zed#d1", "#bob#d9"], 0, b"m"));
    assert_eq!(split_frames(&h.take(b)).len(), 1);
    assert_eq!(split_frames(&h.take(a)).len(), 1);
    assert!(h.take(c).is_empty());
    // Unicast to carol (not in any group).
    h.send(a, &frame(0x04, "#alice#d1", &["#carol#d1"], 0, b"u"));
    assert_eq!(split_frames(&h.take(c)).len(), 1);
    assert!(h.take(b).is_empty());
}

#[test]
fn join_beyond_the_local_member_limit_is_rejected() {
    let mut cfg = EngineConfig::single(b"d1", VID_D1, 7);
    cfg.max_sessions = 4000;
    let mut h = Harness::new(cfg);
    for i in 0..3122 {
        let (id, pg) = h.login(&format!("m{i}"), false);
        h.send(id, &frame(0x10000, &pg, &["big"], 0, b""));
    }
    assert_eq!(h.eng.groups().num_local(&spread_daemon::engine::name(b"big")), 3122);
    let (x, _) = h.login("x", false);
    h.send(x, &frame(0x10000, "#x#d1", &["big"], 0, b""));
    let got = h.take(x);
    let mut want = Vec::new();
    want.extend_from_slice(&0x8040_0080u32.to_le_bytes());
    let mut s = [0u8; 32];
    s[..5].copy_from_slice(b"#x#d1");
    want.extend_from_slice(&s);
    want.extend_from_slice(&2i32.to_le_bytes());
    want.extend_from_slice(&0x8000_0080u32.to_le_bytes());
    want.extend_from_slice(&0i32.to_le_bytes());
    want.extend_from_slice(&0x8000_0180u32.to_le_bytes());
    let mut g = [0u8; 32];
    g[..3].copy_from_slice(b"big");
    want.extend_from_slice(&g);
    want.extend_from_slice(&s);
    assert_eq!(to_hex(&got), to_hex(&want));
    assert_eq!(h.eng.groups().num_local(&spread_daemon::engine::name(b"big")), 3122);
}

#[test]
fn handle_event_is_the_same_as_the_methods() {
    use spread_daemon::engine::{Action, Event};
    let mut h = Harness::d1(7);
    let Some(Accepted::Conn(id)) = h.eng.handle_event(h.now, Event::Accepted { kind: ConnKind::Tcp, peer: None })
    else {
        panic!("accept")
    };
    h.eng.handle_event(h.now, Event::Data { id, bytes: b"\x05\x00\x01\x01\x01a" });
    assert_eq!(h.eng.poll_action(), Some(Action::Flush(id)));
    // Not drained: Writable asks again.
    h.eng.handle_event(h.now, Event::Writable { id });
    assert_eq!(h.eng.poll_action(), Some(Action::Flush(id)));
    assert_eq!(h.eng.drain_output(id), b"\x05NULL ");
    h.eng.handle_event(h.now, Event::Writable { id });
    assert_eq!(h.eng.poll_action(), None);
    h.eng.handle_event(h.now, Event::Closed { id });
    assert!(matches!(h.eng.poll_action(), Some(Action::Close { .. })));
    h.eng.handle_event(h.now, Event::Timer);
    assert!(h.eng.next_timeout().is_none());
}
