//! The membership algorithm (daemon spec §5) under the seeded simulator:
//! daemons start as the original starts and form their ring by themselves;
//! partitions split it, heals merge it, crashes shrink it; and through all
//! of it every daemon delivers each message at most once, in one order per
//! configuration, with agreeing configurations.
//!
//! `RSPREAD_SIM_SEEDS=N` / `RSPREAD_SIM_SEED=S` as in `ring_sim.rs`.

use spread_daemon::engine::ring::sim::{conf_for, seeds, Faults, RingSim, TWO_SEGMENTS};
use spread_daemon::engine::ring::State;
use spread_wire::daemon::{AGREED_TYPE, FIFO_TYPE, RELIABLE_TYPE, SAFE_TYPE};

const SEC: u64 = 1_000_000;

const THREE: &str = "
Spread_Segment 10.0.1.255:4803 {
    d1 10.0.1.1
}
Spread_Segment 10.0.2.255:4803 {
    d2 10.0.2.1
}
Spread_Segment 10.0.3.255:4803 {
    d3 10.0.3.1
}
";

const ONE_SEGMENT: &str = "
Spread_Segment 10.0.0.255:4803 {
    a 10.0.0.1
    b 10.0.0.2
    c 10.0.0.3
    d 10.0.0.4
}
";

const SERVICES: [u32; 4] = [RELIABLE_TYPE, FIFO_TYPE, AGREED_TYPE, SAFE_TYPE];

fn lossy() -> Faults {
    Faults { loss: 0.03, dup: 0.02, min_delay_us: 20, max_delay_us: 2_000 }
}

fn clean(sim: &RingSim, what: &str, seed: u64) {
    let bad = sim.check();
    assert!(bad.is_empty(), "{what}, seed {seed} (replay with RSPREAD_SIM_SEED={seed}):\n{}", bad.join("\n"));
}

fn load(sim: &mut RingSim, nodes: &[usize], count: usize) {
    for k in 0..count {
        let node = nodes[sim.rng.below(nodes.len() as u64) as usize];
        let service = SERVICES[sim.rng.below(4) as usize];
        let len = if k % 17 == 0 { 3000 + sim.rng.below(4000) as usize } else { 8 + sim.rng.below(200) as usize };
        sim.submit(node, service, len);
        if k % 8 == 7 {
            let until = sim.now_us + sim.rng.below(2_000);
            sim.run_until(until, 1_000_000);
        }
    }
}

#[test]
fn three_daemons_started_together_form_one_ring() {
    for seed in seeds(50) {
        let mut sim = RingSim::start(THREE, seed, Faults::NONE, &[]);
        assert!(sim.run_until_settled(30 * SEC, 10_000_000), "seed {seed}: no ring of three formed");
        let id = sim.nodes[0].ring_id();
        for (i, n) in sim.nodes.iter().enumerate() {
            assert_eq!(n.state(), State::Op);
            assert_eq!(n.members().as_slice(), &[0, 1, 2], "node {i}");
            let last = sim.configs[i].last().expect("a configuration was handed up");
            assert!(!last.transitional);
            assert_eq!(last.id, id);
        }
        // The ring id is (first daemon's VID, its clock + 1) (§5.6).
        assert_eq!(id.proc_id, sim.nodes[0].my_vid() as i32);
        load(&mut sim, &[0, 1, 2], 200);
        assert!(sim.run_until_delivered(sim.now_us + 60 * SEC, 20_000_000), "seed {seed}: not delivered");
        clean(&sim, "three formed", seed);
    }
}

#[test]
fn shared_segments_and_one_segment_form_rings() {
    for seed in seeds(50) {
        for conf in [TWO_SEGMENTS, ONE_SEGMENT] {
            let mut sim = RingSim::start(conf, seed, lossy(), &[]);
            assert!(sim.run_until_settled(60 * SEC, 20_000_000), "seed {seed}: no ring formed\n{conf}");
            let k = sim.nodes.len();
            load(&mut sim, &(0..k).collect::<Vec<_>>(), 200);
            assert!(sim.run_until_delivered(sim.now_us + 120 * SEC, 50_000_000), "seed {seed}: not delivered");
            clean(&sim, "shared segments", seed);
        }
    }
}

