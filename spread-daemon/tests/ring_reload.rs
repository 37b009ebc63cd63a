//! A configuration reload on the ring (daemon spec §1.9), under the seeded
//! simulator: daemons added to the file join the ring of those that
//! re-read it, daemons removed from it are left out, and a daemon that stays
//! but changed its identity makes every daemon go alone first and merge
//! again. Messages sent before the reload are delivered as virtual synchrony
//! wants (the simulator's checks). `RSPREAD_SIM_SEEDS=N` /
//! `RSPREAD_SIM_SEED=S` as in `ring_sim.rs`.

use spread_daemon::config::{self, check_reload, Config};
use spread_daemon::engine::ring::sim::{seeds, Faults, RingSim};
use spread_wire::daemon::{AGREED_TYPE, SAFE_TYPE};

const SEC: u64 = 1_000_000;

fn lan() -> Faults {
    Faults { loss: 0.0, dup: 0.0, min_delay_us: 20, max_delay_us: 500 }
}

/// `k` daemons of one segment; `names[i]` overrides daemon `i`'s name.
/// With `vids`, each daemon has an explicit VirtualID (100 + i).
/// AcceleratedRing is written: without it a reloaded 5.0.1 daemon hashes
/// (and runs) the accelerated ring while a freshly started one does not
/// (§1.9), and the two could never merge.
fn conf(k: usize, vids: bool, rename: Option<(usize, &str)>) -> String {
    let mut s = String::from("AcceleratedRing = false\nSpread_Segment 10.1.0.255:4803 {\n");
    for i in 0..k {
        let name = match rename {
            Some((j, n)) if j == i => n.to_string(),
            _ => format!("d{i}"),
        };
        s.push_str(&format!("    {name} 10.1.0.{}", i + 1));
        if vids {
            s.push_str(&format!(" VirtualID = {}", 100 + i));
        }
        s.push('\n');
    }
    s.push_str("}\n");
    s
}

fn parse(text: &str) -> Config {
    config::parse_str_with_resolver(text, "sim.conf", &config::offline_resolver).expect("parses")
}

/// Reload `nodes` with `text` on top of `old` (as each daemon's driver does).
fn reload_all(sim: &mut RingSim, nodes: &[usize], old: &Config, text: &str, want_singleton: bool) -> Config {
    let new = config::parse_str_reload(text, "sim.conf", old).expect("parses");
    for &i in nodes {
        let ok = check_reload(old, i, &new, i, false).expect("the reload can be taken");
        assert_eq!(ok.singleton, want_singleton, "{ok:?}");
        assert!(sim.reload(i, &new, i, ok.singleton), "node {i} is not in OP");
    }
    new
}

#[test]
fn added_daemons_join_the_ring_of_those_that_reloaded() {
    let three = parse(&conf(3, false, None));
    let four_text = conf(4, false, None);
    for seed in seeds(20) {
        let mut sim = RingSim::start(&four_text, seed, lan(), &[]);
        // d0..d2 run a file of three; d3 is not started yet.
        sim.crash(3);
        for i in 0..3 {
            sim.restart_with(i, &three, i);
        }
        // A reload waits for OP: a daemon still forming its ring refuses it.
        assert!(!sim.reload(0, &three, 0, false), "seed {seed}: reload taken outside OP");
        let want3 = vec![vec![0, 1, 2]; 4];
        assert!(sim.run_until_rings(&want3, 60 * SEC), "seed {seed}: no ring of three");
        for i in 0..3 {
            sim.submit(i, AGREED_TYPE, 60);
            sim.submit(i, SAFE_TYPE, 2000);
        }
        let four = reload_all(&mut sim, &[0, 1, 2], &three, &four_text, false);
        assert_eq!(four.daemons.len(), 4);
        sim.restart(3);
        let want4 = vec![vec![0, 1, 2, 3]; 4];
        assert!(sim.run_until_rings(&want4, 60 * SEC), "seed {seed}: d3 did not join after the reload");
        for i in 0..4 {
            assert_eq!(sim.nodes[i].params().hash, four.hash(), "seed {seed}: node {i} hash");
        }
        let id = sim.nodes[0].ring_id();
        assert!((1..4).all(|i| sim.nodes[i].ring_id() == id));
        sim.submit(3, AGREED_TYPE, 60);
        sim.run_until(sim.now_us + 3 * SEC, 5_000_000);
        let sent = sim.sent.len();
        for i in 0..3 {
            assert_eq!(sim.log[i].len(), sent, "seed {seed}: node {i} delivered {} of {sent}", sim.log[i].len());
        }
        let bad = sim.check();
        assert!(bad.is_empty(), "seed {seed} (replay with RSPREAD_SIM_SEED={seed}):\n{}", bad.join("\n"));
    }
}

