/work/main/target-prev/release/deps/spread-b03b8a902818a55d.d: spread-daemon/src/main.rs

/work/main/target-prev/release/deps/spread-b03b8a902818a55d: spread-daemon/src/main.rs

spread-daemon/src/main.rs:
