//! The spread daemon: a sans-I/O protocol engine (sessions → ordering →
//! groups → delivery) driven by a thin mio driver, or by the simulator in tests.
//!
//! * [`config`] — `spread.conf` (grammar, defaults, VIDs, configuration hash);
//! * [`cli`] — the original's command line;
//! * [`logging`] — `tracing` set up from EventLogFile/EventTimeStamp/EventPriority/DebugFlags;
//! * [`privilege`] — the Unix-socket directory check and the chroot/setuid drop when run as root;
//! * [`sesslog`] — the session/membership log of `-l y`;
//! * [`engine`] — sessions, ordering (a ring of one for now), groups; events in, actions out;
//! * [`driver`] — the mio driver that moves bytes and time in and out of the engine;
//! * [`metrics`] — the opt-in Prometheus endpoint (`MetricsAddress`) the driver serves;
//! * [`monitor`] — `spmonitor`, the monitor program (menu, control packets, status printout).

pub mod cli;
pub mod config;
pub mod driver;
pub mod engine;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod privilege;
pub mod sesslog;