#[test]
fn removed_daemons_are_left_out() {
    let four_text = conf(4, false, None);
    let three_text = conf(3, false, None);
    for seed in seeds(20) {
        let mut sim = RingSim::start(&four_text, seed, lan(), &[]);
        assert!(sim.run_until_settled(60 * SEC, 20_000_000), "seed {seed}: no ring");
        let four = sim.cfg.clone();
        // Traffic from every daemon, the one to be removed included, still in
        // flight when the others reload.
        for i in 0..4 {
            sim.submit(i, AGREED_TYPE, 3000);
            sim.submit(i, SAFE_TYPE, 50);
        }
        sim.run_until(sim.now_us + 300, 100_000);
        let three = reload_all(&mut sim, &[0, 1, 2], &four, &three_text, false);
        // d3 still runs the old file: another hash, so it stays alone.
        let want = vec![vec![0, 1, 2], vec![0, 1, 2], vec![0, 1, 2], vec![3]];
        assert!(sim.run_until_rings(&want, 60 * SEC), "seed {seed}: d3 was not left out");
        for i in 0..3 {
            assert_eq!(sim.nodes[i].params().hash, three.hash());
            assert_eq!(sim.nodes[i].topology().procs.len(), 3);
        }
        sim.submit(1, AGREED_TYPE, 60);
        sim.run_until(sim.now_us + 3 * SEC, 5_000_000);
        // The three deliver one and the same sequence.
        let ids = |i: usize| sim.log[i].iter().map(|l| l.id).collect::<Vec<_>>();
        assert_eq!(ids(0), ids(1), "seed {seed}");
        assert_eq!(ids(0), ids(2), "seed {seed}");
        let bad = sim.check();
        assert!(bad.is_empty(), "seed {seed} (replay with RSPREAD_SIM_SEED={seed}):\n{}", bad.join("\n"));
    }
}

#[test]
fn a_changed_surviving_daemon_makes_each_go_alone_then_merge() {
    let old_text = conf(4, true, None);
    // d3 renamed, same address and VirtualID: found by VID but not by name.
    let new_text = conf(4, true, Some((3, "renamed")));
    for seed in seeds(10) {
        let mut sim = RingSim::start(&old_text, seed, lan(), &[]);
        assert!(sim.run_until_settled(60 * SEC, 20_000_000), "seed {seed}: no ring");
        let old = sim.cfg.clone();
        let before: Vec<usize> = sim.configs.iter().map(|c| c.len()).collect();
        let new = reload_all(&mut sim, &[0, 1, 2], &old, &new_text, true);
        for i in 0..3 {
            assert!(sim.nodes[i].in_reload_singleton());
        }
        // d3 is restarted on the new file (under its new name).
        sim.cfg = new.clone();
        sim.crash(3);
        sim.restart(3);
        let whole = vec![vec![0, 1, 2, 3]; 4];
        assert!(sim.run_until_rings(&whole, 60 * SEC), "seed {seed}: no merge after the singleton step");
        for (i, &from) in before.iter().enumerate().take(3) {
            let vid = sim.nodes[i].my_vid();
            let regs: Vec<&Vec<u32>> =
                sim.configs[i][from..].iter().filter(|c| !c.transitional).map(|c| &c.members).collect();
            assert_eq!(regs.first().map(|m| m.as_slice()), Some(&[vid][..]), "seed {seed}: node {i} went {regs:?}");
            assert!(!sim.nodes[i].in_reload_singleton());
            assert!(sim.nodes[i].partition().is_empty());
            assert_eq!(sim.nodes[i].params().hash, new.hash());
        }
        let bad = sim.check();
        assert!(bad.is_empty(), "seed {seed} (replay with RSPREAD_SIM_SEED={seed}):\n{}", bad.join("\n"));
    }
}

#[test]
fn the_monitor_cannot_undo_the_singleton_step() {
    let old_text = conf(3, true, None);
    let new_text = conf(3, true, Some((2, "other")));
    let mut sim = RingSim::start(&old_text, 3, lan(), &[]);
    assert!(sim.run_until_settled(60 * SEC, 20_000_000));
    let old = sim.cfg.clone();
    reload_all(&mut sim, &[0, 1], &old, &new_text, true);
    sim.nodes[0].set_partition(&[0, 0, 0]);
    sim.nodes[0].set_partition(&[1, 1, 1]);
    assert_eq!(sim.nodes[0].partition(), &[0, 1, 2]);
}
