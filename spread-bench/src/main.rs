//! `spread-bench`: spflooder/spping-style benchmark of our daemon, side by side
//! with the original 5.0.1 daemon when `SPREAD_REF_PREFIX` is set: one
//! daemon, then a ring of three daemons (the RING section), then the client
//! library's hot path on our daemon (the LIBRARY section: our libspread
//! against the original's when the prefix has it).
//!
//! ```text
//! spread-bench [--ours PATH|none] [--ref-prefix DIR|none] [--runs N] [--quick]
//!              [--ours-port P] [--ref-port P] [--markdown FILE] [--unix]
//!              [--ours-wrapper 'CMD ARGS --'] [--no-flood] [--no-ping] [--divide N]
//!              [--no-ring | --ring-only] [--ring-daemons N]
//!              [--no-lib | --lib-only] [--build-dir DIR] [--ours-metrics PORT] [--fixed-counts]
//! ```
//! `--ours-port`/`--ref-port` are the bases of 10-port ranges (the first free
//! pair is used); the rings use the 20 ports above each (`P+10 .. P+29`, the
//! first free pairs), the library section `P+30 .. P+39`. `--build-dir` is
//! where `make build` put `bin/splibbench` and `lib/` (default `build`).
//! `--ours-wrapper` prefixes our daemons' command lines
//! (perf, valgrind); `--divide` divides every message count (for slow
//! profilers). `--ours-metrics PORT` turns our single daemon's metrics
//! endpoint on (`MetricsAddress = 127.0.0.1:PORT`) and scrapes it ten times
//! a second while the single-daemon floods and round trips run (what the
//! endpoint costs the message path). `--fixed-counts` skips the calibration
//! of the flood counts (each run sends the minimum count: a fixed load, for
//! instruction counts under callgrind). Loopback only; the daemons are our children and are stopped by
//! PID.

mod failover;
mod lib_bench;
mod ring_bench;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use spread_bench::daemon::Daemon;
use spread_bench::load::{flood, ping_pong, ping_pong_across, ring_flood, FloodMode};
use spread_bench::median;

struct Opts {
    ours: Option<PathBuf>,
    reference: Option<PathBuf>,
    runs: usize,
    quick: bool,
    ours_port: u16,
    ref_port: u16,
    markdown: Option<PathBuf>,
    /// Command prefix for our daemon (profilers).
    ours_wrapper: Vec<String>,
    /// Skip the floods or the ping-pongs.
    no_flood: bool,
    no_ping: bool,
    /// Divide every message / round-trip count by this (for slow profilers).
    divide: u64,
    /// Clients connect through the Unix socket /tmp/<port> instead of TCP.
    unix: bool,
    /// Skip the ring section / run only the ring section.
    no_ring: bool,
    ring_only: bool,
    /// Daemons in the benchmark ring.
    ring_daemons: usize,
    /// Skip the library section / run only the library section.
    no_lib: bool,
    lib_only: bool,
    /// `make build`'s output (bin/splibbench, lib/).
    build_dir: PathBuf,
    /// Skip the failover section / run only it; its flood's length.
    no_failover: bool,
    failover_only: bool,
    failover_soak: Option<u64>,
    /// Our single daemon serves metrics on 127.0.0.1:<port>, scraped while
    /// it is measured.
    ours_metrics: Option<u16>,
    /// Every flood run sends the minimum count (no calibration): a fixed
    /// load, for instruction counts under callgrind.
    fixed_counts: bool,
}

