//! `spread`: load the configuration, find this daemon in it, and run the
//! engine under the mio driver until SIGINT/SIGTERM.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use spread_daemon::config::{self, Config};
use spread_daemon::driver::{Driver, DriverConfig, Exit, RingNet, UdpConfig};
use spread_daemon::engine::auth::parse_access_ip;
use spread_daemon::engine::monitor::{Monitor, MonitorConfig};
use spread_daemon::engine::ring::Ring;
use spread_daemon::engine::{AuthConfig, AuthMethod, Engine, EngineConfig, Ordering};
use spread_daemon::{cli, logging, privilege, sesslog};

fn auth_config(c: &Config) -> AuthConfig {
    let mut enabled = Vec::new();
    let mut required = Vec::new();
    let by_name = |n: &str| AuthMethod::from_name(n.as_bytes());
    for m in AuthMethod::ALL {
        let on = (m == AuthMethod::Null && c.auth.null_enabled)
            || c.auth.allowed.iter().any(|n| by_name(n) == Some(m))
            || c.auth.required.iter().any(|n| by_name(n) == Some(m));
        if on {
            enabled.push(m);
        }
        if c.auth.required.iter().any(|n| by_name(n) == Some(m)) {
            required.push(m);
        }
    }
    let mut ip_rules = None;
    if enabled.contains(&AuthMethod::Ip) {
        for p in ["spread.access_ip", "./spread.access_ip", "/etc/spread.access_ip"] {
            if let Ok(t) = std::fs::read_to_string(p) {
                ip_rules = Some(parse_access_ip(&t));
                break;
            }
        }
        if ip_rules.is_none() {
            eprintln!("IP access control file not found: no IP-authenticated session will be allowed");
        }
    }
    let pword = if enabled.contains(&AuthMethod::Pword) { pword_verifier() } else { None };
    AuthConfig { enabled, required, ip_rules, pword }
}

/// `crypt(3)`, looked up at run time so the daemon does not need libcrypt to
/// link (PWORD is optional; the stock 5.0.1 daemon does not even build it).
type CryptFn = unsafe extern "C" fn(*const libc::c_char, *const libc::c_char) -> *mut libc::c_char;

fn load_crypt() -> Option<CryptFn> {
    for lib in [c"libcrypt.so.1", c"libcrypt.so"] {
        // SAFETY: dlopen/dlsym with NUL-terminated names; the handle is kept
        // open for the life of the process.
        unsafe {
            let h = libc::dlopen(lib.as_ptr(), libc::RTLD_NOW);
            if h.is_null() {
                continue;
            }
            let f = libc::dlsym(h, c"crypt".as_ptr());
            if !f.is_null() {
                return Some(std::mem::transmute::<*mut libc::c_void, CryptFn>(f));
            }
        }
    }
    None
}

