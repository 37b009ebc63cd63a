/*
 * sprecv — UDP receiver paired with spsend.
 *
 * Written for rspread; options and output follow the "r" network test tool
 * of Spread 5.0.1 (the sprecv project of its Windows build). It counts
 * missing and damaged packets and prints a report at every end-of-run
 * packet; it runs until killed.
 *
 *   -p <port>   port to receive on (default 4444)
 *   -a <IPv4>   multicast group to join (default: none)
 *   -i <IPv4>   interface for the multicast join (default: any)
 *   -d          report every gap as it is seen
 */

#include <sp.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PKT_MAX 100000

static unsigned short port = 4444;
static uint32_t group_addr;	/* host order; 0 = no multicast */
static uint32_t iface_addr;
static int      detailed;

static uint32_t host_marker(void)
{
	const uint32_t probe = 1;
	unsigned char first;

	memcpy(&first, &probe, 1);
	return first ? 0x80000080u : 0u;
}

static uint32_t swap32(uint32_t v)
{
	return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

static uint32_t parse_ipv4(const char *s)
{
	unsigned a = 0, b = 0, c = 0, d = 0;

	sscanf(s, "%u.%u.%u.%u", &a, &b, &c, &d);
	return (a & 255) << 24 | (b & 255) << 16 | (c & 255) << 8 | (d & 255);
}

static void usage_and_exit(void)
{
	printf("Usage: r\n%s\n%s\n%s\n%s\n",
	       "\t[-p <port number>] : to receive on, default is 4444",
	       "\t[-a <multicast class D address>] : if receiving multicast is desirable, default is 0",
	       "\t[-i <IP interface>] : set interface, default is 0",
	       "\t[-d ]              : print a detailed report whenever messages are missed");
	exit(0);
}

static void parse_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;

		if (strncmp(a, "-d", 2) == 0) {
			detailed = 1;
		} else if (strncmp(a, "-p", 2) == 0 && v) {
			sscanf(v, "%hu", &port);
			i++;
		} else if (strncmp(a, "-a", 2) == 0 && v) {
			group_addr = parse_ipv4(v);
			i++;
		} else if (strncmp(a, "-i", 2) == 0 && v) {
			iface_addr = parse_ipv4(v);
			i++;
		} else {
			usage_and_exit();
		}
	}
}

int main(int argc, char **argv)
{
	static char pkt[PKT_MAX];
	struct sockaddr_in me;
	int sock, on = 1;
	int expected = 0, missed, corrupt = 0, total_missed = 0;

	parse_args(argc, argv);
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	if (sock < 0) {
		perror("sprecv: socket");
		return 1;
	}
	setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	memset(&me, 0, sizeof me);
	me.sin_family = AF_INET;
	me.sin_port = htons(port);
	me.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(sock, (struct sockaddr *) &me, sizeof me) < 0) {
		perror("sprecv: bind");
		return 1;
	}
	if ((group_addr >> 28) == 0xE) {	/* class D: join the group */
		struct ip_mreq m;

		m.imr_multiaddr.s_addr = htonl(group_addr);
		m.imr_interface.s_addr = htonl(iface_addr);
		if (setsockopt(sock, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) < 0)
			perror("sprecv: IP_ADD_MEMBERSHIP");
	}

	printf("Ready to receive on port %hu\n", port);
	fflush(stdout);

	for (;;) {
		uint32_t w[3];
		int kind, count, size;
		ssize_t got = recv(sock, pkt, sizeof pkt, 0);

		if (got < 0)
			continue;
		memset(w, 0, sizeof w);
		memcpy(w, pkt, got < 12 ? (size_t) got : 12);
		if ((w[0] & 0x80000080u) != host_marker()) {
			w[0] = swap32(w[0]);
			w[1] = swap32(w[1]);
			w[2] = swap32(w[2]);
		}
		kind = (int) (w[0] & ~0x80000080u);
		count = (int) w[1];
		size = (int) w[2];

		if (size != (int) got) {
			corrupt++;
			printf("Corruption: expected packet size is %d, received packet size is %d\n", size, (int) got);
		} else if (kind) {
			total_missed += count - expected;
			printf("-------\n");
			printf("Report: total packets %d, total missed %d, total corrupted %d\n",
			       count, total_missed, corrupt);
			printf("-------\n");
			expected = 0;
			total_missed = 0;
			corrupt = 0;
		} else if (count > expected + 1) {
			missed = count - (expected + 1);
			total_missed += missed;
			if (detailed)
				printf(" --> count is %d, i is %d, missed %d total missed %d, corrupt %d\n",
				       count, expected + 1, missed, total_missed, corrupt);
			expected = count;
		} else if (count < expected + 1) {
			printf("-------\n");
			printf("Report: total packets at least %d, total missed %d, total corrupted %d\n",
			       expected, total_missed, corrupt);
			printf("Initiating count from %d to %d\n", expected, count);
			printf("-------\n");
			expected = count;
			total_missed = count;
			corrupt = 0;
		} else {
			expected = count;
		}
		fflush(stdout);
	}
	return 0;
}
