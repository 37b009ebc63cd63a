//! Daemon-side replays: our `spread` daemon, started as `d1` with the
//! recorded config (moved to 127.0.0.1 and our port), is fed the recorded
//! client→daemon bytes of scenarios a, b, c, d, e and h by raw clients (one
//! socket per recorded connection, frames sent in recorded global order);
//! every daemon→client frame must equal the recording except the documented
//! run-to-run fields: the gid time (it must still be one value for the whole
//! run), the daemon-invented private name `#r<n>-<fd>#d1`, and FIN vs RST.
//!
//! The recording shows only what each client saw, not when the daemon read
//! a frame that got no reply (e.g. a JOIN of a session without membership).
//! So before client bytes go to a different connection than the previous
//! client bytes, a sync session sends an AGREED message to its own private
//! group and waits for it: once it is back, the daemon has read and ordered
//! everything sent before, as the recorded timing guaranteed.
//!
//! Ports 23000–23099 (each daemon uses P, P+1 and /tmp/P).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use compat_tests::daemon::{rewrite_recorded_conf, Daemon};
use compat_tests::frames::{self, gid_time_field, mask_gid_time};
use compat_tests::hex;
use compat_tests::net::{CloseSeen, Conn, ReadEnd};
use compat_tests::transcript::{Dir, Endpoint, Frame, Transcript};

const STEP: Duration = Duration::from_secs(10);

struct Outcome {
    errors: Vec<String>,
    /// daemon→client frames actually received, per connection label
    received: HashMap<String, Vec<Vec<u8>>>,
}

/// Replaces every occurrence of `from` (as a NUL-terminated name) by `to`
/// inside 32-byte name fields of a client frame.
fn substitute_names(frame: &[u8], map: &[(String, String)]) -> Vec<u8> {
    let mut v = frame.to_vec();
    if v.len() < frames::HEADER_LEN {
        return v;
    }
    let ng = frames::head(&v).map(|h| h.num_groups.clamp(0, 100) as usize).unwrap_or(0);
    let mut fields = vec![4usize];
    for g in 0..ng {
        fields.push(frames::HEADER_LEN + 32 * g);
    }
    for at in fields {
        if v.len() < at + 32 {
            continue;
        }
        let cur = frames::name_str(&v[at..at + 32]);
        for (from, to) in map {
            if &cur == from {
                let tail_garbage: Vec<u8> = v[at + from.len()..at + 32].to_vec();
                let mut n = [0u8; 32];
                n[..to.len().min(31)].copy_from_slice(&to.as_bytes()[..to.len().min(31)]);
                // keep whatever followed the NUL in the recording (KILL garbage)
                if to.len() == from.len() {
                    n[from.len()..].copy_from_slice(&tail_garbage);
                }
                v[at..at + 32].copy_from_slice(&n);
            }
        }
    }
    v
}