/// The PWORD check against `spread.access_pword` (`user:cryptpw` lines, `#`
/// comments; searched like the original: cwd, `./`, `/etc`): DES `crypt` of
/// the clear password with the stored salt must match the stored 13 bytes.
fn pword_verifier() -> Option<spread_daemon::engine::auth::PwordCheck> {
    let text = ["spread.access_pword", "./spread.access_pword", "/etc/spread.access_pword"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok());
    let Some(text) = text else {
        eprintln!("spread.access_pword not found: every PWORD session will be denied");
        return None;
    };
    let mut users: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((u, p)) = line.split_once(':') else { break };
        let u: Vec<u8> = u.split_whitespace().next().unwrap_or("").bytes().take(32).collect();
        let p: Vec<u8> = p.split_whitespace().next().unwrap_or("").bytes().take(13).collect();
        if !u.is_empty() && p.len() >= 2 {
            users.insert(0, (u, p));
        }
    }
    let Some(crypt) = load_crypt() else {
        eprintln!("crypt(3) not available: every PWORD session will be denied");
        return None;
    };
    Some(std::sync::Arc::new(move |user: &[u8], pw: &[u8]| {
        let Some((_, stored)) = users.iter().find(|(u, _)| u.as_slice() == user) else { return false };
        let (Ok(key), Ok(salt)) = (std::ffi::CString::new(pw), std::ffi::CString::new(&stored[..2])) else {
            return false;
        };
        // SAFETY: crypt reads two NUL-terminated strings and returns a static
        // NUL-terminated buffer or NULL; the engine calls this from one thread.
        let out = unsafe { crypt(key.as_ptr(), salt.as_ptr()) };
        if out.is_null() {
            return false;
        }
        // SAFETY: non-NULL result of crypt is a NUL-terminated string.
        let got = unsafe { std::ffi::CStr::from_ptr(out) }.to_bytes();
        got.len() >= 13 && stored.len() >= 13 && got[..13] == stored[..13]
    }))
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let opts = match cli::parse(&argv) {
        Ok(o) => o,
        Err(msg) => cli::exit_fatal(&msg),
    };
    if let Some(file) = &opts.convert_config {
        return match config::convert_file(std::path::Path::new(file)) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let conf_path = cli::find_config_file(&opts);
    let mut conf = match conf_path.as_ref() {
        Some(p) => match config::load(p) {
            Ok(c) => c,
            Err(e) => cli::exit_fatal(&e.to_string()),
        },
        None if opts.config_given => {
            cli::exit_fatal(&format!("Conf_load_conf_file: cannot open configuration file {}", opts.config_file))
        }
        None => config::default_config(),
    };
    let _log_guard = match logging::init(&conf) {
        Ok(g) => g,
        Err(e) => cli::exit_fatal(&e),
    };
    logging::log_config_loaded(&conf);
    let me = match conf.find_me(opts.name.as_deref()) {
        Ok(m) => m,
        Err(e) => cli::exit_fatal(&e.to_string()),
    };
    logging::log_me(&me);
    conf.apply_scope_ids(&me);
    let port = me.daemon.port();
    let mut tcp: Vec<SocketAddr> = Vec::new();
    for i in &me.daemon.interfaces {
        if i.kinds.is_any() {
            let any = match i.addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            tcp.push(SocketAddr::new(any, port));
        } else if i.kinds.is_client() {
            tcp.push(SocketAddr::new(i.addr.ip(), port));
        }
    }
    tcp.dedup();
    let memb_time = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i32).unwrap_or(1);
    let mut ecfg = EngineConfig::from_config(&conf, me.index, memb_time);
    ecfg.auth = auth_config(&conf);
    ecfg.rng_seed = (memb_time as u64) ^ ((std::process::id() as u64) << 32);

    raise_fd_limit();
    if privilege::is_root() {
        tracing::info!(target: "spread::security", "Spread is running as root so check file locations");
        match privilege::check_socket_dir(spread_wire::consts::SP_UNIX_SOCKET) {
            Ok(None) => {}
            Ok(Some(w)) => tracing::warn!(target: "spread::print", "{w}"),
            Err(e) => cli::exit_fatal(&e),
        }
    }
    let dcfg = DriverConfig {
        tcp,
        unix_path: Some(PathBuf::from(spread_wire::consts::unix_socket_path(port))),
        // The original sets SO_REUSEADDR with AUTO only on listeners bound to
        // a specific address, and so cannot restart at once on the default
        // (any-address) listener while connections linger in TIME_WAIT; ours
        // reuses unless told OFF.
        no_port_reuse: conf.socket_port_reuse == config::PortReuse::Off,
        udp: UdpConfig::default(),
        metrics: conf.metrics_address,
    };
    let monitor = Monitor::new(MonitorConfig::from_config(&conf, me.index), std::time::Instant::now());
    let mut dcfg = dcfg;
    if conf.daemons.len() == 1 {
        // Alone in the configuration: a ring of one, and no membership round
        // to wait for at start-up. Only the data port is opened, for the
        // monitor's packets.
        let full = udp_config(&conf, &me);
        dcfg.udp = UdpConfig { data: full.data, status: full.status, ..UdpConfig::default() };
        let mut engine = Engine::new(ecfg);
        engine.set_monitor(monitor);
        logging::log_membership_alone(&conf, &me, memb_time);
        let reloader = conf_path.map(|p| reloader(p, opts.name.clone(), conf.clone(), me.index, true));
        serve(engine, dcfg, &conf, &me, &opts, memb_time, reloader)
    } else {
        dcfg.udp = udp_config(&conf, &me);
        let mut ring = Ring::new(&conf, me.index);
        if let Some(probe) = merge_probe_override() {
            ring.set_merge_probe(probe);
        }
        if let Some(quiet) = ms_override("SPREAD_EARLY_FORM_MS") {
            ring.set_early_form(quiet);
        }
        ring.start(std::time::Instant::now());
        let mut engine = Engine::with_ordering(ecfg, ring);
        engine.set_monitor(monitor);
        let reloader = conf_path.map(|p| reloader(p, opts.name.clone(), conf.clone(), me.index, false));
        serve(engine, dcfg, &conf, &me, &opts, memb_time, reloader)
    }
}

