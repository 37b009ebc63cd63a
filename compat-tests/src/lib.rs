//! Test-support code shared by the compatibility tests:
//!
//! * [`transcript`] — the recorded client⇄daemon sessions of the reference
//!   5.0.1 build (`../shared/ref/transcripts` beside the checkout);
//! * [`paths`] — where the built `spread` binary and the C libraries are;
//! * [`daemon`] — start our daemon on a temporary config, wait until it
//!   serves, stop it by PID when dropped;
//! * [`net`] — raw client sockets (TCP or Unix) with deadlines;
//! * [`netns`] — a LAN of network namespaces on a bridge, daemons and
//!   clients inside it (broadcast-segment ring tests);
//! * [`frames`] — building and comparing client-protocol frames;
//! * [`sp_api`] — the `SP_*` functions as a table of C function pointers,
//!   taken from `spread_ffi` (default) or from a shared library named by
//!   `$RSPREAD_SP_LIB`, with small safe wrappers for the tests.

pub mod api_check;
pub mod daemon;
pub mod frames;
pub mod hex;
pub mod net;
pub mod netns;
pub mod paths;
pub mod pcap_logs;
pub mod sp_api;
pub mod tempdir;
pub mod transcript;