#[test]
fn a_lone_daemon_forms_a_singleton_ring() {
    let mut sim = RingSim::start(THREE, 1, Faults::NONE, &[]);
    sim.partition(&[&[0], &[1], &[2]]);
    assert!(sim.run_until_settled(30 * SEC, 10_000_000), "no singletons");
    for (i, n) in sim.nodes.iter().enumerate() {
        assert_eq!(n.members().as_slice(), &[i]);
    }
    sim.submit(1, SAFE_TYPE, 50);
    sim.run_until(sim.now_us + 5 * SEC, 1_000_000);
    assert_eq!(sim.log[1].len(), 1, "a singleton delivers its own SAFE message");
    clean(&sim, "singleton", 1);
}

#[test]
fn partition_then_heal_splits_and_merges_the_ring() {
    for seed in seeds(50) {
        let mut sim = RingSim::start(TWO_SEGMENTS, seed, lossy(), &[]);
        assert!(sim.run_until_settled(60 * SEC, 20_000_000), "seed {seed}: no ring");
        load(&mut sim, &[0, 1, 2, 3, 4], 100);
        sim.partition(&[&[0, 1, 3], &[2, 4]]);
        load(&mut sim, &[0, 1, 3], 60);
        load(&mut sim, &[2, 4], 60);
        assert!(sim.run_until_settled(sim.now_us + 120 * SEC, 50_000_000), "seed {seed}: partition did not settle");
        assert_eq!(sim.nodes[0].members().as_slice(), &[0, 1, 3]);
        assert_eq!(sim.nodes[2].members().as_slice(), &[2, 4]);
        sim.heal();
        load(&mut sim, &[0, 1, 2, 3, 4], 60);
        assert!(sim.run_until_settled(sim.now_us + 240 * SEC, 50_000_000), "seed {seed}: heal did not merge");
        assert_eq!(sim.nodes[4].members().as_slice(), &[0, 1, 2, 3, 4]);
        sim.run_until(sim.now_us + 10 * SEC, 20_000_000);
        clean(&sim, "partition/heal", seed);
        // Messages sent after the merge reach everybody.
        let before: Vec<usize> = sim.log.iter().map(|l| l.len()).collect();
        for k in 0..20 {
            sim.submit(k % 5, AGREED_TYPE, 30);
        }
        sim.run_until(sim.now_us + 30 * SEC, 20_000_000);
        for (i, l) in sim.log.iter().enumerate() {
            assert_eq!(l.len(), before[i] + 20, "seed {seed}: node {i} after the merge");
        }
        clean(&sim, "after merge", seed);
    }
}

#[test]
fn a_crashed_daemon_leaves_and_the_survivors_agree() {
    for seed in seeds(50) {
        crash_and_restart(seed);
    }
}

/// Seeds on which the survivors of the crash lose each other too for a
/// while (a JOIN overtaken by the FORM tokens makes one of them fall out of
/// EVS, see `crash_and_restart`), and one of them installs a ring of its own
/// and delivers its queued messages there before the two merge.
#[test]
fn survivors_that_part_for_a_while_owe_each_other_only_their_shared_configurations() {
    for seed in [412, 937, 951] {
        crash_and_restart(seed);
    }
}

