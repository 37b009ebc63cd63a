//! The LIBRARY section of `spread-bench`: the client library's hot path.
//!
//! One daemon (ours), one load client, `build/bin/splibbench` (FL:
//! `splibbench-fl`), a C program built against `sp.h` only: it joins a group
//! of its own and floods it with RELIABLE messages, receiving each back,
//! 100 in flight (`c-examples/splibbench.c`). The same binary runs on our
//! libraries (its RUNPATH, `build/lib`) and, when `SPREAD_REF_PREFIX` is set,
//! on the original's (`LD_LIBRARY_PATH=<prefix>/lib`), interleaved run by
//! run. With two CPUs or more, the daemon runs on the first and the client on
//! the second (see `libload::two_cpus`). Per load: messages/s, the client's CPU time per message, and, when
//! `strace` is installed, its system calls per message (a traced run of 3000
//! less one of 1000, over 2000).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use spread_bench::daemon::Daemon;
use spread_bench::libload::{find_in_path, total, LibLoad, LibRun};
use spread_bench::median;

use super::{fmt_num, Opts};

/// One library under test.
struct Lib {
    name: &'static str,
    /// `None`: the binaries' own RUNPATH (ours).
    dir: Option<PathBuf>,
    runs_done: u32,
}

/// A load of the section: its label, binary, mode and whether over TCP.
struct Case {
    label: &'static str,
    fl: bool,
    mode: &'static str,
    tcp: bool,
}

const CASES: [Case; 5] = [
    Case { label: "SP_multicast + SP_receive", fl: false, mode: "sp", tcp: false },
    Case { label: "SP_multicast + SP_receive, TCP", fl: false, mode: "sp", tcp: true },
    Case { label: "SP_scat_multicast + SP_scat_receive", fl: false, mode: "scat", tcp: false },
    Case { label: "E_handle_events driven", fl: false, mode: "ev", tcp: false },
    Case { label: "FL_multicast + FL_receive", fl: true, mode: "fl", tcp: false },
];

struct Row {
    label: &'static str,
    body: usize,
    /// Per library: median msg/s, median CPU us/msg, syscalls/msg (NaN: not counted).
    values: Vec<[f64; 3]>,
    syscalls: Vec<BTreeMap<String, f64>>,
}

