//! The recorded client⇄daemon sessions (see the transcripts' README): frames
//! with exact bytes, per connection label, plus the library-level `api_log`.

use serde_json::Value;

use crate::hex;
use crate::paths::transcripts_dir;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// client → daemon
    C2d,
    /// daemon → client
    D2c,
}

/// One logical frame or connection event.
#[derive(Clone, Debug)]
pub struct Frame {
    pub index: usize,
    /// `None` for `transport_connect`.
    pub dir: Option<Dir>,
    pub conn: String,
    pub kind: String,
    pub bytes: Vec<u8>,
}

impl Frame {
    /// A connection event (connect / EOF / RST) rather than bytes.
    pub fn is_event(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "transport_connect" | "eof_from_client" | "eof_from_daemon" | "recv_error_from_daemon"
        )
    }
}

/// Where a client label connected in the recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(u16),
    Unix(String),
}

pub struct Transcript {
    pub name: String,
    pub json: Value,
    pub frames: Vec<Frame>,
}

impl Transcript {
    /// Loads a scenario by its letter (`"a"`) or full name
    /// (`"a_connect_disconnect"`). Panics with a clear message when the
    /// recordings are not where expected.
    pub fn load(scenario: &str) -> Transcript {
        let dir = transcripts_dir();
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read the reference transcripts in {} ({e})", dir.display()));
        let mut path = None;
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if !n.ends_with(".json") || n.ends_with(".chunks.jsonl") {
                continue;
            }
            let stem = n.trim_end_matches(".json");
            if stem == scenario || stem.starts_with(&format!("{scenario}_")) {
                path = Some(e.path());
            }
        }
        let path = path.unwrap_or_else(|| panic!("no transcript for scenario {scenario:?} in {}", dir.display()));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        Self::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Parses the JSON text of one recording.
    pub fn parse(text: &str) -> Result<Transcript, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
        let name = json.get("scenario").and_then(Value::as_str).unwrap_or("?").to_string();
        let mut frames = Vec::new();
        for f in json.get("frames").and_then(Value::as_array).ok_or("no frames")? {
            let index = f.get("index").and_then(Value::as_u64).ok_or("frame without index")? as usize;
            let dir = match f.get("dir").and_then(Value::as_str) {
                Some("c2d") => Some(Dir::C2d),
                Some("d2c") => Some(Dir::D2c),
                _ => None,
            };
            let conn = f.get("conn").and_then(Value::as_str).ok_or("frame without conn")?.to_string();
            let kind = f.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
            let hx = f.get("hex").and_then(Value::as_str).unwrap_or("");
            let bytes = hex::decode(hx).ok_or_else(|| format!("frame {index}: bad hex"))?;
            frames.push(Frame { index, dir, conn, kind, bytes });
        }
        frames.sort_by_key(|f| f.index);
        Ok(Transcript { name, json, frames })
    }

    /// The recorded daemon config text (`daemon.spread_conf`).
    pub fn spread_conf(&self) -> Option<&str> {
        self.json.get("daemon")?.get("spread_conf")?.as_str()
    }

    /// The recorded daemon name (`daemon.name`), `d1` for a–e and h.
    pub fn daemon_name(&self) -> &str {
        self.json.get("daemon").and_then(|d| d.get("name")).and_then(Value::as_str).unwrap_or("d1")
    }

    /// The recorded TCP port of the daemon (`daemon.tcp_port`).
    pub fn daemon_port(&self) -> Option<u16> {
        self.json.get("daemon")?.get("tcp_port")?.as_u64().map(|p| p as u16)
    }

    /// All API log entries; for f the two clients' logs are merged by time.
    pub fn api_log(&self) -> Vec<Value> {
        let mut v: Vec<Value> = Vec::new();
        for key in ["api_log", "api_log_2"] {
            if let Some(a) = self.json.get(key).and_then(Value::as_array) {
                v.extend(a.iter().cloned());
            }
        }
        if self.json.get("api_log_2").is_some() {
            v.sort_by_key(|e| e.get("t_ns").and_then(Value::as_u64).unwrap_or(0));
        }
        v
    }

    /// Labels of the connections made by the library (those with an
    /// `SP_connect` in the API log), in order of first connect.
    pub fn library_clients(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.api_log() {
            if e.get("op").and_then(Value::as_str) == Some("SP_connect") {
                if let Some(c) = e.get("client").and_then(Value::as_str) {
                    if !out.iter().any(|x| x == c) {
                        out.push(c.to_string());
                    }
                }
            }
        }
        out
    }

    /// Connection labels in order of their first frame.
    pub fn conns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in &self.frames {
            if !out.contains(&f.conn) {
                out.push(f.conn.clone());
            }
        }
        out
    }

    /// The frames of one connection, in order.
    pub fn conn_frames(&self, conn: &str) -> Vec<Frame> {
        self.frames.iter().filter(|f| f.conn == conn).cloned().collect()
    }

    /// How the client label reached the daemon in the recording.
    pub fn endpoint(&self, label: &str) -> Option<Endpoint> {
        let p = self.json.get("recording")?.get("proxy_ports")?.get(label)?;
        if let Some(n) = p.as_u64() {
            return Some(Endpoint::Tcp(n as u16));
        }
        let s = p.as_str()?;
        s.strip_prefix("unix:").map(|path| Endpoint::Unix(path.to_string()))
    }
}