fn ep(d: &Daemon, unix: bool) -> spread_bench::client::Endpoint {
    if unix {
        spread_bench::client::Endpoint::unix_default(d.port)
    } else {
        d.endpoint()
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: spread-bench [--ours PATH|none] [--ref-prefix DIR] [--runs N] [--quick] \
         [--ours-port P] [--ref-port P] [--markdown FILE] \
         [--ours-wrapper 'CMD ARGS --'] [--no-flood] [--no-ping] [--divide N] [--unix] \
         [--no-ring | --ring-only] [--ring-daemons N] [--no-lib | --lib-only] [--build-dir DIR] \
         [--no-failover | --failover-only] [--failover-soak SECS] [--ours-metrics PORT] [--fixed-counts]\n\
         SPREAD_REF_PREFIX in the environment is used when --ref-prefix is absent."
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        ours: Some(PathBuf::from("target/release/spread")),
        reference: std::env::var_os("SPREAD_REF_PREFIX").filter(|v| !v.is_empty()).map(PathBuf::from),
        runs: 5,
        quick: false,
        ours_port: 25010,
        ref_port: 25110,
        markdown: None,
        ours_wrapper: Vec::new(),
        no_flood: false,
        no_ping: false,
        divide: 1,
        unix: false,
        no_ring: false,
        ring_only: false,
        ring_daemons: 3,
        no_lib: false,
        lib_only: false,
        build_dir: PathBuf::from("build"),
        no_failover: false,
        failover_only: false,
        failover_soak: None,
        ours_metrics: None,
        fixed_counts: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--ours" => {
                let v = val();
                o.ours = if v == "none" { None } else { Some(PathBuf::from(v)) };
            }
            "--ref-prefix" => {
                let v = val();
                o.reference = if v.is_empty() || v == "none" { None } else { Some(PathBuf::from(v)) };
            }
            "--divide" => o.divide = val().parse::<u64>().unwrap_or_else(|_| usage()).max(1),
            "--runs" => o.runs = val().parse().unwrap_or_else(|_| usage()),
            "--quick" => o.quick = true,
            "--ours-port" => o.ours_port = val().parse().unwrap_or_else(|_| usage()),
            "--ref-port" => o.ref_port = val().parse().unwrap_or_else(|_| usage()),
            "--markdown" => o.markdown = Some(PathBuf::from(val())),
            "--ours-wrapper" => o.ours_wrapper = val().split_whitespace().map(str::to_string).collect(),
            "--no-flood" => o.no_flood = true,
            "--no-ping" => o.no_ping = true,
            "--unix" => o.unix = true,
            "--no-ring" => o.no_ring = true,
            "--ring-only" => o.ring_only = true,
            "--ring-daemons" => o.ring_daemons = val().parse().unwrap_or_else(|_| usage()),
            "--no-lib" => o.no_lib = true,
            "--lib-only" => o.lib_only = true,
            "--build-dir" => o.build_dir = PathBuf::from(val()),
            "--no-failover" => o.no_failover = true,
            "--failover-only" => o.failover_only = true,
            "--failover-soak" => o.failover_soak = Some(val().parse().unwrap_or_else(|_| usage())),
            "--ours-metrics" => o.ours_metrics = Some(val().parse().unwrap_or_else(|_| usage())),
            "--fixed-counts" => o.fixed_counts = true,
            _ => usage(),
        }
    }
    o.runs = o.runs.clamp(1, 21);
    o.ring_daemons = o.ring_daemons.clamp(2, 5);
    if (o.no_ring && o.ring_only) || (o.no_lib && o.lib_only) || (o.ring_only && o.lib_only) {
        usage();
    }
    o
}

/// A daemon under test plus the per-scenario samples gathered from it.
struct Target {
    name: &'static str,
    daemon: Daemon,
    binary: PathBuf,
    runs_done: u32,
}

/// A fresh tag for the next run against target `name` (its first letter and
/// the run's number): group names of one run never meet another run's.
fn run_tag(name: &str, runs_done: &mut u32) -> String {
    *runs_done += 1;
    format!("{}{}", &name[..1], runs_done)
}

impl Target {
    fn tag(&mut self) -> String {
        run_tag(self.name, &mut self.runs_done)
    }
    /// Restart the daemon if a failed run took it down.
    fn ensure_alive(&mut self) {
        if !self.daemon.alive() {
            eprintln!("  {} daemon died; restarting it", self.name);
            let port = self.daemon.port;
            self.daemon.stop();
            match Daemon::start(self.name, &self.binary, port, Duration::from_secs(15)) {
                Ok(d) => self.daemon = d,
                Err(e) => eprintln!("  restart failed: {e}"),
            }
        }
    }
}

