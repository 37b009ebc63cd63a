/*
 * spsend — UDP burst sender for checking a network before running Spread.
 *
 * Written for rspread; options and output follow the "s" network test tool
 * of Spread 5.0.1 (the spsend project of its Windows build). Pair it with
 * sprecv on the receiving host.
 *
 *   -p <port>     destination port (default 4444)
 *   -b <burst>    packets per burst (default 100)
 *   -t <ms>       pause between bursts (default 10)
 *   -n <packets>  packets to send (default 10000)
 *   -s <bytes>    packet size (default 1024; 12..100000)
 *   -a <IPv4>     destination (default 127.0.0.1; may be broadcast/multicast)
 *
 * Each packet starts with three native-order 32-bit words: a kind (0 data,
 * 1 end of run) carrying the 0x80000080 byte-order marker on little-endian
 * hosts, the packet number, and the packet size. One end-of-run packet
 * follows the data.
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

static int      pkt_size = 1024;
static int      total = 10000;
static char     ip_text[16] = "127.0.0.1";
static unsigned short port = 4444;
static sp_time  pause_between = { 0, 10000 };
static int      burst = 100;

static uint32_t host_marker(void)
{
	const uint32_t probe = 1;
	unsigned char first;

	memcpy(&first, &probe, 1);
	return first ? 0x80000080u : 0u;	/* little-endian hosts mark */
}

static void usage_and_exit(void)
{
	printf("Usage: \n%s\n%s\n%s\n%s\n%s\n%s\n",
	       "\t[-p <port number>] : to send on, default is 4444",
	       "\t[-b <burst>]       : number of packets in each burst, default is 100",
	       "\t[-t <delay>]       : time (mili-secs) to wait between bursts, default 10",
	       "\t[-n <num packets>] : total number of packets to send, default is 10000",
	       "\t[-s <num bytes>]   : size of each packet, default is 1024",
	       "\t[-a <IP address>]  : default is 127.0.0.1");
	exit(0);
}

static void parse_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
		const char *a = argv[i];

		if (!v || a[0] != '-')
			usage_and_exit();
		if (strncmp(a, "-t", 2) == 0) {
			long ms = 0;
			sscanf(v, "%ld", &ms);
			if (ms < 0) ms = 0;
			pause_between.sec = ms / 1000;
			pause_between.usec = (ms % 1000) * 1000;
		} else if (strncmp(a, "-p", 2) == 0) {
			sscanf(v, "%hu", &port);
		} else if (strncmp(a, "-b", 2) == 0) {
			sscanf(v, "%d", &burst);
		} else if (strncmp(a, "-n", 2) == 0) {
			sscanf(v, "%d", &total);
		} else if (strncmp(a, "-s", 2) == 0) {
			sscanf(v, "%d", &pkt_size);
		} else if (strncmp(a, "-a", 2) == 0) {
			snprintf(ip_text, sizeof ip_text, "%s", v);
		} else {
			usage_and_exit();
		}
		i++;
	}
	if (burst < 1) burst = 1;
	if (pkt_size < 12) pkt_size = 12;
	if (pkt_size > PKT_MAX) pkt_size = PKT_MAX;
}

int main(int argc, char **argv)
{
	static char pkt[PKT_MAX];
	struct sockaddr_in to;
	uint32_t kind, count, size;
	unsigned a1 = 0, a2 = 0, a3 = 0, a4 = 0;
	int sock, on = 1, problems = 0, i;
	sp_time start, stop, took, settle = { 0, 10000 };

	parse_args(argc, argv);
	sscanf(ip_text, "%u.%u.%u.%u", &a1, &a2, &a3, &a4);

	sock = socket(AF_INET, SOCK_DGRAM, 0);
	if (sock < 0) {
		perror("spsend: socket");
		return 1;
	}
	setsockopt(sock, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
	memset(&to, 0, sizeof to);
	to.sin_family = AF_INET;
	to.sin_port = htons(port);
	to.sin_addr.s_addr = htonl((a1 & 255) << 24 | (a2 & 255) << 16 | (a3 & 255) << 8 | (a4 & 255));

	printf("Checking (%u.%u.%u.%u, %hu). Each burst has %d packets, %d bytes each with %ld msec delay in between, for a total of %d packets\n",
	       a1, a2, a3, a4, port, burst, pkt_size,
	       pause_between.usec / 1000 + pause_between.sec * 1000, total);

	kind = host_marker();
	size = (uint32_t) pkt_size;
	memcpy(pkt, &kind, 4);
	memcpy(pkt + 8, &size, 4);

	start = E_get_time();
	for (i = 1; i <= total; i++) {
		count = (uint32_t) i;
		memcpy(pkt + 4, &count, 4);
		if (sendto(sock, pkt, (size_t) pkt_size, 0, (struct sockaddr *) &to, sizeof to) != pkt_size) {
			problems++;
			i--;	/* try this packet again */
		}
		if (i % burst == 0)
			E_delay(pause_between);
		if (i % 1000 == 0)
			printf("sent %d packets of %d bytes\n", i, pkt_size);
	}
	stop = E_get_time();
	took = E_sub_time(stop, start);

	/* Tell the receiver the run is over. */
	kind = host_marker() | 1u;
	memcpy(pkt, &kind, 4);
	E_delay(settle);
	sendto(sock, pkt, (size_t) pkt_size, 0, (struct sockaddr *) &to, sizeof to);
	printf("total time is (%ld,%ld), with %d problems \n", took.sec, took.usec, problems);
	close(sock);
	return 0;
}
