/*
 * spsimple_user — the smallest useful Spread client.
 *
 * Written for rspread, after the simple_user example of Spread 5.0.1:
 * connect (with membership), join "simple_group", read one line from
 * stdin, multicast it AGREED, then print received messages until the
 * first data message (our own, normally) arrives.
 *
 *   -u <name>   private name (default "simple")
 *   -s <addr>   daemon: "port" or "port@host" (default 4803; the original
 *               example defaulted to 3333)
 */

#include <sp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP "simple_group"

static char    user_name[80] = "simple";
static char    daemon_addr[80] = "4803";
static char    my_group[MAX_GROUP_NAME];
static mailbox mbox;

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
			printf("Usage: user\n%s\n%s\n",
			       "\t[-u <user name>]  : unique (in this machine) user name",
			       "\t[-s <address>]    : either port or port@machine");
			exit(1);
		}
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

/* Receives and prints one message; returns its service type. */
static service show_next(void)
{
	static char body[102401];
	static char groups[100][MAX_GROUP_NAME];
	char sender[MAX_GROUP_NAME];
	membership_info info;
	service s = 0;
	int ngroups = 0, endian = 0, ret, i;
	int16 mtype = 0;

	printf("\n============================\n");
	ret = SP_receive(mbox, &s, sender, 100, &ngroups, groups, &mtype, &endian,
			 (int) sizeof body - 1, body);
	if (ret < 0) {
		SP_error(ret);
		exit(0);
	}
	body[ret] = '\0';

	if (Is_regular_mess(s)) {
		printf("%s", data_kind(s));
		printf("message from %s of type %d (endian %d), to %d groups \n(%d bytes): %s\n",
		       sender, mtype, endian, ngroups, ret, body);
	} else if (Is_membership_mess(s)) {
		ret = SP_get_memb_info(body, s, &info);
		if (ret < 0) {
			printf("BUG: membership message does not have valid body\n");
			SP_error(ret);
			exit(1);
		}
		if (Is_reg_memb_mess(s)) {
			printf("received REGULAR membership ");
			if (Is_caused_join_mess(s)) printf("caused by JOIN ");
			if (Is_caused_leave_mess(s)) printf("caused by LEAVE ");
			if (Is_caused_disconnect_mess(s)) printf("caused by DISCONNECT ");
			printf("for group %s with %d members:\n", sender, ngroups);
			for (i = 0; i < ngroups && i < 100; i++)
				printf("\t%s\n", groups[i]);
			printf("grp id is %d %d %d\n", info.gid.id[0], info.gid.id[1], info.gid.id[2]);
		} else if (Is_transition_mess(s)) {
			printf("received TRANSITIONAL membership for group %s\n", sender);
		} else if (Is_caused_leave_mess(s)) {
			printf("received membership message that left group %s\n", sender);
		} else {
			printf("received incorrect membership message of type %d\n", s);
		}
	} else {
		printf("received message of unknown message type %d with %d bytes\n", s, ret);
	}
	return s;
}

int main(int argc, char **argv)
{
	char line[200];
	int ret;

	parse_args(argc, argv);
	ret = SP_connect(daemon_addr, user_name, 0, 1, &mbox, my_group);
	if (ret < 0) {
		SP_error(ret);
		exit(0);
	}
	SP_join(mbox, GROUP);

	printf("enter message: ");
	fflush(stdout);
	if (fgets(line, sizeof line, stdin) == NULL)
		exit(0);
	SP_multicast(mbox, AGREED_MESS, GROUP, 1, (int) strlen(line), line);

	/* The join's membership comes first; stop at the first data message. */
	for (;;) {
		service s = show_next();	/* the Is_ macros evaluate twice */

		if (Is_regular_mess(s))
			break;
	}
	SP_disconnect(mbox);
	return 0;
}