/// What the driver calls when a reload is due (SIGHUP, the monitor's RELOAD;
/// daemon spec §1.9): read `path` again on top of the configuration in force,
/// find this daemon in it (by `-n` name or address, as at start-up), and
/// check that it can be taken live (`config::check_reload`). A file that
/// cannot be read or parsed, or that the check refuses, changes nothing.
/// `alone`: the daemon was started as the only one of its file (no ring).
fn reloader(
    path: PathBuf,
    name: Option<String>,
    mut current: Config,
    mut current_me: usize,
    alone: bool,
) -> spread_daemon::driver::Reloader {
    Box::new(move || {
        tracing::info!(target: "spread::config", print = true,
            "Conf_reload_initiate: re-reading {}", path.display());
        let mut new = config::load_reload(&path, &current).map_err(|e| e.to_string())?;
        let me = new.find_me(name.as_deref()).map_err(|e| e.to_string())?;
        new.apply_scope_ids(&me);
        let ok = config::check_reload(&current, current_me, &new, me.index, alone)?;
        logging::log_config_loaded(&new);
        if let Some(why) = &ok.why {
            tracing::info!(target: "spread::config", print = true,
                "Conf_reload_initiate: A daemon's parameters have changed! Partitioning down to singleton! ({why})");
        }
        for k in &ok.restart_only {
            tracing::warn!(target: "spread::config", print = true,
                "Conf_reload_initiate: {k} changed in the file; this takes effect only when the daemon is restarted");
        }
        if let Err(e) = logging::reconfigure(&new) {
            tracing::error!(target: "spread::config", print = true, "Conf_reload_initiate: {e}; logging goes on as before");
        }
        tracing::info!(target: "spread::config", print = true, event = "reload_accepted",
            daemons = new.daemons.len(), hash = new.hash(), singleton = ok.singleton,
            "Conf_reload_initiate: taking the new configuration: {} daemons, hash {}", new.daemons.len(), new.hash());
        current = new.clone();
        current_me = me.index;
        Ok(spread_daemon::engine::reload::Reload { config: new, me: me.index, singleton: ok.singleton })
    })
}

/// `SPREAD_MERGE_PROBE_MS`: the merge probe's interval in ms, 0 to turn
/// it off (merge only at the lookup, as the original); unset or not a
/// number: the default (docs/ring.md, "Fast merge").
fn merge_probe_override() -> Option<Option<std::time::Duration>> {
    ms_override("SPREAD_MERGE_PROBE_MS")
}

