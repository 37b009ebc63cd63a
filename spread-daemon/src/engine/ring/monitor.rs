//! What the monitor (`spmonitor`, daemon spec §8) sees of the ring and what
//! it may set on it: the ring's figures of a status reply (§8.4), the
//! monitor's partition (two daemons exchange data, membership packets and
//! tokens only while their partition numbers are equal: `In_my_component`),
//! and flow control (Window, PersonalWindow, AcceleratedWindow).
//!
//! The control packets themselves are read and checked by
//! [`crate::engine::monitor`]; this module only applies them.

use spread_wire::daemon::Status;

use super::Ring;

impl Ring {
    /// The ring's part of a status reply: membership state, packet and
    /// retransmission counters, sequence numbers, ring and flow-control
    /// figures. Counters that overflow an `i32`/`i16` wrap as the
    /// original's do.
    pub fn fill_status(&self, s: &mut Status) {
        let st = &self.stats;
        s.state = self.memb.state as i32;
        s.packet_sent = st.packets_sent as i32;
        s.packet_recv = st.packets_recv as i32;
        s.packet_delivered = st.packets_delivered as i32;
        s.retrans = st.retrans as i32;
        s.u_retrans = st.u_retrans as i32;
        s.s_retrans = st.s_retrans as i32;
        s.b_retrans = st.b_retrans as i32;
        s.aru = self.tok.aru;
        s.my_aru = self.tok.my_aru;
        s.highest_seq = self.tok.highest_seq;
        s.token_hurry = st.token_hurry as i32;
        s.token_rounds = self.tok.token_rounds;
        s.my_id = self.my_vid() as i32;
        s.leader_id = self.memb.id.proc_id;
        s.membership_changes = st.membership_changes as i16;
        // Of the regular configuration: its daemons and its non-empty segments.
        let members = self.memb.reg_members.as_slice();
        s.num_procs = members.len() as i16;
        let mut segs: Vec<usize> = members.iter().map(|&p| self.topo.procs[p].seg).collect();
        segs.sort_unstable();
        segs.dedup();
        s.num_segments = segs.len() as i16;
        s.window = self.params.window as i16;
        s.personal_window = self.params.personal_window as i16;
        s.accelerated_ring = self.params.accelerated as i16;
        s.accelerated_window = self.params.accelerated_window as i16;
    }

    /// Adopt a monitor partition: `p[i]` is the component of proc index `i`
    /// (entries past the configured daemons are ignored, missing ones are
    /// 0). All zeros: no partition.
    /// During the singleton step of a reload the partition is the
    /// reload's, and a monitor's is ignored (§8.2).
    pub fn set_partition(&mut self, p: &[i16]) {
        if self.reload_singleton {
            return;
        }
        let n = self.topo.procs.len();
        self.partition.clear();
        self.partition.extend((0..n).map(|i| p.get(i).copied().unwrap_or(0)));
        if self.partition.iter().all(|&c| c == 0) {
            self.partition.clear();
        }
    }

    /// The monitor partition in force (empty: none).
    pub fn partition(&self) -> &[i16] {
        &self.partition
    }

    /// `In_my_component`: may packets of proc index `p` be taken?
    pub(crate) fn in_my_component(&self, p: usize) -> bool {
        self.partition.is_empty() || self.partition.get(p) == self.partition.get(self.topo.me)
    }

    /// Monitor flow control: the new Window, PersonalWindow and
    /// AcceleratedWindow (`None`: unchanged).
    pub fn set_flow_control(&mut self, window: Option<i16>, personal: Option<i16>, accelerated: Option<i16>) {
        if let Some(w) = window {
            self.params.window = w as i32;
        }
        if let Some(w) = personal {
            self.params.personal_window = w as i32;
        }
        if let Some(w) = accelerated {
            self.params.accelerated_window = w as i32;
        }
    }
}
