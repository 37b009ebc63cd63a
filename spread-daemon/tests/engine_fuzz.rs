//! Arbitrary bytes from clients never panic the engine and never disturb
//! other sessions: a deterministic pseudo-random byte storm.

mod engine_util;
use engine_util::*;

use spread_daemon::engine::ConnKind;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A frame that is *almost* valid: one field perturbed at random.
fn mutated_frame(r: &mut Rng, pg: &str) -> Vec<u8> {
    let services = [0x1u32, 0x2, 0x4, 0x8, 0x10, 0x20, 0x10000, 0x20000, 0x40000, 0x50, 0x12, 0, 0x80010];
    let t = services[r.below(services.len() as u64) as usize];
    let ng = r.below(4) as usize;
    let groups: Vec<String> = (0..ng).map(|i| if r.below(3) == 0 { pg.to_string() } else { format!("g{i}") }).collect();
    let gref: Vec<&str> = groups.iter().map(|s| s.as_str()).collect();
    let body: Vec<u8> = (0..r.below(64)).map(|_| r.next() as u8).collect();
    let mut f = frame(t, pg, &gref, r.below(100) as i16, &body);
    if r.below(4) == 0 {
        let i = r.below(48) as usize;
        f[i] = r.next() as u8;
    }
    if r.below(8) == 0 {
        f.truncate(r.below(f.len() as u64 + 1) as usize);
    }
    f
}

#[test]
fn random_bytes_never_panic_and_spare_the_others() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut h = Harness::d1(5);
    let (watch, _) = h.login("watch", true);
    h.send(watch, &frame(0x10000, "#watch#d1", &["g0"], 0, b""));
    for round in 0..400 {
        if r.below(2) == 0 {
            // raw garbage from the first byte on
            let id = h.connect(ConnKind::Tcp);
            let n = r.below(200) as usize;
            let junk: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
            for chunk in junk.chunks(1 + r.below(17) as usize) {
                h.send(id, chunk);
            }
            if r.below(2) == 0 {
                h.eof(id);
            }
        } else {
            let name = format!("f{round}");
            let (id, pg) = h.login(&name, r.below(2) == 0);
            for _ in 0..r.below(6) {
                let f = mutated_frame(&mut r, &pg);
                h.send(id, &f);
            }
            if r.below(3) == 0 {
                h.eof(id);
            }
        }
        h.take(watch);
    }
    // The watcher is still served.
    h.send(watch, &frame(0x10, "#watch#d1", &["#watch#d1"], 0, b"alive"));
    let f = split_frames(&h.take(watch));
    assert_eq!(&f.last().unwrap()[80..], b"alive");
    assert!(!h.closed.contains(&watch));
    let st = h.eng.stats();
    assert!(st.sessions_killed > 20, "{st:?}");
    assert!(st.messages_delivered > 20, "{st:?}");
    eprintln!("{st:?}, {} live connections", h.eng.num_connections());
}
