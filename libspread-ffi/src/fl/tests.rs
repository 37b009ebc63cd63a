//! Unit tests of the FL state machine over the in-memory SP double.

use std::collections::BTreeMap;
use std::ffi::CString;

use spread_wire::consts::*;

use super::machine::*;
use super::sim::{name, Sim};

type Lib = FlLib<Sim>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    FlushReq(String),
    Trans(String),
    /// FL view: group, service, members, gid, vs names from the body.
    View {
        group: String,
        service: i32,
        members: Vec<String>,
        gid: Gid,
        vs: Vec<String>,
        my_index: i16,
    },
    SelfLeave(String),
    Data {
        sender: String,
        service: i32,
        groups: Vec<String>,
        mess_type: i16,
        body: Vec<u8>,
        endian: i32,
    },
}

fn s(n: &Name) -> String {
    String::from_utf8_lossy(name_str(n)).into_owned()
}

fn connect(lib: &Lib, user: &str) -> i32 {
    let u = CString::new(user).unwrap();
    let (r, mbox, private) = lib.connect(None, Some(&u), 0);
    assert_eq!(r, ACCEPT_SESSION);
    assert_eq!(s(&private), format!("#{user}#sim"));
    mbox
}

fn args() -> RecvArgs {
    RecvArgs { service_in: DONT_BLOCK as i32, max_groups: 100, body_cap: 100_000 }
}

fn decode(out: &RecvOut) -> Ev {
    let svc = out.service.unwrap();
    let sender = s(&out.sender.unwrap());
    let groups: Vec<String> = out.groups.iter().map(s).collect();
    if svc & FLUSH_REQ_MESS as i32 != 0 {
        Ev::FlushReq(sender)
    } else if svc & TRANSITION_MESS as i32 != 0 {
        Ev::Trans(sender)
    } else if svc & REG_MEMB_MESS as i32 != 0 {
        let b = &out.body;
        let gid = [0, 1, 2].map(|i| i32::from_ne_bytes(b[4 * i..4 * i + 4].try_into().unwrap()));
        let n = i32::from_ne_bytes(b[12..16].try_into().unwrap()) as usize;
        assert_eq!(b.len(), 16 + 32 * n, "pre-4.0 FL membership body");
        let vs = (0..n).map(|i| s(&name_key(&b[16 + 32 * i..48 + 32 * i]))).collect();
        Ev::View { group: sender, service: svc, members: groups, gid, vs, my_index: out.mess_type.unwrap() }
    } else if svc & CAUSED_BY_LEAVE as i32 != 0 && svc & REGULAR_MESS as i32 == 0 {
        Ev::SelfLeave(sender)
    } else {
        Ev::Data {
            sender,
            service: svc,
            groups,
            mess_type: out.mess_type.unwrap(),
            body: out.body.clone(),
            endian: out.endian_mismatch.unwrap(),
        }
    }
}

/// Read everything available; answer flush requests at once if `autoflush`.
fn drain(lib: &Lib, mbox: i32, autoflush: bool) -> Vec<Ev> {
    let mut evs = Vec::new();
    for _ in 0..10_000 {
        let out = lib.receive(mbox, args());
        if out.ret == WOULD_BLOCK {
            return evs;
        }
        assert!(out.ret >= 0, "receive failed: {:?}", out);
        assert!(out.more_msgs.is_some());
        let ev = decode(&out);
        if let (Ev::FlushReq(g), true) = (&ev, autoflush) {
            assert_eq!(lib.flush(mbox, g.as_bytes()), 0);
        }
        evs.push(ev);
    }
    panic!("receive loop did not settle");
}

/// Drain every client until nothing moves.
fn settle(lib: &Lib, clients: &[i32], logs: &mut BTreeMap<i32, Vec<Ev>>) {
    for _ in 0..1000 {
        let mut moved = false;
        for &c in clients {
            let evs = drain(lib, c, true);
            moved |= !evs.is_empty();
            logs.entry(c).or_default().extend(evs);
        }
        if !moved && clients.iter().all(|c| lib.sp.pending(*c) == 0) {
            return;
        }
    }
    panic!("no quiescence");
}

fn views(evs: &[Ev]) -> Vec<(Vec<String>, Gid)> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::View { members, gid, .. } => Some((members.clone(), *gid)),
            _ => None,
        })
        .collect()
}

fn mcast(lib: &Lib, mbox: i32, svc: u32, group: &str, t: i16, body: &[u8]) -> i32 {
    lib.send(mbox, svc as i32, &name(group), 0, &[], t, 1, Payload::Parts(vec![body]))
}

