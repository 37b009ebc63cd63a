//! Configuration keywords behind the daemon's operations: authentication
//! method lists with PWORD (as a 5.0.1 build with ENABLE_PASSWORD reads
//! them) and the explicit/default privilege-drop settings.

use spread_daemon::config::{self, Config};

const BASE: &str = "Spread_Segment 127.0.0.255:27240 {\n\td1 127.0.0.1\n}\n";

fn parse(extra: &str) -> Config {
    config::parse_str_with_resolver(&format!("{BASE}{extra}"), "t", &config::offline_resolver).unwrap()
}

#[test]
fn pword_is_a_known_method() {
    let c = parse("AllowedAuthMethods = \"NULL IP PWORD\"\nRequiredAuthMethods = \"PWORD\"\n");
    assert!(c.auth.null_enabled);
    assert_eq!(c.auth.allowed, ["NULL", "IP", "PWORD"]);
    assert_eq!(c.auth.required, ["PWORD"]);
    assert!(c.warnings.iter().all(|w| !w.contains("PWORD")), "{:?}", c.warnings);

    let c = parse("AllowedAuthMethods = \"PWORD\"\n");
    assert!(!c.auth.null_enabled, "the first method list disables NULL");
    assert_eq!(c.auth.allowed, ["PWORD"]);
}

#[test]
fn unknown_methods_still_ignored_with_a_warning() {
    let c = parse("AllowedAuthMethods = \"KERBEROS PWORD pword\"\n");
    assert_eq!(c.auth.allowed, ["PWORD"], "names are case-sensitive");
    let unknown: Vec<_> = c.warnings.iter().filter(|w| w.contains("unknown authentication method")).collect();
    assert_eq!(unknown.len(), 2, "{:?}", c.warnings);
    assert!(unknown[0].contains("'KERBEROS'") && unknown[1].contains("'pword'"));
}

#[test]
fn privilege_settings_record_whether_written() {
    let c = parse("");
    assert!(!c.daemon_user_set && !c.daemon_group_set && !c.runtime_dir_set);
    assert_eq!(
        (c.daemon_user.as_str(), c.daemon_group.as_str(), c.runtime_dir.as_str()),
        ("spread", "spread", "/var/run/spread")
    );
    let c = parse("DaemonUser = spread\nDaemonGroup = g\nRuntimeDir = /srv/x\n");
    assert!(c.daemon_user_set && c.daemon_group_set && c.runtime_dir_set);
    assert_eq!((c.daemon_user.as_str(), c.daemon_group.as_str(), c.runtime_dir.as_str()), ("spread", "g", "/srv/x"));
    // An empty value is ignored (with a warning) and does not count as written.
    let c = parse("DaemonUser = \"\"\n");
    assert!(!c.daemon_user_set);
    assert!(spread_daemon::privilege::strict(&parse("RuntimeDir = /srv/x\n")));
    assert!(!spread_daemon::privilege::strict(&parse("")));
}
