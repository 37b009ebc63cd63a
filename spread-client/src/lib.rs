//! Safe Rust client for the Spread 5.0.1 client protocol: the engine behind
//! `libspread` (connect/handshake, sessions, send, receive with the original's
//! short-buffer contract). The C ABI in `libspread-ffi` is a thin shell over it.
