//! The `spread` command line, as the 5.0.1 daemon reads it (§8.5):
//! `-n <name>`, `-c <file>`, `-l y|n`. Every option is recognised by its first
//! two characters (`-nXYZ` is `-n`) and takes exactly one following argument;
//! anything else is a usage error.
//!
//! One long option of ours: `--convert-config <file>` prints the TOML form of
//! a configuration file (`docs/config.md`) and exits.
//!
//! On a usage error the original prints the usage through its fatal log path,
//! which ends the process with `abort()`; [`exit_fatal`] does the same so that
//! scripts see the same status (killed by SIGABRT, shell status 134).

use std::io::Write as _;
use std::path::PathBuf;

/// The usage text printed for a bad command line.
pub const USAGE: &str = "Usage: spread\n\
\t[-l y/n]          : print log\n\
\t[-n <proc name>]  : force computer name\n\
\t[-c <file name>]  : specify configuration file (.toml: the TOML form)\n\
\t[--convert-config <file name>] : print the file's TOML form and exit\n";

/// Default `-c` value (relative to the working directory).
pub const DEFAULT_CONFIG_FILE: &str = "spread.conf";

/// The third place searched for the configuration: `<SPREAD_ETCDIR>/spread.conf`.
/// The original takes this from the build's `sysconfdir` (autoconf default
/// `/usr/local/etc`); set `SPREAD_ETCDIR` at build time to change it.
pub const SPREAD_ETCDIR: &str = match option_env!("SPREAD_ETCDIR") {
    Some(d) => d,
    None => "/usr/local/etc",
};

/// Longest accepted `-n` value (MAX_PROC_NAME − 1).
pub const MAX_NAME_ARG: usize = 19;
/// `-c` values must be shorter than this.
pub const MAX_CONFIG_ARG: usize = 512;

/// Parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `-n`: which configured daemon this is.
    pub name: Option<String>,
    /// `-c`: the configuration file (default `spread.conf`).
    pub config_file: String,
    /// `true` if `-c` was given.
    pub config_given: bool,
    /// `-l y`: keep the membership/session log file ([`crate::sesslog`]).
    pub log: bool,
    /// `--convert-config <file>`: print the TOML form of `<file>` and exit.
    pub convert_config: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: None,
            config_file: DEFAULT_CONFIG_FILE.to_string(),
            config_given: false,
            log: false,
            convert_config: None,
        }
    }
}

/// Parse the arguments *after* the program name. `Err` carries the text to
/// print (the usage, or a specific message); the caller then calls
/// [`exit_fatal`] with it to behave like the original.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    // The original copies each -n value over a zeroed buffer without clearing
    // it, so a shorter second -n keeps the tail of a longer first one.
    let mut name_buf: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        let opt = a.get(..2);
        let value = args.get(i + 1);
        if a == b"--convert-config" {
            let v = value.ok_or_else(|| USAGE.to_string())?;
            o.convert_config = Some(v.clone());
            i += 2;
            continue;
        }
        match opt {
            Some(b"-n") => {
                let v = value.ok_or_else(|| USAGE.to_string())?;
                if v.len() > MAX_NAME_ARG {
                    return Err(format!("Usage: proc name {v} too long\n"));
                }
                let vb = v.as_bytes();
                if name_buf.len() < vb.len() {
                    name_buf.resize(vb.len(), 0);
                }
                name_buf[..vb.len()].copy_from_slice(vb);
                o.name = Some(String::from_utf8_lossy(&name_buf).into_owned());
            }
            Some(b"-c") => {
                let v = value.ok_or_else(|| USAGE.to_string())?;
                if v.len() >= MAX_CONFIG_ARG {
                    return Err("Usage: config file name too long\n".to_string());
                }
                o.config_file = v.clone();
                o.config_given = true;
            }
            Some(b"-l") => {
                let v = value.ok_or_else(|| USAGE.to_string())?;
                match v.as_str() {
                    "y" => o.log = true,
                    "n" => o.log = false,
                    _ => return Err(USAGE.to_string()),
                }
            }
            _ => return Err(USAGE.to_string()),
        }
        i += 2;
    }
    Ok(o)
}

