/work/main/target-prev/release/deps/spread_wire-67de41e1ff4a87ae.d: spread-wire/src/lib.rs spread-wire/src/consts.rs spread-wire/src/daemon/mod.rs spread-wire/src/daemon/control.rs spread-wire/src/daemon/data.rs spread-wire/src/daemon/groups.rs spread-wire/src/daemon/memb.rs spread-wire/src/daemon/token.rs spread-wire/src/endian.rs spread-wire/src/handshake.rs spread-wire/src/header.rs spread-wire/src/membership.rs spread-wire/src/names.rs

/work/main/target-prev/release/deps/libspread_wire-67de41e1ff4a87ae.rlib: spread-wire/src/lib.rs spread-wire/src/consts.rs spread-wire/src/daemon/mod.rs spread-wire/src/daemon/control.rs spread-wire/src/daemon/data.rs spread-wire/src/daemon/groups.rs spread-wire/src/daemon/memb.rs spread-wire/src/daemon/token.rs spread-wire/src/endian.rs spread-wire/src/handshake.rs spread-wire/src/header.rs spread-wire/src/membership.rs spread-wire/src/names.rs

/work/main/target-prev/release/deps/libspread_wire-67de41e1ff4a87ae.rmeta: spread-wire/src/lib.rs spread-wire/src/consts.rs spread-wire/src/daemon/mod.rs spread-wire/src/daemon/control.rs spread-wire/src/daemon/data.rs spread-wire/src/daemon/groups.rs spread-wire/src/daemon/memb.rs spread-wire/src/daemon/token.rs spread-wire/src/endian.rs spread-wire/src/handshake.rs spread-wire/src/header.rs spread-wire/src/membership.rs spread-wire/src/names.rs

spread-wire/src/lib.rs:
spread-wire/src/consts.rs:
spread-wire/src/daemon/mod.rs:
spread-wire/src/daemon/control.rs:
spread-wire/src/daemon/data.rs:
spread-wire/src/daemon/groups.rs:
spread-wire/src/daemon/memb.rs:
spread-wire/src/daemon/token.rs:
spread-wire/src/endian.rs:
spread-wire/src/handshake.rs:
spread-wire/src/header.rs:
spread-wire/src/membership.rs:
spread-wire/src/names.rs:

# env-dep:SPREAD_UNIX_SOCKET_DIR
