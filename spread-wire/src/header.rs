//! The 48-byte message header shared by both directions (client spec §2.5).
//!
//! ```text
//! 0  u32 type        service bits + marker (bits 31, 7)
//! 4  [u8;32] sender  private group name (or group name for membership messages)
//! 36 i32 num_groups
//! 40 i32 hint        bits 8..23 mess_type, marker of the *originator*
//! 44 i32 data_len
//! ```
//! A frame is: header, [4-byte old_type: daemon→client rejects only],
//! `num_groups` × 32-byte names, `data_len` body bytes.

use crate::consts::*;
use crate::endian::{clear_endian, flip32, same_endian, Order, ARCH_ENDIAN};

/// A decoded header. Integers are host values; `type_` keeps the marker bits
/// exactly as the C code leaves them after its conditional swap (a foreign
/// header stays "foreign" after swapping, §2.2). `hint` is *never* converted:
/// it is the 4 raw bytes read in host order, and written back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub type_: u32,
    pub sender: [u8; MAX_GROUP_NAME],
    pub num_groups: i32,
    pub hint: u32,
    pub data_len: i32,
}

impl Default for Header {
    fn default() -> Self {
        Header { type_: 0, sender: [0; MAX_GROUP_NAME], num_groups: 0, hint: 0, data_len: 0 }
    }
}

impl Header {
    /// Decode 48 raw bytes the way `SP_scat_receive`/`Sess_read` do: read in host
    /// order, and if `type`'s marker is not this host's, swap `type`,
    /// `num_groups` and `data_len` (not `hint`). Never fails.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        let n = Order::NATIVE;
        let mut type_ = n.read_u32(&b[0..4]);
        let mut num_groups = n.read_i32(&b[36..40]);
        let hint = n.read_u32(&b[40..44]);
        let mut data_len = n.read_i32(&b[44..48]);
        if !same_endian(type_) {
            type_ = flip32(type_);
            num_groups = flip32(num_groups as u32) as i32;
            data_len = flip32(data_len as u32) as i32;
        }
        let mut sender = [0u8; MAX_GROUP_NAME];
        sender.copy_from_slice(&b[4..36]);
        Header { type_, sender, num_groups, hint, data_len }
    }

    /// Decode from a slice; `None` if shorter than 48 bytes.
    pub fn decode_slice(b: &[u8]) -> Option<Header> {
        let arr: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header::decode(arr))
    }

    /// True when the header was written by a host of the other byte order.
    #[inline]
    pub fn is_foreign(&self) -> bool {
        !same_endian(self.type_)
    }

    /// Encode in `order` (`type` must already carry the marker that goes with
    /// `order`; use [`Header::with_marker`]). `hint` is written in host order,
    /// i.e. its raw bytes are reproduced.
    pub fn encode_in(&self, order: Order, out: &mut [u8; HEADER_LEN]) {
        order.write_u32(&mut out[0..4], self.type_);
        out[4..36].copy_from_slice(&self.sender);
        order.write_i32(&mut out[36..40], self.num_groups);
        out[40..44].copy_from_slice(&self.hint.to_ne_bytes());
        order.write_i32(&mut out[44..48], self.data_len);
    }

    /// Encode in host order.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        self.encode_in(Order::NATIVE, &mut out);
        out
    }

    /// Replace the marker bits of `type_` with those of `order`.
    pub fn with_marker(mut self, order: Order) -> Header {
        self.type_ = (self.type_ & !ENDIAN_RESERVED) | order.marker();
        self
    }

    /// Total length of what follows the header, or `None` if a count is
    /// negative or the sum overflows.
    pub fn rest_len(&self, reject: bool) -> Option<usize> {
        if self.num_groups < 0 || self.data_len < 0 {
            return None;
        }
        let g = (self.num_groups as usize).checked_mul(MAX_GROUP_NAME)?;
        g.checked_add(self.data_len as usize)?.checked_add(if reject { 4 } else { 0 })
    }

    /// The 16-bit `mess_type` and whether the originator's order differs from
    /// ours, decoded from `hint` (§2.5).
    pub fn mess_type(&self) -> (i16, bool) {
        decode_hint(self.hint)
    }
}

/// `hint` for a `mess_type`, as this host's library writes it.
#[inline]
pub fn encode_hint(mess_type: i16) -> u32 {
    (((mess_type as i32 as u32) << 8) & 0x00ff_ff00) | ARCH_ENDIAN
}

/// Decode a raw (host-order read) `hint`: `(mess_type, endian_mismatch)`.
#[inline]
pub fn decode_hint(hint: u32) -> (i16, bool) {
    let (h, mismatch) = if same_endian(hint) { (hint, false) } else { (flip32(hint), true) };
    ((((clear_endian(h)) >> 8) & 0xffff) as u16 as i16, mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::name32;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
    }

    #[test]
    fn tv6_agreed_multicast_header() {
        // TV-6: SP_multicast(AGREED, "grp1", 0x1234, 5, "hello") from #user1#localhost
        let h = Header {
            type_: AGREED_MESS | ARCH_ENDIAN,
            sender: name32(b"#user1#localhost"),
            num_groups: 1,
            hint: encode_hint(0x1234),
            data_len: 5,
        };
        let want =
            hex("90 00 00 80 23 75 73 65 72 31 23 6c 6f 63 61 6c 68 6f 73 74 00 00 00 00 00 00 00 00 00 00 00 00
                        00 00 00 00 01 00 00 00 80 34 12 80 05 00 00 00");
        assert_eq!(&h.encode()[..], &want[..]);
        let d = Header::decode_slice(&want).unwrap();
        assert_eq!(d, h);
        assert_eq!(d.mess_type(), (0x1234, false));
        assert_eq!(encode_hint(-2).to_le_bytes(), [0x80, 0xfe, 0xff, 0x80]);
    }

    #[test]
    fn tv18_big_endian_sender() {
        let mut raw = [0u8; 48];
        raw[0..4].copy_from_slice(&[0, 0, 0, 0x10]);
        raw[4..36].copy_from_slice(&name32(b"#snd#be"));
        raw[36..40].copy_from_slice(&[0, 0, 0, 1]);
        raw[40..44].copy_from_slice(&[0, 0x12, 0x34, 0]);
        raw[44..48].copy_from_slice(&[0, 0, 0, 4]);
        let h = Header::decode(&raw);
        assert!(h.is_foreign());
        assert_eq!(clear_endian(h.type_), 0x10);
        assert_eq!(h.num_groups, 1);
        assert_eq!(h.data_len, 4);
        assert_eq!(h.mess_type(), (4660, true));
        // Re-encoding in big-endian reproduces the bytes.
        let mut out = [0u8; 48];
        h.encode_in(Order::Big, &mut out);
        assert_eq!(out, raw);
    }

    #[test]
    fn rest_len_rejects_negative_and_overflow() {
        let mut h = Header { num_groups: -1, ..Default::default() };
        assert_eq!(h.rest_len(false), None);
        h.num_groups = 2;
        h.data_len = 3;
        assert_eq!(h.rest_len(true), Some(4 + 64 + 3));
    }
}