/// Median figure per target for one row; NaN = no successful run.
struct Row {
    label: String,
    values: Vec<[f64; 2]>,
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A throughput table, ours against the original when `names` has both:
/// per row its load, its body and per target `[msg/s, Mbit/s]`.
fn write_flood_table(md: &mut String, names: &[&str], rows: &[(String, String, &[[f64; 2]])]) {
    let pair = names.len() == 2;
    if pair {
        let _ = writeln!(
            md,
            "| load | body | ours msg/s | ours Mbit/s | original msg/s | original Mbit/s | ours / original |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    } else {
        let _ = writeln!(md, "| load | body | {} msg/s | {} Mbit/s |", names[0], names[0]);
        let _ = writeln!(md, "|---|---:|---:|---:|");
    }
    for (label, body, v) in rows {
        if pair {
            let _ = writeln!(
                md,
                "| {label} | {body} | {} | {} | {} | {} | {}x |",
                fmt_num(v[0][0]),
                fmt_num(v[0][1]),
                fmt_num(v[1][0]),
                fmt_num(v[1][1]),
                fmt_num(v[0][0] / v[1][0])
            );
        } else {
            let _ = writeln!(md, "| {label} | {body} | {} | {} |", fmt_num(v[0][0]), fmt_num(v[0][1]));
        }
    }
}

/// A round-trip table: per row its body and per target `[p50, p99]` in us.
fn write_ping_table(md: &mut String, names: &[&str], rows: &[(String, &[[f64; 2]])]) {
    let pair = names.len() == 2;
    if pair {
        let _ = writeln!(
            md,
            "| body | ours p50 us | ours p99 us | original p50 us | original p99 us | p50 ours / original | p99 ours / original |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|");
    } else {
        let _ = writeln!(md, "| body | {} p50 us | {} p99 us |", names[0], names[0]);
        let _ = writeln!(md, "|---:|---:|---:|");
    }
    for (label, v) in rows {
        if pair {
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} | {} | {}x | {}x |",
                fmt_num(v[0][0]),
                fmt_num(v[0][1]),
                fmt_num(v[1][0]),
                fmt_num(v[1][1]),
                fmt_num(v[0][0] / v[1][0]),
                fmt_num(v[0][1] / v[1][1])
            );
        } else {
            let _ = writeln!(md, "| {label} | {} | {} |", fmt_num(v[0][0]), fmt_num(v[0][1]));
        }
    }
}

fn main() {
    let o = parse_opts();
    spread_bench::daemon::install_signal_handlers();
    let started = Instant::now();
    let mut md = String::new();
    let mut add = |part: String| {
        if !md.is_empty() && !part.is_empty() {
            md.push('\n');
        }
        md.push_str(&part);
    };
    let only = o.ring_only || o.lib_only || o.failover_only;
    if !only {
        add(single_section(&o));
    }
    if !o.no_ring && (!only || o.ring_only) {
        add(ring_bench::section(&o));
    }
    if !o.no_lib && (!only || o.lib_only) {
        add(lib_bench::section(&o));
    }
    if !o.no_failover && (!only || o.failover_only) {
        add(failover::section(&o));
    }
    let _ = writeln!(md, "\n(wall time of the whole benchmark: {:.0} s)", started.elapsed().as_secs_f64());
    println!("\n{md}");
    if let Some(p) = &o.markdown {
        if let Err(e) = std::fs::write(p, &md) {
            eprintln!("spread-bench: cannot write {}: {e}", p.display());
        }
    }
}

