//! Defaults, the embedded default configuration, find_me, derived values and
//! the reload quirks.

use std::net::SocketAddr;

use spread_daemon::config::{
    self, flags, hash, IfType, IpVersion, PortReuse, Priority, Timeouts, DEFAULT_TIMESTAMP_FORMAT,
};

fn parse(text: &str) -> config::Config {
    config::parse_str_with_resolver(text, "t.conf", &config::offline_resolver).unwrap()
}

const SPEC_17: &str = "Spread_Segment 127.0.0.255:34803 {\n\tlocalhost 127.0.0.1\n}\n";

#[test]
fn every_default() {
    let c = parse("Spread_Segment 127.0.0.255 { a 127.0.0.1 }");
    assert_eq!(c.debug_flags, flags::PRINT | flags::EXIT | flags::CONFIGURATION);
    assert!(!c.debug_flags_set);
    assert_eq!(c.event_priority, Priority::Info);
    assert_eq!(c.event_log_file, None);
    assert_eq!(c.event_timestamp, None);
    assert!(!c.dangerous_monitor);
    assert_eq!(c.socket_port_reuse, PortReuse::Auto);
    assert_eq!(c.runtime_dir, "/var/run/spread");
    assert_eq!(c.daemon_user, "spread");
    assert_eq!(c.daemon_group, "spread");
    assert_eq!(c.max_session_messages, 1000);
    assert!(c.auth.null_enabled && c.auth.allowed.is_empty() && c.auth.required.is_empty());
    assert_eq!(c.access_control_policy, "PERMIT");
    assert_eq!(c.active_ip_version, IpVersion::V4);
    assert_eq!((c.window, c.personal_window, c.accelerated_window), (160, 20, 15));
    assert_eq!(c.accelerated_ring_setting, None);
    assert!(!c.accelerated_ring());
    assert!(!c.timeouts.any_set());
    assert_eq!(c.wide_area_network_setting, None);
    assert!(!c.wide_area());
    assert!(!c.exclude_seg_addrs_from_hash && !c.ignore_multicast_join_errors);
    assert_eq!(c.membership_timeouts().unwrap(), Timeouts::LAN);
    assert_eq!(c.segments[0].port, 4803);
    assert_eq!(c.daemons[0].addr, "127.0.0.1:4803".parse::<SocketAddr>().unwrap());
    assert_eq!(c.daemons[0].token_port(), 4804);
    assert!(c.unsupported.is_empty());
}

#[test]
fn parameters_are_stored() {
    let c = parse(
        "EventLogFile = /tmp/x-%h.log\nEventTimeStamp = \"[%a %d %b %Y %H:%M:%S]\"\nEventPriority = ERROR\n\
         DebugFlags = { ALL !DATA_LINK !EVENTS }\nDangerousMonitor = true\nSocketPortReuse = off\n\
         RuntimeDir = /run/sp\nDaemonUser = u\nDaemonGroup = g\nAllowedAuthMethods = \"IP NULL BOGUS\"\n\
         RequiredAuthMethods = IP\nMaxSessionMessages = 0\nWindow = 300\nPersonalWindow = 30\n\
         AcceleratedRing = yes\nAcceleratedWindow = 30\nWideAreaNetwork = true\nIgnoreMulticastJoinErrors = true\n\
         ExcludeSegAddrsFromHash = true\n\
         Spread_Segment 127.0.0.255 { a 127.0.0.1 }\n",
    );
    let host = c.event_log_file.clone().unwrap();
    assert!(host.starts_with("/tmp/x-") && host.ends_with(".log") && !host.contains("%h"), "{host}");
    let ts = c.event_timestamp.clone().unwrap();
    assert_eq!(ts.format, "[%a %d %b %Y %H:%M:%S]");
    assert!(!ts.precise);
    assert_eq!(c.event_priority, Priority::Error);
    assert_eq!(c.debug_flags, !(flags::DATA_LINK | flags::EVENTS));
    assert!(c.dangerous_monitor);
    assert_eq!(c.socket_port_reuse, PortReuse::Off);
    assert_eq!((c.runtime_dir.as_str(), c.daemon_user.as_str(), c.daemon_group.as_str()), ("/run/sp", "u", "g"));
    assert!(c.auth.null_enabled);
    assert_eq!(c.auth.allowed, vec!["IP", "NULL"]);
    assert_eq!(c.auth.required, vec!["IP"]);
    assert!(c.warnings.iter().any(|w| w.contains("BOGUS")));
    assert_eq!(c.max_session_messages, 0);
    assert_eq!((c.window, c.personal_window, c.accelerated_window), (300, 30, 30));
    assert!(c.accelerated_ring());
    assert!(c.wide_area());
    assert_eq!(c.membership_timeouts().unwrap(), Timeouts::WAN);
    assert!(c.hash_text.ends_with("Protocol: Accelerated Ring\n"));
    assert!(c.hash_text.starts_with("Segment: port = 4803;\n"));
    // Accepted-but-unsupported features are reported with their line.
    assert!(c.dangerous_monitor);
    assert!(!c.unsupported.iter().any(|u| u.contains("DangerousMonitor")), "{:?}", c.unsupported);
    assert!(c.unsupported.iter().any(|u| u.contains("AcceleratedRing")));
    assert!(c.unsupported.iter().any(|u| u.contains("IgnoreMulticastJoinErrors")));
}

