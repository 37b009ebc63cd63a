//! The TOML form of the configuration (docs/config.md): the documented
//! example equals its spread.conf spelling, `--convert-config` round-trips
//! (same configuration, same hash), errors name the TOML line, and the
//! daemon runs and reloads from a `.toml` file.
//!
//! Ports 27170–27179 (each daemon uses P, P+1 and /tmp/P).

mod daemon_util;
mod shared_ref;
mod toml_util;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use spread_daemon::config::{self, flags, IfType, IpVersion, PortReuse, Priority};
use toml_util::{round_trip, same};

/// Every keyword of the spread.conf parser, each with a value other than its
/// default, and every form of a daemon entry.
const EVERY_CONF: &str = r#"# every keyword
EventLogFile = "/tmp/spread-%h.log"
EventTimeStamp = "%Y-%m-%d %H:%M:%S"
EventPreciseTimeStamp
EventPriority = WARNING
EventLogFormat = json
DebugFlags = { ALL !EVENTS !DATA_LINK }
DangerousMonitor = true
SocketPortReuse = on
RuntimeDir = /tmp/rspread-run
DaemonUser = nobody
DaemonGroup = nogroup
RequiredAuthMethods = "IP"
AllowedAuthMethods = "NULL IP"
AccessControlPolicy = PERMIT
MaxSessionMessages = 500
MaxSessionBytes = 1000000
MaxQueuedBytes = 50000000
ActiveIPVersion = IPv4
Window = 100
PersonalWindow = 10
AcceleratedRing = false
AcceleratedWindow = 5
TokenTimeout = 1000
HurryTimeout = 200
AliveTimeout = 100
JoinTimeout = 100
RepTimeout = 300
SegTimeout = 200
GatherTimeout = 500
FormTimeout = 500
LookupTimeout = 2000
WideAreaNetwork = yes
ExcludeSegAddrsFromHash = no
IgnoreMulticastJoinErrors = false
MetricsAddress = 127.0.0.1:9464
Spread_Segment 225.0.1.1:4803 225.0.1.2 {
	d1 10.0.0.1 VirtualID = 7 {
		D 10.0.0.1
		C M 192.168.0.1
	}
	d2 10.0.0.2
	10.0.0.3
	localhost ;
}
Spread_Segment 10.1.0.255:4810 {
	e1 10.1.0.1
}
"#;

/// The same configuration written by hand in the TOML form (the example of
/// docs/config.md).
const EVERY_TOML: &str = r#"# every key
event_log_file = "/tmp/spread-%h.log"
event_timestamp = "%Y-%m-%d %H:%M:%S"
event_precise_timestamp = true
event_priority = "WARNING"
event_log_format = "json"
debug_flags = ["ALL", "!EVENTS", "!DATA_LINK"]
dangerous_monitor = true
socket_port_reuse = "on"
runtime_dir = "/tmp/rspread-run"
daemon_user = "nobody"
daemon_group = "nogroup"
required_auth_methods = ["IP"]
allowed_auth_methods = ["NULL", "IP"]
access_control_policy = "PERMIT"
max_session_messages = 500
max_session_bytes = 1000000
max_queued_bytes = 50000000
active_ip_version = "IPv4"
window = 100
personal_window = 10
accelerated_ring = false
accelerated_window = 5
token_timeout = 1000
hurry_timeout = 200
alive_timeout = 100
join_timeout = 100
rep_timeout = 300
seg_timeout = 200
gather_timeout = 500
form_timeout = 500
lookup_timeout = 2000
wide_area_network = true
exclude_seg_addrs_from_hash = false
ignore_multicast_join_errors = false
metrics_address = "127.0.0.1:9464"

[[segment]]
port = 4803
addresses = ["225.0.1.1", "225.0.1.2"]

[[segment.daemon]]
name = "d1"
address = "10.0.0.1"
virtual_id = 7
interface = [
    { address = "10.0.0.1", kinds = "D" },
    { address = "192.168.0.1", kinds = "CM" },
]

[[segment.daemon]]
name = "d2"
address = "10.0.0.2"

[[segment.daemon]]
address = "10.0.0.3"

[[segment.daemon]]
name = "localhost"

[[segment]]
port = 4810
addresses = ["10.1.0.255"]
daemon = [{ name = "e1", address = "10.1.0.1" }]
"#;

fn conf(text: &str) -> config::Config {
    config::parse_str_with_resolver(text, "t.conf", &config::offline_resolver).unwrap()
}

