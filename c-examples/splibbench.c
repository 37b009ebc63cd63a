/*
 * splibbench — the client library's hot path under load (make bench, LIBRARY section).
 *
 * Written for rspread. One process, one connection: it joins a group of its
 * own, waits for its membership, then multicasts RELIABLE messages to that
 * group and receives each one back, keeping a window of messages in flight.
 * Built against sp.h only, so the same binary runs on any libspread: ours,
 * or the original's through LD_LIBRARY_PATH.
 *
 *   splibbench [-s <daemon>] [-u <name>] [-m <messages>] [-b <bytes>]
 *              [-w <window>] [-x sp|scat|fl|ev]
 *
 *   -x sp    SP_multicast / SP_receive (default)
 *   -x scat  SP_scat_multicast / SP_scat_receive, the body in two pieces
 *   -x fl    FL_multicast / FL_receive (the Flush library: splibbench-fl, linked
 *            with libspread; splibbench is linked with libspread-core)
 *   -x ev    SP_multicast / SP_receive driven by the E_* event loop: the
 *            mailbox is attached with E_attach_fd and every receive, and
 *            the send it allows, happens in the read callback
 *
 * Prints one line:
 *   splibbench: <mode> <n> x <bytes> B: <secs> s, <msg/s> msg/s, <us> us CPU/msg
 * (the CPU time, user + system, this process spent per message).
 * and exits 0, or prints the error and exits 1.
 */

#include <sp.h>
#include <sp_events.h>
#ifndef NO_FL
#include <fl.h>
#else
/* splibbench is linked with libspread-core, which has no FL_* functions. */
static int FL_lib_init(void) { return 0; }
static int FL_connect(const char *d, const char *u, int p, mailbox *m, char *g)
{ (void) d; (void) u; (void) p; (void) m; (void) g; return ILLEGAL_SESSION; }
static int FL_join(mailbox m, const char *g) { (void) m; (void) g; return ILLEGAL_SESSION; }
static int FL_flush(mailbox m, const char *g) { (void) m; (void) g; return ILLEGAL_SESSION; }
static int FL_disconnect(mailbox m) { (void) m; return ILLEGAL_SESSION; }
static int FL_multicast(mailbox m, service s, const char *g, int16 t, int l, const char *b)
{ (void) m; (void) s; (void) g; (void) t; (void) l; (void) b; return ILLEGAL_SESSION; }
static int FL_receive(mailbox m, service *s, char *sn, int mg, int *ng, char g[][MAX_GROUP_NAME], int16 *t,
		      int *e, int l, char *b, int *more)
{ (void) m; (void) s; (void) sn; (void) mg; (void) ng; (void) g; (void) t; (void) e; (void) l; (void) b;
  (void) more; return ILLEGAL_SESSION; }
#define Is_flush_req_mess(s) 0
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { BODY_MAX = 100000, GROUPS_MAX = 8 };

static char  daemon_addr[80] = "4803";
static char  user[MAX_GROUP_NAME] = "libbench";
static char  group[MAX_GROUP_NAME];
static char  mode[8] = "sp";
static int   total = 100000;
static int   body_len = 100;
static int   window = 100;

static mailbox mbox;
static char    private_group[MAX_GROUP_NAME];
static char    out_body[BODY_MAX];
static char    in_body[BODY_MAX];
static char    in_groups[GROUPS_MAX][MAX_GROUP_NAME];

static int sent, received;

