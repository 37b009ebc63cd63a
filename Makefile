# rspread — build, install, test, run, bench.
# `make test` is the one command that runs every test (CI calls it via .ci/run).

PREFIX  ?= /usr/local
CARGO   ?= cargo
BUILD   := build
PROFILE := release

.PHONY: all build libs install test run bench clean

all: build

build:
	$(CARGO) build --$(PROFILE) --workspace

test: build
	$(CARGO) test --$(PROFILE) --workspace

run:
	$(CARGO) run --$(PROFILE) -p spread-daemon --bin spread

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
