//! `spread`: load the configuration, find this daemon in it, and run the
//! engine under the mio driver until SIGINT/SIGTERM.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use spread_daemon::config::{self, Config};
use spread_daemon::{cli, logging};
use spread_daemon::driver::{Driver, DriverConfig};
use spread_daemon::engine::auth::parse_access_ip;
use spread_daemon::engine::{AuthConfig, AuthMethod, Engine, EngineConfig};

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
    // PWORD needs crypt(3) and spread.access_pword; without a verifier every
    // PWORD attempt is denied (the stock 5.0.1 daemon does not build it).
    AuthConfig { enabled, required, ip_rules, pword: None }
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
    let conf = match cli::find_config_file(&opts) {
        Some(p) => match config::load(&p) {
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
    for w in &conf.warnings {
        eprintln!("{w}");
    }
    let me = match conf.find_me(opts.name.as_deref()) {
        Ok(m) => m,
        Err(e) => cli::exit_fatal(&e.to_string()),
    };
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
    let mut ecfg = EngineConfig::single(me.daemon.name.as_bytes(), me.daemon.vid, memb_time);
    ecfg.daemons = conf.daemons.iter().map(|d| d.name.as_bytes().to_vec()).collect();
    ecfg.daemon_vids = conf.daemons.iter().map(|d| d.vid).collect();
    ecfg.max_session_messages = conf.max_session_messages.max(1) as usize;
    ecfg.auth = auth_config(&conf);
    ecfg.rng_seed = (memb_time as u64) ^ ((std::process::id() as u64) << 32);

    raise_fd_limit();
    let dcfg = DriverConfig { tcp, unix_path: Some(PathBuf::from(format!("/tmp/{port}"))) };
    let driver = match Driver::bind(Engine::new(ecfg), &dcfg) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("spread: cannot open client listeners: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        target: "spread::session",
        print = true,
        "spread: daemon {} (VID {}) serving clients on {:?} and {}",
        me.daemon.name,
        me.daemon.vid,
        driver.tcp_addrs(),
        dcfg.unix_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    );
    match driver.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spread: {e}");
            ExitCode::from(1)
        }
    }
}