/// The places searched for the configuration, in order: the `-c` value
/// (default `spread.conf`), `./spread.conf`, `<SPREAD_ETCDIR>/spread.conf`.
pub fn config_candidates(opts: &Options) -> Vec<PathBuf> {
    vec![
        PathBuf::from(&opts.config_file),
        PathBuf::from("./spread.conf"),
        PathBuf::from(format!("{SPREAD_ETCDIR}/spread.conf")),
    ]
}

/// The first candidate that can be opened for reading; `None` if none can
/// (the original then stops; this daemon runs [`crate::config::default_config`]).
pub fn find_config_file(opts: &Options) -> Option<PathBuf> {
    config_candidates(opts)
        .into_iter()
        .find(|p| std::fs::File::open(p).is_ok_and(|f| f.metadata().is_ok_and(|m| !m.is_dir())))
}

/// Print `msg` and end the process the way the original's fatal log does:
/// the message, `Exit caused by Alarm!`, then `abort()`.
pub fn exit_fatal(msg: &str) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(msg.as_bytes());
    if !msg.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.write_all(b"Exit caused by Alarm!\n");
    let _ = out.flush();
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.config_file, "spread.conf");
        assert!(!o.log && o.name.is_none() && !o.config_given);
    }

    #[test]
    fn all_options() {
        let o = parse(&args(&["-n", "d1", "-c", "/tmp/x.conf", "-l", "y"])).unwrap();
        assert_eq!(o.name.as_deref(), Some("d1"));
        assert_eq!(o.config_file, "/tmp/x.conf");
        assert!(o.config_given && o.log);
        let o = parse(&args(&["-l", "y", "-l", "n"])).unwrap();
        assert!(!o.log);
    }

    #[test]
    fn matched_by_two_characters() {
        let o = parse(&args(&["-name", "d2", "-config", "a.conf", "-log", "y"])).unwrap();
        assert_eq!(o.name.as_deref(), Some("d2"));
        assert_eq!(o.config_file, "a.conf");
        assert!(o.log);
    }

    #[test]
    fn bad_arguments_give_usage() {
        for bad in [&["-x"][..], &["-n"], &["-c"], &["-l"], &["-l", "yes"], &["d1"], &["-"], &["-n", "a", "extra"]] {
            assert_eq!(parse(&args(bad)), Err(USAGE.to_string()), "{bad:?}");
        }
    }

    #[test]
    fn length_limits() {
        let long = "a".repeat(20);
        assert_eq!(parse(&args(&["-n", &long])), Err(format!("Usage: proc name {long} too long\n")));
        assert!(parse(&args(&["-n", &"a".repeat(19)])).is_ok());
        assert!(parse(&args(&["-c", &"f".repeat(512)])).is_err());
        assert!(parse(&args(&["-c", &"f".repeat(511)])).is_ok());
    }

    #[test]
    fn convert_config_option() {
        let o = parse(&args(&["--convert-config", "a.conf"])).unwrap();
        assert_eq!(o.convert_config.as_deref(), Some("a.conf"));
        assert_eq!(parse(&args(&["--convert-config"])), Err(USAGE.to_string()));
        assert_eq!(parse(&args(&["--convert", "a.conf"])), Err(USAGE.to_string()));
    }

    #[test]
    fn second_shorter_name_keeps_tail() {
        let o = parse(&args(&["-n", "abcdef", "-n", "xy"])).unwrap();
        assert_eq!(o.name.as_deref(), Some("xycdef"));
    }

    #[test]
    fn search_order() {
        let dir = std::env::temp_dir().join(format!("h4-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("given.conf");
        std::fs::write(&f, "x").unwrap();
        let o = Options { config_file: f.display().to_string(), config_given: true, ..Options::default() };
        assert_eq!(find_config_file(&o), Some(f.clone()));
        let c = config_candidates(&Options::default());
        assert_eq!(c[0], PathBuf::from("spread.conf"));
        assert_eq!(c[1], PathBuf::from("./spread.conf"));
        assert_eq!(c[2], PathBuf::from(format!("{SPREAD_ETCDIR}/spread.conf")));
        let missing = Options { config_file: dir.join("nope.conf").display().to_string(), ..Options::default() };
        let found = find_config_file(&missing);
        // Falls through to ./spread.conf or the etc dir only if those exist.
        assert_ne!(found, Some(dir.join("nope.conf")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
