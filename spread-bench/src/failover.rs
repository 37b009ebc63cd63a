//! The FAILOVER section of `spread-bench`: a ring of three daemons on
//! loopback running the membership timeouts of `docs/fast-failover.conf`,
//! for our daemon and, when given, the original with the same lines.
//!
//! * Detection: a watcher on the first daemon and a member on the last one
//!   share a group; the last daemon is SIGKILLed and the time until the
//!   watcher receives the group's new membership (the member gone, caused by
//!   the network) is one sample. The daemon is then restarted and the ring
//!   re-forms before the next kill. p50, p99 and the worst of `kills`
//!   samples.
//! * False suspicion: for `soak` seconds a member of a load group on the
//!   first daemon floods it with 1 KB AGREED messages (200 ahead of what it
//!   has read back, as `spflooder` does) while a member on every other
//!   daemon reads them; a watcher counts every membership change of a
//!   second group with a member on every daemon. Nothing fails, so any
//!   change is a false suspicion.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spread_bench::client::Conn;
use spread_bench::daemon::RingDaemons;
use spread_wire::names::name32;
use spread_wire::{AGREED_MESS, CAUSED_BY_NETWORK, REG_MEMB_MESS};

use super::{fmt_num, Opts};

/// The profile, as shipped.
pub const PROFILE: &str = include_str!("../../docs/fast-failover.conf");

const FORM_TIMEOUT: Duration = Duration::from_secs(60);
const DETECT_LIMIT: Duration = Duration::from_secs(30);

/// What one target measured.
struct Outcome {
    detections: Vec<Duration>,
    soak: Duration,
    soak_messages: u64,
    false_changes: usize,
}

/// Receive (bounded by `deadline`) until a regular membership of `group`
/// satisfies `pred`; returns it.
fn until_membership(
    c: &mut Conn,
    group: &str,
    deadline: Instant,
    mut pred: impl FnMut(u32, usize) -> bool,
) -> io::Result<()> {
    for _ in 0..1_000_000 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        c.stream.set_read_timeout(Some(left))?;
        let m = c.recv()?;
        if m.service() & REG_MEMB_MESS != 0 && m.sender() == group.as_bytes() && pred(m.service(), m.groups.len()) {
            return Ok(());
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, format!("no such membership of {group}")))
}

fn detections(ring: &mut RingDaemons, name: &str, kills: usize) -> io::Result<Vec<Duration>> {
    let last = ring.daemons.len() - 1;
    let mut v = Vec::new();
    for k in 0..kills {
        let group = format!("fo{k}");
        let mut w = Conn::connect(&ring.daemons[0].endpoint(), &format!("fw{k}"), true, Duration::from_secs(5))?;
        w.join(&group)?;
        let mut m = Conn::connect(&ring.daemons[last].endpoint(), &format!("fm{k}"), false, Duration::from_secs(5))?;
        m.join(&group)?;
        until_membership(&mut w, &group, Instant::now() + DETECT_LIMIT, |_, n| n == 2)?;
        let t0 = Instant::now();
        ring.daemons[last].kill_hard();
        until_membership(&mut w, &group, t0 + DETECT_LIMIT, |t, n| n == 1 && t & CAUSED_BY_NETWORK != 0)?;
        let took = t0.elapsed();
        v.push(took);
        drop(m);
        w.disconnect();
        eprintln!("  {name} failover kill {}: {:.1} ms", k + 1, took.as_secs_f64() * 1e3);
        ring.daemons[last] = ring.start_daemon(last, FORM_TIMEOUT)?;
        ring.wait_formed(FORM_TIMEOUT)?;
    }
    Ok(v)
}

