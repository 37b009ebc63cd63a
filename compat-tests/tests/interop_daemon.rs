//! Interop: the original 5.0.1 example clients (`spuser`, `spflooder`, each
//! statically linked to the original library) against OUR daemon.
//!
//! Needs `SPREAD_REF_PREFIX` (an installed original 5.0.1: `bin/spuser`,
//! `bin/spflooder`); without it every test here prints why and passes.
//! `INTEROP_AGAINST_REFERENCE=1` points the same tests at the original daemon
//! (`$SPREAD_REF_PREFIX/sbin/spread`, ports +100), to check the tests
//! themselves. Our daemon: `$RSPREAD_SPREAD_BIN`, else `target/<profile>/spread`,
//! else `target/release/spread`.
//!
//! Ports: 25020-25043 (ours), 25120-25143 (original), each test taking the
//! first free pair of its own 6-port sub-range. Unix sockets /tmp/<port>.
//! Every child process is ours and is killed by PID; every wait is bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use spread_wire::handshake::{encode_auth_choice, encode_connect_request};

// ---------------------------------------------------------------- setup ----

fn ref_prefix() -> Option<PathBuf> {
    std::env::var_os("SPREAD_REF_PREFIX").filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn against_reference() -> bool {
    std::env::var_os("INTEROP_AGAINST_REFERENCE").map(|v| v == "1").unwrap_or(false)
}

fn our_daemon_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RSPREAD_SPREAD_BIN") {
        return PathBuf::from(p);
    }
    let mut cands = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/deps/<test> -> target/<profile>/spread
        if let Some(profile) = exe.parent().and_then(Path::parent) {
            cands.push(profile.join("spread"));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf();
    cands.push(root.join("target/release/spread"));
    for c in &cands {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "our `spread` daemon binary is missing (looked at {:?}); build it with \
         `cargo build --release -p spread-daemon` or set RSPREAD_SPREAD_BIN",
        cands
    );
}

/// What to run, or `None` (and a message) when the test must be skipped.
struct Setup {
    prefix: PathBuf,
    daemon: PathBuf,
    port_base: u16,
}

fn setup(test: &str) -> Option<Setup> {
    let Some(prefix) = ref_prefix() else {
        eprintln!("{test}: skipped: SPREAD_REF_PREFIX is not set (it must name an installed original Spread 5.0.1)");
        return None;
    };
    for tool in ["bin/spuser", "bin/spflooder"] {
        assert!(prefix.join(tool).is_file(), "{} is missing under SPREAD_REF_PREFIX", tool);
    }
    if against_reference() {
        Some(Setup { daemon: prefix.join("sbin/spread"), prefix, port_base: 25120 })
    } else {
        Some(Setup { daemon: our_daemon_binary(), prefix, port_base: 25020 })
    }
}

/// A child process killed by PID when dropped.
struct Proc {
    child: Child,
    what: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Wait for exit at most `limit`; kill and fail after that.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return st,
                Ok(None) => {}
                Err(e) => panic!("{}: wait: {e}", self.what),
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not exit within {limit:?}", self.what);
            }
            // Polling a child's exit status: std has no timed wait.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

