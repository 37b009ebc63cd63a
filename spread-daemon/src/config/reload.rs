//! What a configuration reload means for a running daemon (§1.9): compare the
//! configuration in force with the one just read (by
//! [`super::parse_str_reload`]) and decide whether this daemon must exit,
//! must first fall back to a singleton ring, or can simply go on
//! ([`reload_outcome`], the original's decision), and what ours makes of it
//! ([`check`]: a change the original exits on is refused instead).

use std::net::SocketAddr;

use super::{Config, Daemon, Segment};

/// The decision after a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// This daemon itself changed (or vanished): the original exits.
    Exit(String),
    /// Some surviving daemon changed identity or addressing: partition down
    /// to a singleton ring, then merge again.
    Singleton(String),
    /// Only additions/removals: a normal membership change follows.
    Continue,
}

fn same_addr(a: &SocketAddr, b: &SocketAddr, with_scope: bool) -> bool {
    if a.ip() != b.ip() || a.port() != b.port() {
        return false;
    }
    match (a, b) {
        (SocketAddr::V6(x), SocketAddr::V6(y)) if with_scope => x.scope_id() == y.scope_id(),
        _ => true,
    }
}

/// Why `new` differs from `old` in identity or networking, if it does. For
/// this daemon (`me`) IPv6 scope ids are compared too, as the original does.
fn daemon_change(new: &Daemon, new_seg: &Segment, old: &Daemon, old_seg: &Segment, me: bool) -> Option<String> {
    if new.name_bytes != old.name_bytes
        || !same_addr(&new.addr, &old.addr, false)
        || new.vid != old.vid
        || new.interfaces.len() != old.interfaces.len()
    {
        return Some(format!(
            "daemon parameters changed: was '{}' {} vid {} with {} interface(s), now '{}' {} vid {} with {} interface(s)",
            old.name,
            old.addr,
            old.vid,
            old.interfaces.len(),
            new.name,
            new.addr,
            new.vid,
            new.interfaces.len()
        ));
    }
    for (n, o) in new.interfaces.iter().zip(&old.interfaces) {
        if n.kinds != o.kinds || !same_addr(&n.addr, &o.addr, me) {
            return Some(format!(
                "interfaces of '{}' changed: was {:#x} {}, now {:#x} {}",
                new.name, o.kinds.0, o.addr, n.kinds.0, n.addr
            ));
        }
    }
    let segs_same = new_seg.addrs.len() == old_seg.addrs.len()
        && new_seg.addrs.iter().zip(&old_seg.addrs).all(|(a, b)| same_addr(a, b, me));
    if !segs_same {
        return Some(format!("segment addresses of '{}' changed", new.name));
    }
    None
}

/// Decide what a reload from `old` to `new` means for this daemon: `old_me`
/// is its proc index in `old`, `new_me` the one [`Config::find_me`] gives in
/// `new` (found again by `-n` name or local address, like the original).
pub fn reload_outcome(old: &Config, old_me: usize, new: &Config, new_me: usize) -> ReloadOutcome {
    let Some(op) = old.daemons.get(old_me) else {
        return ReloadOutcome::Exit(format!("proc index {old_me} is not in the previous configuration"));
    };
    let Some(np) = new.daemons.get(new_me) else {
        return ReloadOutcome::Exit(format!("proc index {new_me} is not in the new configuration"));
    };
    let (Some(nseg), Some(oseg)) = (new.segments.get(np.seg_index), old.segments.get(op.seg_index)) else {
        return ReloadOutcome::Exit("segment index out of range".to_string());
    };
    if let Some(why) = daemon_change(np, nseg, op, oseg, true) {
        return ReloadOutcome::Exit(format!("this daemon changed: {why}"));
    }
    if oseg.daemons.len() == 1 && nseg.daemons.len() > 1 {
        return ReloadOutcome::Exit(
            "my segment grew from one daemon to several: its segment sockets were never opened".to_string(),
        );
    }
    for np in &new.daemons {
        let by_name = old.index_by_name_bytes(&np.name_bytes);
        let by_vid = old.index_by_vid(np.vid);
        match (by_name, by_vid) {
            (None, None) => continue,
            (Some(i), Some(j)) if i == j => {
                let op = &old.daemons[i];
                let (Some(ns), Some(os)) = (new.segments.get(np.seg_index), old.segments.get(op.seg_index)) else {
                    return ReloadOutcome::Singleton("segment index out of range".to_string());
                };
                if let Some(why) = daemon_change(np, ns, op, os, false) {
                    return ReloadOutcome::Singleton(why);
                }
            }
            _ => {
                return ReloadOutcome::Singleton(format!(
                    "'{}' (vid {}) matches different old daemons by name and by VID",
                    np.name, np.vid
                ));
            }
        }
    }
    ReloadOutcome::Continue
}

