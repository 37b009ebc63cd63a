//! The RING section of `spread-bench`: the same kind of loads as the
//! single-daemon section, across a ring of several daemons on loopback (each
//! alone in its segment on its own port, joined by unicast, as
//! `spread-daemon/tests/ring_io.rs` runs them), for our daemon and, when
//! given, the original, interleaved run by run.
//!
//! * Floods: one member session of one group on every daemon; 1 sender (on
//!   the first daemon) or one sender per daemon; AGREED; every session
//!   receives every message (the senders their own too). msg/s counts each
//!   message once (not once per receiver); Mbit/s counts its body bytes.
//! * Round trip: A on the first daemon multicasts AGREED|SELF_DISCARD to a
//!   group A and B joined, B on the last daemon answers AGREED to A's
//!   private group: both legs cross the ring.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use spread_bench::daemon::RingDaemons;
use spread_wire::AGREED_MESS;

use super::{fmt_num, median, ping_pong_across, ring_flood, write_flood_table, write_ping_table, Opts};

/// A ring under test.
struct RingTarget {
    name: &'static str,
    ring: RingDaemons,
    runs_done: u32,
}

impl RingTarget {
    fn tag(&mut self) -> String {
        super::run_tag(self.name, &mut self.runs_done)
    }

    /// Restart the whole ring if a failed run took one of its daemons down.
    fn ensure_alive(&mut self) {
        if !self.ring.alive() {
            eprintln!("  {} ring: a daemon died; restarting the ring", self.name);
            if let Err(e) = self.ring.restart(FORM_TIMEOUT) {
                eprintln!("  restart failed: {e}");
            }
        }
    }
}

/// Start-up and first membership of a ring (LAN timeouts: a few seconds).
const FORM_TIMEOUT: Duration = Duration::from_secs(60);

fn start(name: &'static str, wrapper: &[String], bin: &Path, base: u16, n: usize) -> Option<RingTarget> {
    let Some(ports) = spread_bench::daemon::pick_ports(base, 20, n) else {
        eprintln!("spread-bench: fewer than {n} free port pairs in {}..{}: no {name} ring", base, base + 19);
        return None;
    };
    match RingDaemons::start(name, wrapper, bin, &ports, FORM_TIMEOUT) {
        Ok(ring) => {
            eprintln!("{name} ring: {} on ports {:?} (pids {:?})", bin.display(), ring.ports, ring.pids());
            Some(RingTarget { name, ring, runs_done: 0 })
        }
        Err(e) => {
            eprintln!("spread-bench: cannot start the {name} ring ({}): {e}", bin.display());
            None
        }
    }
}

/// One flood load of the ring section.
#[derive(Clone, Copy)]
struct Load {
    senders: usize,
    body: usize,
    /// Minimum (pilot) message count.
    min_count: u64,
}

impl Load {
    fn label(&self, n: usize) -> String {
        if self.senders == 1 {
            format!("1 sender -> {n} daemons")
        } else {
            format!("{} senders (1 per daemon) -> {n} daemons", self.senders)
        }
    }
    /// Messages in flight per sender: every session's queue in every daemon
    /// stays below 600, under the per-session limit of 1000.
    fn window(&self) -> u64 {
        (600 / self.senders as u64).min(500)
    }
}

fn body_label(size: usize) -> String {
    if size >= 1000 {
        format!("{} KB", size / 1000)
    } else {
        format!("{size} B")
    }
}