fn toml(text: &str) -> Result<config::Config, config::ConfigError> {
    config::parse_toml_str_with_resolver(text, "t.toml", &config::offline_resolver)
}

#[test]
fn the_documented_example_is_the_spread_conf_file() {
    let a = conf(EVERY_CONF);
    let b = toml(EVERY_TOML).unwrap();
    same(&a, &b).unwrap();
    // A few values, to see that the keywords did arrive.
    assert_eq!(b.daemons.len(), 5);
    assert_eq!(b.daemons[0].vid, 7);
    assert_eq!(b.daemons[0].interfaces[1].kinds, IfType(IfType::CLIENT.0 | IfType::MONITOR.0));
    assert_eq!(b.daemons[2].name, "10.0.0.3");
    assert_eq!(b.daemons[3].addr, "127.0.0.1:4803".parse().unwrap());
    assert_eq!(b.segments[0].addrs.len(), 2);
    assert_eq!(b.segments[1].port, 4810);
    assert_eq!(b.debug_flags, flags::ALL & !flags::EVENTS & !flags::DATA_LINK);
    assert_eq!(b.event_priority, Priority::Warning);
    assert_eq!(b.socket_port_reuse, PortReuse::On);
    assert_eq!((b.window, b.personal_window, b.accelerated_window), (100, 10, 5));
    assert_eq!(b.max_session_bytes, 1_000_000);
    assert_eq!(b.metrics_address, Some("127.0.0.1:9464".parse().unwrap()));
    assert!(b.auth.null_enabled && b.auth.required == ["IP"]);
    assert_eq!(b.membership_timeouts().unwrap().lookup, 2000);
    assert_eq!(b.hash(), a.hash());
    // The docs' example is this one.
    let doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md")).unwrap();
    let body = EVERY_TOML.split_once('\n').unwrap().1;
    assert!(doc.contains(body), "docs/config.md does not hold the example of this test");
}

#[test]
fn every_keyword_round_trips() {
    let t = round_trip(EVERY_CONF, "every.conf").unwrap();
    for (kw, key) in config::TOML_KEYS {
        if *kw != "Spread_Segment" && *kw != "VirtualID" {
            assert!(t.contains(&format!("\n{key} = ")), "{key} missing from:\n{t}");
        }
    }
    assert!(t.contains("virtual_id = 7") && t.contains("[[segment]]"), "{t}");
    // %h is kept for the host that loads the file.
    assert!(t.contains("event_log_file = \"/tmp/spread-%h.log\""), "{t}");
}

