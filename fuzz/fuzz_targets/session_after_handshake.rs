//! A session that completed a valid 5.0.1 handshake (`fz`, private group
//! `#fz#d1`) then sends arbitrary bytes, so they reach the message-frame
//! parser, the groups layer and delivery. Two watcher sessions share group
//! `g1` with it and may talk to it meanwhile; once `fz` has gone, both must
//! still be served. Whatever the daemon writes to a session whose writes
//! complete must split into whole frames.
//!
//! Input: 4 control bytes, then what `fz` sends after its handshake.
//! * byte 0, bit 0: `fz` asked for membership messages; bit 1: `fz` is in
//!   `g1` before its bytes arrive; bit 2: zero-copy reads; bit 3: a watcher
//!   sends to `g1` after every chunk; bits 4-5: how `fz`'s output is written
//!   (all / 7 bytes a flush / 300 bytes a flush / stalled); bit 6: EOF
//!   before time runs on; bit 7: `fz` connects over TCP;
//! * byte 1: chunking and seed; byte 2: milliseconds ×16 after each chunk;
//!   byte 3: more seed.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rspread_fuzz::{chunks, connect_request, frame, null_auth_choice, split_control, Driver, Rng, Writes};
use spread_daemon::engine::ConnKind;
use spread_wire::consts::{AGREED_MESS, FIFO_MESS};

fuzz_target!(|data: &[u8]| {
    let (c, stream) = split_control::<4>(data);
    let zero_copy = c[0] & 4 != 0;
    let chatter = c[0] & 8 != 0;
    let eof_first = c[0] & 0x40 != 0;
    let step = Duration::from_millis(c[2] as u64 * 16);
    let mut rng = Rng::new(u64::from(c[1]) | u64::from(c[3]) << 8 | (stream.len() as u64) << 16);

    let mut d = Driver::new();
    let w1 = d.login("w1", true);
    let w2 = d.login("w2", false);
    d.join(w1, "#w1#d1", "g1");
    d.join(w2, "#w2#d1", "g1");
    d.join(w2, "#w2#d1", "g2");

    let kind = if c[0] & 0x80 != 0 { ConnKind::Tcp } else { ConnKind::Unix };
    let Some(fz) = d.accept(kind) else { return };
    d.keep.insert(fz);
    d.feed(fz, &connect_request(b"fz", c[0] & 1 != 0), false);
    d.feed(fz, &null_auth_choice(), false);
    assert_eq!(d.take(fz), b"\x05NULL \x01\x05\x00\x01\x06#fz#d1", "the handshake of fz");
    if c[0] & 2 != 0 {
        d.join(fz, "#fz#d1", "g1");
    }
    let writes = match (c[0] >> 4) & 3 {
        0 => Writes::All,
        1 => Writes::Partial(7),
        2 => Writes::Partial(300),
        _ => Writes::Stalled,
    };
    d.writes.insert(fz, writes);
    let _ = (d.take_frames(w1), d.take_frames(w2), d.take_frames(fz));

    for (i, chunk) in chunks(stream, c[1], &mut rng).into_iter().enumerate() {
        d.feed(fz, chunk, zero_copy);
        if chatter {
            let (id, pg, t) = if i % 2 == 0 { (w1, "#w1#d1", AGREED_MESS) } else { (w2, "#w2#d1", FIFO_MESS) };
            d.feed(id, &frame(t, pg.as_bytes(), &[b"g1"], i as i16, &[i as u8; 20]), zero_copy);
        }
        d.writable();
        d.resume(zero_copy);
        if !step.is_zero() {
            d.advance(step);
        }
        let _ = (d.take_frames(w1), d.take_frames(w2));
        // What fz is sent, written whole, is whole frames too.
        if writes == Writes::All {
            let _ = d.take_frames(fz);
        } else {
            let _ = d.take(fz);
        }
    }
    if eof_first {
        d.eof(fz);
    }
    for _ in 0..4 {
        d.writable();
        d.resume(zero_copy);
        d.advance(Duration::from_secs(6));
    }
    d.eof(fz);
    d.advance(Duration::from_secs(6));
    d.resume(zero_copy);
    d.check_watchers(&[(w1, "#w1#d1"), (w2, "#w2#d1")], "g1");
});