/// Run the ring section; returns its markdown (empty if no ring started).
pub(crate) fn section(o: &Opts) -> String {
    let n = o.ring_daemons;
    let mut targets: Vec<RingTarget> = Vec::new();
    if let Some(p) = o.ours.clone() {
        if let Some(t) = start("ours", &o.ours_wrapper, &p, o.ours_port.saturating_add(10), n) {
            targets.push(t);
        }
    }
    if let Some(prefix) = o.reference.clone() {
        if let Some(t) = start("original", &[], &prefix.join("sbin/spread"), o.ref_port.saturating_add(10), n) {
            targets.push(t);
        }
    }
    if targets.is_empty() {
        eprintln!("spread-bench: no ring to measure");
        return String::new();
    }
    let pair = targets.len() == 2 && targets[0].name == "ours";
    let div = o.divide;
    let loads: Vec<Load> = [(1, 1_000, 5_000u64), (1, 10_000, 1_500), (n, 1_000, 5_000), (n, 10_000, 1_500)]
        .into_iter()
        .map(|(senders, body, c)| Load { senders, body, min_count: (c / div).max(10 * senders as u64) })
        .collect();
    let run_secs = if o.quick { 0.2 } else { 0.6 };
    let (warmup, iters) = if o.quick { (100, 1_000) } else { (300, 5_000) };
    let (warmup, iters) = (warmup / div as usize, (iters / div as usize).max(10));
    let limit = Duration::from_secs(60);

    // ---- floods ------------------------------------------------------------
    let mut flood_rows: Vec<(Load, Vec<[f64; 2]>)> = Vec::new();
    if !o.no_flood {
        for &load in &loads {
            let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); targets.len()];
            let max_count = (2_000_000_000 / load.body as u64).min(2_000_000);
            let mut counts = vec![load.min_count; targets.len()];
            for (i, t) in targets.iter_mut().enumerate() {
                let tag = t.tag();
                let eps = t.ring.endpoints();
                match ring_flood(&eps, &tag, load.senders, AGREED_MESS, load.body, load.min_count, load.window(), limit)
                {
                    Ok(r) => {
                        counts[i] = ((r.msgs_per_sec() * run_secs) as u64).clamp(load.min_count, max_count);
                    }
                    Err(e) => {
                        eprintln!("  {:8} ring {} {:>6} B pilot: FAILED: {e}", t.name, load.label(n), load.body);
                        t.ensure_alive();
                    }
                }
            }
            for run in 0..o.runs {
                for (i, t) in targets.iter_mut().enumerate() {
                    let tag = t.tag();
                    let eps = t.ring.endpoints();
                    match ring_flood(&eps, &tag, load.senders, AGREED_MESS, load.body, counts[i], load.window(), limit)
                    {
                        Ok(r) => {
                            eprintln!(
                                "  {:8} ring {:34} {:>6} B run {}: {:>9.0} msg/s {:>8.1} Mbit/s ({} msgs, {:.2} s)",
                                t.name,
                                load.label(n),
                                load.body,
                                run + 1,
                                r.msgs_per_sec(),
                                r.mbit_per_sec(),
                                r.messages,
                                r.secs
                            );
                            samples[i].push((r.msgs_per_sec(), r.mbit_per_sec()));
                        }
                        Err(e) => {
                            eprintln!(
                                "  {:8} ring {} {:>6} B run {}: FAILED: {e}",
                                t.name,
                                load.label(n),
                                load.body,
                                run + 1
                            );
                            t.ensure_alive();
                        }
                    }
                }
            }
            let med = samples
                .iter()
                .map(|s| {
                    let m: Vec<f64> = s.iter().map(|x| x.0).collect();
                    let b: Vec<f64> = s.iter().map(|x| x.1).collect();
                    [median(&m), median(&b)]
                })
                .collect();
            flood_rows.push((load, med));
        }
    }

    // ---- round trips --------------------------------------------------------
    let mut ping_rows: Vec<(usize, Vec<[f64; 2]>)> = Vec::new();
    let ping_sizes: &[usize] = if o.no_ping { &[] } else { &[1_000, 10_000] };
    for &size in ping_sizes {
        let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); targets.len()];
        for run in 0..o.runs {
            for (i, t) in targets.iter_mut().enumerate() {
                let tag = t.tag();
                let eps = t.ring.endpoints();
                let (a, b) = (&eps[0], &eps[eps.len() - 1]);
                match ping_pong_across(a, b, &tag, AGREED_MESS, size, warmup, iters, limit) {
                    Ok(r) => {
                        let (p50, p99) = (r.percentile(50.0), r.percentile(99.0));
                        eprintln!(
                            "  {:8} ring ping-pong {:>6} B run {}: p50 {:>7.1} us  p99 {:>7.1} us",
                            t.name,
                            size,
                            run + 1,
                            p50,
                            p99
                        );
                        samples[i].push((p50, p99));
                    }
                    Err(e) => {
                        eprintln!("  {:8} ring ping-pong {:>6} B run {}: FAILED: {e}", t.name, size, run + 1);
                        t.ensure_alive();
                    }
                }
            }
        }
        let med = samples
            .iter()
            .map(|s| {
                let a: Vec<f64> = s.iter().map(|x| x.0).collect();
                let b: Vec<f64> = s.iter().map(|x| x.1).collect();
                [median(&a), median(&b)]
            })
            .collect();
        ping_rows.push((size, med));
    }
    for t in &mut targets {
        t.ring.stop();
    }

    // ---- markdown -------------------------------------------------------------
    let names: Vec<&str> = targets.iter().map(|t| t.name).collect();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "RING: {n} daemons on 127.0.0.1, each alone in its segment (own port), default windows and timeouts; \
         one member session per daemon, clients over TCP.\n"
    );
    let _ = writeln!(
        md,
        "Ring throughput (AGREED; every session on every daemon receives every message; msg/s counts each message once, \
         Mbit/s its body bytes; median of {} runs):\n",
        o.runs
    );
    let rows: Vec<(String, String, &[[f64; 2]])> =
        flood_rows.iter().map(|(load, v)| (load.label(n), body_label(load.body), &v[..])).collect();
    write_flood_table(&mut md, &names, &rows);
    let _ = writeln!(
        md,
        "\nRing round trip (A on daemon 1 multicasts AGREED|SELF_DISCARD to a group, B on daemon {n} answers AGREED \
         to A; {iters} round trips after {warmup} warm-up; median of {} runs):\n",
        o.runs
    );
    let rows: Vec<(String, &[[f64; 2]])> = ping_rows.iter().map(|(size, v)| (body_label(*size), &v[..])).collect();
    write_ping_table(&mut md, &names, &rows);
    if names[0] == "ours" {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let _ = writeln!(md, "\nRing targets (1 KB):\n");
        if pair {
            for (load, v) in flood_rows.iter().filter(|(l, _)| l.body == 1_000) {
                let x = v[0][0] / v[1][0];
                let _ = writeln!(
                    md,
                    "* msg/s >= 2x the original, {}: {}x, {}",
                    load.label(n),
                    fmt_num(x),
                    verdict(x >= 2.0)
                );
            }
        }
        if let Some((_, v)) = ping_rows.iter().find(|(s, _)| *s == 1_000) {
            let p99 = v[0][1];
            let _ = writeln!(md, "* p99 round trip <= 1 ms: {} us, {}", fmt_num(p99), verdict(p99 <= 1000.0));
        }
    }
    md
}