fn soak(ring: &RingDaemons, name: &str, secs: u64) -> io::Result<(Duration, u64, usize)> {
    let n = ring.daemons.len();
    let eps = ring.endpoints();
    // The watched group: one member per daemon.
    let mut watcher = Conn::connect(&eps[0], "sw", true, Duration::from_secs(5))?;
    watcher.join("fsoak")?;
    let mut members = Vec::new();
    for (i, ep) in eps.iter().enumerate().skip(1) {
        let mut c = Conn::connect(ep, &format!("sm{i}"), false, Duration::from_secs(5))?;
        c.join("fsoak")?;
        members.push(c);
    }
    until_membership(&mut watcher, "fsoak", Instant::now() + FORM_TIMEOUT, |_, k| k == n)?;
    // Readers of the load group on the other daemons, each in a thread.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for (i, ep) in eps.iter().enumerate().skip(1) {
        let mut c = Conn::connect(ep, &format!("sr{i}"), false, Duration::from_secs(5))?;
        c.join("fload")?;
        let stop = stop.clone();
        readers.push(std::thread::spawn(move || {
            let _ = c.stream.set_read_timeout(Some(Duration::from_millis(200)));
            // Bounded by the stop flag (set after `secs`) and by errors.
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = c.recv() {
                    if !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
                        break;
                    }
                }
            }
        }));
    }
    let mut sender = Conn::connect(&eps[0], "ss", false, Duration::from_secs(5))?;
    sender.join("fload")?;
    // Let the readers' joins through: the sender sees its own first message.
    let g = [name32(b"fload")];
    let body = vec![7u8; 1000];
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(secs);
    let (mut sent, mut back) = (0u64, 0u64);
    sender.stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    while Instant::now() < end {
        while sent - back < 200 {
            sender.send(AGREED_MESS, &g, 0, &body)?;
            sent += 1;
        }
        // Read own messages back (memberships of fload arrive too).
        let m = sender.recv()?;
        if m.service() & AGREED_MESS != 0 && m.service() & REG_MEMB_MESS == 0 {
            back += 1;
        }
    }
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.join();
    }
    // Every membership change of the watched group since it formed.
    let mut changes = 0;
    watcher.stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    while let Ok(m) = watcher.recv() {
        if m.service() & REG_MEMB_MESS != 0 && m.sender() == b"fsoak" {
            changes += 1;
        }
    }
    eprintln!("  {name} soak: {back} messages in {:.0} s, {changes} membership changes", took.as_secs_f64());
    Ok((took, back, changes))
}

fn measure(name: &str, bin: &Path, base: u16, kills: usize, soak_secs: u64) -> Option<Outcome> {
    let Some(ports) = spread_bench::daemon::pick_ports(base, 20, 3) else {
        eprintln!("spread-bench: fewer than 3 free port pairs in {base}..{}: no {name} failover ring", base + 19);
        return None;
    };
    let extra = format!("SocketPortReuse = ON\n{PROFILE}");
    let mut ring = match RingDaemons::start_with(name, &[], bin, &ports, &extra, FORM_TIMEOUT) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("spread-bench: {name} failover ring: {e}");
            return None;
        }
    };
    eprintln!("{name} failover ring on ports {:?}", ring.ports);
    let mut run = || -> io::Result<Outcome> {
        let d = detections(&mut ring, name, kills)?;
        let (took, msgs, changes) = soak(&ring, name, soak_secs)?;
        Ok(Outcome { detections: d, soak: took, soak_messages: msgs, false_changes: changes })
    };
    let r = run();
    ring.stop();
    match r {
        Ok(o) => Some(o),
        Err(e) => {
            eprintln!("spread-bench: {name} failover: {e}");
            None
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// Run the section; returns its markdown.
pub(crate) fn section(o: &Opts) -> String {
    let kills = if o.quick { 10 } else { 50 };
    let soak_secs = o.failover_soak.unwrap_or(if o.quick { 20 } else { 600 });
    let mut rows: Vec<(&str, Outcome)> = Vec::new();
    if let Some(p) = o.ours.clone() {
        if let Some(r) = measure("ours", &p, o.ours_port.saturating_add(40), kills, soak_secs) {
            rows.push(("ours", r));
        }
    }
    if let Some(prefix) = o.reference.clone() {
        if let Some(r) =
            measure("original", &prefix.join("sbin/spread"), o.ref_port.saturating_add(40), kills, soak_secs)
        {
            rows.push(("original", r));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Failover (3 daemons on loopback with `docs/fast-failover.conf`; the last daemon SIGKILLed, time until a \
         client of the first gets the new membership; then a flood under the same timeouts, counting membership \
         changes that nothing caused):\n"
    );
    let _ =
        writeln!(md, "| daemon | kills | detection p50 ms | p99 ms | worst ms | soak | messages | false suspicions |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, mut r) in rows {
        r.detections.sort();
        let worst = r.detections.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {:.0} s | {} | {} |",
            r.detections.len(),
            fmt_num(percentile(&r.detections, 0.5)),
            fmt_num(percentile(&r.detections, 0.99)),
            fmt_num(worst),
            r.soak.as_secs_f64(),
            r.soak_messages,
            r.false_changes
        );
    }
    md
}
