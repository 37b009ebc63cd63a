/*
 * spping — round-trip latency through a Spread daemon.
 *
 * Written for rspread; options and output follow the spping example of
 * Spread 5.0.1. Every period a "ping" is multicast to the group; every
 * member reflects pings back to their sender, which prints the round trip.
 * SIGINT/SIGTERM end the run (through E_exit_events_async_safe) and the
 * statistics are printed. Driven entirely by the library's E_* loop.
 *
 *   -s <spread name>  port or port@host (default 4803)
 *   -u <user name>    private name (default: chosen by the daemon)
 *   -g <group>        group (default spping)
 *   -p <ms>           period between pings (default 1000)
 *   -b <bytes>        message size (default: the ping record, 48)
 *   -m <n>            pings to send (default: unlimited)
 *   -ro               only reflect
 */

#include <sp.h>

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX 100000
#define GROUPS_MAX 100

struct ping {
	uint32_t      seq;
	uint32_t      secs;
	uint32_t      usecs;
	unsigned char is_ping;
	char          origin[MAX_GROUP_NAME];
};

union body {
	struct ping ping;
	char        raw[BODY_MAX];
};

static char        daemon_addr[300] = "4803";
static const char *user_name;
static char        group[MAX_GROUP_NAME] = "spping";
static int         period_ms = 1000;
static int         body_len = (int) sizeof(struct ping);
static int         max_pings = -1;
static int         reflect_only;
static const service ping_service = RELIABLE_MESS | SELF_DISCARD;

static char        my_group[MAX_GROUP_NAME];
static mailbox     mbox;
static sp_time     period;
static uint32_t    pings_sent;
static union body  out, in;
static char        in_groups[GROUPS_MAX][MAX_GROUP_NAME];

static long       *rtt_us;
static int         rtt_count, rtt_cap;

static void die_usage(const char *why)
{
	if (why)
		fprintf(stderr, "Error: %s\n\n", why);
	fprintf(stderr, "Usage: spping\n"
		"\t[-s <spread name>]   : either port or port@hostname (default: 4803)\n"
		"\t[-u <user name>]     : unique (on daemon) user name (default: <random>)\n"
		"\t[-g <group name>]    : group to which to send/recv (default: spping)\n"
		"\t[-p <period>]        : time in ms between sending pings (default: 1000)\n"
		"\t[-b <num bytes>]     : number of bytes per message (default: 48)\n"
		"\t[-m <num messages>]  : number of messages (default: infinite)\n"
		"\t[-ro]                : reflect only\n");
	exit(1);
}

/* Parses a whole decimal int; 0 on any junk. */
static int whole_int(const char *s, int *out_v)
{
	char extra;
	return sscanf(s, "%d%c", out_v, &extra) == 1;
}

static void parse_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;

		if (strncmp(a, "-s", 2) == 0) {
			if (!v || strlen(v) >= sizeof daemon_addr) die_usage("Invalid -s parameter");
			snprintf(daemon_addr, sizeof daemon_addr, "%s", v);
			i++;
		} else if (strncmp(a, "-u", 2) == 0) {
			if (!v) die_usage("Invalid -u parameter");
			user_name = v;
			i++;
		} else if (strncmp(a, "-g", 2) == 0) {
			if (!v || strlen(v) >= sizeof group) die_usage("Invalid -g parameter");
			snprintf(group, sizeof group, "%s", v);
			i++;
		} else if (strncmp(a, "-p", 2) == 0) {
			if (!v || !whole_int(v, &period_ms) || period_ms < 0) die_usage("Invalid -p parameter");
			i++;
		} else if (strncmp(a, "-b", 2) == 0) {
			if (!v || !whole_int(v, &body_len) || body_len < (int) sizeof(struct ping) || body_len > BODY_MAX)
				die_usage("Invalid -b parameter");
			i++;
		} else if (strncmp(a, "-m", 2) == 0) {
			if (!v || !whole_int(v, &max_pings)) die_usage("Invalid -m parameter");
			i++;
		} else if (strncmp(a, "-ro", 3) == 0) {
			reflect_only = 1;
		} else {
			die_usage("Unrecognized parameter");
		}
	}
	period.sec = period_ms / 1000;
	period.usec = (period_ms % 1000) * 1000;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *) a, y = *(const long *) b;
	return x < y ? -1 : x > y;
}