struct Daemon {
    proc_: Proc,
    dir: PathBuf,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM first (the daemon then removes its Unix socket), SIGKILL
        // after 5 s.
        if let Ok(None) = self.proc_.child.try_wait() {
            // SAFETY: kill(2) on the PID of our own, not yet reaped child.
            unsafe {
                libc::kill(self.proc_.child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Ok(None) = self.proc_.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.proc_.child.kill();
                    break;
                }
                // Waiting for a child's exit: std has no timed wait.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = self.proc_.child.wait();
        // The original leaves its socket behind; the port is ours.
        let _ = std::fs::remove_file(format!("/tmp/{}", self.port));
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(self.dir.join("daemon.log")) {
                let tail: String =
                    log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                eprintln!("---- daemon log tail (port {}) ----\n{tail}", self.port);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Open and complete one session by hand (so the daemon is really serving),
/// then drop it.
fn probe_session(port: u16, n: u32) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(&encode_connect_request(false, 0, format!("prb{n}").as_bytes()))?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    let mut list = vec![0u8; b[0] as usize];
    s.read_exact(&mut list)?;
    s.write_all(&encode_auth_choice(&[b"NULL"]))?;
    s.read_exact(&mut b)?;
    if b[0] != 1 {
        return Err(std::io::Error::other(format!("rejected {}", b[0] as i8)));
    }
    Ok(())
}

/// True when nothing holds TCP `port` (bound without SO_REUSEADDR, so
/// TIME_WAIT counts) nor UDP `port`/`port + 1`.
fn ports_free(port: u16) -> bool {
    let tcp = compat_tests::net::tcp_bindable([0, 0, 0, 0], port, false);
    tcp && std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok()
        && std::net::UdpSocket::bind(("0.0.0.0", port + 1)).is_ok()
}

/// Start a daemon on the first free pair among `base`, `base + 2`, `base + 4`.
fn start_daemon(s: &Setup, base: u16) -> Daemon {
    let port = (0..3u16)
        .map(|k| base + 2 * k)
        .find(|&p| ports_free(p))
        .unwrap_or_else(|| panic!("no free port pair in {base}..{}", base + 5));
    start_daemon_on(s, port)
}

fn start_daemon_on(s: &Setup, port: u16) -> Daemon {
    let dir = std::env::temp_dir().join(format!("interop-{}-{port}", std::process::id()));
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("temp dir");
    let conf = dir.join("spread.conf");
    std::fs::write(
        &conf,
        format!(
            "Spread_Segment 127.0.0.255:{port} {{\n\tlocalhost 127.0.0.1\n}}\n\
             DaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = {}\n",
            run.display()
        ),
    )
    .expect("write conf");
    let log = std::fs::File::create(dir.join("daemon.log")).expect("log");
    let child = Command::new(&s.daemon)
        .args(["-n", "localhost", "-c"])
        .arg(&conf)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", s.daemon.display()));
    let mut d = Daemon { proc_: Proc { child, what: format!("daemon on {port}") }, dir, port };
    let deadline = Instant::now() + Duration::from_secs(15);
    for n in 0..1000u32 {
        if let Ok(Some(st)) = d.proc_.child.try_wait() {
            let log = std::fs::read_to_string(d.dir.join("daemon.log")).unwrap_or_default();
            panic!("daemon exited at start ({st}):\n{log}");
        }
        if probe_session(port, n).is_ok() && Path::new(&format!("/tmp/{port}")).exists() {
            return d;
        }
        assert!(Instant::now() < deadline, "daemon on port {port} not ready in 15 s");
        // Retry pause between refused connects (not synchronisation).
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("daemon on port {port} never became ready");
}

// ------------------------------------------------- interactive client ----

/// A client program whose stdout (and stderr) we watch line by line.
struct Interactive {
    proc_: Proc,
    stdin: Option<ChildStdin>,
    out: Arc<(Mutex<String>, Condvar)>,
    /// Everything before this offset has been matched already.
    cursor: usize,
}

impl Interactive {
    fn spawn(bin: &Path, args: &[&str], what: &str) -> Interactive {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let out = Arc::new((Mutex::new(String::new()), Condvar::new()));
        for mut r in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")) as Box<dyn Read + Send>,
        ] {
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let (m, cv) = &*out;
                            m.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                            cv.notify_all();
                        }
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Interactive { proc_: Proc { child, what: what.to_string() }, stdin, out, cursor: 0 }
    }

    fn send(&mut self, text: &str) {
        let w = self.stdin.as_mut().expect("stdin open");
        w.write_all(text.as_bytes()).expect("write to client");
        w.flush().expect("flush");
    }

    /// Wait (at most `limit`) until `needle` appears after the cursor; move
    /// the cursor past it and return the text up to and including it.
    fn expect(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let (m, cv) = &*self.out;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(i) = g[self.cursor..].find(needle) {
                let end = self.cursor + i + needle.len();
                let seen = g[self.cursor..end].to_string();
                self.cursor = end;
                return seen;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "{}: {needle:?} not seen within {limit:?}; output after the last match:\n{}",
                    self.proc_.what,
                    &g[self.cursor..]
                );
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    fn all_output(&self) -> String {
        self.out.0.lock().unwrap().clone()
    }
}

const T: Duration = Duration::from_secs(10);

// ------------------------------------------------------------- tests ----

/// Two spuser sessions, one over the Unix socket and one over TCP: join,
/// membership changes, a SAFE message from one to the other (and back to
/// itself), leave, quit.
#[test]
fn spuser_join_send_receive_leave() {
    let Some(s) = setup("spuser_join_send_receive_leave") else {
        return;
    };
    let d = start_daemon(&s, s.port_base);
    let port = d.port;
    let spuser = s.prefix.join("bin/spuser");
    let unix_name = port.to_string();
    let tcp_name = format!("{port}@127.0.0.1");

    let mut a = Interactive::spawn(&spuser, &["-u", "ia", "-s", &unix_name], "spuser ia (unix)");
    a.expect(&format!("User: connected to {unix_name} with private group #ia#localhost"), T);
    a.expect("User> ", T);

    a.send("j igrp\n");
    let m = a.expect("Due to the JOIN of #ia#localhost", T);
    assert!(m.contains("Received REGULAR membership for group igrp with 1 members, where I am member 0:"), "{m}");
    assert!(m.contains("\t#ia#localhost\n"), "{m}");
    assert!(m.contains("grp id is "), "{m}");

    let mut b = Interactive::spawn(&spuser, &["-u", "ib", "-s", &tcp_name], "spuser ib (tcp)");
    b.expect(&format!("User: connected to {tcp_name} with private group #ib#localhost"), T);
    b.expect("User> ", T);
    b.send("j igrp\n");
    let mb = b.expect("Due to the JOIN of #ib#localhost", T);
    assert!(mb.contains("Received REGULAR membership for group igrp with 2 members, where I am member 1:"), "{mb}");
    assert!(mb.contains("\t#ia#localhost\n\t#ib#localhost\n"), "{mb}");
    let ma = a.expect("Due to the JOIN of #ib#localhost", T);
    assert!(ma.contains("Received REGULAR membership for group igrp with 2 members, where I am member 0:"), "{ma}");
    // Both see the same group id.
    let gid = |t: &str| t.lines().find(|l| l.starts_with("grp id is ")).map(str::to_string);
    assert_eq!(gid(&ma), gid(&mb), "group ids differ:\n{ma}\n--\n{mb}");

    // A sends one SAFE message (spuser: mess_type 1, body = the line with its
    // newline); both members receive it.
    a.send("s igrp\nhello from ia\n");
    let want =
        "received SAFE message from #ia#localhost, of type 1, (endian 0) to 1 groups \n(14 bytes): hello from ia\n";
    b.expect(want, T);
    a.expect(want, T);

    // Unicast to a private group, multigroup form.
    b.send("s #ia#localhost igrp\nto ia\n");
    let want2 = "received SAFE message from #ib#localhost, of type 1, (endian 0) to 2 groups \n(6 bytes): to ia\n";
    a.expect(want2, T);
    b.expect(want2, T);

    // B leaves: B gets the self-leave, A the LEAVE membership.
    b.send("l igrp\n");
    b.expect("received membership message that left group igrp", T);
    let ml = a.expect("Due to the LEAVE of #ib#localhost", T);
    assert!(ml.contains("Received REGULAR membership for group igrp with 1 members, where I am member 0:"), "{ml}");

    // B quits (SP_disconnect); A is no longer in a group with B, so it sees nothing.
    b.send("q\n");
    b.expect("Bye.", T);
    assert!(b.proc_.wait_exit(T).success());

    // A sends to the group it is alone in, then quits.
    a.send("s igrp\nalone\n");
    a.expect("received SAFE message from #ia#localhost, of type 1, (endian 0) to 1 groups \n(6 bytes): alone\n", T);
    a.send("q\n");
    a.expect("Bye.", T);
    assert!(a.proc_.wait_exit(T).success());
    let all = a.all_output();
    assert!(!all.contains("SP_error"), "spuser ia reported an error:\n{all}");
    assert!(!b.all_output().contains("SP_error"), "spuser ib reported an error:\n{}", b.all_output());
}

/// A second spuser that joins a group with a member that disconnects without
/// leaving: the survivor sees CAUSED_BY_DISCONNECT; a duplicate name is refused.
#[test]
fn spuser_disconnect_and_duplicate_name() {
    let Some(s) = setup("spuser_disconnect_and_duplicate_name") else {
        return;
    };
    let d = start_daemon(&s, s.port_base + 6);
    let port = d.port;
    let spuser = s.prefix.join("bin/spuser");
    let name = port.to_string();

    let mut a = Interactive::spawn(&spuser, &["-u", "da", "-s", &name], "spuser da");
    a.expect("with private group #da#localhost", T);
    a.expect("User> ", T);
    a.send("j dgrp\n");
    a.expect("Due to the JOIN of #da#localhost", T);

    let mut b = Interactive::spawn(&spuser, &["-u", "db", "-s", &name], "spuser db");
    b.expect("with private group #db#localhost", T);
    b.expect("User> ", T);
    b.send("j dgrp\n");
    b.expect("Due to the JOIN of #db#localhost", T);
    a.expect("Due to the JOIN of #db#localhost", T);

    // Same private name again: the original library prints SP_error(-6).
    let mut dup = Interactive::spawn(&spuser, &["-u", "db", "-s", &name], "spuser db (duplicate)");
    dup.expect("SP_error: (-6) Connection rejected, name not unique.", T);
    let st = dup.proc_.wait_exit(T);
    assert!(!st.success() || dup.all_output().contains("Bye."), "duplicate spuser: {st}");

    // Kill B's process: the daemon sees the connection drop.
    let _ = b.proc_.child.kill();
    let _ = b.proc_.child.wait();
    let m = a.expect("Due to the DISCONNECT of #db#localhost", T);
    assert!(m.contains("Received REGULAR membership for group dgrp with 1 members, where I am member 0:"), "{m}");
    a.send("q\n");
    a.expect("Bye.", T);
    assert!(a.proc_.wait_exit(T).success());
}

/// spflooder in its default mode (sender also receives its own messages),
/// and two spflooders in `-n 2` mode flooding each other.
#[test]
fn spflooder_runs() {
    let Some(s) = setup("spflooder_runs") else { return };
    let d = start_daemon(&s, s.port_base + 12);
    let port = d.port;
    let flooder = s.prefix.join("bin/spflooder");
    let name = port.to_string();

    // Default mode over the Unix socket.
    let out = Command::new(&flooder)
        .args(["-u", "fl1", "-s", &name, "-m", "5000", "-b", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spflooder");
    let mut p = Proc { child: out, what: "spflooder fl1".into() };
    let st = p.wait_exit(Duration::from_secs(60));
    let mut text = String::new();
    p.child.stdout.take().expect("stdout").read_to_string(&mut text).expect("read");
    assert!(st.success(), "spflooder exited with {st}:\n{text}");
    assert!(text.contains("flooder: starting  multicast of 5000 messages, 1000 bytes each."), "{text}");
    assert!(text.contains("flooder: completed   5000 messages of 1000 bytes"), "{text}");
    assert!(text.contains("flooder: completed multicast of 5000 messages, 1000 bytes each."), "{text}");
    assert!(!text.contains("SP_error"), "{text}");

    // Two members flooding each other (FIFO), over TCP; each waits for the
    // 2-member membership first, then sends and reads the other's messages.
    let tcp = format!("{port}@127.0.0.1");
    let mut procs = Vec::new();
    for u in ["fl2", "fl3"] {
        let c = Command::new(&flooder)
            .args(["-u", u, "-s", &tcp, "-n", "2", "-m", "3000", "-b", "500"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spflooder");
        procs.push(Proc { child: c, what: format!("spflooder {u}") });
    }
    for p in &mut procs {
        let st = p.wait_exit(Duration::from_secs(60));
        let mut text = String::new();
        p.child.stdout.take().expect("stdout").read_to_string(&mut text).expect("read");
        assert!(st.success(), "{} exited with {st}:\n{text}", p.what);
        assert!(text.contains("Received REGULAR membership for group flooder with 2 members"), "{text}");
        assert!(text.contains("flooder: completed multicast of 3000 messages, 500 bytes each."), "{text}");
        assert!(!text.contains("SP_error"), "{text}");
    }
}

/// spflooder `-wo` (non-member writer, RELIABLE, no flow control) to a
/// spflooder `-ro` reader; a spuser observer confirms the reader's join before
/// the writer starts, then leaves.
#[test]
fn spflooder_writer_to_reader() {
    let Some(s) = setup("spflooder_writer_to_reader") else {
        return;
    };
    let d = start_daemon(&s, s.port_base + 18);
    let name = d.port.to_string();
    let flooder = s.prefix.join("bin/spflooder");
    let spuser = s.prefix.join("bin/spuser");

    let mut obs = Interactive::spawn(&spuser, &["-u", "obs", "-s", &name], "spuser obs");
    obs.expect("User> ", T);
    obs.send("j flooder\n");
    obs.expect("Due to the JOIN of #obs#localhost", T);

    // Without `-n` spflooder connects with group_membership = 0: the reader
    // counts data messages only.
    let n = 10_000;
    let reader = Command::new(&flooder)
        .args(["-u", "rd", "-s", &name, "-ro", "-m", &n.to_string(), "-b", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spflooder -ro");
    let mut reader = Proc { child: reader, what: "spflooder -ro".into() };
    let m = obs.expect("Due to the JOIN of #rd#localhost", T);
    assert!(m.contains("with 2 members"), "{m}");
    obs.send("l flooder\n");
    obs.expect("received membership message that left group flooder", T);

    let tcp = format!("{}@127.0.0.1", d.port);
    let writer = Command::new(&flooder)
        .args(["-u", "wr", "-s", &tcp, "-wo", "-m", &n.to_string(), "-b", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spflooder -wo");
    let mut writer = Proc { child: writer, what: "spflooder -wo".into() };
    for (p, want) in [
        (&mut writer, format!("flooder: completed multicast of {n} messages, 1000 bytes each.")),
        (&mut reader, format!("flooder: completed multicast of {n} messages, 1000 bytes each.")),
    ] {
        let st = p.wait_exit(Duration::from_secs(60));
        let mut text = String::new();
        p.child.stdout.take().expect("stdout").read_to_string(&mut text).expect("read");
        assert!(st.success(), "{} exited with {st}:\n{text}", p.what);
        assert!(text.contains(&want), "{}:\n{text}", p.what);
        assert!(!text.contains("SP_error"), "{}:\n{text}", p.what);
    }
    obs.send("q\n");
    obs.expect("Bye.", T);
    assert!(obs.proc_.wait_exit(T).success());
}