fn replay(scenario: &str, base: u16) -> Outcome {
    let t = Transcript::load(scenario);
    let port = compat_tests::daemon::free_port_near(base).unwrap_or_else(|e| panic!("{scenario}: {e}"));
    let rec_port = t.daemon_port().expect("recorded daemon port");
    let conf =
        rewrite_recorded_conf(t.spread_conf().expect("recorded config"), rec_port, port, std::path::Path::new("@RUN@"));
    let daemon = Daemon::start(t.daemon_name(), port, &conf).unwrap_or_else(|e| panic!("{scenario}: {e}"));
    daemon.wait_operational(Duration::from_secs(20)).unwrap_or_else(|e| panic!("{scenario}: {e}"));

    // the sync session (see the module comment)
    let sync_deadline = Instant::now() + STEP;
    let mut sync = Conn::tcp(port, STEP).unwrap_or_else(|e| panic!("{scenario}: sync connect: {e}"));
    let sync_pg = frames::raw_handshake(&mut sync, b"zzsync", false, sync_deadline)
        .unwrap_or_else(|e| panic!("{scenario}: sync: {e}"));
    let mut barrier = |n: u32| -> Result<(), String> {
        let body = n.to_le_bytes();
        sync.write_all(&frames::message(frames::AGREED_MESS, sync_pg.as_bytes(), &[sync_pg.as_bytes()], 0, &body))
            .map_err(|e| format!("sync send: {e}"))?;
        let m = frames::read_msg(&mut sync, Instant::now() + STEP)?;
        if m.len() < 4 || m[m.len() - 4..] != body {
            return Err(format!("sync: unexpected frame {}", hex::short(&m, 64)));
        }
        Ok(())
    };
    let mut barriers = 0u32;
    let mut last_c2d: Option<String> = None;

    let mut errors = Vec::new();
    let mut received: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    let mut conns: HashMap<String, Conn> = HashMap::new();
    let mut closed: HashMap<String, bool> = HashMap::new();
    let mut names: Vec<(String, String)> = Vec::new();
    let mut gid_time: Option<u32> = None;
    let fr = &t.frames;
    let mut k = 0;
    while k < fr.len() {
        let f: &Frame = &fr[k];
        let ctx = format!("{}: frame {} ({} {} {:?})", t.name, f.index, f.conn, f.kind, f.dir);
        if f.dir == Some(Dir::C2d) {
            if last_c2d.as_deref().map(|l| l != f.conn).unwrap_or(false) {
                barriers += 1;
                if let Err(e) = barrier(barriers) {
                    errors.push(format!("{ctx}: {e}"));
                }
            }
            last_c2d = Some(f.conn.clone());
        }
        match (f.dir, f.kind.as_str()) {
            (None, "transport_connect") => {
                let c = match t.endpoint(&f.conn) {
                    Some(Endpoint::Unix(_)) => Conn::unix(&format!("/tmp/{port}")),
                    _ => Conn::tcp(port, STEP),
                };
                match c {
                    Ok(c) => {
                        conns.insert(f.conn.clone(), c);
                        closed.insert(f.conn.clone(), false);
                    }
                    Err(e) => errors.push(format!("{ctx}: connect failed: {e}")),
                }
                k += 1;
            }
            (Some(Dir::C2d), "eof_from_client") => {
                if let Some(c) = conns.get(&f.conn) {
                    c.shutdown_write();
                }
                k += 1;
            }
            (Some(Dir::C2d), _) => {
                // coalesce adjacent client frames of one connection into one
                // write, as the recorded client sent them
                let mut bytes = substitute_names(&f.bytes, &names);
                let mut j = k + 1;
                while j < fr.len() && fr[j].conn == f.conn && fr[j].dir == Some(Dir::C2d) && !fr[j].is_event() {
                    bytes.extend_from_slice(&substitute_names(&fr[j].bytes, &names));
                    j += 1;
                }
                if let Some(c) = conns.get_mut(&f.conn) {
                    if let Err(e) = c.write_all(&bytes) {
                        // the daemon may already have closed (malformed input)
                        closed.insert(f.conn.clone(), true);
                        eprintln!("{ctx}: write failed ({e}); the daemon closed first");
                    }
                } else {
                    errors.push(format!("{ctx}: no connection"));
                }
                k = j;
            }
            (Some(Dir::D2c), "eof_from_daemon") | (Some(Dir::D2c), "recv_error_from_daemon") => {
                if closed.get(&f.conn).copied().unwrap_or(false) {
                    k += 1;
                    continue;
                }
                if let Some(c) = conns.get_mut(&f.conn) {
                    match c.wait_close_by(Instant::now() + STEP) {
                        CloseSeen::Fin | CloseSeen::Rst => {
                            closed.insert(f.conn.clone(), true);
                        }
                        CloseSeen::Data(d) => errors
                            .push(format!("{ctx}: expected the daemon to close, got bytes {}", hex::short(&d, 64))),
                        CloseSeen::Timeout => {
                            errors.push(format!("{ctx}: the daemon did not close the session within {STEP:?}"))
                        }
                    }
                }
                k += 1;
            }
            (Some(Dir::D2c), _) => {
                let Some(c) = conns.get_mut(&f.conn) else {
                    errors.push(format!("{ctx}: no connection"));
                    k += 1;
                    continue;
                };
                // an accept is read by its own length byte: a daemon-invented
                // private name may be shorter or longer than the recorded one
                // (the legacy 3.14 accept has no patch byte: 4 header bytes)
                let hl = if f.bytes.len() >= 4 && f.bytes[3] as usize + 4 == f.bytes.len() { 4 } else { 5 };
                let got = match if f.kind == "accept" {
                    c.read_exact_by(hl, Instant::now() + STEP).and_then(|mut h| {
                        let more = c.read_exact_by(h[hl - 1] as usize, Instant::now() + STEP)?;
                        h.extend_from_slice(&more);
                        Ok(h)
                    })
                } else {
                    c.read_exact_by(f.bytes.len(), Instant::now() + STEP)
                } {
                    Ok(b) => b,
                    Err(e) => {
                        let what = match e {
                            ReadEnd::Eof(p) => format!("EOF after {} bytes {}", p.len(), hex::short(&p, 64)),
                            ReadEnd::Reset(p) => format!("RST after {} bytes {}", p.len(), hex::short(&p, 64)),
                            ReadEnd::Timeout(p) => format!("timeout after {} bytes {}", p.len(), hex::short(&p, 64)),
                            ReadEnd::Error(s) => s,
                        };
                        errors.push(format!(
                            "{ctx}: expected {} bytes {}; got {what}",
                            f.bytes.len(),
                            hex::short(&f.bytes, 64)
                        ));
                        closed.insert(f.conn.clone(), true);
                        k += 1;
                        continue;
                    }
                };
                received.entry(f.conn.clone()).or_default().push(got.clone());
                if f.kind == "accept" && hl == 5 && got.len() >= 5 && f.bytes.len() >= 5 {
                    // the private name may be daemon-invented (`#r<n>-<fd>#d1`)
                    let rec_name = String::from_utf8_lossy(&f.bytes[5..]).into_owned();
                    if frames::is_random_private_name(&rec_name, t.daemon_name()) {
                        let want = got[4] as usize;
                        let ours = String::from_utf8_lossy(&got[5..(5 + want).min(got.len())]).into_owned();
                        if got[..4] != f.bytes[..4] || !frames::is_random_private_name(&ours, t.daemon_name()) {
                            errors.push(format!(
                                "{ctx}: expected an accept with a daemon-invented name like {rec_name}, got {}",
                                hex::encode(&got)
                            ));
                        }
                        names.push((rec_name, ours));
                        k += 1;
                        continue;
                    }
                }
                if let (Some(_), Some((_, tg))) = (gid_time_field(&f.bytes), gid_time_field(&got)) {
                    match gid_time {
                        None => gid_time = Some(tg),
                        Some(t0) if t0 != tg => {
                            errors.push(format!("{ctx}: gid time {tg:#x} differs from this run's ring time {t0:#x}"))
                        }
                        _ => {}
                    }
                }
                let exp = mask_gid_time(&f.bytes);
                let ours = mask_gid_time(&got);
                if exp != ours {
                    errors.push(format!("{ctx}: daemon frame differs: {}", hex::diff(&exp, &ours)));
                }
                k += 1;
            }
            _ => k += 1,
        }
    }
    // nothing unexpected may be left waiting on any session still open
    for (label, c) in &conns {
        if closed.get(label).copied().unwrap_or(false) {
            continue;
        }
        match c.pending_bytes() {
            Some(0) | None => {}
            Some(n) => {
                errors.push(format!("{}: connection {label}: {n} unexpected extra bytes from the daemon", t.name))
            }
        }
    }
    if !errors.is_empty() {
        eprintln!("daemon log for {}:\n{}", t.name, daemon.log());
    }
    drop(conns);
    drop(daemon);
    Outcome { errors, received }
}

