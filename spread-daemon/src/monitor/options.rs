//! The `spmonitor` command line (daemon spec §8.5), its start-up banner and
//! how it finds and reads the configuration.
//!
//! Options come in pairs, each option name matched exactly (`-p`, `-n`, `-t`,
//! `-c`; unlike the daemon, `-pX` is not `-p`), and every one takes one
//! argument. Numbers are read as C's `strtol(…, 0)` reads them (`0x…` is
//! hexadecimal, a leading `0` octal). A bad command line prints a reason and
//! the usage, then ends the process as the original's fatal log does
//! ([`crate::cli::exit_fatal`]).

use std::time::Duration;

use crate::cli;
use crate::config::{self, Config, MeInfo};

/// Default monitor port.
pub const DEFAULT_PORT: u16 = 6543;
/// Default seconds between status queries.
pub const DEFAULT_INTERVAL: u64 = 10;
/// Longest accepted `-n` value (MAX_PROC_NAME − 1).
pub const MAX_NAME_ARG: usize = 19;
/// Longest accepted `-c` value (the original keeps it in 80 bytes).
pub const MAX_CONFIG_ARG: usize = 79;

/// Parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `-p`: the monitor's own UDP port.
    pub port: u16,
    /// `-n`: which configured daemon the monitor runs as.
    pub name: Option<String>,
    /// `-t`: seconds between periodic status queries.
    pub interval: Duration,
    /// `-c`: the configuration file.
    pub config_file: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: DEFAULT_PORT,
            name: None,
            interval: Duration::from_secs(DEFAULT_INTERVAL),
            config_file: cli::DEFAULT_CONFIG_FILE.to_string(),
        }
    }
}

/// The usage text (`exe` is the program name as invoked).
pub fn usage(exe: &str) -> String {
    format!(
        "Usage: {exe}\n\
         \t[-p <port number>]    : specify port number\n\
         \t[-n <proc name>]      : force computer name\n\
         \t[-t <status timeout>] : specify number of seconds between status queries\n\
         \t[-c <file name>]      : specify configuration file\n\n"
    )
}

fn usage_error(exe: &str, why: &str, what: &str) -> String {
    format!("{why} {what}\n\n{}", usage(exe))
}