/// A duration in ms from the environment variable `var`: `Some(None)` for
/// 0 (off), `None` when unset or not a number (the default).
fn ms_override(var: &str) -> Option<Option<std::time::Duration>> {
    let v: u64 = std::env::var(var).ok()?.trim().parse().ok()?;
    Some((v > 0).then(|| std::time::Duration::from_millis(v.min(600_000))))
}

/// The daemon-to-daemon sockets of §2.1: receive on `P` and `P+1` (on each
/// daemon-type interface when the file lists interfaces, else on the
/// unspecified address), send from `A:0`, and join the multicast segment
/// addresses.
fn udp_config(conf: &Config, me: &config::MeInfo) -> UdpConfig {
    let d = &me.daemon;
    let port = d.port();
    let tport = d.token_port();
    let mut binds: Vec<IpAddr> = Vec::new();
    if d.explicit_interfaces {
        for i in &d.interfaces {
            if i.kinds.is_daemon() || i.kinds.is_any() {
                binds.push(i.addr.ip());
            }
        }
    }
    if binds.is_empty() {
        binds.push(match d.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
    }
    binds.dedup();
    let mut multicast = Vec::new();
    if let (Some(seg), IpAddr::V4(local)) = (conf.segments.get(d.seg_index), d.ip()) {
        for a in &seg.addrs {
            if let IpAddr::V4(g) = a.ip() {
                if g.is_multicast() {
                    multicast.push((g, local));
                }
            }
        }
    }
    // IPv6: on the segment address's interface (its scope id: `%if`, else
    // this daemon's own, `Config::apply_scope_ids`).
    let mut multicast_v6 = Vec::new();
    if let Some(seg) = conf.segments.get(d.seg_index) {
        for a in &seg.addrs {
            if let SocketAddr::V6(g) = a {
                if g.ip().is_multicast() {
                    let own = match d.addr {
                        SocketAddr::V6(m) => m.scope_id(),
                        SocketAddr::V4(_) => 0,
                    };
                    multicast_v6.push((*g.ip(), if g.scope_id() != 0 { g.scope_id() } else { own }));
                }
            }
        }
    }
    // With listed interfaces a daemon of a shared segment also receives on
    // the segment's addresses (those no interface bind covers).
    let mut data_reuse = Vec::new();
    if d.explicit_interfaces {
        if let Some(seg) = conf.segments.get(d.seg_index).filter(|s| s.daemons.len() > 1) {
            for a in &seg.addrs {
                if !binds.contains(&a.ip()) {
                    data_reuse.push(SocketAddr::new(a.ip(), port));
                }
            }
        }
    }
    UdpConfig {
        data: binds.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
        data_reuse,
        token: binds.iter().map(|ip| SocketAddr::new(*ip, tport)).collect(),
        send: Some(SocketAddr::new(d.ip(), 0)),
        multicast,
        multicast_v6,
        status: Some(SocketAddr::new(d.ip(), 0)),
    }
}

/// Bind, drop privileges, run until SIGINT/SIGTERM.
fn serve<O: Ordering + RingNet>(
    mut engine: Engine<O>,
    dcfg: DriverConfig,
    conf: &Config,
    me: &config::MeInfo,
    opts: &cli::Options,
    memb_time: i32,
    reloader: Option<spread_daemon::driver::Reloader>,
) -> ExitCode {
    if opts.log {
        // Writes nothing until open_session_log installs the file (after the
        // privilege drop); no session can connect before that.
        engine.set_session_observer(Some(sesslog::observer()));
    }
    let mut driver = match Driver::bind(engine, &dcfg) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("spread: cannot open client listeners: {e}");
            return ExitCode::from(1);
        }
    };
    // Removes /tmp/<port> even from inside the new root (the driver's own
    // unlink at exit cannot reach it there), and before a fatal exit.
    let socket_cleanup = dcfg.unix_path.as_deref().and_then(privilege::SocketCleanup::new);
    let chrooted = drop_privileges(conf, socket_cleanup.as_ref());
    if opts.log {
        open_session_log(conf, me, memb_time, socket_cleanup.as_ref());
    }
    tracing::info!(
        target: "spread::session",
        print = true,
        "spread: daemon {} (VID {}) serving clients on {:?} and {}",
        me.daemon.name,
        me.daemon.vid,
        driver.tcp_addrs(),
        dcfg.unix_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    );
    if let Some(r) = reloader {
        driver.set_reloader(r);
    }
    let r = driver.run();
    if chrooted {
        if let Some(c) = &socket_cleanup {
            c.remove();
        }
    }
    match r {
        Ok(Exit::Fatal(msg)) => fatal_after_bind(socket_cleanup.as_ref(), &msg),
        Ok(Exit::Signal) => {
            tracing::info!(target: "spread::print", print = true, "Spread daemon exiting normally!");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spread: {e}");
            ExitCode::from(1)
        }
    }
}

