//! Who is where: the configured daemons and segments, the current ring
//! configuration, ring order (successor, predecessor, leaders) and where each
//! send primitive puts its datagrams (daemon spec §2.2, §2.4).

use std::net::SocketAddr;

use crate::config::Config;

/// One configured daemon as the ring sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub vid: u32,
    /// The configured name (log lines only).
    pub name: String,
    /// Address with the daemon's segment port `P` (the token goes to `P+1`).
    pub addr: SocketAddr,
    pub seg: usize,
    /// Position within its segment.
    pub seg_pos: usize,
}

/// One segment: its broadcast/multicast addresses and its daemons (proc
/// indexes, conf order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seg {
    pub addrs: Vec<SocketAddr>,
    pub procs: Vec<usize>,
}

/// The static part of the configuration plus "who am I".
#[derive(Clone, Debug)]
pub struct Topology {
    pub procs: Vec<Proc>,
    pub segs: Vec<Seg>,
    /// My proc index.
    pub me: usize,
}

/// A ring configuration: a set of proc indexes, kept in conf order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members(Vec<usize>);

impl Members {
    /// From any proc indexes (sorted and de-duplicated: conf order).
    pub fn new(mut v: Vec<usize>) -> Members {
        v.sort_unstable();
        v.dedup();
        Members(v)
    }
    pub fn contains(&self, p: usize) -> bool {
        self.0.binary_search(&p).is_ok()
    }
    pub fn as_slice(&self) -> &[usize] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The ring leader (`Conf_leader`): first member in conf order.
    pub fn leader(&self) -> Option<usize> {
        self.0.first().copied()
    }
}

impl Topology {
    pub fn from_config(cfg: &Config, me: usize) -> Topology {
        let procs = cfg
            .daemons
            .iter()
            .map(|d| Proc { vid: d.vid, name: d.name.clone(), addr: d.addr, seg: d.seg_index, seg_pos: d.index_in_seg })
            .collect();
        let segs = cfg.segments.iter().map(|s| Seg { addrs: s.addrs.clone(), procs: s.daemons.clone() }).collect();
        Topology { procs, segs, me }
    }

    pub fn my_vid(&self) -> u32 {
        self.procs[self.me].vid
    }

    pub fn my_seg(&self) -> usize {
        self.procs[self.me].seg
    }

    pub fn index_of(&self, vid: u32) -> Option<usize> {
        self.procs.iter().position(|p| p.vid == vid)
    }

    /// Segment with more than one configured daemon: sends to it go to its
    /// segment addresses ("Bcast_needed").
    pub fn seg_is_shared(&self, seg: usize) -> bool {
        self.segs.get(seg).is_some_and(|s| s.procs.len() > 1)
    }

    /// First daemon of `seg` present in `m` (the segment leader).
    pub fn seg_leader(&self, m: &Members, seg: usize) -> Option<usize> {
        self.segs.get(seg)?.procs.iter().copied().find(|&p| m.contains(p))
    }

    /// Last daemon of `seg` present in `m` (`Conf_seg_last`).
    pub fn seg_last(&self, m: &Members, seg: usize) -> Option<usize> {
        self.segs.get(seg)?.procs.iter().rev().copied().find(|&p| m.contains(p))
    }

    /// Ring successor of `p` in `m` (§2.4). Members are in conf order and
    /// conf order is segment order then order within the segment, so the
    /// successor is simply the next member, wrapping around.
    pub fn successor(&self, m: &Members, p: usize) -> usize {
        let s = m.as_slice();
        match s.iter().position(|&x| x == p) {
            Some(i) => s[(i + 1) % s.len()],
            None => p,
        }
    }

    /// Ring predecessor (`Conf_previous`).
    pub fn predecessor(&self, m: &Members, p: usize) -> usize {
        let s = m.as_slice();
        match s.iter().position(|&x| x == p) {
            Some(i) => s[(i + s.len() - 1) % s.len()],
            None => p,
        }
    }

    /// Address of `p`'s data port `P`.
    pub fn data_addr(&self, p: usize) -> SocketAddr {
        self.procs[p].addr
    }

    /// Address of `p`'s token port `P+1`.
    pub fn token_addr(&self, p: usize) -> SocketAddr {
        let mut a = self.procs[p].addr;
        a.set_port(a.port().wrapping_add(1));
        a
    }

    /// `Net_bcast`: one datagram per other non-empty segment (to its leader,
    /// ROUTED) and, when my segment is shared, one per own segment address.
    /// Calls `out(addr, routed)`.
    pub fn bcast(&self, m: &Members, mut out: impl FnMut(SocketAddr, bool)) {
        let mine = self.my_seg();
        for seg in 0..self.segs.len() {
            if seg == mine {
                continue;
            }
            if let Some(l) = self.seg_leader(m, seg) {
                out(self.data_addr(l), true);
            }
        }
        if self.seg_is_shared(mine) {
            for &a in &self.segs[mine].addrs {
                out(a, false);
            }
        }
    }

    /// `Net_scast(seg)`: my own segment → its addresses (only when shared);
    /// another segment → its leader in `m`, ROUTED.
    pub fn scast(&self, m: &Members, seg: usize, mut out: impl FnMut(SocketAddr, bool)) {
        if seg == self.my_seg() {
            if self.seg_is_shared(seg) {
                for &a in &self.segs[seg].addrs {
                    out(a, false);
                }
            }
        } else if let Some(l) = self.seg_leader(m, seg) {
            out(self.data_addr(l), true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(segs: &[usize]) -> Topology {
        let mut procs = Vec::new();
        let mut ss = Vec::new();
        for (si, &n) in segs.iter().enumerate() {
            let mut s = Seg { addrs: vec![format!("10.0.{si}.255:4803").parse().unwrap()], procs: vec![] };
            for k in 0..n {
                s.procs.push(procs.len());
                procs.push(Proc {
                    vid: 100 + procs.len() as u32,
                    name: format!("p{}", procs.len()),
                    addr: format!("10.0.{si}.{}:4803", k + 1).parse().unwrap(),
                    seg: si,
                    seg_pos: k,
                });
            }
            ss.push(s);
        }
        Topology { procs, segs: ss, me: 0 }
    }

    #[test]
    fn successor_wraps_through_segments_skipping_absent_daemons() {
        let t = topo(&[2, 0, 3]);
        let m = Members::new(vec![4, 0, 3]);
        assert_eq!(t.successor(&m, 0), 3);
        assert_eq!(t.successor(&m, 3), 4);
        assert_eq!(t.successor(&m, 4), 0);
        assert_eq!(t.predecessor(&m, 0), 4);
        assert_eq!(m.leader(), Some(0));
        assert_eq!(t.seg_leader(&m, 2), Some(3));
        assert_eq!(t.seg_last(&m, 2), Some(4));
    }

    #[test]
    fn bcast_routes_to_other_segment_leaders_and_own_segment_addresses() {
        let t = topo(&[2, 1, 3]);
        let m = Members::new(vec![0, 1, 2, 4, 5]);
        let mut got = Vec::new();
        t.bcast(&m, |a, r| got.push((a.to_string(), r)));
        assert_eq!(
            got,
            vec![("10.0.1.1:4803".into(), true), ("10.0.2.2:4803".into(), true), ("10.0.0.255:4803".into(), false)]
        );
        let t1 = topo(&[1, 1]);
        let mut got = Vec::new();
        t1.bcast(&Members::new(vec![0, 1]), |a, r| got.push((a.to_string(), r)));
        assert_eq!(got, vec![("10.0.1.1:4803".into(), true)], "a singleton segment never broadcasts");
    }
}
