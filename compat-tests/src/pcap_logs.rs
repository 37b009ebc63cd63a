//! The client API logs of the pcap recording (`pcap/logs/api_*.jsonl` of
//! [`crate::paths::ref_dir`]) as comparable receipts, and the same view of a
//! daemon→client frame read by a raw client: what `SP_receive` returns
//! (service type without the endian marker, sender, groups, mess_type from
//! the hint, body).

use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

use crate::frames;
use crate::hex;
use crate::transcript;

/// Ring A's id in the recording: (VID of d1, time). The time is the only
/// per-run value in the recorded membership bodies.
pub const RECORDED_RING_PROC: u32 = 0x5c8d_7aef;
pub const RECORDED_RING_TIME: u32 = 0x6b02_fea4;

/// One message as the library's `SP_receive` reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct Receipt {
    pub service_type: u32,
    pub sender: String,
    pub groups: Vec<String>,
    pub mess_type: i16,
    pub body: Vec<u8>,
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{type {:#010x} sender {:?} groups {:?} mess_type {} body {}}}",
            self.service_type,
            self.sender,
            self.groups,
            self.mess_type,
            hex::short(&self.body, 60)
        )
    }
}

impl Receipt {
    pub fn is_membership(&self) -> bool {
        self.service_type & frames::REG_MEMB_MESS != 0
    }

    /// The gid of a regular membership body: (proc_id, time, index).
    pub fn gid(&self) -> Option<(u32, u32, u32)> {
        if !self.is_membership() || self.body.len() < 12 {
            return None;
        }
        let w =
            |at: usize| u32::from_le_bytes([self.body[at], self.body[at + 1], self.body[at + 2], self.body[at + 3]]);
        Some((w(0), w(4), w(8)))
    }

    /// This receipt with the gid time of a membership body replaced: `from`
    /// (the recorded ring time) becomes `to`. Nothing else changes.
    pub fn with_ring_time(mut self, from: u32, to: u32) -> Receipt {
        if self.is_membership() && self.body.len() >= 8 && self.body[4..8] == from.to_le_bytes() {
            self.body[4..8].copy_from_slice(&to.to_le_bytes());
        }
        self
    }

    /// What `SP_receive` of the session whose private group is `me` makes
    /// of a little- or big-endian daemon→client frame (not a reject):
    /// `mess_type` comes from the hint for data, is -1 for membership, and
    /// for a regular membership is the index of `me` in the groups (the
    /// library computes it; the daemon's hint is not read).
    pub fn from_frame(m: &[u8], me: &str) -> Result<Receipt, String> {
        let h = frames::head(m).ok_or("short frame")?;
        let off = frames::body_offset(m).ok_or("unsizable frame")?;
        if m.len() < off {
            return Err(format!("frame shorter than its groups: {}", hex::short(m, 80)));
        }
        let groups: Vec<String> = (0..h.num_groups as usize)
            .map(|k| frames::name_str(&m[frames::HEADER_LEN + 32 * k..frames::HEADER_LEN + 32 * (k + 1)]))
            .collect();
        let service_type = h.type_ & !frames::MARKER;
        let mess_type = if service_type & (0x3f | frames::REJECT_MESS) != 0 {
            (((h.hint & !frames::MARKER) >> 8) & 0xffff) as u16 as i16
        } else if service_type & frames::REG_MEMB_MESS != 0 {
            groups.iter().position(|g| g == me).map_or(-1, |i| i as i16)
        } else {
            -1
        };
        Ok(Receipt { service_type, sender: frames::name_str(&h.sender), groups, mess_type, body: m[off..].to_vec() })
    }

