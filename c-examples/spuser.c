/*
 * spuser / sptuser — interactive Spread client.
 *
 * Written for rspread. It accepts the commands and prints the lines of the
 * interactive user program shipped with Spread 5.0.1, so scripts that drive
 * that program keep working.
 *
 *   spuser   single-threaded: stdin and the mailbox are served by the
 *            E_* event loop of the library.
 *   sptuser  built with -DSPUSER_THREADS: a second thread blocks in
 *            SP_receive while the main thread reads commands; the
 *            r/p/e/d commands do not exist in this variant.
 */

#include <sp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SPUSER_THREADS
#include <pthread.h>
#endif

enum {
	BODY_MAX     = 102400,	/* largest message body handled */
	GROUPS_MAX   = 100,	/* destinations / members listed per message */
	SEND_GROUPS  = 10,	/* destinations accepted by s and m */
	VS_SETS_MAX  = 10,
	CMD_LEN      = 130,
	LINE_LEN     = 200
};

static char     user_name[80] = "user";
static char     daemon_addr[80] = "4803";
static int      want_password;		/* -n/-p given (no password support here) */
static char     my_group[MAX_GROUP_NAME];
static mailbox  mbox = -1;
static int      sent_total;
static unsigned last_burst_len;
static volatile int quitting;

#ifdef SPUSER_THREADS
static pthread_t reader;
static int       reader_started;
#endif

static void show_menu(void);
static void quit(void);
static void on_message(int fd, int code, void *data);

static void prompt(void)
{
	printf("\nUser> ");
	fflush(stdout);
}

static void usage_and_exit(void)
{
	printf("Usage: spuser\n%s\n%s\n%s\n%s\n%s\n",
	       "\t[-u <user name>]  : unique (in this machine) user name",
	       "\t[-s <address>]    : either port or port@machine",
	       "\t[-n <username>]    : username for authentication",
	       "\t[-p <password>]    : users password",
	       "\t[-r ]    : use random user name");
	exit(0);
}

/* Copies at most size-1 bytes and always terminates. */
static void set_text(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

static void parse_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int has_value = (i + 1 < argc);

		/* Options are recognised by their first two characters. */
		if (strncmp(a, "-u", 2) == 0) {
			if (!has_value) usage_and_exit();
			set_text(user_name, sizeof user_name, argv[++i]);
		} else if (strncmp(a, "-r", 2) == 0) {
			user_name[0] = '\0';
		} else if (strncmp(a, "-s", 2) == 0) {
			if (!has_value) usage_and_exit();
			set_text(daemon_addr, sizeof daemon_addr, argv[++i]);
		} else if (strncmp(a, "-n", 2) == 0 || strncmp(a, "-p", 2) == 0) {
			if (!has_value) usage_and_exit();
			++i;	/* accepted for compatibility; PWORD is not built in */
			want_password = 1;
		} else {
			usage_and_exit();
		}
	}
}

/* Splits `text` into at most `max` whitespace-separated names. */
static int split_groups(const char *text, char names[][MAX_GROUP_NAME], int max)
{
	int n = 0;

	while (n < max) {
		size_t len;

		text += strspn(text, " \t\r\n\v\f");
		if (*text == '\0')
			break;
		len = strcspn(text, " \t\r\n\v\f");
		if (len >= MAX_GROUP_NAME)
			len = MAX_GROUP_NAME - 1;
		/* The whole field is sent: zeros after the name, never stack bytes. */
		memset(names[n], 0, MAX_GROUP_NAME);
		memcpy(names[n], text, len);
		n++;
		text += strcspn(text, " \t\r\n\v\f");
	}
	return n;
}

/* Reads one line; the program ends on end of input. */
static void read_line(char *buf, int size)
{
	if (fgets(buf, size, stdin) == NULL)
		quit();
}

static void cmd_join_or_leave(const char *args, int join)
{
	char g[1][MAX_GROUP_NAME] = {{0}};
	int ret;

	if (split_groups(args, g, 1) < 1) {
		printf(" invalid group \n");
		return;
	}
	ret = join ? SP_join(mbox, g[0]) : SP_leave(mbox, g[0]);
	if (ret < 0)
		SP_error(ret);
}

static void send_to_groups(int n, char groups[][MAX_GROUP_NAME], const char *body, int len)
{
	int ret = SP_multigroup_multicast(mbox, SAFE_MESS, n,
					  (const char (*)[MAX_GROUP_NAME]) groups,
					  1, len, body);
	if (ret < 0) {
		SP_error(ret);
		quit();
	}
	sent_total++;
}

static void cmd_send(const char *args, int multiline)
{
	static char body[BODY_MAX + 1];
	char groups[SEND_GROUPS][MAX_GROUP_NAME] = {{0}};
	int n = split_groups(args, groups, SEND_GROUPS);
	int len = 0;

	if (n < 1) {
		printf(" invalid group \n");
		return;
	}
	printf("enter message: ");
	fflush(stdout);
	if (!multiline) {
		read_line(body, LINE_LEN);
		len = (int) strlen(body);
	} else {
		/* Lines accumulate until an empty line (not part of the body). */
		while (len < BODY_MAX) {
			int room = BODY_MAX + 1 - len;

			read_line(body + len, room < LINE_LEN ? room : LINE_LEN);
			if (body[len] == '\n')
				break;
			len += (int) strlen(body + len);
		}
	}
	send_to_groups(n, groups, body, len);
}

static void cmd_burst(const char *args)
{
	static char body[BODY_MAX];
	char g[1][MAX_GROUP_NAME] = {{0}};
	char line[LINE_LEN];
	unsigned len;
	int k, ret;

	if (split_groups(args, g, 1) != 1)
		set_text(g[0], MAX_GROUP_NAME, "dummy_group_name");
	printf("enter size of each message: ");
	fflush(stdout);
	read_line(line, sizeof line);
	if (sscanf(line, "%u", &len) != 1)
		len = last_burst_len;
	if (len > BODY_MAX)
		len = BODY_MAX;
	last_burst_len = len;
	printf("sending 10 messages of %u bytes\n", len);
	for (k = 1; k <= 10; k++) {
		sent_total++;
		memset(body, 0, sizeof body);
		snprintf(body, sizeof body, "mess num %d ", sent_total);
		ret = SP_multicast(mbox, FIFO_MESS, g[0], 2, (int) len, body);
		if (ret < 0) {
			SP_error(ret);
			quit();
		}
		printf("sent message %d (total %d)\n", k, sent_total);
	}
}

static void on_command(int fd, int code, void *data)
{
	char cmd[CMD_LEN];

	(void) fd; (void) code; (void) data;
	memset(cmd, 0, sizeof cmd);
	read_line(cmd, sizeof cmd);

	switch (cmd[0]) {
	case 'j': cmd_join_or_leave(cmd + 2, 1); break;
	case 'l': cmd_join_or_leave(cmd + 2, 0); break;
	case 's': cmd_send(cmd + 2, 0); break;
	case 'm': cmd_send(cmd + 2, 1); break;
	case 'b': cmd_burst(cmd + 2); break;
#ifndef SPUSER_THREADS
	case 'r': on_message(mbox, 0, NULL); break;
	case 'p': printf("Polling sais: %d\n", SP_poll(mbox)); break;
	case 'e': E_attach_fd(mbox, READ_FD, on_message, 0, NULL, HIGH_PRIORITY); break;
	case 'd': E_detach_fd(mbox, READ_FD); break;
#endif
	case 'q': quit(); break;
	default:
		printf("\nUnknown commnad\n");
		show_menu();
		break;
	}
	prompt();
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
	       "\tm <group> -- send a multiline message to group. Terminate with empty line\n"
	       "\tb <group> -- send a burst of messages\n"
	       "\n");
#ifndef SPUSER_THREADS
	printf("\tr -- receive a message (stuck) \n"
	       "\tp -- poll for a message \n"
	       "\te -- enable asynchonous read (default)\n"
	       "\td -- disable asynchronous read \n"
	       "\n");
#endif
	printf("\tq -- quit\n");
	fflush(stdout);
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

static void print_network_sets(const char *body)
{
	vs_set_info sets[VS_SETS_MAX];
	char members[GROUPS_MAX][MAX_GROUP_NAME];
	unsigned int mine = 0;
	int nsets, i, ret;
	unsigned j;

	nsets = SP_get_vs_sets_info(body, sets, VS_SETS_MAX, &mine);
	if (nsets < 0) {
		printf("BUG: membership message has more then %d vs sets. Recompile with larger MAX_VSSETS\n",
		       VS_SETS_MAX);
		SP_error(nsets);
		exit(1);
	}
	for (i = 0; i < nsets; i++) {
		printf("%s VS set %d has %u members:\n",
		       (unsigned) i == mine ? "LOCAL" : "OTHER", i, sets[i].num_members);
		ret = SP_get_vs_set_members(body, &sets[i], members, GROUPS_MAX);
		if (ret < 0) {
			printf("VS Set has more then %d members. Recompile with larger MAX_MEMBERS\n",
			       GROUPS_MAX);
			SP_error(ret);
			exit(1);
		}
		for (j = 0; j < sets[i].num_members && j < GROUPS_MAX; j++)
			printf("\t%s\n", members[j]);
	}
}

static void print_membership(service s, const char *sender, int ngroups,
			     char groups[][MAX_GROUP_NAME], int16 index, const char *body)
{
	membership_info info;
	int i, ret;

	ret = SP_get_memb_info(body, s, &info);
	if (ret < 0) {
		printf("BUG: membership message does not have valid body\n");
		SP_error(ret);
		exit(1);
	}
	if (Is_reg_memb_mess(s)) {
		printf("Received REGULAR membership for group %s with %d members, where I am member %d:\n",
		       sender, ngroups, index);
		for (i = 0; i < ngroups && i < GROUPS_MAX; i++)
			printf("\t%s\n", groups[i]);
		printf("grp id is %d %d %d\n", info.gid.id[0], info.gid.id[1], info.gid.id[2]);
		if (Is_caused_join_mess(s))
			printf("Due to the JOIN of %s\n", info.changed_member);
		else if (Is_caused_leave_mess(s))
			printf("Due to the LEAVE of %s\n", info.changed_member);
		else if (Is_caused_disconnect_mess(s))
			printf("Due to the DISCONNECT of %s\n", info.changed_member);
		else if (Is_caused_network_mess(s)) {
			printf("Due to NETWORK change with %u VS sets\n", info.num_vs_sets);
			print_network_sets(body);
		}
	} else if (Is_transition_mess(s)) {
		printf("received TRANSITIONAL membership for group %s\n", sender);
	} else if (Is_caused_leave_mess(s)) {
		printf("received membership message that left group %s\n", sender);
	} else {
		printf("received incorrecty membership message of type 0x%x\n", s);
	}
}

static void on_message(int fd, int code, void *data)
{
	static char body[BODY_MAX + 1];
	static char groups[GROUPS_MAX][MAX_GROUP_NAME];
	char sender[MAX_GROUP_NAME];
	service s = 0;
	int ngroups = 0, endian = 0, ret;
	int16 mtype = 0;

	(void) fd; (void) code; (void) data;
	ret = SP_receive(mbox, &s, sender, GROUPS_MAX, &ngroups, groups,
			 &mtype, &endian, BODY_MAX, body);
	printf("\n============================\n");
	if (ret == GROUPS_TOO_SHORT || ret == BUFFER_TOO_SHORT) {
		/* Take what fits and drop the rest. */
		s = DROP_RECV;
		printf("\n========Buffers or Groups too Short=======\n");
		ret = SP_receive(mbox, &s, sender, GROUPS_MAX, &ngroups, groups,
				 &mtype, &endian, BODY_MAX, body);
	}
	if (ret < 0) {
		if (!quitting) {
			SP_error(ret);
			printf("\n============================\n");
			printf("\nBye.\n");
		}
		exit(0);
	}
	body[ret <= BODY_MAX ? ret : BODY_MAX] = '\0';

	if (Is_regular_mess(s)) {
		printf("%s", data_kind(s));
		printf("message from %s, of type %d, (endian %d) to %d groups \n(%d bytes): %s\n",
		       sender, mtype, endian, ngroups, ret, body);
	} else if (Is_membership_mess(s)) {
		print_membership(s, sender, ngroups, groups, mtype, body);
	} else if (Is_reject_mess(s)) {
		printf("REJECTED message from %s, of servicetype 0x%x messtype %d, (endian %d) to %d groups \n(%d bytes): %s\n",
		       sender, s, mtype, endian, ngroups, ret, body);
	} else {
		printf("received message of unknown message type 0x%x with ret %d\n", s, ret);
	}
	printf("\n");
	printf("User> ");
	fflush(stdout);
}

static void quit(void)
{
	quitting = 1;
	printf("\nBye.\n");
	fflush(stdout);
	SP_disconnect(mbox);
#ifdef SPUSER_THREADS
	if (reader_started)
		pthread_join(reader, NULL);
#endif
	exit(0);
}

#ifdef SPUSER_THREADS
static void *reader_main(void *unused)
{
	(void) unused;
	for (;;)
		on_message(mbox, 0, NULL);
	return NULL;
}
#endif

int main(int argc, char **argv)
{
	int major, minor, patch, ret;
	sp_time limit = { 5, 0 };

	parse_args(argc, argv);
	(void) want_password;

	if (!SP_version(&major, &minor, &patch)) {
		printf("main: Illegal variables passed to SP_version()\n");
		quit();
	}
	printf("Spread library version is %d.%d.%d\n", major, minor, patch);

	ret = SP_connect_timeout(daemon_addr, user_name, 0, 1, &mbox, my_group, limit);
	if (ret != ACCEPT_SESSION) {
		SP_error(ret);
		quit();
	}
	printf("User: connected to %s with private group %s\n", daemon_addr, my_group);

#ifndef SPUSER_THREADS
	/* Unbuffered stdin: every command line stays visible to poll(), so
	 * several lines arriving at once are all served. */
	setvbuf(stdin, NULL, _IONBF, 0);
	E_init();
	E_attach_fd(0, READ_FD, on_command, 0, NULL, LOW_PRIORITY);
	E_attach_fd(mbox, READ_FD, on_message, 0, NULL, HIGH_PRIORITY);
#endif
	show_menu();
	prompt();
	sent_total = 0;

#ifdef SPUSER_THREADS
	if (pthread_create(&reader, NULL, reader_main, NULL) == 0)
		reader_started = 1;
	for (;;)
		on_command(0, 0, NULL);
#else
	E_handle_events();
#endif
	return 0;
}
