//! Time helpers of `sp_events.h`: arithmetic normalisation (the rules of the
//! original `E_add_time`), comparison, clocks and `E_delay`.

use spread_ffi::events::*;
use spread_ffi::types::sp_time;
use std::time::{Duration, Instant};

fn t(sec: i64, usec: i64) -> sp_time {
    sp_time { sec: sec as _, usec: usec as _ }
}

#[test]
fn add_carries_and_borrows_one_second() {
    unsafe {
        assert_eq!(E_add_time(t(1, 600_000), t(2, 600_000)), t(4, 200_000));
        assert_eq!(E_add_time(t(0, 999_999), t(0, 1)), t(1, 0));
        assert_eq!(E_add_time(t(-1, -600_000), t(0, -600_000)), t(-2, -200_000));
        assert_eq!(E_add_time(t(0, -999_999), t(0, -1)), t(-1, 0));
    }
}

#[test]
fn add_gives_sec_and_usec_the_same_sign() {
    unsafe {
        // positive seconds, negative micros -> borrow
        assert_eq!(E_add_time(t(3, 0), t(0, -250_000)), t(2, 750_000));
        assert_eq!(E_add_time(t(1, 0), t(0, -1)), t(0, 999_999));
        // negative seconds, positive micros -> carry towards zero
        assert_eq!(E_add_time(t(-3, 0), t(0, 250_000)), t(-2, -750_000));
        assert_eq!(E_add_time(t(-1, 0), t(0, 1)), t(0, -999_999));
        // zero seconds keeps a signed usec as is
        assert_eq!(E_add_time(t(0, 0), t(0, -5)), t(0, -5));
        assert_eq!(E_add_time(t(0, 0), t(0, 5)), t(0, 5));
    }
}

#[test]
fn neg_and_sub() {
    unsafe {
        assert_eq!(E_neg_time(t(2, 300)), t(-2, -300));
        assert_eq!(E_neg_time(t(0, 0)), t(0, 0));
        assert_eq!(E_sub_time(t(5, 100), t(2, 200)), t(2, 999_900));
        assert_eq!(E_sub_time(t(2, 200), t(5, 100)), t(-2, -999_900));
        assert_eq!(E_sub_time(t(7, 7), t(7, 7)), t(0, 0));
        assert_eq!(E_sub_time(t(0, 0), t(1, 500_000)), t(-1, -500_000));
    }
}

#[test]
fn compare_orders_by_sec_then_usec() {
    unsafe {
        assert_eq!(E_compare_time(t(2, 0), t(1, 999_999)), 1);
        assert_eq!(E_compare_time(t(1, 999_999), t(2, 0)), -1);
        assert_eq!(E_compare_time(t(1, 5), t(1, 4)), 1);
        assert_eq!(E_compare_time(t(1, 4), t(1, 5)), -1);
        assert_eq!(E_compare_time(t(1, 5), t(1, 5)), 0);
        assert_eq!(E_compare_time(t(-1, -5), t(-1, -4)), -1);
        // sec decides even against a larger usec (non-normalised input)
        assert_eq!(E_compare_time(t(1, 0), t(0, 5_000_000)), 1);
    }
}

#[test]
fn clocks_are_sane_and_monotonic_is_non_decreasing() {
    unsafe {
        let wall = E_get_time();
        let sys = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!((wall.sec as i64 - sys.as_secs() as i64).abs() <= 2);
        assert!((0..1_000_000).contains(&(wall.usec as i64)));

        let mut prev = E_get_time_monotonic();
        for _ in 0..10_000 {
            let now = E_get_time_monotonic();
            assert!((0..1_000_000).contains(&(now.usec as i64)), "usec out of range: {now:?}");
            assert!(E_compare_time(now, prev) >= 0, "{now:?} < {prev:?}");
            prev = now;
        }
    }
}

#[test]
fn delay_sleeps_at_least_the_requested_time() {
    unsafe {
        let start = Instant::now();
        E_delay(t(0, 30_000));
        let el = start.elapsed();
        assert!(el >= Duration::from_millis(29), "slept only {el:?}");
        assert!(el < Duration::from_secs(5), "slept {el:?}");

        // negative delays return at once
        let start = Instant::now();
        E_delay(t(-1, 0));
        E_delay(t(0, -10));
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
