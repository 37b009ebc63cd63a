//! Test-support code shared by the compatibility tests.
