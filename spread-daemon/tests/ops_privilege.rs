//! The privilege drop when the daemon starts as root (chroot to RuntimeDir,
//! setgroups/setgid/setuid to DaemonGroup/DaemonUser) and its failure modes.
//! Ports 27230–27239. Tests that need root or `nobody`/`nogroup` skip with a
//! message when those are missing.

mod daemon_util;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use daemon_util::{connect_tcp, connect_unix, IO_TIMEOUT};
use spread_daemon::privilege::{is_root, lookup_group, lookup_user};

struct Run {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    log: mpsc::Receiver<String>,
}

impl Run {
    fn start(dir: &Path, port: u16, as_ids: Option<(u32, u32)>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spread"));
        cmd.args(["-n", "d1", "-c", "spread.conf", "-l", "y"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((u, g)) = as_ids {
            cmd.uid(u).gid(g);
        }
        let mut child = cmd.spawn().expect("spawn spread");
        let (tx, rx) = mpsc::channel();
        for r in
            [Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stdout.take().unwrap())]
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(l) = line else { break };
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        Run { child: Some(child), port, dir: dir.to_path_buf(), log: rx }
    }

    /// Lines logged until one contains `pat` (bounded); panics otherwise.
    fn wait_log(&self, pat: &str) -> Vec<String> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match self.log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) => {
                    let hit = l.contains(pat);
                    seen.push(l);
                    if hit {
                        return seen;
                    }
                }
                Err(e) => panic!("daemon never logged {pat:?} ({e}); it logged {seen:?}"),
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn wait(&mut self, sig: Option<i32>) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = c.id() as i32;
        if let Some(s) = sig {
            // SAFETY: kill(2) on the pid of the child this test started.
            unsafe { libc::kill(pid, s) };
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait());
        });
        match rx.recv_timeout(IO_TIMEOUT) {
            Ok(st) => st.unwrap(),
            Err(_) => {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("daemon did not exit");
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.wait(Some(libc::SIGTERM));
        }
        let _ = std::fs::remove_file(format!("/tmp/{}", self.port));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn setup(port: u16, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rspread-h10-priv-{port}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = format!(
        "Spread_Segment 127.0.0.255:{port} {{\n\td1\t127.0.0.1\n}}\nDebugFlags = {{ PRINT EXIT CONFIGURATION SECURITY }}\n{extra}"
    );
    std::fs::write(dir.join("spread.conf"), conf.replace("@DIR@", &dir.join("run").display().to_string())).unwrap();
    dir
}

fn nobody() -> Option<(u32, u32)> {
    if !is_root() {
        eprintln!("not running as root; skipping");
        return None;
    }
    match (lookup_user("nobody"), lookup_group("nogroup")) {
        (Some(u), Some(g)) => Some((u, g)),
        _ => {
            eprintln!("user nobody or group nogroup missing; skipping");
            None
        }
    }
}

fn status_ids(pid: i32, key: &str) -> Vec<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in {s}"));
    line[key.len()..].split_whitespace().map(|v| v.parse().unwrap()).collect()
}

