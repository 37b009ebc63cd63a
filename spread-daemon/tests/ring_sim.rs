//! The token ring's ordering protocol (daemon spec §4) under the seeded
//! simulator: several daemons, a network that loses, duplicates and reorders,
//! and checks of what every daemon delivered (exactly once, one total order,
//! SAFE only once every member has the packet, the bytes sent).
//!
//! `RSPREAD_SIM_SEEDS=N` runs the randomised scenarios over N seeds (default
//! 100 each; `make sim` runs many); `RSPREAD_SIM_SEED=S` replays one seed.

use spread_daemon::engine::ring::sim::{seeds, Faults, RingSim, TWO_SEGMENTS};
use spread_daemon::engine::ring::token::MAX_SEQ_GAP;
use spread_wire::daemon::{AGREED_TYPE, FIFO_TYPE, RELIABLE_TYPE, SAFE_TYPE};
use spread_wire::endian::Order;

const SEC: u64 = 1_000_000;

/// Three daemons, each alone in its segment (the loopback layout).
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

fn accelerated(conf: &str, window: u32) -> String {
    format!("AcceleratedRing = true\nAcceleratedWindow = {window}\n{conf}")
}

const SERVICES: [u32; 4] = [RELIABLE_TYPE, FIFO_TYPE, AGREED_TYPE, SAFE_TYPE];

/// Submit `count` messages spread over the nodes and over time, with random
/// services and sizes (mostly small, some multi-packet, a few huge).
fn load(sim: &mut RingSim, count: usize, services: &[u32]) {
    let n = sim.nodes.len() as u64;
    for k in 0..count {
        let node = sim.rng.below(n) as usize;
        let service = services[sim.rng.below(services.len() as u64) as usize];
        let len = match sim.rng.below(100) {
            0 => 143_200 - 48 - 32,
            1..=10 => 1432 + sim.rng.below(6000) as usize,
            _ => 8 + sim.rng.below(300) as usize,
        };
        sim.submit(node, service, len);
        if k % 10 == 9 {
            let until = sim.now_us + sim.rng.below(3_000);
            sim.run_until(until, 1_000_000);
        }
    }
}

fn assert_clean(sim: &RingSim, what: &str, seed: u64) {
    let bad = sim.check();
    assert!(bad.is_empty(), "{what}, seed {seed} (replay with RSPREAD_SIM_SEED={seed}):\n{}", bad.join("\n"));
    for i in 0..sim.nodes.len() {
        assert_eq!(sim.missing(i), 0, "{what}, seed {seed}: node {i} is missing messages");
    }
    assert!(
        sim.max_gap <= MAX_SEQ_GAP + 200,
        "{what}, seed {seed}: Highest_seq - Aru reached {} (flow control lets it pass {MAX_SEQ_GAP} by at most a round)",
        sim.max_gap
    );
}

#[test]
fn three_daemons_perfect_network_one_order_and_every_message() {
    let mut sim = RingSim::new(THREE, 1, Faults::NONE, &[]);
    load(&mut sim, 300, &SERVICES);
    assert!(sim.run_until_delivered(60 * SEC, 10_000_000), "not everything delivered");
    assert_clean(&sim, "three daemons", 1);
    for n in &sim.nodes {
        assert_eq!(n.stats().token_losses, 0, "no token is lost on a perfect network");
        assert_eq!(n.stats().retrans, 0, "nothing to retransmit on a perfect network");
    }
}

#[test]
fn small_messages_share_packets_and_big_ones_are_fragmented() {
    let mut sim = RingSim::new(THREE, 4, Faults::NONE, &[]);
    // 200 small AGREED/FIFO messages queued at once at one daemon: they may
    // share packets (FIFO and AGREED mix, §3.6).
    for k in 0..200 {
        sim.submit(0, [AGREED_TYPE, FIFO_TYPE][k % 2], 40);
    }
    assert!(sim.run_until_delivered(10 * SEC, 1_000_000));
    let packets = sim.nodes[0].stats().packets_sent;
    assert!(packets <= 200 * (48 + 32 + 40 + 4) / 1432 + 2, "{packets} packets for 200 messages of 124 bytes");
    // A message of the largest size (143200 bytes) takes exactly 100 packets.
    sim.submit(1, SAFE_TYPE, 143_200 - 48 - 32);
    assert!(sim.run_until_delivered(sim.now_us + 10 * SEC, 1_000_000));
    assert_eq!(sim.nodes[1].stats().packets_sent, 100);
    assert_clean(&sim, "packing", 4);
}

#[test]
fn the_checker_catches_a_broken_order() {
    let mut sim = RingSim::new(THREE, 5, Faults::NONE, &[]);
    for k in 0..10 {
        sim.submit(k % 3, AGREED_TYPE, 10);
    }
    assert!(sim.run_until_delivered(10 * SEC, 1_000_000));
    assert!(sim.check().is_empty());
    sim.log[2].swap(3, 4);
    assert!(sim.check().iter().any(|p| p.contains("differs at position")), "{:?}", sim.check());
    let dup = sim.log[1][0].clone();
    sim.log[1].push(dup);
    assert!(sim.check().iter().any(|p| p.contains("delivered twice")));
}

