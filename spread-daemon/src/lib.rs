//! The spread daemon: a sans-I/O protocol engine (sessions → ordering →
//! groups → delivery) driven by a thin mio driver, or by the simulator in tests.
