//! Running `splibbench` (`c-examples/splibbench.c`), the C load client of the
//! LIBRARY section: the same binary on our libraries or, through
//! `LD_LIBRARY_PATH`, on the original's, against one daemon; and counting its
//! system calls per message with `strace -f -c` when strace is installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// One run of `splibbench`.
#[derive(Clone, Copy, Debug)]
pub struct LibRun {
    pub msgs_per_sec: f64,
    /// User + system CPU time of the client per message, in microseconds.
    pub cpu_us: f64,
}

/// What to run: `bin -s spread -u user -x mode -b body`.
#[derive(Clone, Debug)]
pub struct LibLoad<'a> {
    pub bin: &'a Path,
    /// Directory put in `LD_LIBRARY_PATH` (`None`: the binary's own RUNPATH).
    pub lib_dir: Option<&'a Path>,
    pub spread: &'a str,
    pub user: &'a str,
    pub mode: &'a str,
    pub body: usize,
    pub window: u32,
    /// Run the client on this CPU only (see [`two_cpus`]).
    pub cpu: Option<usize>,
}

/// The first two CPUs this process may run on, if it has two: the library
/// section runs the daemon on the first and the client on the second, so
/// that neither run depends on where the scheduler happens to put them (on a
/// small VM, the two sharing a CPU halves the rate).
pub fn two_cpus() -> Option<(usize, usize)> {
    // SAFETY: sched_getaffinity fills the zeroed set it is given.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads the set within its size.
    let mut cpus = (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) });
    Some((cpus.next()?, cpus.next()?))
}

/// Restrict process `pid` (0 = the caller) to `cpu`. Async-signal-safe (one
/// system call), so usable between fork and exec.
pub fn pin(pid: libc::pid_t, cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET stays within it
    // for cpu < CPU_SETSIZE (checked).
    unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return false;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// `name` on `PATH`, if installed.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Runs `cmd` to completion; `None` (the child killed by its PID) if it takes
/// longer than `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Option<ExitStatus> {
    let mut child = cmd.spawn().ok()?;
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(limit) {
        Ok(r) => r.ok(),
        Err(_) => {
            // SAFETY: signalling the child we started, still unreaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            None
        }
    };
    let _ = waiter.join();
    status
}

impl LibLoad<'_> {
    fn command(&self, n: u64, strace: Option<(&Path, &Path)>) -> Command {
        let mut cmd = match strace {
            Some((st, out)) => {
                let mut c = Command::new(st);
                c.arg("-f").arg("-c").arg("-o").arg(out).arg("--").arg(self.bin);
                c
            }
            None => Command::new(self.bin),
        };
        let (n, b, w) = (n.to_string(), self.body.to_string(), self.window.to_string());
        cmd.args(["-s", self.spread, "-u", self.user, "-m", &n, "-b", &b, "-w", &w, "-x", self.mode]);
        if let Some(l) = self.lib_dir {
            cmd.env("LD_LIBRARY_PATH", l);
        }
        if let Some(cpu) = self.cpu {
            use std::os::unix::process::CommandExt;
            // SAFETY: the hook makes one async-signal-safe system call.
            unsafe {
                cmd.pre_exec(move || {
                    pin(0, cpu);
                    Ok(())
                })
            };
        }
        cmd
    }

    /// One run of `n` messages (`strace`: traced, its table written to the
    /// given file). `dir` holds the run's output.
    pub fn run(&self, n: u64, dir: &Path, strace: Option<(&Path, &Path)>, limit: Duration) -> Result<LibRun, String> {
        let printed = dir.join(format!("splibbench-{}-{}-{n}.out", self.user, self.mode));
        let file = std::fs::File::create(&printed).map_err(|e| format!("{}: {e}", printed.display()))?;
        let mut cmd = self.command(n, strace);
        cmd.stdin(Stdio::null()).stdout(file).stderr(Stdio::null());
        let status = run_bounded(cmd, limit);
        let out = std::fs::read_to_string(&printed).unwrap_or_default();
        if !status.is_some_and(|s| s.success()) {
            return Err(format!("{} -x {} ({status:?}): {}", self.bin.display(), self.mode, out.trim()));
        }
        parse_run_line(&out).ok_or_else(|| format!("{} -x {} printed: {}", self.bin.display(), self.mode, out.trim()))
    }

    /// System calls per message: each call's count in a traced run of 3000
    /// messages less that of a run of 1000, over 2000 (so connecting and
    /// joining do not count). Calls below 0.005 per message are left out.
    pub fn syscalls_per_message(&self, strace: &Path, dir: &Path) -> Result<BTreeMap<String, f64>, String> {
        let mut tables = Vec::new();
        for n in [1000u64, 3000] {
            let table = dir.join(format!("strace-{}-{}-{n}.txt", self.user, self.mode));
            self.run(n, dir, Some((strace, &table)), Duration::from_secs(120))?;
            let text = std::fs::read_to_string(&table).map_err(|e| format!("{}: {e}", table.display()))?;
            tables.push(parse_strace_c(&text));
        }
        let (small, big) = (&tables[0], &tables[1]);
        Ok(big
            .iter()
            .map(|(k, &v)| (k.clone(), (v as f64 - *small.get(k).unwrap_or(&0) as f64) / 2000.0))
            .filter(|(_, v)| v.abs() >= 0.005)
            .collect())
    }
}

/// `splibbench: <mode> <n> x <b> B: <s> s, <rate> msg/s, <cpu> us CPU/msg`.
pub fn parse_run_line(out: &str) -> Option<LibRun> {
    let line = out.lines().find(|l| l.starts_with("splibbench: ") && l.contains(" msg/s"))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let at = |word: &str| f.iter().position(|w| w.trim_end_matches(',') == word).and_then(|i| i.checked_sub(1));
    let msgs_per_sec = f.get(at("msg/s")?)?.parse().ok()?;
    let cpu_us = f.get(at("us")?)?.parse().ok()?;
    Some(LibRun { msgs_per_sec, cpu_us })
}

/// An `strace -c` table: calls per system call name (the total left out).
pub fn parse_strace_c(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "% time  seconds  usecs/call  calls  [errors]  syscall"
        if f.len() < 5 || f[0].parse::<f64>().is_err() {
            continue;
        }
        let (Some(name), Ok(calls)) = (f.last(), f[3].parse::<u64>()) else { continue };
        if *name != "total" {
            out.insert(name.to_string(), calls);
        }
    }
    out
}

/// Sum of a per-message table.
pub fn total(m: &BTreeMap<String, f64>) -> f64 {
    m.values().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_tables_and_run_lines_parse() {
        let t = "% time     seconds  usecs/call     calls    errors syscall\n\
                 ------ ----------- ----------- --------- --------- ----------------\n \
                 53.48    0.726141          12     60008         1 recvfrom\n \
                 27.38    0.371790           9     40003           futex\n\
                 ------ ----------- ----------- --------- --------- ----------------\n\
                 100.00    1.357822           9    120035        12 total\n";
        let m = parse_strace_c(t);
        assert_eq!(m.get("recvfrom"), Some(&60008));
        assert_eq!(m.get("futex"), Some(&40003));
        assert_eq!(m.len(), 2);
        let r = parse_run_line("splibbench: sp 200000 x 100 B: 0.8090 s, 247215 msg/s, 4.020 us CPU/msg\n").unwrap();
        assert_eq!((r.msgs_per_sec, r.cpu_us), (247215.0, 4.02));
        assert!(parse_run_line("splibbench: connect failed: -2").is_none());
    }
}
