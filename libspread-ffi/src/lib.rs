//! The C ABI of libspread 5.0.1 (`SP_*`, `E_*`, `FL_*`): thin `extern "C"`
//! shells over `spread-client`. Every exported function runs inside a panic
//! guard; no panic ever crosses into C.