/// The single-daemon floods and ping-pongs; returns their markdown.
fn single_section(o: &Opts) -> String {
    let mut targets: Vec<Target> = Vec::new();
    if let Some(p) = o.ours.clone() {
        if !p.exists() {
            eprintln!(
                "spread-bench: our daemon {} does not exist (build it: cargo build --release -p spread-daemon)",
                p.display()
            );
            std::process::exit(1);
        }
        let Some(port) = spread_bench::daemon::pick_port(o.ours_port, 10) else {
            eprintln!("spread-bench: no free port pair in {}..{}", o.ours_port, o.ours_port + 9);
            std::process::exit(1);
        };
        let extra = o.ours_metrics.map(|m| format!("MetricsAddress = 127.0.0.1:{m}\n")).unwrap_or_default();
        let conf = move |run: &std::path::Path| spread_bench::daemon::config_text(port, run) + &extra;
        let started =
            Daemon::start_conf("ours", &o.ours_wrapper, &p, "localhost", port, &conf, Duration::from_secs(30));
        match started {
            Ok(d) => targets.push(Target { name: "ours", daemon: d, binary: p, runs_done: 0 }),
            Err(e) => {
                eprintln!("spread-bench: cannot start our daemon: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(prefix) = o.reference.clone() {
        let p = prefix.join("sbin/spread");
        let Some(port) = spread_bench::daemon::pick_port(o.ref_port, 10) else {
            eprintln!("spread-bench: no free port pair in {}..{}", o.ref_port, o.ref_port + 9);
            std::process::exit(1);
        };
        match Daemon::start("original", &p, port, Duration::from_secs(15)) {
            Ok(d) => targets.push(Target { name: "original", daemon: d, binary: p, runs_done: 0 }),
            Err(e) => {
                eprintln!("spread-bench: cannot start the original daemon {}: {e}", p.display());
                std::process::exit(1);
            }
        }
    } else {
        eprintln!("spread-bench: SPREAD_REF_PREFIX not set: measuring our daemon only");
    }
    if targets.is_empty() {
        eprintln!("spread-bench: nothing to measure");
        std::process::exit(1);
    }
    for t in &targets {
        eprintln!("{} daemon: {} (pid {:?}, port {})", t.name, t.binary.display(), t.daemon.pid(), t.daemon.port);
    }

    // Minimum message counts per body size; each daemon's count is then
    // calibrated by a pilot run so that one measured run lasts about
    // `run_secs` (fast daemons would otherwise finish in milliseconds).
    let sizes: [(usize, u64); 4] = [(100, 20_000), (1_000, 10_000), (10_000, 3_000), (100_000, 400)];
    let sizes = sizes.map(|(s, c)| (s, (c / o.divide).max(10)));
    let run_secs = if o.quick { 0.2 } else { 0.6 };
    let (warmup, iters) = if o.quick { (100, 1_000) } else { (300, 5_000) };
    let (warmup, iters) = (warmup / o.divide as usize, (iters / o.divide as usize).max(10));
    let limit = Duration::from_secs(60);

    let scraper = o.ours_metrics.map(Scraper::start);

    // Flood rows: msgs/s and Mbit/s medians per target.
    let mut flood_rows: Vec<(String, usize, Vec<[f64; 2]>)> = Vec::new();
    let modes: &[FloodMode] = if o.no_flood { &[] } else { &[FloodMode::OneToOne, FloodMode::SelfRecv] };
    for &mode in modes {
        let window = match mode {
            FloodMode::OneToOne => 500,
            FloodMode::SelfRecv => 200,
        };
        for &(size, min_count) in &sizes {
            let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); targets.len()];
            // Pilot (also a warm-up): measure the rate with the minimum count.
            let max_count = (2_000_000_000 / size as u64).min(10_000_000);
            let mut counts = vec![min_count; targets.len()];
            for (i, t) in targets.iter_mut().enumerate() {
                let tag = t.tag();
                match flood(&ep(&t.daemon, o.unix), &tag, mode, size, min_count, window, limit) {
                    Ok(_) if o.fixed_counts => {}
                    Ok(r) => counts[i] = ((r.msgs_per_sec() * run_secs) as u64).clamp(min_count, max_count),
                    Err(e) => {
                        eprintln!("  {:8} {:24} {:>6} B pilot: FAILED: {e}", t.name, mode.label(), size);
                        t.ensure_alive();
                    }
                }
            }
            // Interleave the daemons run by run so slow drifts of the machine
            // hit both alike.
            for run in 0..o.runs {
                for (i, t) in targets.iter_mut().enumerate() {
                    let tag = t.tag();
                    match flood(&ep(&t.daemon, o.unix), &tag, mode, size, counts[i], window, limit) {
                        Ok(r) => {
                            eprintln!(
                                "  {:8} {:24} {:>6} B run {}: {:>10.0} msg/s {:>9.1} Mbit/s ({} msgs, {:.2} s)",
                                t.name,
                                mode.label(),
                                size,
                                run + 1,
                                r.msgs_per_sec(),
                                r.mbit_per_sec(),
                                r.messages,
                                r.secs
                            );
                            samples[i].push((r.msgs_per_sec(), r.mbit_per_sec()));
                        }
                        Err(e) => {
                            eprintln!("  {:8} {:24} {:>6} B run {}: FAILED: {e}", t.name, mode.label(), size, run + 1);
                            t.ensure_alive();
                        }
                    }
                }
            }
            let med: Vec<[f64; 2]> = samples
                .iter()
                .map(|s| {
                    let m: Vec<f64> = s.iter().map(|x| x.0).collect();
                    let b: Vec<f64> = s.iter().map(|x| x.1).collect();
                    [median(&m), median(&b)]
                })
                .collect();
            flood_rows.push((mode.label().to_string(), size, med));
        }
    }

    // Ping-pong rows: p50 / p99 per target (median over runs of each).
    let mut ping_rows: Vec<Row> = Vec::new();
    let ping_sizes: &[usize] = if o.no_ping { &[] } else { &[48, 1000] };
    for &size in ping_sizes {
        let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); targets.len()];
        for run in 0..o.runs {
            for (i, t) in targets.iter_mut().enumerate() {
                let tag = t.tag();
                match ping_pong(&ep(&t.daemon, o.unix), &tag, size, warmup, iters, limit) {
                    Ok(r) => {
                        let (p50, p99) = (r.percentile(50.0), r.percentile(99.0));
                        eprintln!(
                            "  {:8} ping-pong {:>5} B run {}: p50 {:>7.1} us  p99 {:>7.1} us",
                            t.name,
                            size,
                            run + 1,
                            p50,
                            p99
                        );
                        samples[i].push((p50, p99));
                    }
                    Err(e) => {
                        eprintln!("  {:8} ping-pong {:>5} B run {}: FAILED: {e}", t.name, size, run + 1);
                        t.ensure_alive();
                    }
                }
            }
        }
        let med: Vec<[f64; 2]> = samples
            .iter()
            .map(|s| {
                let a: Vec<f64> = s.iter().map(|x| x.0).collect();
                let b: Vec<f64> = s.iter().map(|x| x.1).collect();
                [median(&a), median(&b)]
            })
            .collect();
        ping_rows.push(Row { label: format!("{size} B"), values: med });
    }
    let names: Vec<&str> = targets.iter().map(|t| t.name).collect();
    let pair = names.len() == 2;

    // ---- the table -------------------------------------------------------
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Throughput (RELIABLE, one daemon on 127.0.0.1, clients over {}, payload bytes; median of {} runs):\n",
        if o.unix { "the Unix socket" } else { "TCP" },
        o.runs
    );
    let rows: Vec<(String, String, &[[f64; 2]])> = flood_rows
        .iter()
        .map(|(label, size, v)| {
            let body = if *size >= 1000 { format!("{} KB", size / 1000) } else { format!("{size} B") };
            (label.clone(), body, &v[..])
        })
        .collect();
    write_flood_table(&mut md, &names, &rows);
    let _ = writeln!(
        md,
        "\nRound trip (spping-style: RELIABLE|SELF_DISCARD to a group, unicast reply; {iters} round trips after {warmup} warm-up; median of {} runs):\n",
        o.runs
    );
    let rows: Vec<(String, &[[f64; 2]])> = ping_rows.iter().map(|r| (r.label.clone(), &r.values[..])).collect();
    write_ping_table(&mut md, &names, &rows);
    if pair && names[0] == "ours" {
        let r100 =
            flood_rows.iter().find(|r| r.0 == FloodMode::OneToOne.label() && r.1 == 100).map(|r| r.2[0][0] / r.2[1][0]);
        let r100k = flood_rows
            .iter()
            .find(|r| r.0 == FloodMode::OneToOne.label() && r.1 == 100_000)
            .map(|r| r.2[0][1] / r.2[1][1]);
        let p50 = ping_rows.first().map(|r| r.values[0][0] / r.values[1][0]);
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let _ = writeln!(md, "\nTargets (1 sender -> 1 receiver; round trip at 48 B):\n");
        if let Some(x) = r100 {
            let _ = writeln!(md, "* msg/s at 100 B >= 3x the original: {}x, {}", fmt_num(x), verdict(x >= 3.0));
        }
        if let Some(x) = r100k {
            let _ = writeln!(md, "* Mbit/s at 100 KB >= 1.5x the original: {}x, {}", fmt_num(x), verdict(x >= 1.5));
        }
        if let Some(x) = p50 {
            let _ = writeln!(md, "* p50 round trip <= 0.7x the original: {}x, {}", fmt_num(x), verdict(x <= 0.7));
        }
    }
    if let Some(sc) = scraper {
        let (ok, failed, bytes) = sc.stop();
        eprintln!("metrics: {ok} scrapes of our daemon's endpoint ({failed} failed), the last {bytes} bytes");
        let _ = writeln!(
            md,
            "\nOur daemon served metrics (`MetricsAddress`), scraped every 100 ms throughout: {ok} scrapes, \
             {failed} failed, {bytes} bytes each."
        );
    }
    for t in &mut targets {
        t.daemon.stop();
    }
    md
}

