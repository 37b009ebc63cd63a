//! `#[repr(C)]` mirrors of the public structs of `sp.h` / `sp_events.h`
//! (layouts checked against `../shared/ref/abi.json` by the ABI probe).
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_long, c_uint};

/// `typedef int mailbox;` — the connected socket fd.
pub type mailbox = c_int;
/// `typedef int service;`
pub type service = c_int;
/// `int16` (a macro for `short` in sp.h).
pub type int16 = i16;
/// `int32` (a macro for `int` in sp.h).
pub type int32 = c_int;

/// `struct dummy_scat_element { char *buf; size_t len; }` — exactly an iovec.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct scat_element {
    pub buf: *mut c_char,
    pub len: usize,
}

/// `struct dummy_scatter { size_t num_elements; scat_element elements[100]; }`
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct scatter {
    pub num_elements: usize,
    pub elements: [scat_element; 100],
}

/// `struct dummy_group_id { int32 id[3]; }`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct group_id {
    pub id: [int32; 3],
}

/// `struct dummy_vs_set_info { unsigned int num_members; unsigned int members_offset; }`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vs_set_info {
    pub num_members: c_uint,
    pub members_offset: c_uint,
}

/// `struct dummy_membership_info`
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct membership_info {
    pub gid: group_id,
    pub changed_member: [c_char; 32],
    pub num_vs_sets: c_uint,
    pub my_vs_set: vs_set_info,
}

/// `struct dummy_time { long sec; long usec; }` (sp_events.h)
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct sp_time {
    pub sec: c_long,
    pub usec: c_long,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, size_of};

    #[test]
    fn layouts_match_lp64_reference() {
        assert_eq!((size_of::<scat_element>(), align_of::<scat_element>()), (16, 8));
        assert_eq!((size_of::<scatter>(), align_of::<scatter>()), (1608, 8));
        assert_eq!((size_of::<group_id>(), align_of::<group_id>()), (12, 4));
        assert_eq!((size_of::<vs_set_info>(), align_of::<vs_set_info>()), (8, 4));
        assert_eq!((size_of::<membership_info>(), align_of::<membership_info>()), (56, 4));
        assert_eq!((size_of::<sp_time>(), align_of::<sp_time>()), (16, 8));
    }
}
