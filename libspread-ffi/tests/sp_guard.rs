//! The panic guard: a panic inside the Rust implementation of an `SP_*`
//! function comes back to C as that function's error value, never as an
//! unwind across the boundary. (Own test binary: the hook is process-wide.)

use spread_ffi::sp::SP_poll;
use spread_wire::consts::{ILLEGAL_SESSION, SP_BUG};

#[test]
fn panic_inside_sp_poll_becomes_sp_bug() {
    assert_eq!(unsafe { SP_poll(12345) }, ILLEGAL_SESSION);
    spread_client::testing::set_panic_in_poll(true);
    let r = unsafe { SP_poll(12345) };
    spread_client::testing::set_panic_in_poll(false);
    assert_eq!(r, SP_BUG);
    // The library keeps working afterwards.
    assert_eq!(unsafe { SP_poll(12345) }, ILLEGAL_SESSION);
}
