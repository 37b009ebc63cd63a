//! The monitor's partition on the ring (daemon spec §8.2): with the
//! network whole, daemons given different partition numbers stop taking
//! each other's data, membership packets and tokens, so the ring splits
//! into one ring per component; an all-zero partition (the monitor's
//! "cancel", or the 60 s expiry) lets them merge again. Flow control from
//! the monitor changes the windows the status reply reports. Under the
//! seeded simulator; `RSPREAD_SIM_SEEDS=N` / `RSPREAD_SIM_SEED=S` as in
//! `ring_sim.rs`.

use spread_daemon::engine::ring::sim::{conf_for, seeds, Faults, RingSim};
use spread_wire::daemon::{Status, AGREED_TYPE};

const SEC: u64 = 1_000_000;

fn lan() -> Faults {
    Faults { loss: 0.0, dup: 0.0, min_delay_us: 20, max_delay_us: 500 }
}

#[test]
fn a_monitor_partition_splits_the_ring_and_cancelling_it_merges_it() {
    for seed in seeds(20) {
        let mut sim = RingSim::start(&conf_for(4), seed, lan(), &[]);
        assert!(sim.run_until_settled(60 * SEC, 20_000_000), "seed {seed}: no ring");
        let table = [1i16, 1, 2, 2];
        for n in sim.nodes.iter_mut() {
            n.set_partition(&table);
        }
        let split = vec![vec![0, 1], vec![0, 1], vec![2, 3], vec![2, 3]];
        assert!(sim.run_until_rings(&split, 60 * SEC), "seed {seed}: the monitor partition did not split the ring");
        // Each part goes on ordering its own messages.
        sim.submit(0, AGREED_TYPE, 40);
        sim.submit(3, AGREED_TYPE, 40);
        sim.run_until(sim.now_us + 2 * SEC, 5_000_000);
        assert_eq!(sim.nodes[0].ring_id(), sim.nodes[1].ring_id());
        assert_ne!(sim.nodes[0].ring_id(), sim.nodes[2].ring_id());
        for n in sim.nodes.iter_mut() {
            n.set_partition(&[0; 4]);
            assert!(n.partition().is_empty());
        }
        let whole = vec![vec![0, 1, 2, 3]; 4];
        assert!(sim.run_until_rings(&whole, 120 * SEC), "seed {seed}: no merge after the partition was cancelled");
        sim.run_until(sim.now_us + 3 * SEC, 5_000_000);
        let bad = sim.check();
        assert!(bad.is_empty(), "seed {seed} (replay with RSPREAD_SIM_SEED={seed}):\n{}", bad.join("\n"));
    }
}

#[test]
fn a_daemon_alone_in_its_component_forms_a_ring_of_one() {
    let mut sim = RingSim::start(&conf_for(3), 7, lan(), &[]);
    assert!(sim.run_until_settled(60 * SEC, 20_000_000));
    for n in sim.nodes.iter_mut() {
        n.set_partition(&[0, 0, 5]);
    }
    let want = vec![vec![0, 1], vec![0, 1], vec![2]];
    assert!(sim.run_until_rings(&want, 60 * SEC));
}

#[test]
fn the_status_reports_the_ring_and_monitor_flow_control() {
    let mut sim = RingSim::start(&conf_for(3), 3, lan(), &[]);
    assert!(sim.run_until_settled(60 * SEC, 20_000_000));
    for k in 0..20 {
        sim.submit(k % 3, AGREED_TYPE, 1300); // one packet each
    }
    assert!(sim.run_until_delivered(sim.now_us + 10 * SEC, 5_000_000));
    let mut s = Status::default();
    sim.nodes[1].fill_status(&mut s);
    assert_eq!(s.state, 1, "OP");
    assert_eq!(s.num_procs, 3);
    assert_eq!(s.num_segments, 1);
    assert_eq!(s.my_id as u32, sim.nodes[1].my_vid());
    assert_eq!(s.leader_id, sim.nodes[1].ring_id().proc_id);
    assert!(s.membership_changes >= 1);
    assert!(s.packet_sent >= 6, "node 1 sent its messages: {s:?}");
    assert!(s.packet_recv >= 12, "and received the others': {s:?}");
    assert!(s.highest_seq >= 20 && s.aru <= s.highest_seq && s.my_aru <= s.highest_seq);
    assert!(s.token_rounds > 0);
    assert_eq!((s.window, s.personal_window, s.accelerated_window), (160, 20, 15), "spread.conf defaults");
    sim.nodes[1].set_flow_control(Some(100), None, Some(5));
    let mut s = Status::default();
    sim.nodes[1].fill_status(&mut s);
    assert_eq!((s.window, s.personal_window, s.accelerated_window), (100, 20, 5));
}