#[test]
fn first_auth_keyword_disables_null() {
    let c = parse("RequiredAuthMethods = IP\nSpread_Segment 127.0.0.255 { a 127.0.0.1 }");
    assert!(!c.auth.null_enabled);
    assert!(c.auth.allowed.is_empty());
}

#[test]
fn timestamp_sequences() {
    let ts = |extra: &str| parse(&format!("{extra}\nSpread_Segment 127.0.0.255 {{ a 127.0.0.1 }}")).event_timestamp;
    let t = ts("EventTimeStamp").unwrap();
    assert_eq!((t.format.as_str(), t.precise), (DEFAULT_TIMESTAMP_FORMAT, false));
    // EventPreciseTimeStamp alone turns stamps on.
    let t = ts("EventPreciseTimeStamp").unwrap();
    assert_eq!((t.format.as_str(), t.precise), (DEFAULT_TIMESTAMP_FORMAT, true));
    // A custom format not ending in %S/%s gets " %s" when precise.
    let t = ts("EventTimeStamp = \"%H:%M\"\nEventPreciseTimeStamp").unwrap();
    assert_eq!((t.format.as_str(), t.precise), ("%H:%M %s", true));
    let t = ts("EventPreciseTimeStamp\nEventTimeStamp = \"%H:%M:%S\"").unwrap();
    assert_eq!((t.format.as_str(), t.precise), ("%H:%M:%S", true));
    // A plain EventTimeStamp after a custom one goes back to the default.
    let t = ts("EventTimeStamp = \"%H\"\nEventTimeStamp").unwrap();
    assert_eq!(t.format, DEFAULT_TIMESTAMP_FORMAT);
    // Formats are cut to 39 bytes; no room for " %s" then means no microseconds.
    let long = "x".repeat(50);
    let t = ts(&format!("EventTimeStamp = \"{long}\"\nEventPreciseTimeStamp")).unwrap();
    assert_eq!(t.format.len(), 39);
    assert!(!t.precise);
}

#[test]
fn timeouts_all_or_none() {
    let c = parse("TokenTimeout = 1000\nSpread_Segment 127.0.0.255 { a 127.0.0.1 }");
    assert!(c.membership_timeouts().is_err());
    let c = parse(
        "TokenTimeout = 1\nHurryTimeout = 2\nAliveTimeout = 3\nJoinTimeout = 4\nRepTimeout = 5\nSegTimeout = 6\n\
         GatherTimeout = 7\nFormTimeout = 8\nLookupTimeout = 9\nSpread_Segment 127.0.0.255 { a 127.0.0.1 }",
    );
    let t = c.membership_timeouts().unwrap();
    assert_eq!(
        (t.token, t.hurry, t.alive, t.join, t.rep, t.seg, t.gather, t.form, t.lookup),
        (1, 2, 3, 4, 5, 6, 7, 8, 9)
    );
}

#[test]
fn wide_area_defaults_by_segment_count() {
    let c = parse("Spread_Segment 10.0.0.255 { a 10.0.0.1 }\nSpread_Segment 10.0.1.255 { b 10.0.1.1 }");
    assert!(c.wide_area());
    assert_eq!(c.membership_timeouts().unwrap(), Timeouts::WAN);
    // Still the original protocol: AcceleratedRing was not written.
    assert!(!c.accelerated_ring());
    let c = parse(
        "WideAreaNetwork = false\nSpread_Segment 10.0.0.255 { a 10.0.0.1 }\nSpread_Segment 10.0.1.255 { b 10.0.1.1 }",
    );
    assert!(!c.wide_area());
}

#[test]
fn spec_hash_vector_through_the_parser() {
    let c = parse(SPEC_17);
    assert_eq!(c.hash_text.len(), 110);
    assert_eq!(c.hash(), 2_631_608_298);
    let c = parse(&format!("AcceleratedRing = true\n{SPEC_17}"));
    assert_eq!(c.hash(), 1_476_493_733);
}

