/work/main/target-prev/release/deps/spread_daemon-4079feecacedd560.d: spread-daemon/src/lib.rs spread-daemon/src/cli.rs spread-daemon/src/config/mod.rs spread-daemon/src/config/hash.rs spread-daemon/src/config/lexer.rs spread-daemon/src/config/local.rs spread-daemon/src/config/parser.rs spread-daemon/src/config/reload.rs spread-daemon/src/driver.rs spread-daemon/src/engine/mod.rs spread-daemon/src/engine/auth.rs spread-daemon/src/engine/fxhash.rs spread-daemon/src/engine/groups.rs spread-daemon/src/engine/ordering.rs spread-daemon/src/engine/ring/mod.rs spread-daemon/src/engine/ring/membership.rs spread-daemon/src/engine/ring/sim.rs spread-daemon/src/engine/ring/timers.rs spread-daemon/src/engine/ring/token.rs spread-daemon/src/engine/ring/topology.rs spread-daemon/src/engine/session.rs spread-daemon/src/engine/sim.rs spread-daemon/src/logging.rs spread-daemon/src/privilege.rs spread-daemon/src/sesslog.rs

/work/main/target-prev/release/deps/libspread_daemon-4079feecacedd560.rlib: spread-daemon/src/lib.rs spread-daemon/src/cli.rs spread-daemon/src/config/mod.rs spread-daemon/src/config/hash.rs spread-daemon/src/config/lexer.rs spread-daemon/src/config/local.rs spread-daemon/src/config/parser.rs spread-daemon/src/config/reload.rs spread-daemon/src/driver.rs spread-daemon/src/engine/mod.rs spread-daemon/src/engine/auth.rs spread-daemon/src/engine/fxhash.rs spread-daemon/src/engine/groups.rs spread-daemon/src/engine/ordering.rs spread-daemon/src/engine/ring/mod.rs spread-daemon/src/engine/ring/membership.rs spread-daemon/src/engine/ring/sim.rs spread-daemon/src/engine/ring/timers.rs spread-daemon/src/engine/ring/token.rs spread-daemon/src/engine/ring/topology.rs spread-daemon/src/engine/session.rs spread-daemon/src/engine/sim.rs spread-daemon/src/logging.rs spread-daemon/src/privilege.rs spread-daemon/src/sesslog.rs

/work/main/target-prev/release/deps/libspread_daemon-4079feecacedd560.rmeta: spread-daemon/src/lib.rs spread-daemon/src/cli.rs spread-daemon/src/config/mod.rs spread-daemon/src/config/hash.rs spread-daemon/src/config/lexer.rs spread-daemon/src/config/local.rs spread-daemon/src/config/parser.rs spread-daemon/src/config/reload.rs spread-daemon/src/driver.rs spread-daemon/src/engine/mod.rs spread-daemon/src/engine/auth.rs spread-daemon/src/engine/fxhash.rs spread-daemon/src/engine/groups.rs spread-daemon/src/engine/ordering.rs spread-daemon/src/engine/ring/mod.rs spread-daemon/src/engine/ring/membership.rs spread-daemon/src/engine/ring/sim.rs spread-daemon/src/engine/ring/timers.rs spread-daemon/src/engine/ring/token.rs spread-daemon/src/engine/ring/topology.rs spread-daemon/src/engine/session.rs spread-daemon/src/engine/sim.rs spread-daemon/src/logging.rs spread-daemon/src/privilege.rs spread-daemon/src/sesslog.rs

spread-daemon/src/lib.rs:
spread-daemon/src/cli.rs:
spread-daemon/src/config/mod.rs:
spread-daemon/src/config/hash.rs:
spread-daemon/src/config/lexer.rs:
spread-daemon/src/config/local.rs:
spread-daemon/src/config/parser.rs:
spread-daemon/src/config/reload.rs:
spread-daemon/src/driver.rs:
spread-daemon/src/engine/mod.rs:
spread-daemon/src/engine/auth.rs:
spread-daemon/src/engine/fxhash.rs:
spread-daemon/src/engine/groups.rs:
spread-daemon/src/engine/ordering.rs:
spread-daemon/src/engine/ring/mod.rs:
spread-daemon/src/engine/ring/membership.rs:
spread-daemon/src/engine/ring/sim.rs:
spread-daemon/src/engine/ring/timers.rs:
spread-daemon/src/engine/ring/token.rs:
spread-daemon/src/engine/ring/topology.rs:
spread-daemon/src/engine/session.rs:
spread-daemon/src/engine/sim.rs:
spread-daemon/src/logging.rs:
spread-daemon/src/privilege.rs:
spread-daemon/src/sesslog.rs:

# env-dep:SPREAD_ETCDIR