/// Fetches a string field of an API log entry.
pub fn s<'a>(e: &'a Value, key: &str) -> Option<&'a str> {
    e.get(key).and_then(Value::as_str)
}

/// Fetches an integer field of an API log entry.
pub fn i(e: &Value, key: &str) -> Option<i64> {
    e.get(key).and_then(Value::as_i64)
}

/// Parses `"0x00001100"`-style hex or a plain integer.
pub fn parse_hex_i32(v: &str) -> Option<i32> {
    let t = v.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok().map(|x| x as i32)
    } else {
        t.parse::<i64>().ok().map(|x| x as i32)
    }
}

/// The body bytes named by an API log `body_spec` (`str:…`, `empty`,
/// `pattern:N` with byte i = i mod 251).
pub fn body_from_spec(spec: &str) -> Option<Vec<u8>> {
    if spec == "empty" {
        return Some(Vec::new());
    }
    if let Some(t) = spec.strip_prefix("str:") {
        return Some(t.as_bytes().to_vec());
    }
    if let Some(n) = spec.strip_prefix("pattern:") {
        let n: usize = n.parse().ok()?;
        return Some((0..n).map(|i| (i % 251) as u8).collect());
    }
    if let Some(h) = spec.strip_prefix("hex:") {
        return hex::decode(h);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_every_recording_and_frames_concatenate_per_direction() {
        for sc in ["a", "b", "c", "d", "e", "f", "h"] {
            let t = Transcript::load(sc);
            assert!(!t.frames.is_empty(), "{sc}");
            assert!(!t.library_clients().is_empty(), "{sc}");
            for w in t.frames.windows(2) {
                assert!(w[0].index < w[1].index);
            }
        }
        let d = Transcript::load("d");
        assert_eq!(d.library_clients(), ["alice", "bob", "carol"]);
        assert_eq!(d.endpoint("alice"), Some(Endpoint::Tcp(34851)));
        let h = Transcript::load("h");
        assert_eq!(h.endpoint("unixclient"), Some(Endpoint::Unix("/tmp/34890".into())));
        assert!(t_has_conf(&d));
    }

    fn t_has_conf(t: &Transcript) -> bool {
        t.spread_conf().map(|c| c.contains("Spread_Segment")).unwrap_or(false)
    }

    #[test]
    fn big_body_is_the_pattern() {
        // the recorded 100000-byte body (d.8) is the i mod 251 pattern
        let d = Transcript::load("d");
        let big = d.frames.iter().find(|f| f.bytes.len() == 100_080 && f.conn == "alice").unwrap();
        let b = body_from_spec("pattern:100000").unwrap();
        assert_eq!(&big.bytes[80..], &b[..]);
        assert_eq!(parse_hex_i32("0x00001100"), Some(0x1100));
    }
}
