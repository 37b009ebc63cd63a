/*
 * flush_user — interactive client of the Flush (FL_*) layer.
 *
 * Written for rspread. Same commands and output lines as the flush user
 * program shipped with Spread 5.0.1 (installed there as flush_user):
 *
 *   j <group> / l <group>   join / leave
 *   s <group>               send one line (SAFE)
 *   g <group>               subgroupcast one line to 1..9 named members
 *   b <group>               burst of 10 FIFO messages
 *   r / p                   receive (blocking) / poll
 *   f <group>               answer a flush request (FL_flush)
 *   q                       quit
 *
 * Commands are read with blocking fgets; messages are only read on 'r'.
 */

#include <fl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	BODY_MAX   = 102400,
	GROUPS_MAX = 100,
	CMD_LEN    = 130,
	LINE_LEN   = 200
};

static char     user_name[80] = "user";
static char     daemon_addr[80] = "4803";
static char     my_group[MAX_GROUP_NAME];
static mailbox  mbox = -1;
static int      sent_total;
static int      last_burst_len;
static int      quitting;

static void quit(void)
{
	quitting = 1;
	printf("\nBye.\n");
	printf("Calling FL_disconnect(mbox = %d)\n", mbox);
	fflush(stdout);
	FL_disconnect(mbox);
	exit(0);
}

static void usage_and_exit(void)
{
	printf("Usage: user\n%s\n%s\n",
	       "\t[-u <user name>]  : unique (in this machine) user name",
	       "\t[-s <address>]    : either port or port@machine");
	exit(0);
}

static void parse_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;

		if (strncmp(argv[i], "-u", 2) == 0 && v) {
			snprintf(user_name, sizeof user_name, "%s", v);
			i++;
		} else if (strncmp(argv[i], "-s", 2) == 0 && v) {
			snprintf(daemon_addr, sizeof daemon_addr, "%s", v);
			i++;
		} else {
			usage_and_exit();
		}
	}
}

static void read_line(char *buf, int size)
{
	if (fgets(buf, size, stdin) == NULL)
		quit();
}

/* First whitespace-separated word of `text` into `out`; 1 if found. */
static int first_word(const char *text, char out[MAX_GROUP_NAME])
{
	size_t len;

	text += strspn(text, " \t\r\n\v\f");
	len = strcspn(text, " \t\r\n\v\f");
	if (len == 0)
		return 0;
	if (len >= MAX_GROUP_NAME)
		len = MAX_GROUP_NAME - 1;
	/* The whole field is sent: zeros after the name, never stack bytes. */
	memset(out, 0, MAX_GROUP_NAME);
	memcpy(out, text, len);
	return 1;
}

static void show_menu(void)
{
	printf("\n"
	       "==========\n"
	       "User Menu:\n"
	       "----------\n"
	       "\n"
	       "\tj <group> -- join a group\n"
	       "\tl <group> -- leave a group\n"
	       "\n"
	       "\ts <group> -- send a message\n"
	       "\tg <group> -- send a subgroup message\n"
	       "\tb <group> -- send a burst of messages\n"
	       "\n"
	       "\tr -- receive a message (stuck) \n"
	       "\tp -- poll for a message \n"
	       "\tf <group> -- send a FLUSH_OK message\n"
	       "\n"
	       "\tq -- quit\n");
	fflush(stdout);
}

static void cmd_subgroupcast(const char *args)
{
	static char body[LINE_LEN];
	char names[10][MAX_GROUP_NAME] = {{0}};	/* [0] group, [1..n] receivers */
	char line[LINE_LEN] = {0};
	int n, k, len, ret;

	if (!first_word(args, names[0])) {
		printf("invalid group\n");
		return;
	}
	printf("enter number of receivers: ");
	fflush(stdout);
	if (fgets(line, sizeof line, stdin) == NULL || sscanf(line, "%d", &n) != 1 || n < 1 || n > 9) {
		printf("invalid number of receivers, must be an integer in the range [1, 9]\n");
		return;
	}
	for (k = 1; k <= n; k++) {
		printf("enter recvr %d: ", k);
		fflush(stdout);
		read_line(line, MAX_GROUP_NAME);
		if (!first_word(line, names[k]))
			quit();
	}
	printf("enter message: ");
	fflush(stdout);
	read_line(body, sizeof body);
	len = (int) strlen(body);

	printf("user.c: subgroupcasting message of size %d to group %s with receivers:\n", len, names[0]);
	for (k = 1; k <= n; k++)
		printf("%s\n", names[k]);

	ret = FL_subgroupcast(mbox, SAFE_MESS, names[0], n, names + 1, 0, len, body);
	if (ret != len) {
		if (ret < 0) {
			FL_error(ret);
			quit();
		}
		printf("Wierd return from FL_subgroupcast %d, should be %d\n", ret, len);
	}
	sent_total++;
}