#[test]
fn idle_ring_holds_the_token_and_a_new_message_hurries_it() {
    let mut sim = RingSim::new(THREE, 2, Faults::NONE, &[]);
    sim.submit(1, AGREED_TYPE, 100);
    assert!(sim.run_until_delivered(10 * SEC, 1_000_000));
    sim.run_until(sim.now_us + 2 * SEC, 1_000_000);
    // Idle: the leader holds the token; only its hurry timer re-sends it,
    // once per Hurry_timeout (500 ms on a LAN): ~20 sends in 10 s.
    let before = sim.datagrams;
    sim.run_until(sim.now_us + 10 * SEC, 1_000_000);
    let idle = sim.datagrams - before;
    assert!(idle <= 3 * 21, "an idle ring of 3 sent {idle} datagrams in 10 s: the token is not held");
    assert!(idle >= 10, "an idle ring of 3 sent {idle} datagrams in 10 s: the leader's hurry timer is not running");
    // A message at a non-leader sends HURRY to the leader, which releases
    // the token at once: delivered within a few ms, not at the next hurry.
    let t0 = sim.now_us;
    sim.submit(2, AGREED_TYPE, 100);
    assert!(sim.run_until_delivered(t0 + 5 * SEC, 1_000_000));
    let at = sim.log[2].last().map(|e| e.at_us).unwrap_or(0);
    assert!(at - t0 < 20_000, "delivered {} µs after submission: the held token was not hurried", at - t0);
    assert_clean(&sim, "idle ring", 2);
}

fn lossy() -> Faults {
    Faults { loss: 0.05, dup: 0.02, min_delay_us: 20, max_delay_us: 3_000 }
}

#[test]
fn lossy_reordering_network_three_daemons() {
    for seed in seeds(100) {
        let mut sim = RingSim::new(THREE, seed, lossy(), &[]);
        load(&mut sim, 400, &SERVICES);
        assert!(sim.run_until_delivered(600 * SEC, 50_000_000), "seed {seed}: not everything delivered");
        assert_clean(&sim, "lossy three", seed);
        let retrans: u64 = sim.nodes.iter().map(|n| n.stats().retrans).sum();
        assert!(retrans > 0, "seed {seed}: 5% loss and no retransmission");
    }
}

#[test]
fn lossy_network_two_shared_segments_with_routing() {
    for seed in seeds(100) {
        let mut sim = RingSim::new(TWO_SEGMENTS, seed, lossy(), &[]);
        load(&mut sim, 400, &SERVICES);
        assert!(sim.run_until_delivered(600 * SEC, 50_000_000), "seed {seed}: not everything delivered");
        assert_clean(&sim, "two segments", seed);
    }
}

#[test]
fn mixed_byte_orders_share_one_ring() {
    for seed in seeds(100) {
        let orders = [Order::Little, Order::Big, Order::Little, Order::Big, Order::Big];
        let mut sim = RingSim::new(TWO_SEGMENTS, seed, lossy(), &orders);
        load(&mut sim, 300, &SERVICES);
        assert!(sim.run_until_delivered(600 * SEC, 50_000_000), "seed {seed}: not everything delivered");
        assert_clean(&sim, "mixed byte orders", seed);
    }
}

#[test]
fn accelerated_ring_lossy() {
    for seed in seeds(100) {
        let mut sim = RingSim::new(&accelerated(THREE, 20), seed, lossy(), &[]);
        assert!(sim.nodes[0].params().accelerated);
        load(&mut sim, 400, &SERVICES);
        assert!(sim.run_until_delivered(600 * SEC, 50_000_000), "seed {seed}: not everything delivered");
        assert_clean(&sim, "accelerated", seed);
    }
}

#[test]
fn flood_is_bounded_by_flow_control() {
    // Everything at once from every node: the token's flow control keeps
    // each round to Window packets and Highest_seq - Aru bounded.
    let mut sim = RingSim::new(TWO_SEGMENTS, 7, Faults { loss: 0.01, ..lossy() }, &[]);
    for k in 0..3000 {
        sim.submit(k % 5, [AGREED_TYPE, SAFE_TYPE][k % 2], 1000);
    }
    assert!(sim.run_until_delivered(600 * SEC, 100_000_000), "flood not delivered");
    assert_clean(&sim, "flood", 7);
}

#[test]
fn heavy_loss_and_duplication_still_deliver_everything_once() {
    for seed in seeds(100).into_iter().take(8) {
        let f = Faults { loss: 0.2, dup: 0.1, min_delay_us: 10, max_delay_us: 5_000 };
        let mut sim = RingSim::new(TWO_SEGMENTS, seed, f, &[]);
        load(&mut sim, 150, &SERVICES);
        assert!(sim.run_until_delivered(3_600 * SEC, 50_000_000), "seed {seed}: not everything delivered");
        assert_clean(&sim, "heavy loss", seed);
    }
}
