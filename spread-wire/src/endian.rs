//! Byte order in one place (client spec §2.2).
//!
//! Every integer is written in the writer's native order; bits 31 and 7 of the
//! `type` word (the *marker*, `0x80000080`) say which: both set = little-endian
//! writer, both clear = big-endian writer. The pattern is byte-palindromic, so it
//! can be tested on raw bytes before any swapping.

use crate::consts::ENDIAN_RESERVED;

/// Byte order of a writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    Little,
    Big,
}

impl Order {
    /// This host's order.
    pub const NATIVE: Order = if cfg!(target_endian = "little") { Order::Little } else { Order::Big };

    /// The marker bits a writer of this order puts into `type` (and `hint`).
    #[inline]
    pub const fn marker(self) -> u32 {
        match self {
            Order::Little => ENDIAN_RESERVED,
            Order::Big => 0,
        }
    }

    #[inline]
    pub fn read_u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Order::Little => u32::from_le_bytes(a),
            Order::Big => u32::from_be_bytes(a),
        }
    }

    #[inline]
    pub fn read_i32(self, b: &[u8]) -> i32 {
        self.read_u32(b) as i32
    }

    #[inline]
    pub fn write_u32(self, out: &mut [u8], v: u32) {
        let a = match self {
            Order::Little => v.to_le_bytes(),
            Order::Big => v.to_be_bytes(),
        };
        out[..4].copy_from_slice(&a);
    }

    #[inline]
    pub fn write_i32(self, out: &mut [u8], v: i32) {
        self.write_u32(out, v as u32)
    }

    #[inline]
    pub fn push_u32(self, out: &mut Vec<u8>, v: u32) {
        match self {
            Order::Little => out.extend_from_slice(&v.to_le_bytes()),
            Order::Big => out.extend_from_slice(&v.to_be_bytes()),
        }
    }

    #[inline]
    pub fn push_i32(self, out: &mut Vec<u8>, v: i32) {
        self.push_u32(out, v as u32)
    }

    /// Read a 16-bit word (`b` must hold at least 2 bytes).
    #[inline]
    pub fn read_u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Order::Little => u16::from_le_bytes(a),
            Order::Big => u16::from_be_bytes(a),
        }
    }

    #[inline]
    pub fn read_i16(self, b: &[u8]) -> i16 {
        self.read_u16(b) as i16
    }

    #[inline]
    pub fn push_u16(self, out: &mut Vec<u8>, v: u16) {
        match self {
            Order::Little => out.extend_from_slice(&v.to_le_bytes()),
            Order::Big => out.extend_from_slice(&v.to_be_bytes()),
        }
    }

    #[inline]
    pub fn push_i16(self, out: &mut Vec<u8>, v: i16) {
        self.push_u16(out, v as u16)
    }

    /// The other byte order.
    #[inline]
    pub const fn flipped(self) -> Order {
        match self {
            Order::Little => Order::Big,
            Order::Big => Order::Little,
        }
    }
}

/// `ARCH_ENDIAN` of this host: the marker it writes.
pub const ARCH_ENDIAN: u32 = Order::NATIVE.marker();

/// `Set_endian(t)`: replace the marker bits with this host's.
#[inline]
pub const fn set_endian(t: u32) -> u32 {
    (t & !ENDIAN_RESERVED) | ARCH_ENDIAN
}

/// `Clear_endian(t)`.
#[inline]
pub const fn clear_endian(t: u32) -> u32 {
    t & !ENDIAN_RESERVED
}

/// `Same_endian(t)`: the marker of a natively-read word says "written by a host
/// of my order".
#[inline]
pub const fn same_endian(t: u32) -> bool {
    (t & ENDIAN_RESERVED) == ARCH_ENDIAN
}

/// `Flip_int32`.
#[inline]
pub const fn flip32(v: u32) -> u32 {
    v.swap_bytes()
}

/// The writer's order as told by the first four raw bytes of a `type` (or
/// `hint`) word: `Some(Little)` if both marker bits are set, `Some(Big)` if both
/// are clear, `None` for a mixed marker (foreign to every host).
#[inline]
pub fn order_of_marker_bytes(b: &[u8]) -> Option<Order> {
    let lo = b[0] & 0x80 != 0;
    let hi = b[3] & 0x80 != 0;
    match (lo, hi) {
        (true, true) => Some(Order::Little),
        (false, false) => Some(Order::Big),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        assert_eq!(order_of_marker_bytes(&[0x90, 0, 0, 0x80]), Some(Order::Little));
        assert_eq!(order_of_marker_bytes(&[0, 0, 0, 0x10]), Some(Order::Big));
        assert_eq!(order_of_marker_bytes(&[0x80, 0, 0, 0x00]), None);
        assert_eq!(set_endian(0x10), 0x10 | ARCH_ENDIAN);
        assert_eq!(clear_endian(0x8000_0090), 0x10);
        assert_eq!(flip32(0x0102_0304), 0x0403_0201);
    }
}