#[test]
fn first_join_installs_singleton_view_with_pre40_body() {
    let lib = Lib::new(Sim::default());
    let a = connect(&lib, "a");
    assert_eq!(lib.join(a, b"g"), 0);
    let evs = drain(&lib, a, false);
    assert_eq!(
        evs,
        vec![Ev::View {
            group: "g".into(),
            service: (REG_MEMB_MESS | CAUSED_BY_JOIN) as i32,
            members: vec!["#a#sim".into()],
            gid: [7, 1000, 1],
            vs: vec!["#a#sim".into()],
            my_index: 0,
        }]
    );
    // The FLUSH_OK and FLUSH_RECV on the wire: FIFO, reserved types, gid body.
    let sent = lib.sp.sent();
    assert_eq!(sent.len(), 2);
    let gid_bytes: Vec<u8> = [7i32, 1000, 1].iter().flat_map(|v| v.to_ne_bytes()).collect();
    assert_eq!((sent[0].1, sent[0].3, sent[0].4.clone()), (FIFO_MESS as i32, FLUSH_OK_MESS, gid_bytes.clone()));
    assert_eq!((sent[1].1, sent[1].3, sent[1].4.clone()), (FIFO_MESS as i32, FLUSH_RECV_MESS, gid_bytes));
    assert_eq!(group_phase(&lib, a, "g"), Some((Membership::Joined, Phase::Steady)));
}

#[test]
fn second_join_needs_the_old_member_to_flush() {
    let lib = Lib::new(Sim::default());
    let a = connect(&lib, "a");
    let b = connect(&lib, "b");
    lib.join(a, b"g");
    drain(&lib, a, false);
    assert_eq!(lib.join(b, b"g"), 0);
    assert_eq!(drain(&lib, a, false), vec![Ev::FlushReq("g".into())]);
    assert_eq!(group_phase(&lib, a, "g"), Some((Membership::Joined, Phase::Authorize)));
    // B has flushed automatically but cannot install until A does.
    assert!(views(&drain(&lib, b, false)).is_empty());
    assert_eq!(mcast(&lib, b, AGREED_MESS, "g", 1, b"x"), ILLEGAL_GROUP, "B is not a member yet");
    assert_eq!(lib.flush(a, b"g"), 0);
    assert_eq!(lib.flush(a, b"g"), ILLEGAL_STATE, "only once per request");
    assert_eq!(mcast(&lib, a, AGREED_MESS, "g", 1, b"x"), ILLEGAL_STATE, "no sends after flushing");
    let ea = drain(&lib, a, false);
    let eb = drain(&lib, b, false);
    let want = vec![(vec!["#a#sim".to_string(), "#b#sim".to_string()], [7, 1000, 2])];
    assert_eq!(views(&ea), want);
    assert_eq!(views(&eb), want);
    match &ea[0] {
        Ev::View { vs, service, my_index, .. } => {
            assert_eq!(vs, &vec!["#b#sim".to_string()]);
            assert_eq!(*service, (REG_MEMB_MESS | CAUSED_BY_JOIN) as i32);
            assert_eq!(*my_index, 0);
        }
        e => panic!("{e:?}"),
    }
    match &eb[0] {
        Ev::View { my_index, .. } => assert_eq!(*my_index, 1),
        e => panic!("{e:?}"),
    }
}

#[test]
fn leave_and_disconnect_give_flush_request_transitional_then_view() {
    let lib = Lib::new(Sim::default());
    let [a, b, c] = ["a", "b", "c"].map(|u| connect(&lib, u));
    let mut logs = BTreeMap::new();
    for m in [a, b, c] {
        lib.join(m, b"g");
        settle(&lib, &[a, b, c], &mut logs);
    }
    logs.clear();
    assert_eq!(lib.leave(b, b"g"), 0);
    assert_eq!(lib.leave(b, b"g"), ILLEGAL_GROUP, "already leaving");
    let ea = drain(&lib, a, false);
    assert_eq!(ea, vec![Ev::FlushReq("g".into()), Ev::Trans("g".into())]);
    assert_eq!(drain(&lib, b, false), vec![Ev::SelfLeave("g".into())]);
    assert_eq!(group_phase(&lib, b, "g"), None);
    lib.flush(a, b"g");
    settle(&lib, &[a, c], &mut logs);
    for m in [a, c] {
        let v = views(&logs[&m]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, vec!["#a#sim".to_string(), "#c#sim".to_string()]);
    }
    let la = &logs[&a];
    assert!(matches!(la.last(), Some(Ev::View { service, vs, .. })
        if *service == (REG_MEMB_MESS | CAUSED_BY_LEAVE) as i32 && vs == &vec!["#b#sim".to_string()]));

    logs.clear();
    assert_eq!(lib.disconnect(c), 0);
    assert_eq!(lib.disconnect(c), ILLEGAL_SESSION);
    settle(&lib, &[a], &mut logs);
    let la = &logs[&a];
    assert_eq!(la[0], Ev::FlushReq("g".into()));
    assert_eq!(la[1], Ev::Trans("g".into()));
    assert!(matches!(&la[2], Ev::View { service, members, .. }
        if *service == (REG_MEMB_MESS | CAUSED_BY_DISCONNECT) as i32 && members == &vec!["#a#sim".to_string()]));
}