static void print_stats(void)
{
	static const struct { const char *label; int num, den, from_top; } pct[] = {
		{ "   0", 0, 1, 0 }, { " 0.1", 1, 1000, 0 }, { " 0.5", 1, 200, 0 },
		{ "   1", 1, 100, 0 }, { "   5", 1, 20, 0 }, { "  10", 1, 10, 0 },
		{ "  25", 1, 4, 0 }, { "  50", 1, 2, 0 }, { "  75", 1, 4, 1 },
		{ "  90", 1, 10, 1 }, { "  95", 1, 20, 1 }, { "  99", 1, 100, 1 },
		{ "99.5", 1, 200, 1 }, { "99.9", 1, 1000, 1 }, { " 100", -1, 1, 1 },
	};
	double mean = 0.0, m2 = 0.0;
	size_t k;
	int i;

	printf("\n--- %s ping statistics ---\n"
	       "%d packets transmitted, %d packets received, %f%% packet loss\n",
	       group, (int) pings_sent, rtt_count,
	       pings_sent ? (pings_sent - rtt_count) * 100.0 / pings_sent : 0.0);
	if (rtt_count == 0)
		return;

	qsort(rtt_us, (size_t) rtt_count, sizeof *rtt_us, cmp_long);
	printf("round-trip percentiles (ms) (slightly biased outwards):\n");
	for (k = 0; k < sizeof pct / sizeof pct[0]; k++) {
		int at;
		if (pct[k].num < 0)
			at = rtt_count - 1;
		else if (pct[k].from_top)
			at = rtt_count - rtt_count / pct[k].den;
		else
			at = pct[k].num ? rtt_count / pct[k].den : 0;
		if (at >= rtt_count) at = rtt_count - 1;
		printf("%s: %9.3f\n", pct[k].label, rtt_us[at] / 1000.0);
	}
	/* Welford's running mean and variance. */
	for (i = 0; i < rtt_count; i++) {
		double before = mean;
		mean += (rtt_us[i] - mean) / (i + 1);
		m2 += (rtt_us[i] - before) * (rtt_us[i] - mean);
	}
	printf("round-trip mean/stddev = %.3f/%.3f ms\n", mean / 1000.0,
	       (rtt_count > 1 ? sqrt(m2 / (rtt_count - 1)) : 0.0) / 1000.0);
}

static void on_signal(int sig)
{
	(void) sig;
	E_exit_events_async_safe();
}

static void send_ping(int code, void *data)
{
	sp_time now = E_get_time();
	int ret;

	(void) code; (void) data;
	if (max_pings >= 0 && pings_sent >= (uint32_t) max_pings) {
		E_exit_events();
		return;
	}
	out.ping.seq = pings_sent++;
	out.ping.secs = (uint32_t) now.sec;
	out.ping.usecs = (uint32_t) now.usec;
	out.ping.is_ping = 1;
	memcpy(out.ping.origin, my_group, MAX_GROUP_NAME);

	ret = SP_multicast(mbox, ping_service, group, 0, body_len, out.raw);
	if (ret != body_len) {
		if (ret < 0)
			SP_error(ret);
		else
			fprintf(stderr, "Bytes sent (%d) != Num_bytes (%d)?!\n", ret, body_len);
		exit(1);
	}
	E_queue(send_ping, 0, NULL, period);
}

static void keep_sample(long us)
{
	if (rtt_count == rtt_cap) {
		int cap = rtt_cap ? rtt_cap * 2 : 256;
		long *grown = realloc(rtt_us, sizeof *grown * (size_t) cap);

		if (grown == NULL) {
			fprintf(stderr, "\nrealloc(%lu) failed!\n", (unsigned long) (sizeof *grown * (size_t) cap));
			E_exit_events();
			return;
		}
		rtt_us = grown;
		rtt_cap = cap;
	}
	rtt_us[rtt_count++] = us;
}

static void on_mailbox(int fd, int code, void *data)
{
	char sender[MAX_GROUP_NAME];
	service s = 0;
	int ngroups, endian, ret;
	int16 mtype;

	(void) fd; (void) code; (void) data;
	ret = SP_receive(mbox, &s, sender, GROUPS_MAX, &ngroups, in_groups,
			 &mtype, &endian, (int) sizeof in.raw, in.raw);
	if (ret < 0) {
		SP_error(ret);
		exit(1);
	}
	if (!Is_regular_mess(s) || ret < (int) sizeof(struct ping))
		return;

	if (in.ping.is_ping) {
		/* Reflect it to its sender unchanged except for the flag. */
		int back;

		in.ping.is_ping = 0;
		back = SP_multicast(mbox, s, sender, 0, ret, in.raw);
		if (back != ret) {
			if (back < 0)
				SP_error(back);
			else
				fprintf(stderr, "Bytes sent (%d) != Ret (%d)?!\n", back, ret);
			exit(1);
		}
	} else if (strncmp(in.ping.origin, my_group, MAX_GROUP_NAME) == 0) {
		sp_time now = E_get_time();
		long us = ((long) now.sec - (long) in.ping.secs) * 1000000L +
			  ((long) now.usec - (long) in.ping.usecs);

		printf("%d bytes from %s: seq = %d time = %.3f ms\n", ret, sender,
		       (int) in.ping.seq, us / 1000.0);
		keep_sample(us);
	}
}

int main(int argc, char **argv)
{
	int ret;

	/* One line at a time, so a watching script sees each ping as it
	 * happens. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	E_init();
	parse_args(argc, argv);

	printf("spping: connecting to '%s'\n", daemon_addr);
	ret = SP_connect(daemon_addr, user_name, 0, 1, &mbox, my_group);
	if (ret < 0) {
		SP_error(ret);
		exit(1);
	}
	printf("spping: connected as '%s'\n", my_group);
	E_attach_fd(mbox, READ_FD, on_mailbox, 0, NULL, HIGH_PRIORITY);

	ret = SP_join(mbox, group);
	if (ret < 0) {
		SP_error(ret);
		exit(1);
	}
	if (reflect_only) {
		printf("spping: only reflecting pings!\n");
	} else {
		printf("PING %s: %d data bytes\n", group, body_len);
		send_ping(0, NULL);
	}
	E_handle_events();
	print_stats();
	return 0;
}
