//! A cut link and its repair on a real LAN (issue 8 items 3-4): three
//! daemons on one broadcast segment across network namespaces, with the
//! default (LAN) membership timeouts. One host's link is cut: its daemon
//! goes on alone and the other two re-form (every client sees the view
//! change "caused by network"). The link is restored: the time until every
//! client sees the three-member view again is the merge time, which ours
//! keeps within a second or so (the merge probe and the early form,
//! docs/ring.md "Fast merge"; the original waits for its lookup, 30 s).
//! Afterwards one message order again.
//!
//! With `SPREAD_REF_PREFIX`, a mixed run puts an original 5.0.1 daemon on
//! the host whose link is cut (the merge time is printed; the original's
//! own `Gather_timeout` decides it when it is the smallest representative).
//! `RSPREAD_MERGE_RUNS=N` repeats the cut and repair N times and prints each
//! time (for measurements; default 1). Without namespaces each test says
//! why and passes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use compat_tests::frames::{self, Head, Member};
use compat_tests::netns::{self, Lan};
use compat_tests::paths::{reference_daemon, spread_binary};

static SERIAL: Mutex<()> = Mutex::new(());

const LIMIT: Duration = Duration::from_secs(40);

/// The privilege settings the original wants as root; no timeouts (the
/// LAN defaults).
const PRIV: &str = "DaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = @RUN@\n";

fn is_view(h: &Head, m: &[u8], group: &str, n: i32) -> bool {
    h.type_ & frames::REG_MEMB_MESS != 0 && frames::name_str(&m[4..36]) == group && h.num_groups == n
}

fn wait_view(c: &mut Member, g: &str, n: i32, what: &str) -> Head {
    let m = c.until_within(what, LIMIT, |h, m| is_view(h, m, g, n));
    frames::head(&m).expect("frame")
}

fn merge_runs() -> usize {
    std::env::var("RSPREAD_MERGE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).clamp(1, 1000)
}

fn cut_and_heal(test: &str, original: [bool; 3], bound: Option<Duration>) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reference: Option<PathBuf> = if original.contains(&true) {
        let Some(r) = reference_daemon(test) else { return };
        Some(r)
    } else {
        None
    };
    if let Some(why) = netns::unavailable() {
        eprintln!("{test}: skipped: {why}");
        return;
    }
    let lan = match Lan::create(3, [10, 95, 0]) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{test}: skipped: cannot create the network namespaces: {e}");
            return;
        }
    };
    let port = 29400 + 2 * (std::process::id() % 50) as u16;
    let mut conf = format!("{PRIV}Spread_Segment {}:{port} {{\n", lan.broadcast());
    for i in 0..3 {
        conf.push_str(&format!("\td{}\t{}\n", i + 1, lan.addr(i)));
    }
    conf.push_str("}\n");
    let ours = spread_binary();
    let bins: Vec<&Path> =
        original.iter().map(|&o| if o { reference.as_deref().expect("reference") } else { &ours }).collect();
    let addrs: Vec<SocketAddr> = (0..3).map(|i| SocketAddr::from((lan.addr(i), port))).collect();
    let mut ds = netns::start_ring(&lan, &bins, &addrs, &conf, LIMIT).unwrap_or_else(|e| panic!("{test}: {e}"));
    let mut cs = netns::members_joined(&lan, &ds, "mg", LIMIT).unwrap_or_else(|e| panic!("{test}: {e}"));
    for c in cs.iter_mut() {
        wait_view(c, "mg", 3, "the three-member view");
    }

    let mut times = Vec::new();
    for run in 0..merge_runs() {
        lan.set_link(2, false).unwrap_or_else(|e| panic!("{test}: cut: {e}"));
        for c in cs.iter_mut().take(2) {
            let h = wait_view(c, "mg", 2, "the view without the cut host");
            assert!(h.type_ & frames::CAUSED_BY_NETWORK != 0, "{test}: caused by network: {:#x}", h.type_);
        }
        wait_view(&mut cs[2], "mg", 1, "the cut host's view of itself");
        lan.set_link(2, true).unwrap_or_else(|e| panic!("{test}: restore: {e}"));
        let healed = Instant::now();
        for c in cs.iter_mut() {
            let h = wait_view(c, "mg", 3, "the merged view");
            assert!(h.type_ & frames::CAUSED_BY_NETWORK != 0, "{test}: merge caused by network: {:#x}", h.type_);
        }
        let took = healed.elapsed();
        eprintln!(
            "{test}: run {}: every client saw the merged view {} ms after the link came back",
            run + 1,
            took.as_millis()
        );
        times.push(took);
        // one order again: a message from the host that was cut reaches
        // the others
        let body = format!("after merge {run}");
        cs[2].send(frames::AGREED_MESS, "mg", body.as_bytes());
        for c in cs.iter_mut().take(2) {
            c.until_within("the message after the merge", LIMIT, |h, m| {
                h.type_ & frames::AGREED_MESS != 0 && frames::body_offset(m).is_some_and(|o| &m[o..] == body.as_bytes())
            });
        }
    }
    times.sort();
    eprintln!(
        "{test}: merge after repair over {} runs: p50 {} ms, worst {} ms",
        times.len(),
        times[times.len() / 2].as_millis(),
        times[times.len() - 1].as_millis()
    );
    if let Some(b) = bound {
        let p50 = times[times.len() / 2];
        assert!(p50 < b, "{test}: merged {} ms after the repair (p50), bound {} ms", p50.as_millis(), b.as_millis());
    }
    drop(cs);
    for d in ds.iter_mut() {
        d.stop();
    }
    let _ = std::fs::remove_file(format!("/tmp/{port}"));
}

/// Ours only: the merge within 2 s on a loaded CI machine (the simulator's
/// p99 is 0.7 s; measured here: docs/ring.md "Fast merge").
#[test]
fn a_cut_link_heals_and_the_ring_merges_fast() {
    cut_and_heal("a_cut_link_heals_and_the_ring_merges_fast", [false; 3], Some(Duration::from_secs(2)));
}

/// An original 5.0.1 on the cut host: merges correctly; the time is printed.
#[test]
fn a_cut_link_heals_with_an_original_daemon_on_the_cut_host() {
    cut_and_heal("a_cut_link_heals_with_an_original_daemon_on_the_cut_host", [false, false, true], None);
}
