/*
 * spflooder — throughput test for a Spread daemon.
 *
 * Written for rspread. Same options and output lines as the flooder
 * shipped with Spread 5.0.1:
 *
 *   -u <name>   private name (default "flooder")
 *   -m <n>      messages to send (default 10000)
 *   -b <n>      bytes per message (default 1000, at most 100000)
 *   -n <n>      wait for n group members first and use multi-sender flow
 *               control (messages carry the sender's member index)
 *   -s <addr>   daemon: "port" or "port@host" (default 4803)
 *   -ro / -wo   only receive / only send
 *
 * Without -n the program multicasts RELIABLE messages to group "flooder"
 * and, after the first 200, waits for each of its own messages to come
 * back before sending the next one.
 */

#include <sp.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	BODY_MAX    = 100000,
	MEMBERS_MAX = 100,
	WINDOW      = 200	/* messages in flight before we start reading */
};

static const char *GROUP = "flooder";

static char     user_name[80] = "flooder";
static char     daemon_addr[80] = "4803";
static int      body_len = 1000;
static int      total_msgs = 10000;
static int      wait_members;
static int      read_only, write_only;

static char     my_group[MAX_GROUP_NAME];
static mailbox  mbox;
static char     out_body[BODY_MAX];
static char     in_body[BODY_MAX + 1];
static char     in_groups[MEMBERS_MAX][MAX_GROUP_NAME];

/* Multi-sender flow control (-n). */
static int      sent_count;
static int      recv_count[MEMBERS_MAX];
static int      lowest_count;

static void usage_and_exit(void)
{
	printf("Usage: spflooder\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n",
	       "\t[-u <user name>]     : unique (in this machine) user name",
	       "\t[-m <num messages>]  : number of messages",
	       "\t[-n <num members>]   : number of group members to wait for (also turn on multi-sender FC)",
	       "\t[-b <num bytes>]     : number of bytes per message 1-100,000",
	       "\t[-s <spread name>]   : either port or port@machine",
	       "\t[-ro]   \t\t: read  only (no multicast)",
	       "\t[-wo]   \t\t: write only (no receive)");
	exit(1);
}

static void parse_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;

		if (strncmp(a, "-u", 2) == 0) {
			if (!v) usage_and_exit();
			snprintf(user_name, sizeof user_name, "%s", v);
			i++;
		} else if (strncmp(a, "-b", 2) == 0) {
			if (!v) usage_and_exit();
			sscanf(v, "%d", &body_len);
			i++;
		} else if (strncmp(a, "-m", 2) == 0) {
			if (!v) usage_and_exit();
			sscanf(v, "%d", &total_msgs);
			i++;
		} else if (strncmp(a, "-n", 2) == 0) {
			if (!v) usage_and_exit();
			sscanf(v, "%d", &wait_members);
			i++;
		} else if (strncmp(a, "-s", 2) == 0) {
			if (!v) usage_and_exit();
			snprintf(daemon_addr, sizeof daemon_addr, "%s", v);
			i++;
		} else if (strncmp(a, "-ro", 3) == 0) {
			read_only = 1;
			write_only = 0;
		} else if (strncmp(a, "-wo", 3) == 0) {
			write_only = 1;
			read_only = 0;
		} else {
			usage_and_exit();
		}
	}
	if (wait_members > MEMBERS_MAX) {
		printf("Too many members. The max is %d\n", MEMBERS_MAX);
		usage_and_exit();
	}
	/* Keep the body inside our buffer (the member index needs 4 bytes). */
	if (body_len < 0) body_len = 0;
	if (body_len > BODY_MAX) body_len = BODY_MAX;
	if (wait_members > 0 && body_len < (int) sizeof(int)) body_len = sizeof(int);
}

static const char *data_kind(service s)
{
	if (Is_unreliable_mess(s)) return "received UNRELIABLE ";
	if (Is_reliable_mess(s))   return "received RELIABLE ";
	if (Is_fifo_mess(s))       return "received FIFO ";
	if (Is_causal_mess(s))     return "received CAUSAL ";
	if (Is_agreed_mess(s))     return "received AGREED ";
	if (Is_safe_mess(s))       return "received SAFE ";
	return "";
}

/* Blocks until `wait_members` members are in the group; returns my index. */
static int wait_for_members(void)
{
	char sender[MAX_GROUP_NAME];
	int joined = 0, my_index = 0;

	while (joined < wait_members) {
		service s = 0;
		int ngroups = 0, endian = 0, ret, i;
		int16 mtype = 0;

		ret = SP_receive(mbox, &s, sender, MEMBERS_MAX, &ngroups, in_groups,
				 &mtype, &endian, BODY_MAX, in_body);
		if (ret == GROUPS_TOO_SHORT || ret == BUFFER_TOO_SHORT) {
			printf("\n========Buffers or Groups too Short=======\n");
			printf("Should NOT happen in wait for members! Program quitting\n");
			exit(1);
		}
		if (ret < 0) {
			SP_error(ret);
			exit(1);
		}
		in_body[ret] = '\0';

		if (Is_regular_mess(s)) {
			printf("%s", data_kind(s));
			printf("message during wait for members, from %s, of type %d, (endian %d) to %d groups \n(%d bytes): %s\n",
			       sender, mtype, endian, ngroups, ret, in_body);
		} else if (Is_membership_mess(s)) {
			if (Is_reg_memb_mess(s)) {
				printf("Received REGULAR membership for group %s with %d members, where I am member %d:\n",
				       sender, ngroups, mtype);
				for (i = 0; i < ngroups && i < MEMBERS_MAX; i++)
					printf("\t%s\n", in_groups[i]);
				joined = ngroups;
				my_index = mtype;
			} else if (Is_transition_mess(s)) {
				printf("received TRANSITIONAL membership for group %s\n", sender);
			} else if (Is_caused_leave_mess(s)) {
				printf("received membership message that left group %s\n", sender);
			} else {
				printf("received incorrecty membership message of type 0x%x\n", s);
			}
		} else if (Is_reject_mess(s)) {
			printf("REJECTED message from %s, of servicetype 0x%x messtype %d, (endian %d) to %d groups \n(%d bytes): %s\n",
			       sender, s, mtype, endian, ngroups, ret, in_body);
		} else {
			printf("received message of unknown message type 0x%x with ret %d\n", s, ret);
		}
	}
	return my_index;
}

/* Accounts one received message of the -n mode; returns 1 when the reader
 * may stop (every sender is at most WINDOW messages behind us). */
static int account(void)
{
	int from, j;

	memcpy(&from, in_body, sizeof from);
	if (from >= 0 && from < MEMBERS_MAX && ++recv_count[from] == lowest_count + 1) {
		/* The slowest sender may have moved: recompute the minimum over
		 * the senders heard from so far. */
		lowest_count = INT_MAX;
		for (j = 0; j < wait_members && j < MEMBERS_MAX; j++)
			if (recv_count[j] != 0 && recv_count[j] < lowest_count)
				lowest_count = recv_count[j];
		if (lowest_count == INT_MAX)
			lowest_count = 0;
	}
	return !(lowest_count < sent_count - WINDOW && !read_only);
}

/* Receives until flow control allows the next send; returns the last
 * receive result. */
static int drain_until_caught_up(void)
{
	char sender[MAX_GROUP_NAME];
	int ret, done;

	do {
		service s = 0;
		int ngroups = 0, endian = 0;
		int16 mtype = 0;

		ret = SP_receive(mbox, &s, sender, MEMBERS_MAX, &ngroups, in_groups,
				 &mtype, &endian, BODY_MAX, in_body);
		if (ret == GROUPS_TOO_SHORT || ret == BUFFER_TOO_SHORT) {
			s = DROP_RECV;
			printf("\n========Buffers or Groups too Short=======\n");
			ret = SP_receive(mbox, &s, sender, MEMBERS_MAX, &ngroups, in_groups,
					 &mtype, &endian, BODY_MAX, in_body);
		}
		if (ret < 0) {
			SP_error(ret);
			exit(1);
		}
		if (wait_members)
			done = account();
		else
			done = read_only || strcmp(sender, my_group) == 0;
	} while (!done);
	return ret;
}

int main(int argc, char **argv)
{
	int ret, i;

	parse_args(argc, argv);

	if (wait_members == 0) {
		printf("flooder: connecting to %s\n", daemon_addr);
		ret = SP_connect(daemon_addr, user_name, 0, 0, &mbox, my_group);
	} else {
		printf("flooder: connecting to %s with group membership\n", daemon_addr);
		ret = SP_connect(daemon_addr, user_name, 0, 1, &mbox, my_group);
	}
	if (ret < 0) {
		SP_error(ret);
		exit(1);
	}

	/* Joining is not needed to send, only to see the traffic come back. */
	if (read_only) {
		printf("flooder: Only receiving messages\n");
		SP_join(mbox, GROUP);
	} else if (write_only) {
		printf("flooder: starting  multicast of %d messages, %d bytes each (self discarding).\n",
		       total_msgs, body_len);
	} else {
		SP_join(mbox, GROUP);
		printf("flooder: starting  multicast of %d messages, %d bytes each.\n",
		       total_msgs, body_len);
	}

	if (wait_members) {
		int my_index = wait_for_members();

		memcpy(out_body, &my_index, sizeof my_index);
	}

	for (i = 1; i <= total_msgs; i++) {
		if (!read_only) {
			if (wait_members) {
				ret = SP_multicast(mbox, FIFO_MESS, GROUP, 0, body_len, out_body);
				sent_count++;
			} else {
				ret = SP_multicast(mbox, RELIABLE_MESS, GROUP, 0, body_len, out_body);
			}
			if (ret != body_len) {
				if (ret < 0) {
					SP_error(ret);
					exit(1);
				}
				printf("sent a different message %d -> %d\n", body_len, ret);
			}
		}
		if (read_only || (i > WINDOW && !write_only))
			ret = drain_until_caught_up();

		if (i % 1000 == 0)
			printf("flooder: completed %6d messages of %d bytes\n", i, ret);
	}
	printf("flooder: completed multicast of %d messages, %d bytes each.\n", total_msgs, body_len);
	return 0;
}
