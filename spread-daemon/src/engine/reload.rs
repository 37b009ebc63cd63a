//! A configuration reload through the whole engine (daemon spec §1.9): the
//! trigger, the wait for the ring's OP state, and what each layer takes from
//! the new file.
//!
//! The engine reads no file. A reload is asked for ([`Engine::request_reload`]:
//! the monitor's RELOAD packet, SIGHUP); once [`Engine::reload_due`] says the
//! ordering protocol can take one (the ring only in OP; asked at another
//! time, the request waits, as the original's "reload pending" flag does),
//! the driver reads and checks the file ([`crate::config::reload`]) and
//! hands the outcome to [`Engine::apply_reload`] or, refused, to
//! [`Engine::reload_refused`].
//!
//! Taken live: the daemon list and its order (sessions, groups, ring), the
//! hash, `Window`/`PersonalWindow`/`AcceleratedWindow`/`AcceleratedRing`,
//! the monitor's hosts and `DangerousMonitor`, `MaxSessionMessages`,
//! `MaxSessionBytes` and `MaxQueuedBytes`.

use std::time::Instant;

use super::monitor::MonitorConfig;
use super::{Engine, Ordering};
use crate::config::Config;

/// A new configuration that may be taken.
#[derive(Clone, Debug)]
pub struct Reload {
    pub config: Config,
    /// This daemon's proc index in it.
    pub me: usize,
    /// A daemon that stays changed identity or addresses: go alone first.
    pub singleton: bool,
}

impl<O: Ordering> Engine<O> {
    /// Re-read the configuration as soon as the ordering protocol allows.
    pub fn request_reload(&mut self) {
        self.reload_requested = true;
    }

    /// A reload was asked for and may run now.
    pub fn reload_due(&self) -> bool {
        self.reload_requested && self.ordering.reload_ready()
    }

    /// The file could not be taken: the request is over, nothing changed.
    pub fn reload_refused(&mut self) {
        self.reload_requested = false;
    }

    /// Take `r` (call when [`Engine::reload_due`]).
    pub fn apply_reload(&mut self, now: Instant, r: &Reload) {
        self.reload_requested = false;
        self.now = Some(now);
        let conf = &r.config;
        // This daemon's own name and VID cannot change (such a file is
        // refused), so sessions keep their private names.
        if conf.daemons.get(r.me).is_none_or(|d| d.vid != self.cfg.vid) {
            return;
        }
        self.cfg.daemons = conf.daemons.iter().map(|d| d.name_bytes.clone()).collect();
        self.cfg.daemon_vids = conf.daemons.iter().map(|d| d.vid).collect();
        self.cfg.max_session_messages = conf.max_session_messages.max(1) as usize;
        self.cfg.max_session_bytes = conf.max_session_bytes.max(1) as usize;
        self.cfg.max_queued_bytes = conf.max_queued_bytes.max(1) as usize;
        self.groups.reconfigure(self.cfg.daemons.clone(), self.cfg.daemon_vids.clone(), r.me);
        if let Some(m) = self.monitor.as_mut() {
            m.reconfigure(MonitorConfig::from_config(conf, r.me));
        }
        self.ordering.reload(now, conf, r.me, r.singleton);
        self.deliver_ready();
    }
}