/// The privilege drop after the listeners are bound (see [`privilege`]).
/// Returns whether the process is now chrooted. Fatal failures end it.
fn drop_privileges(conf: &Config, cleanup: Option<&privilege::SocketCleanup>) -> bool {
    let handover = |ids| {
        if let Some(c) = cleanup {
            c.chown(ids);
        }
    };
    match privilege::drop_privileges(conf, handover) {
        Ok(privilege::Outcome::NotRoot) => {
            tracing::warn!(target: "spread::security", "Spread: not running as root, won't chroot");
            false
        }
        Ok(privilege::Outcome::Dropped(_)) => {
            tracing::info!(target: "spread::security", "Spread: setugid and chroot successeful");
            true
        }
        Ok(privilege::Outcome::KeptRoot(why)) => {
            tracing::warn!(
                target: "spread::security",
                print = true,
                "{why}; DaemonUser, DaemonGroup and RuntimeDir are not set in the configuration, so the daemon keeps running as root without chroot"
            );
            false
        }
        Err(e) => fatal_after_bind(cleanup, &e),
    }
}

/// A fatal error once the listeners exist: remove the Unix socket, then stop
/// like the original's fatal log.
fn fatal_after_bind(cleanup: Option<&privilege::SocketCleanup>, msg: &str) -> ! {
    if let Some(c) = cleanup {
        c.remove();
    }
    cli::exit_fatal(msg)
}

/// `-l y`: open the session log named after this daemon in the working
/// directory, write its `B` line and the `M` line of the ring of one.
fn open_session_log(conf: &Config, me: &config::MeInfo, memb_time: i32, cleanup: Option<&privilege::SocketCleanup>) {
    use std::os::unix::ffi::OsStrExt as _;
    let name = std::ffi::OsStr::from_bytes(&me.daemon.name_bytes);
    let log = match sesslog::SessLog::open(name) {
        Ok(l) => l,
        Err(e) => fatal_after_bind(
            cleanup,
            &format!(
                "Log_init: error ({}) could not open file {}",
                e.to_string().split(" (os error").next().unwrap_or_default(),
                me.daemon.name
            ),
        ),
    };
    sesslog::install(log);
    // This daemon is its own ring from the start.
    sesslog::log_membership(conf, &[me.daemon.vid], memb_time, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pword_verifier_checks_des_crypt() {
        let dir = std::env::temp_dir().join(format!("rspread-h5-pword-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // DES crypt("secret", "ab")
        std::fs::write(dir.join("spread.access_pword"), "# users\nalice:abNANd1rDfiNc\n").unwrap();
        std::env::set_current_dir(&dir).unwrap();
        let Some(check) = pword_verifier() else {
            assert!(load_crypt().is_none(), "file present, so only a missing crypt(3) may disable PWORD");
            return;
        };
        assert!(check(b"alice", b"secret"));
        assert!(!check(b"alice", b"wrong"));
        assert!(!check(b"bob", b"secret"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