#[test]
fn embedded_default() {
    let c = config::default_config();
    assert_eq!(c.segments.len(), 1);
    assert_eq!(c.segments[0].port, 4803);
    assert_eq!(c.segments[0].addrs, vec!["127.0.0.255:4803".parse::<SocketAddr>().unwrap()]);
    assert_eq!(c.daemons.len(), 1);
    let d = &c.daemons[0];
    assert_eq!(d.name, "localhost");
    assert_eq!(d.vid, 482_711_334);
    assert_eq!(d.addr, "127.0.0.1:4803".parse::<SocketAddr>().unwrap());
    assert_eq!(d.interfaces[0].kinds, IfType(0xF));
    let me = c.find_me(None).unwrap();
    assert_eq!(me.index, 0);
    let me = c.find_me(Some("localhost")).unwrap();
    assert_eq!(me.daemon.vid, 482_711_334);
}

#[test]
fn find_me_by_name_and_by_address() {
    let c = parse("Spread_Segment 10.1.0.255:47150 {\n a 10.1.0.1\n b 10.1.0.2\n c 10.1.0.3\n}\n");
    let locals: Vec<SocketAddr> =
        vec!["192.168.9.9:0".parse().unwrap(), "10.1.0.2:0".parse().unwrap(), "10.1.0.3:0".parse().unwrap()];
    // By address: the first daemon in conf order with a local address.
    let me = c.find_me_among(None, &locals).unwrap();
    assert_eq!((me.index, me.daemon.name.as_str()), (1, "b"));
    assert_eq!(me.daemon.port(), 47150);
    // By name.
    let me = c.find_me_among(Some("c"), &locals).unwrap();
    assert_eq!(me.index, 2);
    // Named daemon that is not local.
    assert!(c.find_me_among(Some("a"), &locals).unwrap_err().to_string().contains("10.1.0.1"));
    // Unknown name.
    assert!(c.find_me_among(Some("zz"), &locals).unwrap_err().to_string().contains("zz"));
    // No match at all.
    assert!(c.find_me_among(None, &["192.168.9.9:0".parse().unwrap()]).is_err());
    assert!(c.find_me_among(None, &[]).is_err());
}

#[test]
fn find_me_truncates_long_names() {
    let c = parse("Spread_Segment 127.0.0.255 { abcdefghijklmnopqrstuvwxyz 127.0.0.1 }");
    assert_eq!(c.daemons[0].name, "abcdefghijklmnopqrs");
    assert_eq!(c.daemons[0].vid, hash::vid_of_name("abcdefghijklmnopqrs"));
    let me = c.find_me_among(Some("abcdefghijklmnopqrstuvwxyz"), &["127.0.0.1:0".parse().unwrap()]).unwrap();
    assert_eq!(me.index, 0);
}

#[test]
fn find_me_ipv6_takes_local_scope() {
    let c = parse("Spread_Segment [ff02::1]:47160 { six fe80::1 }");
    let locals: Vec<SocketAddr> = vec!["[fe80::1%7]:0".parse().unwrap()];
    let me = c.find_me_among(None, &locals).unwrap();
    match me.daemon.addr {
        SocketAddr::V6(a) => assert_eq!((a.scope_id(), a.port()), (7, 47160)),
        _ => panic!("not v6"),
    }
}

#[test]
fn scope_ids_spread_to_the_ring() {
    let mut c = parse(
        "Spread_Segment [ff02::1]:47160 {\n six fe80::1 { D fe80::1 C fe80::2 C 2001:db8::9 }\n other fe80::3\n}\n",
    );
    let locals: Vec<SocketAddr> = vec!["[fe80::1%7]:0".parse().unwrap(), "[fe80::2%0]:0".parse().unwrap()];
    let me = c.find_me_among(Some("six"), &locals).unwrap();
    let scopes: Vec<u32> = me
        .daemon
        .interfaces
        .iter()
        .map(|i| match i.addr {
            SocketAddr::V6(a) => a.scope_id(),
            _ => 99,
        })
        .collect();
    // Own interface: local scope; second: local has none, so my scope; third: not local.
    assert_eq!(scopes, vec![7, 7, 0]);
    assert_eq!(me.warnings.len(), 1);
    let hash = c.hash();
    c.apply_scope_ids(&me);
    for d in &c.daemons {
        match d.addr {
            SocketAddr::V6(a) => assert_eq!(a.scope_id(), 7),
            _ => panic!("v4"),
        }
    }
    match c.segments[0].addrs[0] {
        SocketAddr::V6(a) => assert_eq!(a.scope_id(), 7),
        _ => panic!("v4"),
    }
    assert_eq!(c.hash(), hash);
}