#[test]
fn many_configurations_round_trip() {
    let seg = "Spread_Segment 127.0.0.255:47100 {\n\ta 127.0.0.1\n\tb 127.0.0.2\n}\n";
    let cases = [
        seg.to_string(),
        format!("EventTimeStamp\n{seg}"),
        format!("EventPreciseTimeStamp\n{seg}"),
        format!("EventTimeStamp = \"%H:%M\"\nEventPreciseTimeStamp\n{seg}"),
        format!("EventPreciseTimeStamp\nEventTimeStamp = \"%H:%M:%S\"\n{seg}"),
        format!("EventTimeStamp = \"{}\"\nEventPreciseTimeStamp\n{seg}", "x".repeat(50)),
        format!("DebugFlags = {{ }}\n{seg}"),
        format!("DebugFlags = {{ NONE }}\n{seg}"),
        format!("DebugFlags = {{ ALL }}\n{seg}"),
        format!("DebugFlags = {{ EXIT PRINT !PRINT SECURITY }}\n{seg}"),
        format!("DebugFlags = {{ ALL }}\nDebugFlags = {{ GROUPS }}\n{seg}"),
        format!("RequiredAuthMethods = IP\n{seg}"),
        format!("AllowedAuthMethods = \"IP\"\n{seg}"),
        format!("AllowedAuthMethods = \"\"\n{seg}"),
        format!("AllowedAuthMethods = \"NULL BOGUS\"\nRequiredAuthMethods = \"PWORD IP\"\n{seg}"),
        format!("AllowedAuthMethods = IP\nAllowedAuthMethods = NULL\n{seg}"),
        format!("RuntimeDir = \"\"\nDaemonUser = \"\"\n{seg}"),
        format!("Window = 10\nWindow = 300\nPersonalWindow = 300\n{seg}"),
        format!("SocketPortReuse = OFF\nEventPriority = pDEBUG\n{seg}"),
        format!("SocketPortReuse = auto\nEventPriority = FATAL\n{seg}"),
        format!("AcceleratedRing = true\nAcceleratedWindow = 20\n{seg}"),
        format!("WideAreaNetwork = false\nExcludeSegAddrsFromHash = true\nIgnoreMulticastJoinErrors = yes\n{seg}"),
        format!("MetricsAddress = [::1]:9464\n{seg}"),
        format!("EventLogFile = plain.log\n{seg}"),
        format!("{seg}ActiveIPVersion = IPv4\n"),
        "Spread_Segment 127.0.0.255:47100 { localhost ; 127.0.0.2 ; b 127.0.0.3 }".to_string(),
        "Spread_Segment 127.0.0.255:47100 { 127.0.0.1 127.0.0.2 }".to_string(),
        "Spread_Segment 127.0.0.255 { a 127.0.0.1 }".to_string(),
        "Spread_Segment 127.0.0.255:0 { a 127.0.0.1 }".to_string(),
        "Spread_Segment 127.0.0.255:47100 { a; 127.0.0.2 b 127.0.0.3 }".to_string(),
        "Spread_Segment 127.0.0.255:47100 { \"name with spaces\" 127.0.0.1 \"q\\\"\" 127.0.0.2 }".to_string(),
        "Spread_Segment 127.0.0.255:47100 { abcdefghijklmnopqrstuvwxyz 127.0.0.1 }".to_string(),
        "Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 { 127.0.0.1 } b 127.0.0.2 { D 127.0.0.2 C 0.0.0.0 M 127.0.0.3 } }"
            .to_string(),
        "Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 VirtualID = 99 b 127.0.0.2 VirtualID = 3 }".to_string(),
        "Spread_Segment 225.1.1.1:47100 { a 10.0.0.1 }\nSpread_Segment 225.1.1.2:47200 { }\n\
         Spread_Segment 225.1.1.3:47300 225.1.1.4 225.1.1.5 225.1.1.6 225.1.1.7 { b 10.0.0.2 }"
            .to_string(),
        "ActiveIPVersion = IPv6\nSpread_Segment [ff02::1:2]:47100 ff02::1:3 {\n\tv1 ::1 { D ::1 C :: }\n\tfe80::1\n\t2001:db8::7\n}"
            .to_string(),
        "Spread_Segment [ff02::1]:47100 { v1 ::1 { ::1 } v2 ::ffff:102:304 }".to_string(),
        "Spread_Segment [ff02::1]:47100 { fe80::1%lo }".to_string(),
        // A name that resolves to the unspecified address (fuzzing found it).
        "Spread_Segment [ff02::1]:47100 { \"::\" }".to_string(),
        "Spread_Segment 127.0.0.255:47100 { \"0\" a 127.0.0.1 }".to_string(),
    ];
    for text in &cases {
        if let Err(e) = round_trip(text, "case.conf") {
            panic!("case {text:?}: {e}");
        }
    }
}

#[test]
fn recorded_configurations_round_trip() {
    let pcap = shared_ref::ref_dir().join("pcap");
    let mut n = 0;
    for e in std::fs::read_dir(&pcap).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "conf") {
            let text = std::fs::read_to_string(&p).unwrap();
            round_trip(&text, &p.display().to_string()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 2, "only {n} recorded configurations");
    // The embedded default and the docs' sample.
    round_trip(config::DEFAULT_CONFIG_TEXT, "default").unwrap();
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/fast-failover.conf");
    let text = std::fs::read_to_string(sample).unwrap();
    round_trip(&format!("{text}\nSpread_Segment 127.0.0.255:47100 {{ a 127.0.0.1 }}\n"), "fast-failover.conf").unwrap();
}

