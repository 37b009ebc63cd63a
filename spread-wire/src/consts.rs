//! Numeric constants of the Spread 5.0.1 client ABI and wire protocol
//! (client spec §1.2). Service bits are `u32` because the wire `type` word is
//! unsigned; error codes are `i32` as the C API returns them.

// ---- service bits (public, sp.h) -------------------------------------------
pub const UNRELIABLE_MESS: u32 = 0x0000_0001;
pub const RELIABLE_MESS: u32 = 0x0000_0002;
pub const FIFO_MESS: u32 = 0x0000_0004;
pub const CAUSAL_MESS: u32 = 0x0000_0008;
pub const AGREED_MESS: u32 = 0x0000_0010;
pub const SAFE_MESS: u32 = 0x0000_0020;
pub const REGULAR_MESS: u32 = 0x0000_003f;
pub const SELF_DISCARD: u32 = 0x0000_0040;
pub const DROP_RECV: u32 = 0x0100_0000;

pub const REG_MEMB_MESS: u32 = 0x0000_1000;
pub const TRANSITION_MESS: u32 = 0x0000_2000;
pub const CAUSED_BY_JOIN: u32 = 0x0000_0100;
pub const CAUSED_BY_LEAVE: u32 = 0x0000_0200;
pub const CAUSED_BY_DISCONNECT: u32 = 0x0000_0400;
pub const CAUSED_BY_NETWORK: u32 = 0x0000_0800;
pub const MEMBERSHIP_MESS: u32 = 0x0000_3f00;

pub const ENDIAN_RESERVED: u32 = 0x8000_0080;
pub const RESERVED: u32 = 0x003f_c000;
pub const REJECT_MESS: u32 = 0x0040_0000;

// ---- internal service bits that appear on the wire (daemon/sess_types.h) ---
pub const NOT_REGULAR_MESS: u32 = 0x00ff_ff00;
pub const RETRANSMIT_TYPE: u32 = 0x0000_4000;
pub const LATENCY_MESS: u32 = 0x0000_8000;
pub const JOIN_MESS: u32 = 0x0001_0000;
pub const LEAVE_MESS: u32 = 0x0002_0000;
pub const KILL_MESS: u32 = 0x0004_0000;
pub const GROUPS_MESS: u32 = 0x0008_0000;
pub const DUMMY_MESS: u32 = 0x0010_0000;
pub const STATETRANS_MESS: u32 = 0x0020_0000;

// ---- FL (fl.h) bits that travel through the daemon unchanged ---------------
pub const DONT_BLOCK: u32 = 0x1000_0000;
pub const FLUSH_REQ_MESS: u32 = 0x2000_0000;
pub const SUBGROUP_CAST: u32 = 0x4000_0000;

// ---- error / status codes ---------------------------------------------------
pub const ACCEPT_SESSION: i32 = 1;
pub const ILLEGAL_SPREAD: i32 = -1;
pub const COULD_NOT_CONNECT: i32 = -2;
pub const REJECT_QUOTA: i32 = -3;
pub const REJECT_NO_NAME: i32 = -4;
pub const REJECT_ILLEGAL_NAME: i32 = -5;
pub const REJECT_NOT_UNIQUE: i32 = -6;
pub const REJECT_VERSION: i32 = -7;
pub const CONNECTION_CLOSED: i32 = -8;
pub const REJECT_AUTH: i32 = -9;
pub const ILLEGAL_SESSION: i32 = -11;
pub const ILLEGAL_SERVICE: i32 = -12;
pub const ILLEGAL_MESSAGE: i32 = -13;
pub const ILLEGAL_GROUP: i32 = -14;
pub const BUFFER_TOO_SHORT: i32 = -15;
pub const GROUPS_TOO_SHORT: i32 = -16;
pub const MESSAGE_TOO_LONG: i32 = -17;
pub const NET_ERROR_ON_SESSION: i32 = -18;
pub const SP_BUG: i32 = -19;
pub const ILLEGAL_TIME: i32 = -20;
// FL codes
pub const ILLEGAL_PARAM: i32 = -24;
pub const WOULD_BLOCK: i32 = -25;
pub const ILLEGAL_MESSAGE_TYPE: i32 = -26;
pub const ILLEGAL_STATE: i32 = -27;
pub const ILLEGAL_RECEIVERS: i32 = -28;