#[test]
fn vulnerable_message_is_held_until_the_view_it_was_sent_in() {
    let lib = Lib::new(Sim::default());
    let [a, b] = ["a", "b"].map(|u| connect(&lib, u));
    let mut logs = BTreeMap::new();
    lib.join(a, b"g");
    settle(&lib, &[a, b], &mut logs);
    lib.join(b, b"g");
    // A is asked to flush; B flushed automatically.
    assert_eq!(drain(&lib, a, false), vec![Ev::FlushReq("g".into())]);
    drain(&lib, b, false);
    lib.flush(a, b"g");
    // B installs first (it receives A's FLUSH_OK) and sends FIFO data in VERIFY.
    let eb = drain(&lib, b, false);
    assert_eq!(views(&eb).len(), 1);
    assert_eq!(group_phase(&lib, b, "g"), Some((Membership::Joined, Phase::Verify)));
    assert_eq!(mcast(&lib, b, FIFO_MESS, "g", 10, b"hi"), 2, "caller's byte count");
    let (_, svc, _, t, body) = lib.sp.sent().last().cloned().unwrap();
    assert_eq!((svc, t), (FIFO_MESS as i32, VULNERABLE_MESS));
    let mut want = b"hi".to_vec();
    want.extend_from_slice(&10i16.to_ne_bytes());
    want.extend([7i32, 1000, 2].iter().flat_map(|v| v.to_ne_bytes()));
    assert_eq!(body, want, "[data][mess_type][gid of B's current view]");
    // Agreed messages are never vulnerable.
    assert_eq!(mcast(&lib, b, AGREED_MESS, "g", 11, b"ag"), 2);
    assert_eq!(lib.sp.sent().last().unwrap().3, 11);
    // A is still in AGREE (B's FLUSH_OK may already be in); it gets the view first,
    // then B's message with the original type.
    let ea = drain(&lib, a, false);
    let pos_view = ea.iter().position(|e| matches!(e, Ev::View { .. })).unwrap();
    let pos_data = ea.iter().position(|e| matches!(e, Ev::Data { mess_type: 10, body, .. } if body == b"hi")).unwrap();
    assert!(pos_view < pos_data);
    assert!(ea.iter().any(|e| matches!(e, Ev::Data { mess_type: 11, .. })));
}

#[test]
fn unicast_and_subgroupcast_carry_the_reference_group() {
    let lib = Lib::new(Sim::default());
    let [a, b, c] = ["a", "b", "c"].map(|u| connect(&lib, u));
    let mut logs = BTreeMap::new();
    for m in [a, b, c] {
        lib.join(m, b"g");
        settle(&lib, &[a, b, c], &mut logs);
    }
    logs.clear();
    let r = [name("#b#sim")];
    let sg = (SUBGROUP_CAST | AGREED_MESS) as i32;
    assert_eq!(lib.send(a, sg, &name("g"), 1, &r, 5, 1, Payload::Parts(vec![b"uni"])), 3);
    let (_, svc, dests, _, body) = lib.sp.sent().last().cloned().unwrap();
    assert_eq!(svc, sg);
    assert_eq!(dests, vec![name("#b#sim")]);
    assert_eq!(&body[..3], b"uni");
    assert_eq!(&body[3..], &name("g")[..], "32-byte reference group appended");
    settle(&lib, &[a, b, c], &mut logs);
    assert_eq!(
        logs[&b],
        vec![Ev::Data {
            sender: "#a#sim".into(),
            service: sg,
            groups: vec!["#b#sim".into(), "g".into()],
            mess_type: 5,
            body: b"uni".to_vec(),
            endian: 0
        }]
    );
    assert!(logs[&c].is_empty());
    // Receivers must be in the current view; a private reference group must
    // equal every receiver.
    let bad = [name("#zz#sim")];
    assert_eq!(lib.send(a, sg, &name("g"), 1, &bad, 5, 1, Payload::Parts(vec![b"x"])), ILLEGAL_RECEIVERS);
    assert_eq!(
        lib.send(a, sg, &name("#b#sim"), 1, &[name("#c#sim")], 5, 1, Payload::Parts(vec![b"x"])),
        ILLEGAL_RECEIVERS
    );
    assert_eq!(lib.send(a, sg, &name("#b#sim"), 1, &[name("#b#sim")], 5, 1, Payload::Parts(vec![b"p"])), 1);
    logs.clear();
    settle(&lib, &[a, b, c], &mut logs);
    assert!(matches!(&logs[&b][..], [Ev::Data { groups, body, .. }]
        if groups == &vec!["#b#sim".to_string(), "#b#sim".to_string()] && body == b"p"));
}