fn check(scenario: &str, port: u16) -> Outcome {
    let o = replay(scenario, port);
    assert!(o.errors.is_empty(), "{} mismatch(es):\n{}", o.errors.len(), o.errors.join("\n"));
    o
}

#[test]
fn a_connect_disconnect() {
    check("a", 23000);
}

#[test]
fn b_no_membership() {
    let o = check("b", 23010);
    // alice (membership off) got only bob's data message
    let alice = &o.received["alice"];
    let data: Vec<_> = alice.iter().filter(|f| f.len() >= 48).collect();
    assert_eq!(data.len(), 1, "alice must get exactly one message (the data), no membership");
}

#[test]
fn c_duplicate_name() {
    let o = check("c", 23020);
    assert_eq!(o.received["dup"], vec![vec![0xfa]]);
}

#[test]
fn d_groups_and_messages() {
    check("d", 23030);
}

#[test]
fn e_malformed_headers_close_only_their_session() {
    let o = check("e", 23040);
    // alice: her own join, then JOIN/DISCONNECT for each of the 8 raw
    // clients, gid index 1, then 2..17
    let alice: Vec<&Vec<u8>> = o.received["alice"].iter().filter(|f| f.len() >= 48).collect();
    assert_eq!(alice.len(), 17);
    for (n, f) in alice.iter().enumerate() {
        let h = frames::head(f).unwrap();
        let want = if n == 0 || n % 2 == 1 { 0x1100 } else { 0x1400 };
        assert_eq!(h.type_ & 0xffff, want | 0x80, "alice frame {n}");
        let off = frames::body_offset(f).unwrap();
        let idx = u32::from_le_bytes(f[off + 8..off + 12].try_into().unwrap());
        assert_eq!(idx as usize, n + 1, "gid index of alice frame {n}");
    }
}

#[test]
fn h_connect_variants() {
    let o = check("h", 23050);
    assert_eq!(o.received["mal1"], vec![vec![0xf9]]);
    assert_eq!(o.received["mal8"], vec![vec![0xfb]]);
}