#[test]
fn reload_of_the_toml_form_follows_the_same_rules() {
    // Slot VIDs (§1.9) and the accelerated hash on reload, as for spread.conf.
    let first_text = "Spread_Segment 127.0.0.255:47180 { xx 127.0.0.2 ; loc 127.0.0.1 }";
    let first = conf(first_text);
    let re_conf =
        config::parse_str_reload("Window = 300\nSpread_Segment 127.0.0.255:47180 { loc 127.0.0.1 }", "t.conf", &first)
            .unwrap();
    let re_toml = config::parse_toml_str_reload(
        "window = 300\n[[segment]]\nport = 47180\naddresses = [\"127.0.0.255\"]\ndaemon = [{ name = \"loc\", address = \"127.0.0.1\" }]\n",
        "t.toml",
        &first,
    )
    .unwrap();
    same(&re_conf, &re_toml).unwrap();
    assert_eq!(re_toml.daemons[0].vid, first.daemons[0].vid);
    assert!(re_toml.accelerated_ring());
    // Parameters the new file leaves out keep their old values.
    let re = config::parse_toml_str_reload(
        "[[segment]]\nport = 47180\naddresses = [\"127.0.0.255\"]\ndaemon = [{ name = \"loc\", address = \"127.0.0.1\" }]\n",
        "t.toml",
        &re_toml,
    )
    .unwrap();
    assert_eq!(re.window, 300);
}

