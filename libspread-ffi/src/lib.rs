//! The C ABI of libspread 5.0.1 (`SP_*`, `E_*`, `FL_*`): thin `extern "C"`
//! shells over `spread-client`. Every exported function runs inside a panic
//! guard ([`guard`]); no panic ever crosses into C.
#![allow(non_snake_case, clippy::missing_safety_doc)]

pub mod guard;
pub mod types;

pub mod events;
pub mod fl;
pub mod sp;
