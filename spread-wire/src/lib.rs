//! Every Spread 5.0.1 wire format as encode/decode over byte slices: no I/O,
//! no panics on any input, no allocation beyond what the input justifies.
//!
//! * [`consts`] — service bits, error codes, sizes, `SP_strerror` texts;
//! * [`endian`] — the `0x80000080` marker and byte order, in one place;
//! * [`header`] — the 48-byte message header and `hint`/`mess_type`;
//! * [`names`] — group names and `#private#daemon` names;
//! * [`handshake`] — connect request, auth list/choice, accept and reject bytes;
//! * [`membership`] — regular/transitional membership bodies and vs-sets;
//! * [`daemon`] — daemon⇄daemon UDP datagrams (daemon spec §3): the packet and
//!   token headers and classification ([`daemon`] itself), data packets with
//!   fragments and the messages inside them ([`daemon::data`]), the regular
//!   token with its retransmission requests ([`daemon::token`]), ALIVE / JOIN /
//!   REFER / FORM1 / FORM2 ([`daemon::memb`]), the GROUPS state-exchange body
//!   ([`daemon::groups`]) and monitor packets with the status reply
//!   ([`daemon::control`]).
#![forbid(unsafe_code)]

pub mod consts;
pub mod daemon;
pub mod endian;
pub mod handshake;
pub mod header;
pub mod membership;
pub mod names;

pub use consts::*;
pub use endian::Order;
pub use header::Header;
pub use membership::GroupId;
pub use names::Name32;