#[test]
fn errors_name_the_line() {
    let seg = "[[segment]]\naddresses = [\"127.0.0.255\"]\ndaemon = [{ name = \"a\", address = \"127.0.0.1\" }]\n";
    let seg_a =
        "[[segment]]\naddresses = [\"127.0.0.255\"]\n[[segment.daemon]]\nname = \"a\"\naddress = \"127.0.0.1\"\n";
    let cases: Vec<(String, &str)> = vec![
        ("window = 100\n\nwindw = 5\n".to_string(), "t.toml:3:1: unknown field `windw`, expected one of"),
        (format!("window = \"big\"\n{seg}"), "t.toml:1:10: invalid type: string \"big\", expected an integer"),
        (format!("{seg}window = 5\n"), "t.toml:4:1:"),
        ("event_priority = \"LOUD\"\n".to_string(), "t.toml:1:18: event_priority: \"LOUD\" is not one of"),
        (format!("\ndebug_flags = [\"EXIT\",\n  \"EVENTZ\"]\n{seg}"), "t.toml:3:3: debug_flags: unknown flag \"EVENTZ\""),
        (
            "[[segment]]\nport = 4803\naddresses = [\"127.0.0.256\"]\n".to_string(),
            "t.toml:3:14: addresses: \"127.0.0.256\" is not an IPv4 or IPv6 address",
        ),
        ("[[segment]]\naddresses = [\"127.0.0.255:4803\"]\n".to_string(), "t.toml:2:14: addresses: \"127.0.0.255:4803\" has a port"),
        ("[[segment]]\nport = 70000\naddresses = [\"127.0.0.255\"]\n".to_string(), "t.toml:2:8: port: 70000 is not a port number"),
        ("[[segment]]\naddresses = []\n".to_string(), "t.toml:2:13: addresses: a segment needs at least one address"),
        (
            "[[segment]]\naddresses = [\"127.0.0.255\"]\n\n[[segment.daemon]]\nname = \"a\"\naddress = \"127.0.0.1\"\n\n\
             [[segment.daemon]]\nname = \"a\"\naddress = \"127.0.0.2\"\n"
                .to_string(),
            "t.toml:9: daemon name 'a' is not unique: daemon #0 has it too",
        ),
        (
            "[[segment]]\naddresses = [\"127.0.0.255\"]\n[[segment.daemon]]\nname = \"a\"\naddres = \"127.0.0.1\"\n".to_string(),
            "t.toml:5:1: unknown field `addres`, expected one of `name`, `address`, `virtual_id`, `interface`",
        ),
        (
            format!("{seg_a}[[segment.daemon]]\nname = \"b\"\naddress = \"127.0.0.2\"\nvirtual_id = 0\n"),
            "t.toml:9: VirtualID must be greater than zero",
        ),
        (
            format!("{seg_a}[[segment.daemon]]\nname = \"b\"\naddress = \"127.0.0.2\"\ninterface = [{{ address = \"127.0.0.2\", kinds = \"CX\" }}]\n"),
            "t.toml:9:47: kinds: \"CX\" is not made of the letters M, C and D",
        ),
        (
            format!("{seg_a}[[segment.daemon]]\nname = \"b\"\naddress = \"127.0.0.2\"\ninterface = [{{ address = \"127.0.0.2\", kinds = \"C\" }}]\n"),
            "t.toml:7: interface block has no daemon entry",
        ),
        (format!("personal_window = 200\n{seg}\n\n"), "t.toml:4: PersonalWindow > Window"),
        ("# nothing\nwindow = 5\n".to_string(), "t.toml:2: no Spread_Segment in the file"),
        (format!("event_log_file = \"x\n{seg}"), "t.toml:1:"),
        (format!("max_session_messages = -1\n{seg}"), "t.toml:1:24: max_session_messages: -1 is out of range"),
        (format!("access_control_policy = \"DENY\"\n{seg}"), "t.toml:1: unknown AccessControlPolicy 'DENY'"),
        (format!("active_ip_version = \"IPv6\"\n{seg}"), "t.toml:4: daemon address family differs from ActiveIPVersion"),
        (format!("event_timestamp = 5\n{seg}"), "t.toml:1:19: event_timestamp: expected true, false or a strftime format"),
        (format!("metrics_address = \"127.0.0.1\"\n{seg}"), "t.toml:1:19: metrics_address: \"127.0.0.1\" is not an address with a port"),
    ];
    let mut bad = Vec::new();
    for (text, want) in &cases {
        match toml(text) {
            Ok(_) => bad.push(format!("accepted:\n{text}")),
            Err(e) => {
                let got = e.to_string();
                if !got.starts_with(want) {
                    bad.push(format!("{text}\n  got:  {got}\n  want: {want}…"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

#[test]
fn warnings_name_the_toml_line() {
    let c = toml("\nruntime_dir = \"\"\n[[segment]]\naddresses = [\"127.0.0.255\"]\ndaemon = [{ name = \"a;\", address = \"127.0.0.1\" }]\n")
        .unwrap();
    assert!(c.warnings.iter().any(|w| w.starts_with("t.toml:2: ignored empty RuntimeDir")), "{:?}", c.warnings);
    assert!(c.warnings.iter().any(|w| w.starts_with("t.toml:5: daemon name ends in ';'")), "{:?}", c.warnings);
    let seg = "Warning on or before line 3\nOffending token: }\nWarning type: Segment configured with a loopback address 127.0.0.255!";
    assert!(c.warnings.iter().any(|w| w.contains(seg)), "{:?}", c.warnings);
    assert_eq!(c.active_ip_version, IpVersion::V4);
}

#[test]
fn toml_files_are_chosen_by_name() {
    assert!(config::is_toml_path("a/spread.toml".as_ref()));
    assert!(config::is_toml_path("SPREAD.TOML".as_ref()));
    assert!(!config::is_toml_path("spread.conf".as_ref()));
    assert!(!config::is_toml_path("toml".as_ref()));
    let dir = std::env::temp_dir().join(format!("rspread-toml-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("x.toml"), EVERY_TOML).unwrap();
    std::fs::write(dir.join("x.conf"), EVERY_CONF).unwrap();
    // Name-only entries use the system resolver here: leave them out.
    let a = config::load(&dir.join("x.toml"));
    let b = config::load(&dir.join("x.conf"));
    match (a, b) {
        (Ok(a), Ok(b)) => same(&b, &a).unwrap(),
        (Err(a), Err(b)) => assert!(a.message.contains("localhost") && b.message.contains("localhost"), "{a} / {b}"),
        (a, b) => panic!("{a:?} vs {b:?}"),
    }
    std::fs::write(dir.join("bad.toml"), "window = 1\nwindow = 2\n").unwrap();
    let e = config::load(&dir.join("bad.toml")).unwrap_err();
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    assert!(e.to_string().starts_with(&format!("{}:2:1: ", dir.join("bad.toml").display())), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn spread(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_spread"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn convert_config_prints_the_toml_form() {
    let dir = std::env::temp_dir().join(format!("rspread-toml-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = EVERY_CONF.replace("\tlocalhost ;\n", "");
    std::fs::write(dir.join("spread.conf"), &text).unwrap();
    let out = spread(&["--convert-config", "spread.conf"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(t.starts_with("# The TOML form"), "{t}");
    let back = config::parse_toml_str(&t, "out.toml").unwrap();
    same(&config::parse_str(&text, "spread.conf").unwrap(), &back).unwrap();
    // Converting the converted file gives it back.
    std::fs::write(dir.join("spread.toml"), &t).unwrap();
    let again = spread(&["--convert-config", "spread.toml"], &dir);
    assert_eq!(again.status.code(), Some(0));
    let body = |s: &str| s.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&String::from_utf8(again.stdout).unwrap()), body(&t));
    // Errors: the message on stderr, nothing on stdout, a failure status.
    std::fs::write(dir.join("bad.conf"), "Window = 0\n").unwrap();
    let out = spread(&["--convert-config", "bad.conf"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "bad.conf:1: Window must be greater than zero\n");
    let out = spread(&["--convert-config", "missing.conf"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("missing.conf: cannot read"));
    // Without its file name: the usage, as for any bad command line.
    let out = spread(&["--convert-config"], &dir);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--convert-config"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `spread -c x.toml` runs, and a SIGHUP re-reads the TOML file.
#[test]
fn the_daemon_runs_and_reloads_from_a_toml_file() {
    use daemon_util::*;
    let port = 27170u16;
    let dir = std::env::temp_dir().join(format!("rspread-toml-run-{port}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |extra: &str| {
        format!(
            "{extra}\n[[segment]]\nport = {port}\naddresses = [\"127.0.0.255\"]\n\n[[segment.daemon]]\nname = \"d1\"\n\
             address = \"127.0.0.1\"\ninterface = [{{ address = \"127.0.0.1\", kinds = \"D\" }}, {{ address = \"127.0.0.1\", kinds = \"C\" }}]\n"
        )
    };
    std::fs::write(dir.join("spread.toml"), file("max_session_messages = 700")).unwrap();
    let d = Daemon::start_file(&[], "d1", port, dir.clone(), "spread.toml");
    let mut c = connect_tcp(port, "c", true);
    c.join("g");
    wait_members(&mut c, "g", 1);
    // A good file is taken.
    std::fs::write(dir.join("spread.toml"), file("max_session_messages = 500")).unwrap();
    // SAFETY: kill(2) on the pid of the child this test started.
    unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    let l = d.wait_log("taking the new configuration: 1 daemons");
    let first = config::parse_toml_str(&file("max_session_messages = 700"), "x.toml").unwrap();
    let want = config::parse_toml_str_reload(&file("max_session_messages = 500"), "x.toml", &first).unwrap().hash();
    assert!(l.contains(&format!("hash {want}")), "{l}");
    // A bad one is refused, naming its line, and the daemon goes on.
    std::fs::write(dir.join("spread.toml"), file("max_session_messages = \"many\"")).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    let l = d.wait_log("Configuration reload refused:");
    assert!(l.contains("spread.toml:1:24: invalid type"), "{l}");
    c.mcast(0x04, &["g"], 0, b"still here");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while c.recv().body != b"still here" {
        assert!(std::time::Instant::now() < deadline, "no message after the refused reload");
    }
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Random spread.conf files (seeded, so every run checks the same ones): each
/// that parses must round-trip through the TOML form.
#[test]
fn random_configurations_round_trip() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |n: usize| -> usize {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut accepted, mut failures) = (0, Vec::new());
    for _ in 0..5000 {
        let text = random_conf(&mut rnd);
        // A custom EventTimeStamp then a bare one: the one case the TOML form
        // cannot carry whole (docs/config.md, "Converting").
        if text.contains("EventTimeStamp = ") && text.contains("EventTimeStamp\n") {
            continue;
        }
        if config::parse_str_with_resolver(&text, "r.conf", &config::offline_resolver).is_err() {
            continue;
        }
        accepted += 1;
        if let Err(e) = round_trip(&text, "r.conf") {
            failures.push(format!("{text}\n=> {e}"));
        }
    }
    assert!(accepted > 800, "only {accepted} random files parse");
    assert!(failures.is_empty(), "{} of {accepted} do not round-trip:\n{}", failures.len(), failures[0]);
}

fn random_conf(rnd: &mut dyn FnMut(usize) -> usize) -> String {
    fn pick<'a>(rnd: &mut dyn FnMut(usize) -> usize, v: &[&'a str]) -> &'a str {
        v[rnd(v.len())]
    }
    let b = ["yes", "no", "true", "FALSE", "Yes"];
    let mut params: Vec<String> = Vec::new();
    for _ in 0..rnd(8) {
        let p = match rnd(24) {
            0 => format!("EventLogFile = {}", pick(rnd, &["x.log", "\"/tmp/s %h.log\"", "'q%H'"])),
            1 => "EventTimeStamp".to_string(),
            2 => format!("EventTimeStamp = \"{}\"", pick(rnd, &["%H", "%H:%M:%S", "%s", ""])),
            3 => "EventPreciseTimeStamp".to_string(),
            4 => format!("EventPriority = {}", pick(rnd, &["pDEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "FATAL"])),
            5 => {
                let names = ["ALL", "NONE", "EXIT", "PRINT", "EVENTS", "GROUPS", "SECURITY", "DEBUG"];
                let fl: Vec<String> =
                    (0..rnd(5)).map(|_| format!("{}{}", pick(rnd, &["", "!"]), pick(rnd, &names))).collect();
                format!("DebugFlags = {{ {} }}", fl.join(" "))
            }
            6 => format!("DangerousMonitor = {}", pick(rnd, &b)),
            7 => format!("SocketPortReuse = {}", pick(rnd, &["on", "OFF", "auto"])),
            8 => format!("RuntimeDir = {}", pick(rnd, &["\"\"", "/tmp/r", "\"/a b\""])),
            9 => format!("DaemonUser = {}", pick(rnd, &["\"\"", "nobody"])),
            10 => format!("DaemonGroup = {}", pick(rnd, &["\"\"", "nogroup"])),
            11 => format!("RequiredAuthMethods = \"{}\"", pick(rnd, &["IP", "PWORD IP", "", "NULL"])),
            12 => format!("AllowedAuthMethods = \"{}\"", pick(rnd, &["IP", "NULL", "NULL IP", "", "BOGUS  IP"])),
            13 => format!("MaxSessionMessages = {}", rnd(3000)),
            14 => format!("MaxSessionBytes = {}", 1 + rnd(1 << 20)),
            15 => format!("MaxQueuedBytes = {}", 1 + rnd(1 << 20)),
            16 => format!("Window = {}", 1 + rnd(400)),
            17 => format!("PersonalWindow = {}", 1 + rnd(40)),
            18 => format!("AcceleratedRing = {}", pick(rnd, &b)),
            19 => format!("AcceleratedWindow = {}", rnd(30)),
            20 => {
                let t = ["Token", "Hurry", "Alive", "Join", "Rep", "Seg", "Gather", "Form", "Lookup"];
                let all = rnd(2) == 0;
                let mut lines = Vec::new();
                for k in t {
                    if all || rnd(2) == 0 {
                        lines.push(format!("{k}Timeout = {}", 1 + rnd(5000)));
                    }
                }
                lines.join("\n")
            }
            21 => format!("WideAreaNetwork = {}", pick(rnd, &b)),
            22 => format!("ExcludeSegAddrsFromHash = {}\nIgnoreMulticastJoinErrors = {}", pick(rnd, &b), pick(rnd, &b)),
            _ => format!("MetricsAddress = {}", pick(rnd, &["127.0.0.1:9464", "[::1]:9", "0.0.0.0:80"])),
        };
        params.push(p);
    }
    let mut segs = Vec::new();
    let names = ["a", "b", "c", "d1", "\"x y\"", "localhost", "abcdefghijklmnopqrstuv", "n;"];
    for s in 0..1 + rnd(3) {
        let port = match rnd(3) {
            0 => String::new(),
            _ => format!(":{}", 47000 + 10 * s),
        };
        let mut head = format!("Spread_Segment 10.{s}.0.255{port}");
        for k in 0..rnd(3) {
            head.push_str(&format!(" 225.0.{s}.{k}"));
        }
        let mut body = Vec::new();
        for _ in 0..rnd(5) {
            let addr = format!("10.{}.0.{}", rnd(2), 1 + rnd(6));
            let mut d = match rnd(4) {
                0 => addr.clone(),
                1 => "localhost".to_string(),
                _ => format!("{} {addr}", pick(rnd, &names)),
            };
            if rnd(4) == 0 {
                d.push_str(&format!(" VirtualID = {}", rnd(20)));
            }
            if rnd(4) == 0 {
                let mut blk = Vec::new();
                for _ in 0..1 + rnd(3) {
                    let kinds = pick(rnd, &["", "D ", "C ", "M ", "C M ", "D C "]);
                    let a = pick(rnd, &[addr.as_str(), "0.0.0.0", "192.168.9.9"]);
                    blk.push(format!("{kinds}{a}"));
                }
                d.push_str(&format!(" {{ {} }}", blk.join(" ")));
            }
            if rnd(3) == 0 {
                d.push_str(" ;");
            }
            body.push(d);
        }
        segs.push(format!("{head} {{\n\t{}\n}}", body.join("\n\t")));
    }
    // Parameters before, between and after the segments.
    let mut out = Vec::new();
    let split = rnd(params.len() + 1);
    out.extend(params[..split].iter().cloned());
    out.extend(segs);
    out.extend(params[split..].iter().cloned());
    out.join("\n") + "\n"
}
