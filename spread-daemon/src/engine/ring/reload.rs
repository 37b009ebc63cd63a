//! A configuration reload on the ring (daemon spec §1.9,
//! `protocol.c:Prot_initiate_conf_reload`).
//!
//! Whether a new spread.conf may be taken at all is decided above the ring
//! ([`crate::config::reload`]); this module applies one that may:
//!
//! * it runs only in OP ([`Ring::reload_ready`]); asked at another time, the
//!   caller keeps the request and asks again once the ring is back in OP, as
//!   the original does with its "reload pending" flag;
//! * the daemons are renumbered by VID: the configurations, stored packets
//!   and partial messages follow their daemons into the new table, and what
//!   removed daemons sent is still delivered (by their VID);
//! * the new hash, windows and ring discipline take effect at once (the
//!   original's `FC_init` re-reads them); timeouts and `WideAreaNetwork` stay
//!   as they were, as in 5.0.1;
//! * any monitor partition is cleared (`Net_signal_conf_reload`);
//! * when a daemon that stays changed its identity or addresses, every
//!   daemon first goes alone (a partition that puts each in its own
//!   component, which the monitor may not change meanwhile) and merges
//!   again as soon as that singleton ring is installed;
//! * then the token is dropped on purpose: the membership round that
//!   follows forms the ring of the new configuration with whoever runs it
//!   too (daemons still on the old file have another hash and stay apart).

use std::time::Instant;

use super::timers::Timer;
use super::{Members, Params, Ring, State, Topology};
use crate::config::Config;

impl Ring {
    /// A reload may run now: the ring is in OP.
    pub fn reload_ready(&self) -> bool {
        self.memb.state == State::Op
    }

    /// While true, the ring is alone on purpose after a reload that changed
    /// a surviving daemon, and merges once that singleton ring is installed.
    pub fn in_reload_singleton(&self) -> bool {
        self.reload_singleton
    }

    /// Take the configuration `cfg`, in which this daemon is proc index `me`
    /// (see the module documentation); `singleton`: partition down to a ring
    /// of one first. Call only when [`Ring::reload_ready`].
    pub fn reload(&mut self, now: Instant, cfg: &Config, me: usize, singleton: bool) {
        self.now = now;
        let topo = Topology::from_config(cfg, me);
        let map: Vec<(u32, Option<usize>)> = self.topo.procs.iter().map(|p| (p.vid, topo.index_of(p.vid))).collect();
        let renumber = |m: &Members| -> Members {
            Members::new(m.as_slice().iter().filter_map(|&p| map.get(p).and_then(|e| e.1)).collect())
        };
        let memb = &mut self.memb;
        memb.members = renumber(&memb.members);
        memb.future = renumber(&memb.future);
        memb.reg_members = renumber(&memb.reg_members);
        memb.net_members = renumber(&memb.net_members);
        for m in [&mut memb.members, &mut memb.reg_members, &mut memb.net_members] {
            if !m.contains(me) {
                let mut v = m.as_slice().to_vec();
                v.push(me);
                *m = Members::new(v);
            }
        }
        self.tok.renumber(&map, topo.procs.len());
        self.topo = topo;

        let fresh = Params::from_config(cfg);
        let p = &mut self.params;
        p.hash = fresh.hash;
        p.window = fresh.window;
        p.personal_window = fresh.personal_window;
        p.accelerated = fresh.accelerated;
        p.accelerated_window = fresh.accelerated_window;

        self.partition.clear();
        self.reload_singleton = singleton;
        if singleton {
            // Every daemon in a component of its own: the index itself.
            self.partition = (0..self.topo.procs.len()).map(|i| i as i16).collect();
        }
        tracing::info!(
            target: "spread::prot",
            "Prot_initiate_conf_reload: {} daemons configured, hash {}{}; starting a membership change",
            self.topo.procs.len(),
            self.params.hash,
            if singleton { ", partitioned down to a singleton ring first" } else { "" }
        );
        self.token_loss(now);
    }

    /// A regular configuration was installed: if it ends the singleton step
    /// of a reload, drop the partition and look for the others at once.
    pub(crate) fn reload_singleton_installed(&mut self, now: Instant) {
        if !self.reload_singleton {
            return;
        }
        if self.memb.members.len() != 1 {
            tracing::warn!(
                target: "spread::prot",
                "Discard_packets: the ring installed during a reload has {} daemons, not 1; merging anyway",
                self.memb.members.len()
            );
        }
        self.reload_singleton = false;
        self.partition.clear();
        self.timers.arm(Timer::Lookup, now);
    }
}