/// A new configuration that can be taken live ([`check`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Partition down to a singleton ring first ([`ReloadOutcome::Singleton`]).
    pub singleton: bool,
    /// Why, when `singleton`.
    pub why: Option<String>,
    /// Settings that changed in the file but are read only at start-up
    /// (the keywords, for the log).
    pub restart_only: Vec<&'static str>,
}

/// Can the daemon running `old` as proc index `old_me` take `new`, in which
/// it is proc index `new_me`, without a restart? `alone`: it was started as
/// the only daemon of its file and runs no ring (no daemon sockets).
///
/// Where the original exits (this daemon's own name, address, VID,
/// interfaces or segment changed; its segment grew from one daemon to
/// several) ours refuses the file and keeps running on `old`; the `Err`
/// text starts with the original's words.
pub fn check(old: &Config, old_me: usize, new: &Config, new_me: usize, alone: bool) -> Result<Accepted, String> {
    let singleton = match reload_outcome(old, old_me, new, new_me) {
        ReloadOutcome::Exit(why) => {
            return Err(format!("Conf_reload_initiate: My daemon parameters have changed! ({why})"));
        }
        ReloadOutcome::Singleton(why) => Some(why),
        ReloadOutcome::Continue => None,
    };
    if alone && new.daemons.len() > 1 {
        return Err(format!(
            "this daemon was started as the only daemon of its configuration and runs no ring; \
             the new file lists {} daemons, which needs a restart",
            new.daemons.len()
        ));
    }
    let mut restart_only = Vec::new();
    let mut note = |changed: bool, what: &'static str| {
        if changed {
            restart_only.push(what);
        }
    };
    note(old.timeouts != new.timeouts, "the membership timeouts (TokenTimeout … LookupTimeout)");
    note(old.wide_area_network_setting != new.wide_area_network_setting, "WideAreaNetwork");
    note(old.event_timestamp != new.event_timestamp, "EventTimeStamp / EventPreciseTimeStamp");
    note(old.event_log_format != new.event_log_format, "EventLogFormat");
    note(old.auth != new.auth, "AllowedAuthMethods / RequiredAuthMethods");
    note(old.access_control_policy != new.access_control_policy, "AccessControlPolicy");
    note(
        old.runtime_dir != new.runtime_dir
            || old.daemon_user != new.daemon_user
            || old.daemon_group != new.daemon_group,
        "RuntimeDir / DaemonUser / DaemonGroup",
    );
    note(old.socket_port_reuse != new.socket_port_reuse, "SocketPortReuse");
    note(old.active_ip_version != new.active_ip_version, "ActiveIPVersion");
    note(old.ignore_multicast_join_errors != new.ignore_multicast_join_errors, "IgnoreMulticastJoinErrors");
    note(old.metrics_address != new.metrics_address, "MetricsAddress");
    Ok(Accepted { singleton: singleton.is_some(), why: singleton, restart_only })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{offline_resolver, parse_str_reload, parse_str_with_resolver};

    fn first(t: &str) -> Config {
        parse_str_with_resolver(t, "a", &offline_resolver).unwrap()
    }

    #[test]
    fn outcomes() {
        let base = "Spread_Segment 127.0.0.255:47190 { a 127.0.0.1 VirtualID = 1 b 127.0.0.2 VirtualID = 2 }";
        let old = first(base);
        let me = 0;
        let same = parse_str_reload(base, "a", &old).unwrap();
        assert_eq!(reload_outcome(&old, me, &same, me), ReloadOutcome::Continue);

        let added = parse_str_reload(
            "Spread_Segment 127.0.0.255:47190 { a 127.0.0.1 VirtualID = 1 b 127.0.0.2 VirtualID = 2 c 127.0.0.3 VirtualID = 3 }",
            "a",
            &old,
        )
        .unwrap();
        assert_eq!(reload_outcome(&old, me, &added, me), ReloadOutcome::Continue);

        let removed =
            parse_str_reload("Spread_Segment 127.0.0.255:47190 { a 127.0.0.1 VirtualID = 1 }", "a", &old).unwrap();
        assert_eq!(reload_outcome(&old, me, &removed, me), ReloadOutcome::Continue);

        let moved = parse_str_reload(
            "Spread_Segment 127.0.0.255:47190 { a 127.0.0.1 VirtualID = 1 b 127.0.0.9 VirtualID = 2 }",
            "a",
            &old,
        )
        .unwrap();
        assert!(matches!(reload_outcome(&old, me, &moved, me), ReloadOutcome::Singleton(_)));

        let renamed_vid = parse_str_reload(
            "Spread_Segment 127.0.0.255:47190 { a 127.0.0.1 VirtualID = 1 b 127.0.0.2 VirtualID = 5 }",
            "a",
            &old,
        )
        .unwrap();
        assert!(matches!(reload_outcome(&old, me, &renamed_vid, me), ReloadOutcome::Singleton(_)));

        let me_moved = parse_str_reload(
            "Spread_Segment 127.0.0.255:47190 { a 127.0.0.5 VirtualID = 1 b 127.0.0.2 VirtualID = 2 }",
            "a",
            &old,
        )
        .unwrap();
        assert!(matches!(reload_outcome(&old, me, &me_moved, me), ReloadOutcome::Exit(_)));

        // Found again by address at another slot with another VID.
        let me_vid = parse_str_reload(
            "Spread_Segment 127.0.0.255:47190 { b 127.0.0.2 VirtualID = 2 a 127.0.0.1 VirtualID = 7 }",
            "a",
            &old,
        )
        .unwrap();
        assert!(matches!(reload_outcome(&old, me, &me_vid, 1), ReloadOutcome::Exit(_)));

        let seg_changed = parse_str_reload(
            "Spread_Segment 127.0.1.255:47190 { a 127.0.0.1 VirtualID = 1 b 127.0.0.2 VirtualID = 2 }",
            "a",
            &old,
        )
        .unwrap();
        assert!(matches!(reload_outcome(&old, me, &seg_changed, me), ReloadOutcome::Exit(_)));
    }

    #[test]
    fn singleton_segment_growing_is_fatal() {
        let old = first("Spread_Segment 127.0.0.255:47191 { a 127.0.0.1 }");
        let new = parse_str_reload("Spread_Segment 127.0.0.255:47191 { a 127.0.0.1 b 127.0.0.2 }", "a", &old).unwrap();
        assert!(matches!(reload_outcome(&old, 0, &new, 0), ReloadOutcome::Exit(_)));
    }

    #[test]
    fn slot_vid_quirk_makes_reload_exit() {
        // §1.9: removing a daemon before me without explicit VIDs gives me the
        // removed daemon's VID in the new table: "my parameters changed".
        let old = first("Spread_Segment 127.0.0.255:47192 { xx 127.0.0.2 ; loc 127.0.0.1 }");
        let new = parse_str_reload("Spread_Segment 127.0.0.255:47192 { loc 127.0.0.1 }", "a", &old).unwrap();
        match reload_outcome(&old, 1, &new, 0) {
            ReloadOutcome::Exit(why) => {
                assert!(why.contains("vid 4041872296") && why.contains("vid 3956850304"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn check_refuses_what_the_original_exits_on_and_names_restart_only_settings() {
        let base = "Spread_Segment 127.0.0.255:47193 { a 127.0.0.1 VirtualID = 1 b 127.0.0.2 VirtualID = 2 }";
        let old = first(base);
        let me_moved = parse_str_reload(
            "Spread_Segment 127.0.0.255:47193 { a 127.0.0.5 VirtualID = 1 b 127.0.0.2 VirtualID = 2 }",
            "a",
            &old,
        )
        .unwrap();
        let e = check(&old, 0, &me_moved, 0, false).unwrap_err();
        assert!(e.starts_with("Conf_reload_initiate: My daemon parameters have changed!"), "{e}");

        let timeouts = parse_str_reload(
            &format!(
                "{base}\nTokenTimeout = 900\nHurryTimeout = 300\nAliveTimeout = 200\nJoinTimeout = 200\n\
                 RepTimeout = 600\nSegTimeout = 300\nGatherTimeout = 1100\nFormTimeout = 1100\n\
                 LookupTimeout = 15000\nMaxSessionMessages = 20"
            ),
            "a",
            &old,
        )
        .unwrap();
        let ok = check(&old, 0, &timeouts, 0, false).unwrap();
        assert!(!ok.singleton);
        assert_eq!(ok.restart_only.len(), 1, "{:?}", ok.restart_only);
        assert!(ok.restart_only[0].contains("timeouts"));
        assert_eq!(check(&old, 0, &old, 0, false).unwrap().restart_only, Vec::<&str>::new());

        let renamed = parse_str_reload(
            "Spread_Segment 127.0.0.255:47193 { a 127.0.0.1 VirtualID = 1 c 127.0.0.2 VirtualID = 2 }",
            "a",
            &old,
        )
        .unwrap();
        let ok = check(&old, 0, &renamed, 0, false).unwrap();
        assert!(ok.singleton && ok.why.is_some());
    }

    #[test]
    fn a_daemon_started_alone_refuses_a_file_with_others() {
        let old = first("Spread_Segment 127.0.0.255:47194 { a 127.0.0.1 }");
        let same = parse_str_reload("Spread_Segment 127.0.0.255:47194 { a 127.0.0.1 }", "a", &old).unwrap();
        assert!(check(&old, 0, &same, 0, true).is_ok());
        let more = parse_str_reload(
            "Spread_Segment 127.0.0.255:47194 { a 127.0.0.1 }\nSpread_Segment 127.0.1.255:47194 { b 127.0.1.1 }",
            "a",
            &old,
        )
        .unwrap();
        let e = check(&old, 0, &more, 0, true).unwrap_err();
        assert!(e.contains("needs a restart"), "{e}");
    }
}