// ---- sizes ------------------------------------------------------------------
pub const MAX_GROUP_NAME: usize = 32;
pub const MAX_PRIVATE_NAME: usize = 10;
pub const MAX_PROC_NAME: usize = 20;
pub const MAX_CLIENT_SCATTER_ELEMENTS: usize = 100;
pub const MAX_GROUPS_PER_MESSAGE: usize = 100;
pub const MAX_AUTH_NAME: usize = 30;
pub const MAX_AUTH_METHODS: usize = 3;
/// Library-side limit on `data_len + 32*num_groups` (`sp.c:SP_internal_multicast`).
pub const MAX_MESSAGE_BODY_LEN: usize = 144_000;
/// Daemon-side validation limit on `data_len + 32*num_groups` (144000 - 48).
pub const MAX_DAEMON_BODY_AND_GROUPS: usize = MAX_MESSAGE_BODY_LEN - HEADER_LEN;
pub const HEADER_LEN: usize = 48;
pub const DEFAULT_SPREAD_PORT: u16 = 4803;
pub const MAX_SESSIONS: usize = 997;
pub const MAX_LIB_SESSIONS: usize = 1024;
pub const DEFAULT_MAX_SESSION_MESSAGES: usize = 1000;

/// The directory of the daemon's Unix-domain socket (`SP_UNIX_SOCKET`): a
/// build-time setting as in the original (`SPREAD_UNIX_SOCKET_DIR`), `/tmp` by
/// default. Client and daemon must agree, so both take it from here.
pub const SP_UNIX_SOCKET: &str = match option_env!("SPREAD_UNIX_SOCKET_DIR") {
    Some(d) => d,
    None => "/tmp",
};

/// `SP_UNIX_SOCKET "/" port`, e.g. `/tmp/4803`.
pub fn unix_socket_path(port: u16) -> String {
    format!("{SP_UNIX_SOCKET}/{port}")
}

// ---- versions ---------------------------------------------------------------
pub const SP_MAJOR_VERSION: u8 = 5;
pub const SP_MINOR_VERSION: u8 = 0;
pub const SP_PATCH_VERSION: u8 = 1;
/// The value of `SPREAD_VERSION` in sp.h (not bumped to 5.0.1 upstream).
pub const SPREAD_VERSION: u32 = 5 << 24;

/// True when `service` is a data service as the *library-internal* macro sees it
/// (`t & REGULAR_MESS`, REJECT not excluded).
#[inline]
pub fn is_regular_internal(service: u32) -> bool {
    service & REGULAR_MESS != 0
}

/// `SP_strerror` text for an error code (identical in all three libraries).
pub fn strerror(code: i32) -> &'static str {
    match code {
        ILLEGAL_SPREAD => "Illegal spread name provided.",
        COULD_NOT_CONNECT => "Could not connect.",
        REJECT_QUOTA => "Connection rejected, too many users.",
        REJECT_NO_NAME => "Connection rejected, no name was supplied.",
        REJECT_ILLEGAL_NAME => "Connection rejected, illegal name.",
        REJECT_NOT_UNIQUE => "Connection rejected, name not unique.",
        REJECT_VERSION => "Connection rejected, client library incompatible with daemon.",
        CONNECTION_CLOSED => "Connection closed by Spread.",
        REJECT_AUTH => "Connection rejected, authentication failed.",
        ILLEGAL_SESSION => "Illegal session was supplied.",
        ILLEGAL_SERVICE => "Illegal service request.",
        ILLEGAL_MESSAGE => "Illegal message.",
        ILLEGAL_GROUP => "Illegal group.",
        BUFFER_TOO_SHORT => "Buffer too short.",
        GROUPS_TOO_SHORT => "Groups list too short.",
        MESSAGE_TOO_LONG => "Message (body + group names) too large.",
        NET_ERROR_ON_SESSION => "Network socket error. SP_kill() the mailbox.",
        SP_BUG => "Internal Spread bug detected.",
        ILLEGAL_TIME => "Illegal time.",
        _ => "Unrecognized error.",
    }
}