static void die(const char *what, int ret)
{
	printf("splibbench: %s failed: %d\n", what, ret);
	if (ret < 0)
		SP_error(ret);
	exit(1);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* User + system CPU seconds of this process so far. */
static double cpu(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static int is_fl(void) { return strcmp(mode, "fl") == 0; }

static int fl_built(void)
{
#ifdef NO_FL
	return 0;
#else
	return 1;
#endif
}

static int send_one(void)
{
	int ret;
	if (strcmp(mode, "scat") == 0) {
		scatter s;
		int half = body_len / 2;
		s.num_elements = 2;
		s.elements[0].buf = out_body;
		s.elements[0].len = half;
		s.elements[1].buf = out_body + half;
		s.elements[1].len = body_len - half;
		ret = SP_scat_multicast(mbox, RELIABLE_MESS, group, 1, &s);
	} else if (is_fl()) {
		ret = FL_multicast(mbox, RELIABLE_MESS, group, 1, body_len, out_body);
	} else {
		ret = SP_multicast(mbox, RELIABLE_MESS, group, 1, body_len, out_body);
	}
	if (ret != body_len)
		die("multicast", ret);
	return ++sent;
}

enum { OTHER = 0, OWN_DATA = 1, JOINED = 2 };

/* One receive: OWN_DATA for one of our data messages, JOINED for a regular
 * membership of our group, OTHER for anything else (a flush request is
 * answered). */
static int recv_one(void)
{
	service s = 0;
	int ng = 0, endian = 0, more = 0, ret;
	int16 mtype = 0;
	char sender[MAX_GROUP_NAME];

	if (strcmp(mode, "scat") == 0) {
		scatter sc;
		sc.num_elements = 2;
		sc.elements[0].buf = in_body;
		sc.elements[0].len = 64;
		sc.elements[1].buf = in_body + 64;
		sc.elements[1].len = BODY_MAX - 64;
		ret = SP_scat_receive(mbox, &s, sender, GROUPS_MAX, &ng, in_groups, &mtype, &endian, &sc);
	} else if (is_fl()) {
		ret = FL_receive(mbox, &s, sender, GROUPS_MAX, &ng, in_groups, &mtype, &endian, BODY_MAX, in_body,
				 &more);
	} else {
		ret = SP_receive(mbox, &s, sender, GROUPS_MAX, &ng, in_groups, &mtype, &endian, BODY_MAX, in_body);
	}
	if (ret < 0)
		die("receive", ret);
	if (is_fl() && Is_flush_req_mess(s)) {
		int r = FL_flush(mbox, group);
		if (r < 0)
			die("FL_flush", r);
		return OTHER;
	}
	if (Is_regular_mess(s) && strcmp(sender, private_group) == 0) {
		if (ret != body_len)
			die("receive (length)", ret);
		return OWN_DATA;
	}
	if (Is_reg_memb_mess(s) && strcmp(sender, group) == 0)
		return JOINED;
	return OTHER;
}

/* Until our own join shows as a regular membership of the group. */
static void wait_joined(void)
{
	while (recv_one() != JOINED)
		;
}

static void on_readable(int fd, int code, void *data)
{
	(void) fd;
	(void) code;
	(void) data;
	if (recv_one() == OWN_DATA) {
		received++;
		if (sent < total)
			send_one();
		if (received == total)
			E_exit_events();
	}
}

int main(int argc, char **argv)
{
	int i, ret;
	double t0, t1, c0, c1;

	for (i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (strcmp(a, "-s") == 0) snprintf(daemon_addr, sizeof daemon_addr, "%s", v);
		else if (strcmp(a, "-u") == 0) snprintf(user, sizeof user, "%s", v);
		else if (strcmp(a, "-m") == 0) total = atoi(v);
		else if (strcmp(a, "-b") == 0) body_len = atoi(v);
		else if (strcmp(a, "-w") == 0) window = atoi(v);
		else if (strcmp(a, "-x") == 0) snprintf(mode, sizeof mode, "%s", v);
		else break;
	}
	if (i != argc || total < 1 || body_len < 1 || body_len > BODY_MAX || window < 1 ||
	    (strcmp(mode, "sp") && strcmp(mode, "scat") && strcmp(mode, "fl") && strcmp(mode, "ev")) ||
	    (is_fl() && !fl_built())) {
		printf("usage: splibbench [-s daemon] [-u name] [-m messages] [-b bytes] [-w window] "
		       "[-x sp|scat|fl|ev]\n");
		return 2;
	}
	memset(out_body, 'x', sizeof out_body);
	snprintf(group, sizeof group, "lb-%.20s", user);

	if (is_fl()) {
		FL_lib_init();
		ret = FL_connect(daemon_addr, user, 0, &mbox, private_group);
	} else {
		ret = SP_connect(daemon_addr, user, 0, 1, &mbox, private_group);
	}
	if (ret != ACCEPT_SESSION)
		die("connect", ret);
	ret = is_fl() ? FL_join(mbox, group) : SP_join(mbox, group);
	if (ret < 0)
		die("join", ret);
	wait_joined();

	t0 = now();
	c0 = cpu();
	while (sent < total && sent < window)
		send_one();
	if (strcmp(mode, "ev") == 0) {
		E_init();
		if (E_attach_fd(mbox, READ_FD, on_readable, 0, NULL, HIGH_PRIORITY) < 0)
			die("E_attach_fd", -1);
		E_handle_events();
	} else {
		while (received < total) {
			if (recv_one() == OWN_DATA) {
				received++;
				if (sent < total)
					send_one();
			}
		}
	}
	t1 = now();
	c1 = cpu();

	printf("splibbench: %s %d x %d B: %.4f s, %.0f msg/s, %.3f us CPU/msg\n", mode, total, body_len, t1 - t0,
	       total / (t1 - t0), (c1 - c0) * 1e6 / total);
	if (is_fl())
		FL_disconnect(mbox);
	else
		SP_disconnect(mbox);
	return 0;
}