static void cmd_send(const char *args)
{
	static char body[LINE_LEN];
	char g[MAX_GROUP_NAME] = {0};
	int len, ret;

	if (!first_word(args, g)) {
		printf(" invalid group \n");
		return;
	}
	printf("enter message: ");
	fflush(stdout);
	read_line(body, sizeof body);
	len = (int) strlen(body);
	printf("user.c : multicasting message of size %d:\n'%s'\n", len, body);
	ret = FL_multicast(mbox, SAFE_MESS, g, 1, len, body);
	if (ret < 0) {
		FL_error(ret);
		quit();
	}
	sent_total++;
}

static void cmd_burst(const char *args)
{
	static char body[BODY_MAX];
	char g[MAX_GROUP_NAME] = {0};
	char line[LINE_LEN] = {0};
	int len, k, ret;

	if (!first_word(args, g))
		snprintf(g, sizeof g, "%s", "dummy_group_name");
	printf("enter size of each message: ");
	fflush(stdout);
	read_line(line, sizeof line);
	if (sscanf(line, "%d", &len) != 1)
		len = last_burst_len;
	if (len < 0)
		len = 0;
	if (len > BODY_MAX)
		len = BODY_MAX;
	last_burst_len = len;
	printf("sending 10 messages of %d bytes\n", len);
	for (k = 1; k <= 10; k++) {
		sent_total++;
		memset(body, 0, sizeof body);
		snprintf(body, sizeof body, "mess num %d", sent_total);
		ret = FL_multicast(mbox, FIFO_MESS, g, 2, len, body);
		if (ret < 0) {
			FL_error(ret);
			quit();
		}
		printf("sent message %d (total %d)\n", k, sent_total);
	}
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

/* A flush-layer membership body: group id, int32 count, then that many
 * 32-byte member names (the vs set), at the offsets the library reports. */
static void print_fl_membership(service s, const char *sender, int ngroups,
				char groups[][MAX_GROUP_NAME], int16 index,
				const char *body, int len)
{
	int gid_at = FL_get_gid_offset_memb_mess();
	int num_at = FL_get_num_vs_offset_memb_mess();
	int set_at = FL_get_vs_set_offset_memb_mess();
	group_id gid;
	int32 num_vs = 0;
	int i;

	memset(&gid, 0, sizeof gid);
	if (gid_at >= 0 && gid_at + (int) sizeof gid <= len)
		memcpy(&gid, body + gid_at, sizeof gid);
	if (num_at >= 0 && num_at + (int) sizeof num_vs <= len)
		memcpy(&num_vs, body + num_at, sizeof num_vs);
	if (set_at < 0 || set_at > len)
		set_at = len;

	if (Is_reg_memb_mess(s)) {
		const char *first = body + set_at;

		printf("Received REGULAR membership for group %s with %d members, where I am member %d:\n",
		       sender, ngroups, index);
		for (i = 0; i < ngroups && i < GROUPS_MAX; i++)
			printf("\t%s\n", groups[i]);
		printf("grp id is %d %d %d\n", gid.id[0], gid.id[1], gid.id[2]);

		if (Is_caused_join_mess(s)) {
			printf("Due to the JOIN of %s\n", first);
		} else if (Is_caused_leave_mess(s)) {
			printf("Due to the LEAVE of %s\n", first);
		} else if (Is_caused_disconnect_mess(s)) {
			printf("Due to the DISCONNECT of %s\n", first);
		} else if (Is_caused_network_mess(s)) {
			printf("Due to NETWORK change. ");
			printf("VS set has %d members:\n", num_vs);
			for (i = 0; i < num_vs && set_at + (i + 1) * MAX_GROUP_NAME <= len; i++)
				printf("\t%s\n", body + set_at + i * MAX_GROUP_NAME);
		}
	} else if (Is_transition_mess(s)) {
		printf("received TRANSITIONAL membership for group %s\n", sender);
	} else if (Is_caused_leave_mess(s)) {
		printf("received membership message that left group %s\n", sender);
	} else {
		printf("received incorrecty membership message of type %d\n", s);
	}
}

static void receive_one(void)
{
	/* Extra room so that names read from the body always end in a NUL. */
	static char body[BODY_MAX + MAX_GROUP_NAME + 1];
	static char groups[GROUPS_MAX][MAX_GROUP_NAME];
	char sender[MAX_GROUP_NAME];
	service s = 0;
	int ngroups = 0, endian = 0, more = 0, ret, i;
	int16 mtype = 0;

	ret = FL_receive(mbox, &s, sender, GROUPS_MAX, &ngroups, groups,
			 &mtype, &endian, BODY_MAX, body, &more);
	printf("\n============================\n");
	if (ret < 0) {
		if (!quitting) {
			FL_error(ret);
			printf("\n============================\n");
			printf("\nBye.\n");
		}
		exit(0);
	}
	memset(body + ret, 0, MAX_GROUP_NAME + 1);

	if (Is_regular_mess(s)) {
		printf("%s", data_kind(s));
		printf("message from %s, of type %d, (endian %d) to %d groups \n(%d bytes): %s\n",
		       sender, mtype, endian, ngroups, ret, body);
		printf("Message is:\n'%s'\n", body);
		if (Is_subgroup_mess(s) && ngroups >= 1 && ngroups <= GROUPS_MAX) {
			printf("Received a subgroupcast message to group %s: receivers:\n", groups[ngroups - 1]);
			for (i = 0; i < ngroups - 1; i++)
				printf("\t%s\n", groups[i]);
		}
	} else if (Is_membership_mess(s)) {
		print_fl_membership(s, sender, ngroups, groups, mtype, body, ret);
	} else if (Is_flush_req_mess(s)) {
		printf("received a FLUSH_REQ message for group %s\n", sender);
	} else {
		printf("received message of unknown message type %d with ret %d\n", s, ret);
	}
	printf("There are %d buffered messages waiting to be delivered\n", more);
	printf("\n");
	printf("User> ");
	fflush(stdout);
}

static void one_command(void)
{
	char cmd[CMD_LEN];
	char g[MAX_GROUP_NAME] = {0};
	int ret;

	memset(cmd, 0, sizeof cmd);
	read_line(cmd, sizeof cmd);

	switch (cmd[0]) {
	case 'j':
	case 'l':
		if (!first_word(cmd + 2, g)) {
			printf(" invalid group \n");
			break;
		}
		ret = cmd[0] == 'j' ? FL_join(mbox, g) : FL_leave(mbox, g);
		if (ret < 0)
			FL_error(ret);
		break;
	case 'g': cmd_subgroupcast(cmd + 2); break;
	case 's': cmd_send(cmd + 2); break;
	case 'b': cmd_burst(cmd + 2); break;
	case 'r': receive_one(); break;
	case 'p': printf("Polling says: %d\n", FL_poll(mbox)); break;
	case 'f':
		if (!first_word(cmd + 2, g)) {
			printf(" invalid group \n");
			break;
		}
		ret = FL_flush(mbox, g);
		printf("Sent a FLUSH_OK message to group '%s'\n", g);
		if (ret < 0) {
			FL_error(ret);
			quit();
		}
		break;
	case 'q': quit(); break;
	default:
		printf("\nUnknown commnad\n");
		show_menu();
		break;
	}
	printf("\nUser> ");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int major, minor, patch, ret;

	parse_args(argc, argv);

	FL_version(&major, &minor, &patch);
	printf("Flush library version is %d.%d.%d\n", major, minor, patch);

	FL_lib_init();
	ret = FL_connect(daemon_addr, user_name, LOW_PRIORITY, &mbox, my_group);
	if (ret < 0) {
		FL_error(ret);
		quit();
	}
	printf("User: connected to %s with private group %s\n", daemon_addr, my_group);
	show_menu();
	printf("\nUser> ");
	fflush(stdout);
	sent_total = 0;

	for (;;)
		one_command();
	return 0;
}
