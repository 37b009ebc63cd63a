//! The groups layer on its own, against the two-daemon recording f: the
//! partition (transitional then regular configuration) seen from each side
//! must produce the recorded TRANSITION and REG|NETWORK frames byte for byte.
//! Also the "changed group" join/leave paths (heavyweight + transitional).

mod engine_util;
use engine_util::*;

use spread_daemon::engine::groups::{GState, GatherOutcome, Groups, GroupsConfig, LocalMember, RegOutcome};
use spread_daemon::engine::name;

const D1: u32 = 1_552_775_919;
const D2: u32 = 348_480_928;
const RING1: i32 = 1_795_358_160;
const RING2: i32 = 1_795_358_168;

fn recorded(t: &serde_json::Value, index: u64) -> Vec<u8> {
    let f = t["frames"].as_array().unwrap().iter().find(|f| f["index"].as_u64() == Some(index)).unwrap();
    hex(f["hex"].as_str().unwrap())
}

fn groups_at(my_idx: usize) -> Groups {
    Groups::new(GroupsConfig {
        daemons: vec![b"d1".to_vec(), b"d2".to_vec()],
        vids: vec![D1, D2],
        my_idx,
        memb_id: (D1 as i32, RING1),
    })
}

#[test]
fn partition_seen_from_d1_and_d2() {
    let t = load_transcript("f_network_partition");
    let (alice, bob, mg) = (name(b"#alice#d1"), name(b"#bob#d2"), name(b"mg"));
    // d1: alice is local.
    let mut g = groups_at(0);
    let mut out = Vec::new();
    let la = LocalMember { slot: 0, memb: true };
    g.join(&alice, &mg, Some(la), &mut out);
    assert_eq!(to_hex(&out.pop().unwrap().1), to_hex(&recorded(&t, 6)));
    g.join(&bob, &mg, None, &mut out);
    assert_eq!(to_hex(&out.pop().unwrap().1), to_hex(&recorded(&t, 14)));
    g.handle_trans_memb(&[D1], (D1 as i32, RING2), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(to_hex(&out.pop().unwrap().1), to_hex(&recorded(&t, 15)));
    assert_eq!(g.state(), GState::Trans);
    assert_eq!(g.handle_reg_memb(&[D1], (D1 as i32, RING2), &mut out), RegOutcome::Settled);
    assert_eq!(out.len(), 1);
    assert_eq!(to_hex(&out.pop().unwrap().1), to_hex(&recorded(&t, 16)));
    assert_eq!(g.state(), GState::Op);

    // d2: bob is local.
    let mut g = groups_at(1);
    let lb = LocalMember { slot: 7, memb: true };
    g.join(&alice, &mg, None, &mut out);
    assert!(out.is_empty(), "no local member yet");
    g.join(&bob, &mg, Some(lb), &mut out);
    assert_eq!(to_hex(&out.pop().unwrap().1), to_hex(&recorded(&t, 13)));
    g.handle_trans_memb(&[D2], (D2 as i32, RING2), &mut out);
    assert_eq!(to_hex(&out.pop().unwrap().1), to_hex(&recorded(&t, 19)));
    g.handle_reg_memb(&[D2], (D2 as i32, RING2), &mut out);
    assert_eq!(to_hex(&out.pop().unwrap().1), to_hex(&recorded(&t, 20)));
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn changed_group_join_and_leave_are_heavyweight_plus_transitional() {
    let (a1, b2, c1, g1) = (name(b"#a#d1"), name(b"#b#d2"), name(b"#c#d1"), name(b"g1"));
    let mut g = groups_at(0);
    let mut out = Vec::new();
    let la = LocalMember { slot: 1, memb: true };
    let lc = LocalMember { slot: 2, memb: true };
    g.join(&a1, &g1, Some(la), &mut out);
    g.join(&b2, &g1, None, &mut out);
    out.clear();
    // d2 vanishes: TRANS to a, the group is changed now.
    g.handle_trans_memb(&[D1], (D1 as i32, RING2), &mut out);
    assert_eq!(out.len(), 1);
    out.clear();
    // c joins during the transitional period: a gets REG|NETWORK + TRANS,
    // c its own copy pointing at the final singleton set, then TRANS.
    g.join(&c1, &g1, Some(lc), &mut out);
    assert_eq!(out.len(), 4);
    let to_a: Vec<_> = out.iter().filter(|(s, _)| *s == 1).map(|(_, f)| f.clone()).collect();
    let to_c: Vec<_> = out.iter().filter(|(s, _)| *s == 2).map(|(_, f)| f.clone()).collect();
    assert_eq!(to_a.len(), 2);
    assert_eq!(to_c.len(), 2);
    let (ha, hc) = (&to_a[0], &to_c[0]);
    assert_eq!(u32_at(ha, 0), 0x8000_1880, "REG_MEMB|CAUSED_BY_NETWORK");
    assert_eq!(u32_at(ha, 36), 3, "three members");
    let body = &ha[48 + 3 * 32..];
    // gid (trans id, index 2), then 3 vs-sets: [a] (d1 established), [b] (d2 partitioned), [c] joiner
    assert_eq!(u32_at(body, 8), 2);
    assert_eq!(u32_at(body, 12), 3);
    assert_eq!(u32_at(body, 16), 0, "a's set (this daemon's) first");
    assert_eq!(u32_at(body, 20), 1);
    assert_eq!(&body[24..29], b"#a#d1");
    assert_eq!(u32_at(body, 56), 1);
    assert_eq!(&body[60..65], b"#b#d2");
    assert_eq!(u32_at(body, 92), 1);
    assert_eq!(&body[96..101], b"#c#d1");
    // c's copy differs only in the offset, which points at the joiner's set.
    let bc = &hc[48 + 3 * 32..];
    assert_eq!(u32_at(bc, 16), 72);
    assert_eq!(&hc[..48 + 3 * 32 + 16], &ha[..48 + 3 * 32 + 16]);
    assert_eq!(&hc[48 + 3 * 32 + 20..], &ha[48 + 3 * 32 + 20..]);
    // then the transitional message with the gid just announced
    assert_eq!(u32_at(&to_a[1], 0), 0x8000_2080);
    assert_eq!(&to_a[1][48..60], &body[0..12]);
    out.clear();
    // The regular configuration settles: b's daemon is dropped, one vs-set.
    assert_eq!(g.handle_reg_memb(&[D1], (D1 as i32, RING2 + 1), &mut out), RegOutcome::Settled);
    assert_eq!(out.len(), 2);
    let f = &out[0].1;
    assert_eq!(u32_at(f, 36), 2);
    let body = &f[48 + 2 * 32..];
    assert_eq!((u32_at(body, 4) as i32, u32_at(body, 8)), (RING2 + 1, 1));
    assert_eq!(u32_at(body, 12), 1);
    assert_eq!(u32_at(body, 20), 2);
    out.clear();
    // Back to normal: a leave is lightweight again.
    g.leave(&c1, &g1, Some(lc), &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(u32_at(&out[0].1, 0), 0x8000_0280, "self-leave");
    assert_eq!(u32_at(&out[1].1, 0), 0x8000_1280);
}

#[test]
fn additive_change_asks_for_a_state_exchange() {
    let mut g = groups_at(0);
    let mut out = Vec::new();
    g.join(&name(b"#a#d1"), &name(b"g"), Some(LocalMember { slot: 0, memb: true }), &mut out);
    g.handle_trans_memb(&[D1], (D1 as i32, RING2), &mut out);
    assert_eq!(g.handle_reg_memb(&[D1, D2], (D1 as i32, RING2), &mut out), RegOutcome::NeedsStateExchange);
    assert_eq!(g.state(), GState::Gather);
}

fn pcap_message(file: &str, packet: u32) -> Vec<u8> {
    let text = shared_ref::read_ref(&format!("pcap/{file}"));
    let head = format!("## packet {packet} ");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&head));
    lines.next().expect("packet present in the capture");
    let h = lines.next().and_then(|l| l.strip_prefix("hex: ")).expect("hex line");
    // 40-byte packet header, then one whole message in the first fragment.
    hex(h)[40..].to_vec()
}

#[test]
fn merge_after_partition_matches_f() {
    let t = load_transcript("f_network_partition");
    let (alice, bob, mg) = (name(b"#alice#d1"), name(b"#bob#d2"), name(b"mg"));
    let la = LocalMember { slot: 0, memb: true };
    let lb = LocalMember { slot: 0, memb: true };
    let mut out = Vec::new();
    // Both sides through the partition, as in the first test.
    let mut g1 = groups_at(0);
    g1.join(&alice, &mg, Some(la), &mut out);
    g1.join(&bob, &mg, None, &mut out);
    g1.handle_trans_memb(&[D1], (D1 as i32, RING2), &mut out);
    g1.handle_reg_memb(&[D1], (D1 as i32, RING2), &mut out);
    let mut g2 = groups_at(1);
    g2.join(&alice, &mg, None, &mut out);
    g2.join(&bob, &mg, Some(lb), &mut out);
    g2.handle_trans_memb(&[D2], (D2 as i32, RING2), &mut out);
    g2.handle_reg_memb(&[D2], (D2 as i32, RING2), &mut out);
    out.clear();
    // The merge: nobody lost, so no TRANS; then the state exchange.
    const RING3: i32 = 1_795_358_199;
    let mut o1 = Vec::new();
    let mut o2 = Vec::new();
    g1.handle_trans_memb(&[D1], (D1 as i32, RING3), &mut o1);
    g2.handle_trans_memb(&[D2], (D2 as i32, RING3), &mut o2);
    assert!(o1.is_empty() && o2.is_empty());
    assert_eq!(g1.handle_reg_memb(&[D1, D2], (D1 as i32, RING3), &mut o1), RegOutcome::NeedsStateExchange);
    assert_eq!(g2.handle_reg_memb(&[D1, D2], (D1 as i32, RING3), &mut o2), RegOutcome::NeedsStateExchange);
    let m1 = g1.take_groups_messages();
    let m2 = g2.take_groups_messages();
    assert_eq!(m1.len(), 1);
    assert!(m1[0].agreed);
    // Same total order at both daemons: d1's, then d2's.
    for (g, o) in [(&mut g1, &mut o1), (&mut g2, &mut o2)] {
        assert_eq!(g.handle_groups(&m1[0].frame, o), GatherOutcome::Pending);
        assert_eq!(g.handle_groups(&m2[0].frame, o), GatherOutcome::Done);
        assert_eq!(g.state(), GState::Op);
        assert_eq!(g.synced_set(), &[D1, D2]);
    }
    assert_eq!(o1.len(), 1);
    assert_eq!(to_hex(&o1[0].1), to_hex(&recorded(&t, 23)));
    assert_eq!(o2.len(), 1);
    assert_eq!(to_hex(&o2[0].1), to_hex(&recorded(&t, 24)));
    // alice disconnects: bob's daemon tells him (index 2).
    o2.clear();
    g2.kill(&alice, None, &mut o2);
    assert_eq!(to_hex(&o2[0].1), to_hex(&recorded(&t, 33)));
}

#[test]
fn groups_messages_match_the_three_daemon_captures() {
    const D3: u32 = 4_014_350_958;
    const R372: i32 = 1_795_358_372;
    let p40 = pcap_message("i_ring_formation.decoded.txt", 40);
    assert!(p40.len() > 48);
    let p51 = pcap_message("iv_daemon_restarted_merge.decoded.txt", 51);
    let mk = |i: usize, vid: u32| {
        Groups::new(GroupsConfig {
            daemons: vec![b"d1".to_vec(), b"d2".to_vec(), b"d3".to_vec()],
            vids: vec![D1, D2, D3],
            my_idx: i,
            memb_id: (vid as i32, 1000),
        })
    };
    let mut gs = [mk(0, D1), mk(1, D2), mk(2, D3)];
    let vids = [D1, D2, D3];
    let mut out = Vec::new();
    // Ring formation from three singletons.
    let mut msgs = Vec::new();
    for (g, v) in gs.iter_mut().zip(vids) {
        g.handle_trans_memb(&[v], (v as i32, 1000), &mut out);
        assert_eq!(g.handle_reg_memb(&[D1, D2, D3], (D1 as i32, R372), &mut out), RegOutcome::NeedsStateExchange);
        msgs.extend(g.take_groups_messages());
    }
    assert_eq!(to_hex(&msgs[0].frame), to_hex(&p40), "d1's GROUPS message at ring formation");
    for g in gs.iter_mut() {
        let r: Vec<_> = msgs.iter().map(|m| g.handle_groups(&m.frame, &mut out)).collect();
        assert_eq!(r, vec![GatherOutcome::Pending, GatherOutcome::Pending, GatherOutcome::Done]);
        assert_eq!(g.synced_set(), &[D1, D2, D3]);
    }
    // rx joins pg at d3.
    let (rx, pg) = (name(b"#rx#d3"), name(b"pg"));
    for (i, g) in gs.iter_mut().enumerate() {
        let local = (i == 2).then_some(LocalMember { slot: 0, memb: true });
        g.join(&rx, &pg, local, &mut out);
    }
    // d2 is killed: d1 and d3 settle without an exchange; pg is untouched.
    for i in [0, 2] {
        gs[i].handle_trans_memb(&[D1, D3], (D1 as i32, 1_795_358_388), &mut out);
        assert_eq!(gs[i].handle_reg_memb(&[D1, D3], (D1 as i32, 1_795_358_390), &mut out), RegOutcome::Settled);
        assert_eq!(gs[i].synced_set(), &[D1, D3]);
        assert_eq!(gs[i].get(&pg).unwrap().gid.index, 1);
    }
    // d2 comes back and merges: d1 speaks for {d1, d3}.
    let mut d2 = mk(1, D2);
    d2.handle_trans_memb(&[D2], (D2 as i32, 2000), &mut out);
    d2.handle_reg_memb(&[D1, D2, D3], (D1 as i32, 1_795_358_402), &mut out);
    let mut merge = Vec::new();
    for i in [0, 2] {
        gs[i].handle_trans_memb(&[D1, D3], (D1 as i32, 1_795_358_402), &mut out);
        gs[i].handle_reg_memb(&[D1, D2, D3], (D1 as i32, 1_795_358_402), &mut out);
        merge.extend(gs[i].take_groups_messages());
    }
    assert_eq!(merge.len(), 1, "only the synced set's leader sends");
    assert_eq!(to_hex(&merge[0].frame), to_hex(&p51), "d1's GROUPS message at the merge");
    merge.extend(d2.take_groups_messages());
    let [g1, _, g3] = &mut gs;
    for g in [g1, g3, &mut d2] {
        let r: Vec<_> = merge.iter().map(|m| g.handle_groups(&m.frame, &mut out)).collect();
        assert_eq!(r.last(), Some(&GatherOutcome::Done));
        assert_eq!(g.synced_set(), &[D1, D2, D3]);
        let grp = g.get(&pg).unwrap();
        assert_eq!(
            (grp.gid.proc_id, grp.gid.time, grp.gid.index),
            (D1 as i32, R372, 1),
            "unchanged group keeps its id"
        );
        assert_eq!(grp.num_members, 1);
    }
}

fn three(i: usize) -> Groups {
    const D3: u32 = 4_014_350_958;
    Groups::new(GroupsConfig {
        daemons: vec![b"d1".to_vec(), b"d2".to_vec(), b"d3".to_vec()],
        vids: vec![D1, D2, D3],
        my_idx: i,
        memb_id: ([D1, D2, D3][i] as i32, 1000),
    })
}

#[test]
fn cascaded_changes_during_the_exchange() {
    const D3: u32 = 4_014_350_958;
    let vids = [D1, D2, D3];
    let mut out = Vec::new();
    // Path A: d2 vanishes before the exchange completes; the next regular
    // configuration restarts the exchange among d1 and d3.
    let mut gs = [three(0), three(1), three(2)];
    let mut msgs = Vec::new();
    for (g, v) in gs.iter_mut().zip(vids) {
        g.handle_trans_memb(&[v], (v as i32, 1), &mut out);
        g.handle_reg_memb(&[D1, D2, D3], (D1 as i32, 10), &mut out);
        msgs.push(g.take_groups_messages());
    }
    let [a, _, c] = &mut gs;
    for g in [&mut *a, &mut *c] {
        assert_eq!(g.handle_groups(&msgs[0][0].frame, &mut out), GatherOutcome::Pending);
        g.handle_trans_memb(&[D1, D3], (D1 as i32, 11), &mut out);
        assert_eq!(g.state(), GState::GatherTrans);
        assert_eq!(g.handle_reg_memb(&[D1, D3], (D1 as i32, 12), &mut out), RegOutcome::NeedsStateExchange);
        assert_eq!(g.state(), GState::Gather);
    }
    let m1 = a.take_groups_messages();
    let m3 = c.take_groups_messages();
    assert_eq!((m1.len(), m3.len()), (1, 1));
    for g in [&mut *a, &mut *c] {
        assert_eq!(g.handle_groups(&m1[0].frame, &mut out), GatherOutcome::Pending);
        assert_eq!(g.handle_groups(&m3[0].frame, &mut out), GatherOutcome::Done);
        assert_eq!(g.state(), GState::Op);
        assert_eq!(g.synced_set(), &[D1, D3]);
    }
    // A stale message (old membership id) is ignored.
    assert_eq!(a.handle_groups(&msgs[1][0].frame, &mut out), GatherOutcome::Ignored);

    // Path B: the old exchange completes after the transitional
    // configuration; it is applied right away, and the regular one settles.
    let mut gs = [three(0), three(1), three(2)];
    let mut msgs = Vec::new();
    for (g, v) in gs.iter_mut().zip(vids) {
        g.handle_trans_memb(&[v], (v as i32, 1), &mut out);
        g.handle_reg_memb(&[D1, D2, D3], (D1 as i32, 10), &mut out);
        msgs.extend(g.take_groups_messages());
    }
    let g = &mut gs[0];
    g.handle_trans_memb(&[D1, D3], (D1 as i32, 11), &mut out);
    assert_eq!(g.handle_groups(&msgs[0].frame, &mut out), GatherOutcome::Pending);
    assert_eq!(g.handle_groups(&msgs[1].frame, &mut out), GatherOutcome::Pending);
    assert_eq!(g.handle_groups(&msgs[2].frame, &mut out), GatherOutcome::Done);
    assert_eq!(g.state(), GState::Trans);
    assert_eq!(g.handle_reg_memb(&[D1, D3], (D1 as i32, 12), &mut out), RegOutcome::Settled);
    assert_eq!(g.synced_set(), &[D1, D3]);
}

#[test]
fn garbage_groups_messages_never_panic() {
    let mut out = Vec::new();
    let mut g = three(0);
    g.handle_trans_memb(&[D1], (D1 as i32, 1), &mut out);
    g.handle_reg_memb(&[D1, D2], (D1 as i32, 10), &mut out);
    let mine = g.take_groups_messages();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for round in 0..2000 {
        let mut f = mine[0].frame.to_vec();
        // a message "from d2" with random data after a valid memb id
        f[4..36].fill(0);
        f[4..6].copy_from_slice(b"d2");
        f[32..36].copy_from_slice(&1u32.to_ne_bytes());
        f.truncate(48 + 8);
        for _ in 0..(round % 300) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.push(x as u8);
        }
        let dl = (f.len() - 48) as i32;
        f[44..48].copy_from_slice(&dl.to_ne_bytes());
        if round % 2 == 0 {
            f[0..4].copy_from_slice(&(0x8008_0090u32).to_ne_bytes());
        }
        let _ = g.handle_groups(&f, &mut out);
        if g.state() != GState::Gather {
            // completed: start over
            g = three(0);
            g.handle_trans_memb(&[D1], (D1 as i32, 1), &mut out);
            g.handle_reg_memb(&[D1, D2], (D1 as i32, 10), &mut out);
            let _ = g.take_groups_messages();
        }
    }
}