/// Three daemons under load, daemon 1 crashes, more load on 0 and 2, the
/// survivors re-form. What each survivor owes the other (EVS, §5.7):
///
/// * it delivers all of its own messages;
/// * if both go from the old ring to the same next regular configuration,
///   they deliver the same messages, the dead daemon's and every one the
///   survivors sent;
/// * otherwise (the membership round after the crash can fail, as the
///   original's does: a survivor in EVS that gets a JOIN its peer sent
///   before it took the FORM1 declares its token lost, the peer then takes
///   the other, cross-segment, survivor for its segment's representative,
///   stays REPRESENTED for `Rep_timeout` and swallows the next FORM1, and
///   one survivor ends up forming a ring of its own) a survivor's message
///   that the other never delivered was delivered by its sender in a
///   configuration the other was not a member of.
fn crash_and_restart(seed: u64) {
    let mut sim = RingSim::start(THREE, seed, lossy(), &[]);
    assert!(sim.run_until_settled(60 * SEC, 20_000_000), "seed {seed}: no ring");
    load(&mut sim, &[0, 1, 2], 150);
    sim.crash(1);
    let at_crash = [sim.configs[0].len(), sim.configs[1].len(), sim.configs[2].len()];
    load(&mut sim, &[0, 2], 50);
    assert!(sim.run_until_settled(sim.now_us + 120 * SEC, 50_000_000), "seed {seed}: survivors did not settle");
    assert_eq!(sim.nodes[0].members().as_slice(), &[0, 2]);
    sim.run_until(sim.now_us + 10 * SEC, 20_000_000);
    clean(&sim, "crash", seed);
    let bad = sim.check_final();
    assert!(bad.is_empty(), "seed {seed}:\n{}", bad.join("\n"));
    let next_regular =
        |i: usize| sim.configs[i][at_crash[i]..].iter().find(|c| !c.transitional).map(|c| c.id).expect("re-formed");
    if next_regular(0) == next_regular(2) {
        // The survivors delivered the same set of the dead daemon's messages.
        let from1 = |l: &Vec<spread_daemon::engine::ring::sim::Logged>| {
            let mut v: Vec<u32> = l.iter().filter(|e| e.id.node == 1).map(|e| e.id.n).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(from1(&sim.log[0]), from1(&sim.log[2]), "seed {seed}");
        // And everything the survivors sent.
        for i in [0, 2] {
            let mine = sim.log[i].iter().filter(|e| e.id.node != 1).count();
            let sent = sim.sent.keys().filter(|k| k.node != 1).count();
            assert_eq!(mine, sent, "seed {seed}: node {i} missed survivors' messages");
        }
    } else {
        for (i, j) in [(0, 2), (2, 0)] {
            let vid_j = sim.nodes[j].my_vid();
            let at_j: std::collections::HashSet<_> = sim.log[j].iter().map(|e| e.id).collect();
            for e in sim.log[i].iter().filter(|e| e.id.node == i as u32 && !at_j.contains(&e.id)) {
                let conf = sim.configs[i]
                    .iter()
                    .find(|c| (c.id, c.transitional) == e.conf)
                    .unwrap_or_else(|| panic!("seed {seed}: node {i} delivered {:?} outside a configuration", e.id));
                assert!(
                    !conf.members.contains(&vid_j),
                    "seed {seed}: node {j} missed {:?}, which node {i} delivered in {:?}, a configuration with both",
                    e.id,
                    conf
                );
            }
        }
    }
    // It comes back and joins again.
    sim.restart(1);
    assert!(sim.run_until_settled(sim.now_us + 120 * SEC, 50_000_000), "seed {seed}: restarted daemon not back");
    clean(&sim, "restart", seed);
}

fn daemons_env(default: usize) -> usize {
    std::env::var("RSPREAD_SIM_DAEMONS").ok().and_then(|s| s.parse().ok()).unwrap_or(default).clamp(1, 32)
}

fn replay(test: &str, seed: u64, k: usize) -> String {
    format!(
        "replay: RSPREAD_SIM_SEED={seed} RSPREAD_SIM_DAEMONS={k} cargo test --release -p spread-daemon --test ring_membership {test}"
    )
}

/// Random faults on a random schedule: partitions, heals, crashes and
/// restarts under traffic; the checks hold after every step, and once all
/// is healed and restarted the ring is whole again, every daemon delivers
/// what is sent next, and every daemon that never crashed delivered all of
/// its own messages.
fn chaos(seed: u64, k: usize) {
    let test = "random_partitions_crashes_and_restarts";
    let mut sim = RingSim::start(&conf_for(k), seed, lossy(), &[]);
    assert!(sim.run_until_settled(120 * SEC, 50_000_000), "no ring; {}", replay(test, seed, k));
    // What was done when, for the failure message.
    let mut trace: Vec<String> = Vec::new();
    for step in 0..6 {
        let live: Vec<usize> = (0..k).filter(|&i| !sim.down[i]).collect();
        match sim.rng.below(4) {
            0 if k > 1 => {
                let cut = 1 + sim.rng.below(k as u64 - 1) as usize;
                let mut order: Vec<usize> = (0..k).collect();
                for i in (1..k).rev() {
                    order.swap(i, sim.rng.below(i as u64 + 1) as usize);
                }
                let (a, b) = order.split_at(cut);
                trace.push(format!("{} µs: partition {a:?} | {b:?}", sim.now_us));
                sim.partition(&[a, b]);
            }
            1 => {
                trace.push(format!("{} µs: heal", sim.now_us));
                sim.heal()
            }
            2 if live.len() > 1 => {
                let v = live[sim.rng.below(live.len() as u64) as usize];
                trace.push(format!("{} µs: crash {v}", sim.now_us));
                sim.crash(v);
            }
            _ => {
                if let Some(v) = (0..k).find(|&i| sim.down[i]) {
                    trace.push(format!("{} µs: restart {v}", sim.now_us));
                    sim.restart(v);
                }
            }
        }
        let live: Vec<usize> = (0..k).filter(|&i| !sim.down[i]).collect();
        let n = 10 + sim.rng.below(40) as usize;
        load(&mut sim, &live, n);
        let until = sim.now_us + 500_000 + sim.rng.below(5 * SEC);
        sim.run_until(until, 50_000_000);
        let bad = sim.check();
        assert!(
            bad.is_empty(),
            "after step {step}:\n{}\n{}\n{}\n{}",
            bad.join("\n"),
            trace.join("\n"),
            configs(&sim),
            replay(test, seed, k)
        );
    }
    sim.heal();
    for v in 0..k {
        if sim.down[v] {
            sim.restart(v);
        }
    }
    assert!(sim.run_until_settled(sim.now_us + 600 * SEC, 100_000_000), "not whole again; {}", replay(test, seed, k));
    let after: Vec<_> = (0..10).map(|j| sim.submit(j % k, AGREED_TYPE, 20)).collect();
    sim.run_until(sim.now_us + 30 * SEC, 50_000_000);
    for (i, l) in sim.log.iter().enumerate() {
        let got = after.iter().filter(|id| l.iter().any(|e| e.id == **id)).count();
        assert_eq!(got, 10, "node {i} missed messages sent after the heal; {}", replay(test, seed, k));
    }
    let bad = sim.check_final();
    assert!(bad.is_empty(), "{}\n{}\n{}\n{}", bad.join("\n"), trace.join("\n"), configs(&sim), replay(test, seed, k));
}

/// Every configuration every node installed, one per line.
fn configs(sim: &RingSim) -> String {
    let mut out = String::new();
    for (i, cs) in sim.configs.iter().enumerate() {
        for c in cs {
            let kind = if c.transitional { "transitional" } else { "regular" };
            out.push_str(&format!("node {i} at {} µs: {kind} {:?} {:?}\n", c.at_us, c.id, c.members));
        }
    }
    out
}

/// `make test` runs 1500 seeds, ring sizes cycling through 1–9 daemons;
/// `RSPREAD_SIM_DAEMONS=K` fixes the size (1–32), `RSPREAD_SIM_SEEDS=N`
/// sets the count, `RSPREAD_SIM_SEED=S` replays one.
#[test]
fn random_partitions_crashes_and_restarts() {
    let fixed = std::env::var("RSPREAD_SIM_DAEMONS").is_ok();
    let n: u64 = std::env::var("RSPREAD_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1500);
    let seeds: Vec<u64> = match std::env::var("RSPREAD_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("RSPREAD_SIM_SEED is a number")],
        Err(_) => (1..=n).collect(),
    };
    for seed in seeds {
        let k = if fixed { daemons_env(5) } else { 1 + (seed % 9) as usize };
        chaos(seed, k);
    }
}

#[test]
fn thirty_two_daemons_steady_traffic() {
    let mut sim = RingSim::start(&conf_for(32), 32, lossy(), &[]);
    assert!(sim.run_until_settled(300 * SEC, 100_000_000), "32 daemons did not form one ring");
    assert_eq!(sim.nodes[0].members().len(), 32);
    let all: Vec<usize> = (0..32).collect();
    load(&mut sim, &all, 1000);
    assert!(sim.run_until_delivered(sim.now_us + 300 * SEC, 200_000_000), "steady traffic not delivered");
    let bad = sim.check_final();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