    /// An `SP_receive` entry of an API log.
    pub fn from_log(e: &Value) -> Result<Receipt, String> {
        let st = transcript::s(e, "service_type").ok_or("no service_type")?;
        let groups = e
            .get("groups")
            .and_then(Value::as_array)
            .ok_or("no groups")?
            .iter()
            .map(|g| g.as_str().map(str::to_string).ok_or("group not a string"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Receipt {
            service_type: transcript::parse_hex_i32(st).ok_or("bad service_type")? as u32,
            sender: transcript::s(e, "sender").ok_or("no sender")?.to_string(),
            groups,
            mess_type: transcript::i(e, "mess_type").ok_or("no mess_type")? as i16,
            body: log_body(e)?,
        })
    }
}

/// The body of an `SP_receive` entry: `body_hex`, or for the big bodies,
/// which the log only summarises, the `i mod 251` pattern of `len` bytes
/// when `body_is_pattern_i_mod_251` says so (its `body_head_hex` must agree).
fn log_body(e: &Value) -> Result<Vec<u8>, String> {
    if let Some(h) = transcript::s(e, "body_hex") {
        return hex::decode(h).ok_or_else(|| "bad body_hex".to_string());
    }
    if e.get("body_is_pattern_i_mod_251").and_then(Value::as_bool) != Some(true) {
        return Err("neither body_hex nor a pattern body".into());
    }
    let len = transcript::i(e, "len").ok_or("no len")?;
    let body = transcript::body_from_spec(&format!("pattern:{len}")).ok_or("bad len")?;
    let head = hex::decode(transcript::s(e, "body_head_hex").ok_or("no body_head_hex")?).ok_or("bad body_head_hex")?;
    if !body.starts_with(&head) {
        return Err("body_head_hex is not the start of the pattern".into());
    }
    Ok(body)
}

/// `pcap/logs/<file>` of the recordings.
pub fn log_path(file: &str) -> PathBuf {
    crate::paths::ref_dir().join("pcap").join("logs").join(file)
}

/// Every entry of an API log (`api_rx.jsonl`, …), in order.
pub fn load(file: &str) -> Vec<Value> {
    let p = log_path(file);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", p.display(), n + 1)))
        .collect()
}

/// The `SP_receive` results of `client` in an API log, in order.
pub fn receipts(log: &[Value], client: &str) -> Vec<Receipt> {
    log.iter()
        .filter(|e| transcript::s(e, "op") == Some("SP_receive") && transcript::s(e, "client") == Some(client))
        .map(|e| Receipt::from_log(e).unwrap_or_else(|err| panic!("SP_receive entry of {client}: {err}: {e}")))
        .collect()
}

/// The `SP_multicast` calls of `client` in an API log: (service type, group,
/// mess_type, body).
pub fn multicasts(log: &[Value], client: &str) -> Vec<(u32, String, i16, Vec<u8>)> {
    log.iter()
        .filter(|e| transcript::s(e, "op") == Some("SP_multicast") && transcript::s(e, "client") == Some(client))
        .map(|e| {
            let st = transcript::s(e, "service_type").and_then(transcript::parse_hex_i32).expect("service_type");
            let g = transcript::s(e, "groups").expect("groups").to_string();
            let mt = transcript::i(e, "mess_type").expect("mess_type") as i16;
            let body = transcript::s(e, "body_spec").and_then(transcript::body_from_spec).expect("body_spec");
            (st as u32, g, mt, body)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_logs_have_the_client_views_of_the_scenario() {
        let rx = receipts(&load("api_rx.jsonl"), "rx");
        assert_eq!(rx.len(), 1 + 120 + 4);
        let memb: Vec<(u32, u32, u32)> = rx.iter().filter_map(Receipt::gid).collect();
        let want: Vec<(u32, u32, u32)> =
            [1, 2, 3, 4, 5].iter().map(|&k| (RECORDED_RING_PROC, RECORDED_RING_TIME, k)).collect();
        assert_eq!(memb, want);
        let jl = receipts(&load("api_jl.jsonl"), "jl");
        assert_eq!(jl.len(), 2);
        assert_eq!(jl[1].service_type, 0x200);
        assert!(jl[1].groups.is_empty() && jl[1].body.is_empty());
        assert_eq!(multicasts(&load("api_tx.jsonl"), "tx").len(), 120);
    }

    #[test]
    fn frame_view_matches_the_library_view() {
        // a regular membership: mess_type is the receiver's index in the
        // groups, whatever the daemon put in the hint
        let mut f = frames::raw_header(0x8000_1180, b"pg", 2, 0x8000_0080, 8);
        f.extend_from_slice(&frames::name32(b"#a#d1"));
        f.extend_from_slice(&frames::name32(b"#b#d1"));
        f.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
        let r = Receipt::from_frame(&f, "#b#d1").unwrap();
        assert_eq!(r.service_type, 0x1100);
        assert_eq!(r.mess_type, 1);
        assert_eq!(r.groups, ["#a#d1", "#b#d1"]);
        assert_eq!(Receipt::from_frame(&f, "#a#d1").unwrap().mess_type, 0);
        assert_eq!(Receipt::from_frame(&f, "#c#d1").unwrap().mess_type, -1);
        // a self-leave (not regular): -1
        let r = Receipt::from_frame(&frames::raw_header(0x8000_0280, b"pg", 0, 0x8012_3480, 0), "#a#d1").unwrap();
        assert_eq!(r.mess_type, -1);
        // data: from the hint
        let r = Receipt::from_frame(&frames::raw_header(0x8000_0090, b"#a#d1", 0, 0x8012_3480, 0), "#b#d1").unwrap();
        assert_eq!(r.mess_type, 0x1234);
    }
}