#[test]
fn root_drops_to_daemon_user_and_chroots() {
    let Some((uid, gid)) = nobody() else { return };
    let port = 27230;
    let dir = setup(port, "DaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = @DIR@\n");
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    // The session log is created inside the runtime directory by the new user.
    std::os::unix::fs::chown(&run_dir, Some(uid), Some(gid)).unwrap();
    let mut d = Run::start(&dir, port, None);
    let seen = d.wait_log("serving clients");
    assert!(seen.iter().any(|l| l == "Spread is running as root so check file locations"), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.starts_with("Spread: SECURITY RISK! running as root") && l.ends_with("directory: /tmp")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|l| l == "Spread: setugid and chroot successeful"), "{seen:?}");
    let pid = d.pid();
    assert_eq!(status_ids(pid, "Uid:"), vec![uid; 4]);
    assert_eq!(status_ids(pid, "Gid:"), vec![gid; 4]);
    assert_eq!(status_ids(pid, "Groups:"), vec![gid]);
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, run_dir.canonicalize().unwrap());

    // Still serving, over TCP and the Unix socket (now owned by the new user).
    let mut a = connect_tcp(port, "ta", false);
    let mut b = connect_unix(port, "ub", false);
    let pg = b.pg.clone();
    a.mcast(0x4, &[&pg], 3, b"hello");
    let m = b.recv();
    assert_eq!(m.body, b"hello");
    use std::os::unix::fs::MetadataExt;
    let sock = std::fs::metadata(format!("/tmp/{port}")).unwrap();
    assert_eq!((sock.uid(), sock.gid()), (uid, gid));
    let log = std::fs::read_to_string(run_dir.join("d1")).unwrap();
    assert!(log.starts_with("B "), "{log}");
    assert!(log.contains(" ta ") && log.contains(" ub "), "{log}");
    drop((a, b));

    // A clean stop removes /tmp/<port> although it lies outside the new root.
    let st = d.wait(Some(libc::SIGTERM));
    assert!(st.success(), "{st:?}");
    d.wait_log("Spread daemon exiting normally!");
    assert!(!Path::new(&format!("/tmp/{port}")).exists());
}

#[test]
fn explicit_unknown_user_is_fatal() {
    if !is_root() {
        eprintln!("not running as root; skipping");
        return;
    }
    let port = 27231;
    let dir = setup(port, "DaemonUser = no-such-user-h10\nRuntimeDir = @DIR@\n");
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let mut d = Run::start(&dir, port, None);
    let seen = d.wait_log("Exit caused by Alarm!");
    assert!(
        seen.iter().any(|l| l
            == "Spread: FAILED privilege drop to user/group 'no-such-user-h10/spread' (defined in spread.conf or spread_params.h)"),
        "{seen:?}"
    );
    let st = d.wait(None);
    assert!(!st.success());
    assert!(!seen.iter().any(|l| l.contains("serving clients")));
    assert!(!Path::new(&format!("/tmp/{port}")).exists(), "socket removed before the fatal exit");
}

#[test]
fn explicit_missing_runtime_dir_is_fatal() {
    let Some(_) = nobody() else { return };
    let port = 27232;
    let dir = setup(port, "DaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = @DIR@\n");
    // No run/ directory.
    let mut d = Run::start(&dir, port, None);
    let seen = d.wait_log("Exit caused by Alarm!");
    let want = format!("Spread: FAILED chroot to '{}'", dir.join("run").display());
    assert!(seen.contains(&want), "{seen:?}");
    assert!(!d.wait(None).success());
}

#[test]
fn defaults_that_do_not_exist_only_warn() {
    if !is_root() {
        eprintln!("not running as root; skipping");
        return;
    }
    if lookup_user("spread").is_some() && lookup_group("spread").is_some() {
        eprintln!("this machine has a spread user and group; skipping");
        return;
    }
    let port = 27233;
    let dir = setup(port, "");
    let d = Run::start(&dir, port, None);
    let seen = d.wait_log("serving clients");
    assert!(
        seen.iter().any(|l| l.starts_with("Spread: FAILED privilege drop to user/group 'spread/spread'")
            && l.contains("keeps running as root")),
        "{seen:?}"
    );
    assert_eq!(status_ids(d.pid(), "Uid:"), vec![0; 4]);
    let c = connect_tcp(port, "x", false);
    assert_eq!(c.pg, "#x#d1");
}

#[test]
fn not_root_does_not_chroot() {
    let Some((uid, gid)) = nobody() else { return };
    let port = 27234;
    let dir = setup(port, "DaemonUser = nobody\nDaemonGroup = nogroup\n");
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    let d = Run::start(&dir, port, Some((uid, gid)));
    let seen = d.wait_log("serving clients");
    assert!(seen.iter().any(|l| l == "Spread: not running as root, won't chroot"), "{seen:?}");
    assert!(!seen.iter().any(|l| l.contains("running as root so check")), "{seen:?}");
    let c = connect_unix(port, "n", false);
    assert_eq!(c.pg, "#n#d1");
    assert!(dir.join("d1").exists(), "session log in the working directory");
}