#[test]
fn send_checks_come_in_the_original_order() {
    let lib = Lib::new(Sim::default());
    let a = connect(&lib, "a");
    lib.join(a, b"g");
    drain(&lib, a, false);
    let p = || Payload::Parts(vec![&b"x"[..]]);
    let g = name("g");
    assert_eq!(lib.send(999, 4, &g, -1, &[], -32768, 200, p()), ILLEGAL_SESSION);
    assert_eq!(lib.send(a, FLUSH_REQ_MESS as i32 | 4, &g, -1, &[], -32768, 200, p()), ILLEGAL_PARAM);
    assert_eq!(lib.send(a, FLUSH_REQ_MESS as i32 | 4, &g, 0, &[], -32768, 200, p()), ILLEGAL_SERVICE);
    for bad in [REG_MEMB_MESS, 0x80, 0x8000_0000, 0x4000] {
        assert_eq!(lib.send(a, (bad | 4) as i32, &g, 0, &[], 0, 1, p()), ILLEGAL_SERVICE);
    }
    assert_eq!(lib.send(a, 4, &g, 0, &[], -32766, 200, p()), ILLEGAL_MESSAGE_TYPE);
    assert_eq!(lib.send(a, 4, &g, 0, &[], -32765, 100, p()), ILLEGAL_MESSAGE);
    assert_eq!(lib.send(a, 4, &name("other"), 0, &[], -32765, 99, p()), ILLEGAL_GROUP);
    assert_eq!(lib.send(a, 4, &g, 0, &[], -32765, 99, p()), 1);
    // DONT_BLOCK and DROP_RECV are not reserved for sending; they go on the wire.
    assert_eq!(lib.send(a, (DONT_BLOCK | 4) as i32, &g, 0, &[], 0, 1, p()), 1);
    assert_eq!(lib.sp.sent().last().unwrap().1, (DONT_BLOCK | 4) as i32);
    // Private groups are allowed without membership.
    assert_eq!(lib.send(a, 4, &name("#a#sim"), 0, &[], 0, 1, p()), 1);
    // A scatter that cannot be read fails only once the FL checks pass.
    assert_eq!(lib.send(a, 4, &name("nope"), 0, &[], 0, 1, Payload::Invalid(ILLEGAL_MESSAGE)), ILLEGAL_GROUP);
    assert_eq!(lib.send(a, 4, &g, 0, &[], 0, 1, Payload::Invalid(ILLEGAL_MESSAGE)), ILLEGAL_MESSAGE);
    assert_eq!(lib.join(a, b"g"), ILLEGAL_GROUP);
    assert_eq!(lib.flush(a, b"g"), ILLEGAL_STATE);
    assert_eq!(lib.flush(a, b"zz"), ILLEGAL_GROUP);
    assert_eq!(lib.leave(a, b"zz"), ILLEGAL_GROUP);
    assert_eq!(lib.join(999, b"g"), ILLEGAL_SESSION);
    assert_eq!(lib.more_msgs(999), ILLEGAL_SESSION);
    assert_eq!(lib.poll(999), ILLEGAL_SESSION);
    assert_eq!(lib.receive(999, args()).ret, ILLEGAL_SESSION);
    assert_eq!(lib.receive(a, RecvArgs { max_groups: -1, ..args() }).ret, ILLEGAL_PARAM);
    assert_eq!(lib.lib_init(), 0);
    assert_eq!(lib.lib_init(), ILLEGAL_STATE);
}