/// The section's markdown (empty, having said why, when the load client or
/// the libraries are missing).
pub fn section(o: &Opts) -> String {
    let root = o.build_dir.clone();
    let bins = [root.join("bin/splibbench"), root.join("bin/splibbench-fl")];
    if let Some(missing) = bins.iter().find(|b| !b.is_file()) {
        eprintln!("spread-bench: LIBRARY section skipped: {} is missing (run `make build`)", missing.display());
        return String::new();
    }
    let Some(ours) = o.ours.clone() else {
        eprintln!("spread-bench: LIBRARY section skipped: it runs on our daemon (--ours none given)");
        return String::new();
    };
    let mut libs = vec![Lib { name: "ours", dir: None, runs_done: 0 }];
    if let Some(prefix) = &o.reference {
        let dir = prefix.join("lib");
        if dir.join("libspread-core.so.3").is_file() && dir.join("libspread.so.3").is_file() {
            libs.push(Lib { name: "original", dir: Some(dir), runs_done: 0 });
        } else {
            eprintln!("spread-bench: {} has no libspread-core.so.3 / libspread.so.3: our library only", dir.display());
        }
    }
    let Some(port) = spread_bench::daemon::pick_port(o.ours_port + 30, 10) else {
        eprintln!(
            "spread-bench: LIBRARY section skipped: no free port pair in {}..{}",
            o.ours_port + 30,
            o.ours_port + 39
        );
        return String::new();
    };
    let mut daemon = match Daemon::start("ours (library section)", &ours, port, Duration::from_secs(30)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("spread-bench: LIBRARY section: cannot start our daemon: {e}");
            return String::new();
        }
    };
    let cpus = spread_bench::libload::two_cpus();
    if let (Some((d, _)), Some(pid)) = (cpus, daemon.pid()) {
        spread_bench::libload::pin(pid as libc::pid_t, d);
    }
    let client_cpu = cpus.map(|c| c.1);
    let work = std::env::temp_dir().join(format!("spread-bench-lib-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&work);
    let strace = find_in_path("strace");
    if strace.is_none() {
        eprintln!("spread-bench: strace not installed: no system call counts");
    }
    let (unix, tcp) = (port.to_string(), format!("{port}@127.0.0.1"));
    let count = |body: usize| -> u64 {
        let base = if body <= 100 { 200_000 } else { 150_000 };
        (if o.quick { base / 4 } else { base } / o.divide).max(100)
    };
    let limit = Duration::from_secs(120);

    let mut rows: Vec<Row> = Vec::new();
    for case in &CASES {
        let bin: &Path = if case.fl { &bins[1] } else { &bins[0] };
        let spread = if case.tcp { &tcp } else { &unix };
        for body in [100usize, 1000] {
            let mut samples: Vec<Vec<LibRun>> = vec![Vec::new(); libs.len()];
            for run in 0..=o.runs {
                for (i, lib) in libs.iter_mut().enumerate() {
                    lib.runs_done += 1;
                    let user = format!("{}{}", &lib.name[..1], lib.runs_done);
                    let load = LibLoad {
                        bin,
                        lib_dir: lib.dir.as_deref(),
                        spread,
                        user: &user,
                        mode: case.mode,
                        body,
                        window: 100,
                        cpu: client_cpu,
                    };
                    match load.run(count(body), &work, None, limit) {
                        // Run 0 is a warm-up.
                        Ok(r) if run > 0 => {
                            eprintln!(
                                "  {:8} library {:38} {:>5} B run {}: {:>9.0} msg/s {:>6.2} us CPU/msg",
                                lib.name, case.label, body, run, r.msgs_per_sec, r.cpu_us
                            );
                            samples[i].push(r);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("  {:8} library {} {body} B run {run}: FAILED: {e}", lib.name, case.label);
                            if !daemon.alive() {
                                eprintln!("  our daemon died; restarting it");
                                daemon.stop();
                                match Daemon::start("ours (library section)", &ours, port, Duration::from_secs(30)) {
                                    Ok(d) => daemon = d,
                                    Err(e) => eprintln!("  restart failed: {e}"),
                                }
                            }
                        }
                    }
                }
            }
            let mut syscalls = Vec::new();
            for lib in &libs {
                let counted = strace.as_deref().and_then(|st| {
                    let load = LibLoad {
                        bin,
                        lib_dir: lib.dir.as_deref(),
                        spread,
                        user: "sc",
                        mode: case.mode,
                        body,
                        window: 100,
                        cpu: None,
                    };
                    load.syscalls_per_message(st, &work)
                        .map_err(|e| {
                            eprintln!("  {:8} library {} {body} B: strace run FAILED: {e}", lib.name, case.label)
                        })
                        .ok()
                });
                if let Some(m) = &counted {
                    eprintln!(
                        "  {:8} library {:38} {:>5} B: {:.2} syscalls/msg {m:?}",
                        lib.name,
                        case.label,
                        body,
                        total(m)
                    );
                }
                syscalls.push(counted.unwrap_or_default());
            }
            let values = samples
                .iter()
                .zip(&syscalls)
                .map(|(s, sc)| {
                    let rate: Vec<f64> = s.iter().map(|r| r.msgs_per_sec).collect();
                    let cpu: Vec<f64> = s.iter().map(|r| r.cpu_us).collect();
                    [median(&rate), median(&cpu), if sc.is_empty() { f64::NAN } else { total(sc) }]
                })
                .collect();
            rows.push(Row { label: case.label, body, values, syscalls });
        }
    }
    daemon.stop();
    let _ = std::fs::remove_dir_all(&work);
    table(o, &libs.iter().map(|l| l.name).collect::<Vec<_>>(), &rows)
}

fn table(o: &Opts, names: &[&str], rows: &[Row]) -> String {
    let pair = names.len() == 2;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "LIBRARY: the client library's hot path (c-examples/splibbench on each library, our daemon, one session \
         flooding its own group with RELIABLE messages, 100 in flight; Unix socket unless TCP; median of {} runs; \
         CPU = the client's user + system time per message; syscalls per message counted with strace{}):\n",
        o.runs,
        if spread_bench::libload::two_cpus().is_some() {
            "; daemon and client each pinned to a CPU of their own"
        } else {
            ""
        }
    );
    if pair {
        let _ = writeln!(
            md,
            "| load | body | ours msg/s | original msg/s | ours / original | ours CPU us/msg | original CPU us/msg | \
             ours syscalls/msg | original syscalls/msg |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    } else {
        let _ = writeln!(md, "| load | body | ours msg/s | ours CPU us/msg | ours syscalls/msg |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    }
    for r in rows {
        let body = if r.body >= 1000 { format!("{} KB", r.body / 1000) } else { format!("{} B", r.body) };
        let v = &r.values;
        if pair {
            let _ = writeln!(
                md,
                "| {} | {body} | {} | {} | {}x | {} | {} | {} | {} |",
                r.label,
                fmt_num(v[0][0]),
                fmt_num(v[1][0]),
                fmt_num(v[0][0] / v[1][0]),
                fmt_num(v[0][1]),
                fmt_num(v[1][1]),
                fmt_num(v[0][2]),
                fmt_num(v[1][2])
            );
        } else {
            let _ = writeln!(
                md,
                "| {} | {body} | {} | {} | {} |",
                r.label,
                fmt_num(v[0][0]),
                fmt_num(v[0][1]),
                fmt_num(v[0][2])
            );
        }
    }
    if let Some(r) = rows.first().filter(|r| !r.syscalls[0].is_empty()) {
        let _ = write!(md, "\nSystem calls per message, {} at 100 B: ours {:?}", r.label, r.syscalls[0]);
        if pair {
            let _ = write!(md, "; original {:?}", r.syscalls[1]);
        }
        md.push('\n');
    }
    if pair {
        let _ = writeln!(md, "\nTargets (SP_multicast + SP_receive over the Unix socket):\n");
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        for r in rows.iter().filter(|r| r.label == CASES[0].label) {
            let x = r.values[0][0] / r.values[1][0];
            let _ = writeln!(
                md,
                "* msg/s at {} B >= 1.2x the original library: {}x, {}",
                r.body,
                fmt_num(x),
                verdict(x >= 1.2)
            );
        }
        let counted: Vec<&Row> =
            rows.iter().filter(|r| r.values[0][2].is_finite() && r.values[1][2].is_finite()).collect();
        if counted.is_empty() {
            let _ = writeln!(md, "* syscalls per message <= the original library's: not counted (no strace)");
        } else {
            let all_le = counted.iter().all(|r| r.values[0][2] <= r.values[1][2] + 0.01);
            let _ = writeln!(
                md,
                "* syscalls per message <= the original library's in every load counted: {}",
                verdict(all_le)
            );
        }
    }
    md
}
