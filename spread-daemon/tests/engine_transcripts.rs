//! Replay the recorded 5.0.1 single-daemon sessions (a, b, c, d, e, h)
//! through the engine and compare every daemon→client byte with the
//! recording. The engine is configured as the recording daemon (`d1`, its VID
//! and the recorded ring time), so even the group ids match exactly.

mod engine_util;
use engine_util::*;

fn check(name: &str) -> Replayed {
    replay(&load_transcript(name))
}

fn assert_streams_equal(r: &Replayed, skip: &[&str]) {
    let mut labels: Vec<_> = r.streams.keys().cloned().collect();
    labels.sort();
    for l in labels {
        if skip.contains(&l.as_str()) {
            continue;
        }
        let (exp, got) = &r.streams[&l];
        if exp != got {
            let ef = split_frames_lossy(exp);
            let gf = split_frames_lossy(got);
            for (i, (a, b)) in ef.iter().zip(gf.iter()).enumerate() {
                assert_eq!(to_hex(a), to_hex(b), "connection {l}: chunk {i} differs");
            }
            panic!("connection {l}: {} bytes expected, {} got", exp.len(), got.len());
        }
    }
}

/// Frames where possible, else the whole stream (handshake bytes).
fn split_frames_lossy(b: &[u8]) -> Vec<Vec<u8>> {
    let m = after_handshake(b);
    let mut v = vec![b[..b.len() - m.len()].to_vec()];
    match std::panic::catch_unwind(|| split_frames(m)) {
        Ok(f) => v.extend(f),
        Err(_) => v.push(m.to_vec()),
    }
    v
}

fn assert_closes(r: &Replayed, skip: &[&str]) {
    for (l, (exp, got)) in &r.closes {
        if skip.contains(&l.as_str()) {
            continue;
        }
        assert_eq!(exp, got, "connection {l}: daemon-side close expected={exp} engine={got}");
    }
}

#[test]
fn a_connect_disconnect() {
    let r = check("a_connect_disconnect");
    assert_streams_equal(&r, &[]);
    assert_closes(&r, &[]);
}

#[test]
fn b_no_membership() {
    let r = check("b_no_membership");
    assert_streams_equal(&r, &[]);
    assert_closes(&r, &[]);
}

#[test]
fn c_duplicate_name() {
    let r = check("c_duplicate_name");
    assert_eq!(r.streams["dup"].1, vec![0xfa]);
    assert_streams_equal(&r, &[]);
    assert_closes(&r, &[]);
}

#[test]
fn d_groups_and_messages_byte_exact() {
    let r = check("d_groups_and_messages");
    // Sanity: the recording really has the big frames and the gid indexes.
    let (exp_bob, _) = &r.streams["bob"];
    assert!(split_frames(after_handshake(exp_bob)).iter().any(|f| f.len() == 100_080));
    assert_streams_equal(&r, &[]);
    assert_closes(&r, &[]);
}

#[test]
fn e_malformed_headers_kill_only_their_session() {
    let r = check("e_malformed_header");
    assert_streams_equal(&r, &[]);
    for i in 1..=8 {
        let l = format!("mal{i}");
        assert!(r.closes[&l].1, "{l} must be closed by the daemon");
    }
    assert!(!r.closes["alice"].1 || r.closes["alice"].0, "alice must survive");
    // alice saw a join and a disconnect for each of the 8.
    let frames = split_frames(after_handshake(&r.streams["alice"].1));
    let disconnects = frames.iter().filter(|f| f[0..4] == [0x80, 0x14, 0x00, 0x80]).count();
    assert_eq!(disconnects, 8);
}

#[test]
fn h_connect_variants() {
    let r = check("h_connect_variants");
    // anon gets a daemon-chosen name r<n>-<id>: check its form only.
    let (_, got) = &r.streams["anon"];
    assert_eq!(&got[..6], b"\x05NULL ");
    assert_eq!(&got[6..10], &[1, 5, 0, 1]);
    let name = std::str::from_utf8(&got[11..]).unwrap();
    assert_eq!(got[10] as usize, name.len());
    let user = name.strip_prefix("#r").and_then(|s| s.strip_suffix("#d1")).unwrap();
    let (n, id) = user.split_once('-').unwrap();
    assert!(n.parse::<u32>().unwrap() <= 9998);
    id.parse::<u32>().unwrap();
    assert!(user.len() <= 9);
    assert_streams_equal(&r, &["anon"]);
    assert_closes(&r, &[]);
}