/// `strtol(s, &end, 0)` with the checks the original makes: the whole
/// string must be a number. `None` if it is not, or does not fit a `long`.
pub fn strtol0(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() {
        // "0" alone is decimal 0 (handled above); "0x" alone stops after the 0
        return None;
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// Parse the arguments after the program name. `Err` holds everything to
/// print before `Exit caused by Alarm!`.
pub fn parse(exe: &str, args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut rest = args;
    while rest.len() >= 2 {
        let (opt, val) = (rest[0].as_str(), rest[1].as_str());
        match opt {
            "-p" => match strtol0(val) {
                Some(v @ 0..=65535) => o.port = v as u16,
                _ => return Err(usage_error(exe, "Port number must be in range [0, 65536):", val)),
            },
            "-n" => {
                if val.len() > MAX_NAME_ARG {
                    return Err(usage_error(exe, "Proc name too long:", val));
                }
                o.name = Some(val.to_string());
            }
            "-t" => match strtol0(val) {
                Some(v) if v > 0 => o.interval = Duration::from_secs(v as u64),
                _ => return Err(usage_error(exe, "Status query timeout must be a positive integer:", val)),
            },
            "-c" => {
                if val.len() > MAX_CONFIG_ARG {
                    return Err(usage_error(exe, "Config file name too long:", val));
                }
                o.config_file = val.to_string();
            }
            _ => return Err(usage_error(exe, "Unknown parameter:", opt)),
        }
        rest = &rest[2..];
    }
    if let Some(last) = rest.first() {
        return Err(usage_error(exe, "Unknown or missing parameter:", last));
    }
    Ok(o)
}

/// The start-up banner: the original's frame and version line, our own words.
pub fn banner() -> String {
    let lines = [
        "rspread spmonitor".to_string(),
        "The monitor of the Spread Toolkit 5.0.1, rewritten in Rust as part of".to_string(),
        "rspread. It speaks the 5.0.1 monitor protocol.".to_string(),
        String::new(),
        format!("Version 5.00.01 (rspread {})", env!("CARGO_PKG_VERSION")),
    ];
    let mut s = String::from("/===========================================================================\\\n");
    for l in lines {
        s.push_str(&format!("| {l:<73} |\n"));
    }
    s.push_str("\\===========================================================================/\n");
    s
}

/// Find, read and parse the configuration and pick the daemon the monitor
/// runs as, with the original's messages for what goes wrong. With
/// `previous` (a reload), daemons without an explicit VirtualID keep the
/// VIDs of the previous load's table slots, and a file without
/// `AcceleratedRing` keeps the protocol the previous load had.
pub fn load_config(opts: &Options, previous: Option<&Config>) -> Result<(Config, MeInfo), String> {
    let copts = cli::Options {
        name: opts.name.clone(),
        config_file: opts.config_file.clone(),
        config_given: true,
        ..cli::Options::default()
    };
    let Some(path) = cli::find_config_file(&copts) else {
        return Err(format!("Conf_load_conf_file: error opening config file {} and alternates!\n", opts.config_file));
    };
    let mut conf = match previous {
        None => config::load(&path).map_err(|e| format!("{e}\n"))?,
        Some(prev) => {
            // The monitor never runs the daemon's start-up defaulting of the
            // protocol: what it hashed with is what a reload inherits.
            let mut prev = prev.clone();
            prev.accel_after_init = prev.accelerated_ring_in_use;
            config::load_reload(&path, &prev).map_err(|e| format!("{e}\n"))?
        }
    };
    let me = conf.find_me(opts.name.as_deref()).map_err(|e| me_error(&conf, opts.name.as_deref(), e))?;
    conf.apply_scope_ids(&me);
    Ok((conf, me))
}

/// The original's words for "which daemon am I" failures.
fn me_error(conf: &Config, name: Option<&str>, e: config::ConfigError) -> String {
    match name {
        Some(n) => match conf.index_by_name(n) {
            None => format!("Conf_load_conf_file: My proc {n} is not in configuration!\n"),
            Some(i) => format!(
                "Conf_load_conf_file: None of this machine's internet addresses match this daemon's address {}!\n",
                conf.daemons[i].ip()
            ),
        },
        None if !conf.daemons.is_empty() => {
            "Conf_load_conf_file: None of this machine's internet addresses match any daemon's address in configuration!\n"
                .to_string()
        }
        None => format!("{e}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_every_option() {
        assert_eq!(parse("spmonitor", &[]).unwrap(), Options::default());
        let o = parse("spmonitor", &args(&["-p", "28150", "-n", "da", "-t", "3", "-c", "x.conf"])).unwrap();
        assert_eq!(o.port, 28150);
        assert_eq!(o.name.as_deref(), Some("da"));
        assert_eq!(o.interval, Duration::from_secs(3));
        assert_eq!(o.config_file, "x.conf");
        assert_eq!(parse("m", &args(&["-p", "0x10"])).unwrap().port, 16);
        assert_eq!(parse("m", &args(&["-p", "010"])).unwrap().port, 8);
        assert_eq!(parse("m", &args(&["-p", "0"])).unwrap().port, 0);
    }

    #[test]
    fn errors_name_the_argument_and_show_the_usage() {
        let e = parse("/x/spmonitor", &args(&["-x", "1"])).unwrap_err();
        assert_eq!(e, format!("Unknown parameter: -x\n\n{}", usage("/x/spmonitor")));
        assert!(e.ends_with("\t[-c <file name>]      : specify configuration file\n\n"));
        let e = parse("m", &args(&["-pX", "1"])).unwrap_err();
        assert!(e.starts_with("Unknown parameter: -pX\n\n"), "{e}");
        let e = parse("m", &args(&["-p"])).unwrap_err();
        assert!(e.starts_with("Unknown or missing parameter: -p\n\nUsage: m\n"), "{e}");
        for bad in ["70000", "-1", "12a", "", "0x"] {
            let e = parse("m", &args(&["-p", bad])).unwrap_err();
            assert!(e.starts_with(&format!("Port number must be in range [0, 65536): {bad}\n")), "{e}");
        }
        for bad in ["0", "-5", "x"] {
            let e = parse("m", &args(&["-t", bad])).unwrap_err();
            assert!(e.starts_with("Status query timeout must be a positive integer:"), "{e}");
        }
        let e = parse("m", &args(&["-n", "abcdefghijklmnopqrst"])).unwrap_err();
        assert!(e.starts_with("Proc name too long: abcdefghijklmnopqrst\n"), "{e}");
        assert!(parse("m", &args(&["-n", "abcdefghijklmnopqrs"])).is_ok());
        let long = "c".repeat(80);
        let e = parse("m", &args(&["-c", &long])).unwrap_err();
        assert!(e.starts_with("Config file name too long:"), "{e}");
    }

    #[test]
    fn banner_keeps_the_frame() {
        let b = banner();
        assert!(b.lines().all(|l| l.len() == 77), "{b}");
        assert!(b.contains("| Version 5.00.01 "));
    }
}