#[test]
fn local_addresses_include_loopback() {
    let l = config::local_addresses().unwrap();
    assert!(l.iter().any(|a| a.ip().is_loopback()), "{l:?}");
}

#[test]
fn segments_ports_and_interfaces() {
    let c = parse(
        "Spread_Segment 239.1.2.3:47170 239.1.2.4 {\n\
         \tm1 10.0.0.1 { D 10.0.0.1 C 192.168.0.4 }\n\
         \tm2 10.0.0.2 { 10.0.0.2 M C 127.0.0.1 }\n\
         \tm3 10.0.0.3 { D 10.0.0.3 C 0.0.0.0 }\n}\n",
    );
    let s = &c.segments[0];
    assert_eq!(s.addrs, vec!["239.1.2.3:47170".parse::<SocketAddr>().unwrap(), "239.1.2.4:47170".parse().unwrap()]);
    let m1 = &c.daemons[0];
    assert!(m1.explicit_interfaces);
    assert_eq!(m1.interfaces[1].addr, "192.168.0.4:47170".parse::<SocketAddr>().unwrap());
    assert!(m1.interfaces[1].kinds.is_client() && !m1.interfaces[1].kinds.is_daemon());
    let m2 = &c.daemons[1];
    assert_eq!(m2.interfaces[0].kinds, IfType::ALL);
    assert_eq!(m2.interfaces[1].kinds, IfType(IfType::MONITOR.0 | IfType::CLIENT.0));
    assert_eq!((m2.seg_index, m2.index_in_seg), (0, 1));
    assert_eq!(c.index_by_vid(c.daemons[2].vid), Some(2));
    assert_eq!(c.index_by_name("m2"), Some(1));
}

#[test]
fn reload_keeps_slot_vids() {
    // Spec §1.9, confirmed on the real daemon: `loc` inherits the VID that
    // `xx` had in the same slot.
    assert_eq!(hash::vid_of_name("xx"), 3_956_850_304);
    assert_eq!(hash::vid_of_name("loc"), 4_041_872_296);
    let first = parse("Spread_Segment 127.0.0.255:47180 { xx 127.0.0.2 ; loc 127.0.0.1 }");
    let re = config::parse_str_reload("Spread_Segment 127.0.0.255:47180 { loc 127.0.0.1 }", "t.conf", &first).unwrap();
    assert_eq!(re.daemons[0].vid, 3_956_850_304);
}

#[test]
fn reload_switches_to_accelerated_hash() {
    // Spec §1.9: a reload of an unchanged single-segment file without the
    // keyword hashes (and runs) "Accelerated Ring".
    let first = parse(SPEC_17);
    assert_eq!(first.hash(), 2_631_608_298);
    assert!(!first.accelerated_ring());
    let re = config::parse_str_reload(SPEC_17, "t.conf", &first).unwrap();
    assert_eq!(re.hash(), 1_476_493_733);
    assert!(re.accelerated_ring());
    // A multi-segment (wide area) file stays on the original ring.
    let two = "Spread_Segment 10.0.0.255 { a 10.0.0.1 }\nSpread_Segment 10.0.1.255 { b 10.0.1.1 }\n";
    let first = parse(two);
    let re = config::parse_str_reload(two, "t.conf", &first).unwrap();
    assert_eq!(re.hash(), first.hash());
    // Parameters not repeated in the new file keep their old values.
    let first = parse(&format!("Window = 300\n{SPEC_17}"));
    let re = config::parse_str_reload(SPEC_17, "t.conf", &first).unwrap();
    assert_eq!(re.window, 300);
}

#[test]
fn offline_resolver_reads_numbers_like_the_c_library() {
    let v4 = |s: &str| config::offline_resolver(s).unwrap()[0];
    assert_eq!(v4("127.000.0.1"), "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(v4("127.1"), "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(v4("::ffff:1.2.3.4"), "::ffff:1.2.3.4".parse::<std::net::IpAddr>().unwrap());
    assert!(config::offline_resolver("no-such-host-h4").is_err());
    // Address-only entry whose text is not a dotted quad the lexer accepts.
    let c = parse("Spread_Segment 255.255.255.255 { 127.000.0.1 VirtualID = 1 }");
    assert_eq!(c.daemons[0].name, "127.000.0.1");
    assert_eq!(c.daemons[0].ip(), "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
}
