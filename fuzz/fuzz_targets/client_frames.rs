//! Arbitrary client bytes from the first byte on (connect request, auth
//! choice, then whatever follows) into the daemon engine, through the same
//! calls the mio driver makes. A logged-in watcher must still be served once
//! the hostile connections are gone.
//!
//! Input: 4 control bytes, then the client stream.
//! * byte 0, bit 0: TCP (else Unix socket); bit 1: two connections, the
//!   chunks dealt to them in turn; bit 2: zero-copy reads (`recv_buf`);
//!   bit 3: EOF before time runs on; bits 4-5: how the hostile side's output
//!   is written (all / 7 bytes a flush / 300 bytes a flush / stalled);
//! * byte 1: chunking (low 2 bits, see `rspread_fuzz::chunks`) and the seed;
//! * byte 2: milliseconds ×16 that pass after each chunk (handshake and
//!   connect deadlines fire mid-stream);
//! * byte 3: more seed.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rspread_fuzz::{chunks, split_control, Driver, Rng, Writes};
use spread_daemon::engine::ConnKind;

fn writes(bits: u8) -> Writes {
    match bits & 3 {
        0 => Writes::All,
        1 => Writes::Partial(7),
        2 => Writes::Partial(300),
        _ => Writes::Stalled,
    }
}

fuzz_target!(|data: &[u8]| {
    let (c, stream) = split_control::<4>(data);
    let kind = if c[0] & 1 != 0 { ConnKind::Tcp } else { ConnKind::Unix };
    let two = c[0] & 2 != 0;
    let zero_copy = c[0] & 4 != 0;
    let eof_first = c[0] & 8 != 0;
    let step = Duration::from_millis(c[2] as u64 * 16);
    let mut rng = Rng::new(u64::from(c[1]) | u64::from(c[3]) << 8 | (stream.len() as u64) << 16);

    let mut d = Driver::new();
    let w = d.login("watch", true);
    d.join(w, "#watch#d1", "g1");
    let _ = d.take_frames(w);

    let mut conns = Vec::new();
    for _ in 0..if two { 2 } else { 1 } {
        if let Some(id) = d.accept(kind) {
            d.writes.insert(id, writes(c[0] >> 4));
            conns.push(id);
        }
    }
    if conns.is_empty() {
        return;
    }
    for (i, chunk) in chunks(stream, c[1], &mut rng).into_iter().enumerate() {
        let id = conns[i % conns.len()];
        d.feed(id, chunk, zero_copy);
        d.writable();
        d.resume(zero_copy);
        if !step.is_zero() {
            d.advance(step);
        }
        let _ = d.take_frames(w);
    }
    if eof_first {
        for &id in &conns {
            d.eof(id);
        }
    }
    // Long enough for every handshake, connect and pacing deadline.
    for _ in 0..4 {
        d.writable();
        d.resume(zero_copy);
        d.advance(Duration::from_secs(6));
    }
    for &id in &conns {
        d.eof(id);
    }
    d.advance(Duration::from_secs(6));
    d.resume(zero_copy);
    d.check_watchers(&[(w, "#watch#d1")], "g1");
});