/// Scrapes `http://127.0.0.1:<port>/metrics` every 100 ms on a thread of
/// its own until stopped (`--ours-metrics`).
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64, usize)>,
}

impl Scraper {
    fn start(port: u16) -> Scraper {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed, mut bytes) = (0u64, 0u64, 0usize);
            // Bounded by the stop flag, which the section sets when it ends.
            while !flag.load(Ordering::Relaxed) {
                let scrape = || -> std::io::Result<usize> {
                    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
                    s.set_read_timeout(Some(Duration::from_secs(5)))?;
                    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
                    let mut b = Vec::new();
                    s.read_to_end(&mut b)?;
                    if !b.starts_with(b"HTTP/1.1 200 ") {
                        return Err(std::io::Error::other("not 200"));
                    }
                    Ok(b.len())
                };
                match scrape() {
                    Ok(n) => {
                        ok += 1;
                        bytes = n;
                    }
                    Err(_) => failed += 1,
                }
                // The scrape interval, not a synchronisation sleep.
                std::thread::sleep(Duration::from_millis(100));
            }
            (ok, failed, bytes)
        });
        Scraper { stop, thread }
    }

    /// Stop; returns (scrapes answered, failed, size of the last answer).
    fn stop(self) -> (u64, u64, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or((0, 0, 0))
    }
}