#[test]
fn cascaded_join_is_installed_after_the_first() {
    let lib = Lib::new(Sim::default());
    let [a, b, c] = ["a", "b", "c"].map(|u| connect(&lib, u));
    let mut logs = BTreeMap::new();
    lib.join(a, b"g");
    settle(&lib, &[a], &mut logs);
    logs.clear();
    lib.join(b, b"g");
    lib.join(c, b"g");
    // A is asked once; after its flush it installs {a,b}, then is asked again.
    assert_eq!(drain(&lib, a, false), vec![Ev::FlushReq("g".into())]);
    lib.flush(a, b"g");
    settle(&lib, &[a, b, c], &mut logs);
    let va = views(&logs[&a]);
    assert_eq!(va.iter().map(|v| v.0.len()).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(views(&logs[&b]), va);
    assert_eq!(views(&logs[&c]), va[1..].to_vec());
    assert_eq!(logs[&a].iter().filter(|e| matches!(e, Ev::FlushReq(_))).count(), 1, "second one auto-answered");
}

#[test]
fn leaver_that_never_flushed_collapses_pending_changes_into_network() {
    let lib = Lib::new(Sim::default());
    let [a, b, c] = ["a", "b", "c"].map(|u| connect(&lib, u));
    let mut logs = BTreeMap::new();
    for m in [a, b] {
        lib.join(m, b"g");
        settle(&lib, &[a, b], &mut logs);
    }
    logs.clear();
    lib.join(c, b"g");
    // B is asked to flush but dies first; the {a,b,c} view can never be agreed.
    assert_eq!(drain(&lib, b, false), vec![Ev::FlushReq("g".into())]);
    lib.sp.kill(b);
    settle(&lib, &[a, c], &mut logs);
    let va = views(&logs[&a]);
    let vc = views(&logs[&c]);
    assert_eq!(va, vc);
    assert_eq!(va.len(), 1, "{:?}", logs[&a]);
    assert_eq!(va[0].0, vec!["#a#sim".to_string(), "#c#sim".to_string()]);
    let body_vs = |evs: &[Ev]| {
        evs.iter()
            .find_map(|e| match e {
                Ev::View { service, vs, .. } => Some((*service, vs.clone())),
                _ => None,
            })
            .unwrap()
    };
    // Collapsed to a network change: the body lists who came from the old view.
    assert_eq!(body_vs(&logs[&a]), ((REG_MEMB_MESS | CAUSED_BY_NETWORK) as i32, vec!["#a#sim".to_string()]));
    assert_eq!(body_vs(&logs[&c]), ((REG_MEMB_MESS | CAUSED_BY_NETWORK) as i32, vec!["#c#sim".to_string()]));
    // The killed client's calls now fail and tear it down.
    assert_eq!(lib.receive(b, args()).ret, ILLEGAL_SESSION);
    assert_eq!(lib.more_msgs(b), ILLEGAL_SESSION);
}

fn vulnerable_frame(swap: bool, subgroup: bool) -> SpRecv {
    let mut body = b"hey".to_vec();
    let t: i16 = 10;
    let gid = [7i32, 1000, 2];
    let fix16 = |v: i16| if swap { v.swap_bytes() } else { v };
    let fix32 = |v: i32| if swap { v.swap_bytes() } else { v };
    body.extend_from_slice(&fix16(t).to_ne_bytes());
    for v in gid {
        body.extend_from_slice(&fix32(v).to_ne_bytes());
    }
    let mut service = FIFO_MESS as i32;
    let mut groups = vec![name("g")];
    if subgroup {
        service |= SUBGROUP_CAST as i32;
        body.extend_from_slice(&name("g"));
        groups = vec![name("#a#sim")];
    }
    SpRecv {
        ret: body.len() as i32,
        service,
        sender: name("#b#sim"),
        num_groups: groups.len() as i32,
        groups,
        mess_type: VULNERABLE_MESS,
        endian_mismatch: swap as i32,
        body,
    }
}

#[test]
fn trailers_from_either_byte_order_are_decoded() {
    for swap in [false, true] {
        for subgroup in [false, true] {
            let lib = Lib::new(Sim::default());
            let [a, b] = ["a", "b"].map(|u| connect(&lib, u));
            let mut logs = BTreeMap::new();
            for m in [a, b] {
                lib.join(m, b"g");
                settle(&lib, &[a, b], &mut logs);
            }
            lib.sp.inject(a, vulnerable_frame(swap, subgroup));
            let ev = drain(&lib, a, false);
            let want_groups: Vec<String> = if subgroup { vec!["#a#sim".into(), "g".into()] } else { vec!["g".into()] };
            assert_eq!(
                ev,
                vec![Ev::Data {
                    sender: "#b#sim".into(),
                    service: if subgroup { (FIFO_MESS | SUBGROUP_CAST) as i32 } else { FIFO_MESS as i32 },
                    groups: want_groups,
                    mess_type: 10,
                    body: b"hey".to_vec(),
                    endian: swap as i32,
                }],
                "swap {swap} subgroup {subgroup}"
            );
        }
    }
}

#[test]
fn foreign_order_peer_goes_through_joins_and_vulnerable_sends() {
    let lib = Lib::new(Sim::default());
    let [a, b] = ["a", "b"].map(|u| connect(&lib, u));
    lib.sp.set_foreign(b);
    let mut logs = BTreeMap::new();
    lib.join(a, b"g");
    settle(&lib, &[a, b], &mut logs);
    lib.join(b, b"g");
    drain(&lib, a, false);
    drain(&lib, b, false);
    lib.flush(a, b"g");
    drain(&lib, b, false);
    assert_eq!(group_phase(&lib, b, "g").unwrap().1, Phase::Verify);
    assert_eq!(mcast(&lib, b, RELIABLE_MESS, "g", 300, b"vv"), 2);
    logs.clear();
    settle(&lib, &[a, b], &mut logs);
    assert!(logs[&a].iter().any(|e| matches!(e, Ev::Data { mess_type: 300, endian: 1, body, .. } if body == b"vv")));
    assert_eq!(views(&logs[&a]).len(), 1);
    assert_eq!(group_phase(&lib, a, "g").unwrap().1, Phase::Steady);
    assert_eq!(group_phase(&lib, b, "g").unwrap().1, Phase::Steady, "FLUSH_RECVs decoded across orders");
}

#[test]
fn short_buffers_follow_the_original_rules() {
    let lib = Lib::new(Sim::default());
    let [a, b] = ["a", "b"].map(|u| connect(&lib, u));
    let mut logs = BTreeMap::new();
    for m in [a, b] {
        lib.join(m, b"g");
        settle(&lib, &[a, b], &mut logs);
    }
    // A subgroupcast of 10 bytes: wire body 42 bytes, 1 wire group + reference.
    let sg = (SUBGROUP_CAST | AGREED_MESS) as i32;
    assert_eq!(lib.send(b, sg, &name("g"), 1, &[name("#a#sim")], 3, 1, Payload::Parts(vec![b"0123456789"])), 10);
    let base = RecvArgs { service_in: DONT_BLOCK as i32, max_groups: 1, body_cap: 100 };
    // One group slot is too few for the reference group too: needs 2.
    let out = lib.receive(a, base);
    assert_eq!((out.ret, out.num_groups, out.endian_mismatch), (GROUPS_TOO_SHORT, Some(-2), Some(0)));
    // Body too short as seen on the wire (the original reports the wire size).
    let out = lib.receive(a, RecvArgs { max_groups: 2, body_cap: 5, ..base });
    assert_eq!((out.ret, out.num_groups, out.endian_mismatch), (BUFFER_TOO_SHORT, Some(0), Some(-42)));
    // DROP_RECV: truncated data, reference group kept in the last slot.
    let drop = RecvArgs { service_in: (DONT_BLOCK | DROP_RECV) as i32, max_groups: 1, body_cap: 4 };
    let out = lib.receive(a, drop);
    assert_eq!(out.ret, GROUPS_TOO_SHORT);
    assert_eq!(out.num_groups, Some(-2));
    assert_eq!(out.groups, vec![name("g")]);
    assert_eq!(out.body, b"0123");
    assert_eq!(out.mess_type, Some(3));
    assert_eq!(lib.receive(a, args()).ret, WOULD_BLOCK, "consumed");

    // A message queued behind another one follows the same rules, and with
    // buffers too short (without DROP_RECV) it stays queued.
    lib.leave(b, b"g");
    let tiny = RecvArgs { service_in: DONT_BLOCK as i32, max_groups: 0, body_cap: 0 };
    // The SP membership itself needs room for its member list...
    assert_eq!(lib.receive(a, tiny).ret, GROUPS_TOO_SHORT);
    let out = lib.receive(a, args());
    assert_eq!(out.service, Some(FLUSH_REQ_MESS as i32));
    assert_eq!(out.more_msgs, Some(1));
    assert_eq!(lib.more_msgs(a), 1);
    assert_eq!(lib.poll(a), BUFF_MESS_OVERHEAD as i32, "one empty signal queued, nothing at SP");
    // ...the queued transitional signal needs none.
    let out = lib.receive(a, tiny);
    assert_eq!((out.ret, out.service, out.more_msgs), (0, Some(TRANSITION_MESS as i32), Some(0)));
    assert_eq!(lib.poll(a), 0);
}

#[test]
fn held_vulnerable_message_is_queued_after_the_view_and_obeys_short_buffers() {
    let lib = Lib::new(Sim::default());
    let [a, b] = ["a", "b"].map(|u| connect(&lib, u));
    let mut logs = BTreeMap::new();
    lib.join(a, b"g");
    settle(&lib, &[a, b], &mut logs);
    lib.join(b, b"g");
    assert_eq!(drain(&lib, a, false), vec![Ev::FlushReq("g".into())]);
    drain(&lib, b, false);
    lib.flush(a, b"g");
    drain(&lib, b, false);
    assert_eq!(mcast(&lib, b, FIFO_MESS, "g", 9, b"hi"), 2);
    // A's SP queue: B's FLUSH_OK, A's FLUSH_OK, B's FLUSH_RECV, B's data. Let the
    // data overtake A's own FLUSH_OK: A is still in AGREE when it arrives.
    assert_eq!(lib.sp.pending(a), 4);
    lib.sp.move_queued(a, 3, 1);
    let out = lib.receive(a, args());
    assert!(matches!(decode(&out), Ev::View { .. }), "{out:?}");
    assert_eq!(out.more_msgs, Some(1), "the held message queued right behind the view");
    assert_eq!(lib.poll(a), BUFF_MESS_OVERHEAD as i32 + 32 + 2 + lib.sp.poll(a));
    let tiny = RecvArgs { service_in: DONT_BLOCK as i32, max_groups: 0, body_cap: 0 };
    let out = lib.receive(a, tiny);
    assert_eq!((out.ret, out.num_groups, out.endian_mismatch), (GROUPS_TOO_SHORT, Some(-1), Some(-2)));
    assert_eq!(out.mess_type, Some(9));
    assert_eq!(out.more_msgs, None);
    let out = lib.receive(a, RecvArgs { max_groups: 1, ..tiny });
    assert_eq!((out.ret, out.num_groups, out.endian_mismatch), (BUFFER_TOO_SHORT, Some(0), Some(-2)));
    assert_eq!(lib.more_msgs(a), 1);
    let drop = RecvArgs { service_in: (DONT_BLOCK | DROP_RECV) as i32, max_groups: 0, body_cap: 1 };
    let out = lib.receive(a, drop);
    assert_eq!((out.ret, out.num_groups, out.endian_mismatch), (GROUPS_TOO_SHORT, Some(-1), Some(0)));
    assert_eq!(out.body, b"h");
    assert_eq!(s(&out.sender.unwrap()), "#b#sim");
    assert_eq!(lib.more_msgs(a), 0, "DROP_RECV consumed it");
    // B's FLUSH_RECV then completes A's view.
    assert_eq!(lib.receive(a, args()).ret, WOULD_BLOCK);
    assert_eq!(group_phase(&lib, a, "g").unwrap().1, Phase::Steady);
}

/// Many clients, random operations, random scheduling: every member of an FL
/// view saw the same member list, and every data message is delivered in the
/// view it was sent in (the body carries the sender's view id).
#[test]
fn random_schedules_keep_virtual_synchrony() {
    let (mut views, mut data) = (0, 0);
    for seed in 1..=40u64 {
        let (v, d) = random_run(seed);
        views += v;
        data += d;
    }
    // The schedules really went through view changes with traffic.
    assert!(views > 200 && data > 200, "views {views} data {data}");
    eprintln!("random schedules: {views} views, {data} data messages");
}

fn random_run(seed: u64) -> (usize, usize) {
    let (mut nviews, mut ndata) = (0, 0);
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let lib = Lib::new(Sim::default());
    let users = ["a", "b", "c", "d"];
    let mut boxes: Vec<Option<i32>> = users.iter().map(|u| Some(connect(&lib, u))).collect();
    // Per client: current FL view gid in group g, pending flush.
    let mut cur: Vec<Option<Gid>> = vec![None; users.len()];
    let mut want_flush = vec![false; users.len()];
    let mut leaving = vec![false; users.len()];
    let mut seen_views: BTreeMap<Gid, Vec<String>> = BTreeMap::new();
    for step in 0..400 {
        let i = next(users.len() as u64) as usize;
        let Some(m) = boxes[i] else { continue };
        match next(10) {
            0 => {
                lib.join(m, b"g");
            }
            1 if next(4) == 0 => {
                let r = lib.leave(m, b"g");
                assert!(r == 0 || r == ILLEGAL_GROUP);
                if r == 0 {
                    leaving[i] = true;
                }
            }
            2 if next(12) == 0 => {
                if next(2) == 0 {
                    lib.sp.kill(m);
                    assert_eq!(lib.receive(m, args()).ret, ILLEGAL_SESSION);
                } else {
                    assert_eq!(lib.disconnect(m), 0);
                }
                boxes[i] = None;
            }
            3 if want_flush[i] => {
                let r = lib.flush(m, b"g");
                assert!(r == 0 || (leaving[i] && r == ILLEGAL_GROUP), "flush: {r}");
                want_flush[i] = false;
            }
            4 | 5 => {
                if let Some(gid) = cur[i] {
                    let body: Vec<u8> = gid.iter().flat_map(|v| v.to_ne_bytes()).collect();
                    let svc = [FIFO_MESS, AGREED_MESS, RELIABLE_MESS, SAFE_MESS][next(4) as usize];
                    let r = mcast(&lib, m, svc, "g", 42, &body);
                    assert!(r == 12 || r == ILLEGAL_STATE || r == ILLEGAL_GROUP, "send: {r}");
                }
            }
            _ => {
                // Receive a few messages.
                for _ in 0..next(4) + 1 {
                    let out = lib.receive(m, args());
                    if out.ret == WOULD_BLOCK {
                        break;
                    }
                    if out.ret == ILLEGAL_GROUP && leaving[i] {
                        // The original's answer when a cascaded change reaches a
                        // member that flushed and then asked to leave.
                        continue;
                    }
                    assert!(out.ret >= 0, "seed {seed} step {step}: {out:?}");
                    match decode(&out) {
                        Ev::FlushReq(_) => want_flush[i] = true,
                        Ev::View { members, gid, .. } => {
                            let prev = seen_views.entry(gid).or_insert_with(|| members.clone());
                            assert_eq!(prev, &members, "seed {seed}: two member lists for view {gid:?}");
                            assert!(members.contains(&format!("#{}#sim", users[i])));
                            cur[i] = Some(gid);
                            nviews += 1;
                        }
                        Ev::SelfLeave(_) => {
                            cur[i] = None;
                            leaving[i] = false;
                            want_flush[i] = false;
                        }
                        Ev::Data { body, mess_type, sender, .. } => {
                            assert_eq!(mess_type, 42);
                            let gid = [0, 1, 2].map(|k| i32::from_ne_bytes(body[4 * k..4 * k + 4].try_into().unwrap()));
                            assert_eq!(Some(gid), cur[i], "seed {seed}: message from {sender} in another view");
                            let members = &seen_views[&gid];
                            assert!(members.contains(&sender));
                            ndata += 1;
                        }
                        Ev::Trans(_) => {}
                    }
                }
            }
        }
    }
    (nviews, ndata)
}

#[test]
fn partition_and_merge_give_network_views_with_the_survivors() {
    let lib = Lib::new(Sim::default());
    let [a, b, c] = ["a", "b", "c"].map(|u| connect(&lib, u));
    let mut logs = BTreeMap::new();
    for m in [a, b, c] {
        lib.join(m, b"g");
        settle(&lib, &[a, b, c], &mut logs);
    }
    logs.clear();
    lib.sp.partition("g", &[&[a, b], &[c]]);
    // Traffic on each side while partitioned.
    settle(&lib, &[a, b, c], &mut logs);
    let net = (REG_MEMB_MESS | CAUSED_BY_NETWORK) as i32;
    let last =
        |m: i32, logs: &BTreeMap<i32, Vec<Ev>>| match logs[&m].iter().rev().find(|e| matches!(e, Ev::View { .. })) {
            Some(Ev::View { service, members, vs, .. }) => (*service, members.clone(), vs.clone()),
            _ => panic!("no view"),
        };
    let ab = vec!["#a#sim".to_string(), "#b#sim".to_string()];
    assert_eq!(last(a, &logs), (net, ab.clone(), ab.clone()));
    assert_eq!(last(b, &logs), (net, ab.clone(), ab.clone()));
    assert_eq!(last(c, &logs), (net, vec!["#c#sim".into()], vec!["#c#sim".into()]));
    // The SP transitional message marks the view before the shrunk membership
    // arrives, so (as in the original) no FL transitional signal is delivered.
    assert_eq!(logs[&a].iter().filter(|e| matches!(e, Ev::Trans(_))).count(), 0);
    assert_eq!(mcast(&lib, a, AGREED_MESS, "g", 1, b"ab-side"), 7);
    assert_eq!(mcast(&lib, c, AGREED_MESS, "g", 1, b"c-side"), 6);
    logs.clear();
    settle(&lib, &[a, b, c], &mut logs);
    assert!(logs[&b].iter().any(|e| matches!(e, Ev::Data { body, .. } if body == b"ab-side")));
    assert!(!logs[&b].iter().any(|e| matches!(e, Ev::Data { body, .. } if body == b"c-side")));
    assert!(logs[&c].iter().any(|e| matches!(e, Ev::Data { body, .. } if body == b"c-side")));

    logs.clear();
    lib.sp.merge("g", &[&[a, b], &[c]]);
    settle(&lib, &[a, b, c], &mut logs);
    let abc: Vec<String> = ["#a#sim", "#b#sim", "#c#sim"].map(String::from).to_vec();
    // The body names the members that came along from each one's previous view.
    assert_eq!(last(a, &logs), (net, abc.clone(), ab.clone()));
    assert_eq!(last(b, &logs), (net, abc.clone(), ab));
    assert_eq!(last(c, &logs), (net, abc, vec!["#c#sim".into()]));
    for m in [a, b, c] {
        assert_eq!(group_phase(&lib, m, "g"), Some((Membership::Joined, Phase::Steady)));
    }
}

#[test]
fn fl_error_texts() {
    assert_eq!(
        super::fl_error_text(-24).unwrap(),
        "FL_error: (-24) Illegal parameter (eg a negative size) passed to a function.\n"
    );
    assert_eq!(super::fl_error_text(-25).unwrap(), "FL_error: (-25) Function call would have blocked.\n");
    assert_eq!(
        super::fl_error_text(-26).unwrap(),
        "FL_error: (-26) Illegal message type (int16) used, value < FL_MIN_LEGAL_MESS_TYPE(-32765).\n"
    );
    assert_eq!(super::fl_error_text(-27).unwrap(), "FL_error: (-27) Function call peformed in a prohibited state.\n");
    assert_eq!(super::fl_error_text(-28).unwrap(), "FL_error: (-28) Illegal receivers specified.\n");
    assert_eq!(super::fl_error_text(-8), None, "SP codes go to SP_error");
}

#[test]
fn absurd_sizes_with_drop_recv_close_the_session_instead_of_allocating() {
    let lib = Lib::new(Sim::default());
    let a = connect(&lib, "a");
    let huge = SpRecv {
        ret: i32::MAX,
        service: AGREED_MESS as i32,
        sender: name("#x#sim"),
        num_groups: 1,
        groups: vec![name("#a#sim")],
        mess_type: 0,
        endian_mismatch: 0,
        body: Vec::new(),
    };
    // The double reports the body as too long for any buffer we offer.
    lib.sp.inject(a, SpRecv { body: vec![0; 2 << 20], ..huge });
    let drop = RecvArgs { service_in: (DONT_BLOCK | DROP_RECV) as i32, max_groups: 4, body_cap: 10 };
    assert_eq!(lib.receive(a, drop).ret, CONNECTION_CLOSED);
    assert_eq!(lib.more_msgs(a), ILLEGAL_SESSION, "torn down");
}
