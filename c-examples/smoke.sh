#!/bin/sh
# Smoke check of the C example programs against a running daemon.
#
#   BINDIR=<dir with the built examples> ./smoke.sh
#
# Environment:
#   BINDIR   where spuser, spflooder, ... are (default ../build/bin)
#   SPREAD   daemon binary to start (default ../target/release/spread);
#            SPREAD=none uses a daemon that is already listening on PORT
#   PORT     daemon port (default 26010); the UDP check uses PORT+10
#
# Every wait polls for the awaited output with a bound; nothing relies on a
# fixed delay. Only processes started here are stopped, by PID.
set -u

here=$(cd "$(dirname "$0")" && pwd)
BINDIR=${BINDIR:-$here/../build/bin}
SPREAD=${SPREAD:-$here/../target/release/spread}
PORT=${PORT:-26010}
UDP_PORT=$((PORT + 10))
work=$(mktemp -d /tmp/spread-smoke.XXXXXX)
pids=""
failures=0

cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

started() { pids="$pids $1"; }

# wait_for FILE TEXT [SECONDS]: until FILE contains TEXT (fixed string).
wait_for() {
	n=$(( ${3:-10} * 20 ))
	while [ "$n" -gt 0 ]; do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}

# wait_exit PID [SECONDS]: until the process has gone.
wait_exit() {
	n=$(( ${2:-10} * 20 ))
	while [ "$n" -gt 0 ]; do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}

check() {	# check NAME FILE TEXT [SECONDS]
	if wait_for "$2" "$3" "${4:-10}"; then
		echo "ok   $1"
	else
		echo "FAIL $1: no \"$3\" in output:"
		sed 's/^/     | /' "$2" | tail -20
		failures=$((failures + 1))
	fi
}

# --- daemon -----------------------------------------------------------------
if [ "$SPREAD" != none ]; then
	cat > "$work/spread.conf" <<EOF
Spread_Segment 127.0.0.255:$PORT {
	localhost 127.0.0.1
}
DaemonUser = $(id -un)
DaemonGroup = $(id -gn)
RuntimeDir = $work
EOF
	"$SPREAD" -n localhost -c "$work/spread.conf" > "$work/daemon.log" 2>&1 &
	started $!
	n=200
	while [ ! -S "/tmp/$PORT" ] && [ "$n" -gt 0 ]; do sleep 0.05; n=$((n - 1)); done
	if [ ! -S "/tmp/$PORT" ]; then
		echo "FAIL daemon did not come up:"; tail -20 "$work/daemon.log"; exit 1
	fi
fi

# An interactive program fed through a FIFO, so that each command is sent
# only once the previous answer has been seen.
# start_interactive NAME CMD...: opens the FIFO as fd 7; sets $out and $ipid
start_interactive() {
	fifo="$work/$1.in"
	out="$work/$1.out"
	shift
	mkfifo "$fifo"
	"$@" < "$fifo" > "$out" 2>&1 &
	ipid=$!
	started $ipid
	exec 7> "$fifo"
}
say() { printf '%s\n' "$1" >&7; }

# --- spflooder --------------------------------------------------------------
"$BINDIR/spflooder" -s "$PORT" -m 2000 -b 100 -u smkfl > "$work/flooder.out" 2>&1 &
started $!
check spflooder "$work/flooder.out" "flooder: completed multicast of 2000 messages, 100 bytes each." 60

# --- spuser -----------------------------------------------------------------
start_interactive spuser "$BINDIR/spuser" -u smku -s "$PORT"
check "spuser connect" "$out" "User: connected to $PORT with private group #smku#localhost"
say "j sgrp";  check "spuser join" "$out" "Due to the JOIN of #smku#localhost"
say "s sgrp";  say "hello smoke"
check "spuser send/receive" "$out" "(12 bytes): hello smoke"
say "p";       check "spuser poll" "$out" "Polling sais: 0"
say "z";       check "spuser unknown" "$out" "Unknown commnad"
say "q";       exec 7>&-
wait_exit "$ipid" 10; check "spuser quit" "$out" "Bye."

# --- sptuser ----------------------------------------------------------------
start_interactive sptuser "$BINDIR/sptuser" -u smkt -s "$PORT"
check "sptuser connect" "$out" "with private group #smkt#localhost"
say "j tgrp";  check "sptuser join" "$out" "Due to the JOIN of #smkt#localhost"
say "s tgrp";  say "threaded hi"
check "sptuser send/receive" "$out" "(12 bytes): threaded hi"
say "q";       exec 7>&-
wait_exit "$ipid" 10; check "sptuser quit" "$out" "Bye."

# --- spsimple_user ----------------------------------------------------------
echo "simple smoke" | "$BINDIR/spsimple_user" -s "$PORT" -u smks > "$work/simple.out" 2>&1 &
started $!
check spsimple_user "$work/simple.out" "received AGREED message from #smks#localhost of type 1"

# --- spping -----------------------------------------------------------------
"$BINDIR/spping" -s "$PORT" -u smkr -ro > "$work/reflect.out" 2>&1 &
rpid=$!; started $rpid
check "spping reflector" "$work/reflect.out" "spping: only reflecting pings!"
"$BINDIR/spping" -s "$PORT" -u smkp -m 3 -p 20 > "$work/ping.out" 2>&1 &
started $!
check "spping" "$work/ping.out" "3 packets transmitted, 3 packets received"
kill -INT "$rpid" 2>/dev/null
check "spping signal exit" "$work/reflect.out" "--- spping ping statistics ---"

# --- flush_user -------------------------------------------------------------
start_interactive flush "$BINDIR/flush_user" -u smkf -s "$PORT"
check "flush_user connect" "$out" "User: connected to $PORT with private group #smkf#localhost"
say "j fgrp"; say "r"
check "flush_user membership" "$out" "Received REGULAR membership for group fgrp with 1 members"
say "s fgrp"; say "flush hi"; say "r"
check "flush_user receive" "$out" "Message is:"
say "q";      exec 7>&-
wait_exit "$ipid" 10; check "flush_user quit" "$out" "Calling FL_disconnect"

# --- spsend / sprecv (plain UDP, no daemon involved) ------------------------
"$BINDIR/sprecv" -p "$UDP_PORT" > "$work/recv.out" 2>&1 &
started $!
check "sprecv ready" "$work/recv.out" "Ready to receive on port $UDP_PORT"
"$BINDIR/spsend" -p "$UDP_PORT" -n 100 -b 10 -t 1 -s 200 > "$work/send.out" 2>&1
check "spsend" "$work/send.out" "total time is"
check "sprecv report" "$work/recv.out" "Report: total packets 100,"

if [ "$failures" -ne 0 ]; then
	echo "$failures smoke check(s) failed"
	exit 1
fi
echo "all smoke checks passed"
