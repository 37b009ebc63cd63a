//! Threads on one mailbox: concurrent senders never interleave frames,
//! concurrent receivers get whole distinct messages, and killing a mailbox
//! while another thread is blocked receiving on it is memory-safe (client
//! spec §3.1). Tests here run one at a time (they look at descriptors).

mod sp_common;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{mpsc, Mutex};

use sp_common::*;

static SERIAL: Mutex<()> = Mutex::new(());

const SENDERS: usize = 8;
const PER_SENDER: usize = 150;

fn payload(t: usize, seq: usize) -> Vec<u8> {
    let len = (t * 997 + seq * 131) % 5000;
    let mut v = format!("{t}:{seq}:").into_bytes();
    v.extend((0..len).map(|k| (k + t + seq) as u8));
    v
}

#[test]
fn eight_senders_and_a_receiver_share_one_mailbox() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const INCOMING: usize = 300;
    let (tx, rx) = mpsc::channel();
    let (mbox, h) = open(21040, "mt", move |s| {
        let mut w = s.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0..INCOMING {
                let body = format!("in-{i}").into_bytes();
                w.write_all(&frame_le(
                    0x8000_0090,
                    "#o#fake",
                    &["mt"],
                    0x8000_0080 | ((i as u32 & 0xffff) << 8),
                    &body,
                ))
                .unwrap();
            }
        });
        let mut s = s;
        let mut next = [0usize; SENDERS];
        for _ in 0..SENDERS * PER_SENDER {
            // read_frame asserts sane sizes; every frame must parse exactly.
            let (hd, groups, body, _) = read_frame(&mut s);
            assert_eq!(spread_wire::endian::clear_endian(hd.type_), AGREED_MESS);
            assert_eq!(spread_wire::names::name_bytes(&hd.sender), b"#mt#fake");
            let text = String::from_utf8_lossy(&body[..body.len().min(16)]).into_owned();
            let mut it = text.split(':');
            let t: usize = it.next().unwrap().parse().unwrap();
            let seq: usize = it.next().unwrap().parse().unwrap();
            assert_eq!(groups, vec![name32(&format!("g{t}"))]);
            assert_eq!(body, payload(t, seq), "frame body intact");
            assert_eq!(hd.mess_type().0 as usize, seq);
            // Each sender's own frames stay in its order.
            assert_eq!(seq, next[t]);
            next[t] += 1;
        }
        writer.join().unwrap();
        let (hd, _, _, _) = read_frame(&mut s);
        assert_eq!(spread_wire::endian::clear_endian(hd.type_), KILL_MESS);
        expect_eof(&mut s);
        tx.send(next).unwrap();
    });

    let receiver = std::thread::spawn(move || {
        for i in 0..INCOMING {
            let r = recv(mbox, 0, 4, 64);
            assert_eq!((r.ret as usize, r.body), (format!("in-{i}").len(), format!("in-{i}").into_bytes()));
            assert_eq!(r.mess_type, i as i16);
        }
    });
    let senders: Vec<_> = (0..SENDERS)
        .map(|t| {
            std::thread::spawn(move || {
                for seq in 0..PER_SENDER {
                    let p = payload(t, seq);
                    assert_eq!(multicast(mbox, AGREED_MESS, &format!("g{t}"), seq as i16, &p), p.len() as i32);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    receiver.join().unwrap();
    assert_eq!(disconnect(mbox), 0);
    assert_eq!(rx.recv().unwrap(), [PER_SENDER; SENDERS]);
    h.join().unwrap();
}

#[test]
fn concurrent_receivers_get_distinct_whole_messages() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 400;
    let mut frames = Vec::new();
    for i in 0..N {
        frames.extend(frame_le(0x8000_0084, "#o#fake", &["g"], 0x8000_0080, format!("m{i:04}").as_bytes()));
    }
    let (mbox, h) = open_with_frames(21041, "cr", frames);
    let got: Vec<Vec<String>> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                (0..N / 4)
                    .map(|_| {
                        let r = recv(mbox, 0, 1, 16);
                        assert_eq!((r.ret, r.num_groups, r.groups.clone()), (5, 1, vec!["g".to_string()]));
                        String::from_utf8(r.body).unwrap()
                    })
                    .collect()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let all: HashSet<String> = got.into_iter().flatten().collect();
    assert_eq!(all.len(), N);
    assert_eq!(poll(mbox), 0);
    kill(mbox);
    h.join().unwrap();
}

#[test]
fn kill_while_another_thread_is_blocked_in_receive() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (close_tx, close_rx) = mpsc::channel::<()>();
    let (mbox, h) = open(21042, "kb", move |s| {
        // Silent until told, then close: the blocked reader wakes with EOF.
        let _ = close_rx.recv();
        drop(s);
    });
    let (tid_tx, tid_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        recv(mbox, 0, 4, 64).ret
    });
    let tid = tid_rx.recv().unwrap();
    assert!(wait_in_syscall(tid, &RECV_SYSCALLS), "reader should be blocked in recv");
    kill(mbox);
    // The mailbox is gone for everybody else at once...
    assert_eq!(poll(mbox), ILLEGAL_SESSION);
    assert_eq!(multicast(mbox, AGREED_MESS, "g", 0, b"x"), ILLEGAL_SESSION);
    // ...but its descriptor is not recycled under the blocked reader.
    let probe = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
    assert!(probe >= 0);
    assert_ne!(probe, mbox);
    unsafe { libc::close(probe) };
    close_tx.send(()).unwrap();
    assert_eq!(reader.join().unwrap(), CONNECTION_CLOSED);
    h.join().unwrap();
    // Now the last user is gone and the descriptor is closed.
    assert_eq!(unsafe { libc::fcntl(mbox, libc::F_GETFD) }, -1);
}
