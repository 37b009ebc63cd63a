/*
 * sp.h - the client interface of the Spread Toolkit 5.0.1 (rspread).
 *
 * GENERATED FILE - do not edit. `cargo run -p xtask -- headers` writes it from
 * xtask/templates/sp.h.in (the macros below, kept by hand because cbindgen
 * cannot give them the C types the original header gives them) and from the
 * Rust sources of libspread-ffi (the typedefs and structs, through cbindgen).
 *
 * Source-compatible with the sp.h of Spread 5.0.1: same names, same macro
 * values and C types, same struct layouts and tags, same include guard.
 * Include this header, not sp_func.h or sp_events.h on their own.
 */

#ifndef INC_SP
#define INC_SP

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The API's integer names are macros (not typedefs), as in the original. */
#define int16 short
#define int32 int

/* Byte swapping. The 16-bit form yields an int, the 32-bit form an
 * unsigned int (because of its 0xff000000 mask). */
#define Flip_int16( t ) ( ( ( (t) >> 8 ) & 0x00ff ) | ( ( (t) << 8 ) & 0xff00 ) )
#define Flip_int32( t ) ( ( ( (t) >> 24 ) & 0x000000ff ) | ( ( (t) >> 8 ) & 0x0000ff00 ) | ( ( (t) << 8 ) & 0x00ff0000 ) | ( ( (t) << 24 ) & 0xff000000 ) )

/* Priorities (also defined, identically, by sp_events.h). */
#define LOW_PRIORITY    0
#define MEDIUM_PRIORITY 1
#define HIGH_PRIORITY   2

/* Where the daemon listens by default, and the protocol version word. */
#define DEFAULT_SPREAD_PORT 4803
#define SPREAD_VERSION      ( (5 << 24) | (0 << 16) | 0 )

/* Name sizes, each including the terminating NUL where one applies. */
#define MAX_GROUP_NAME   32
#define MAX_PRIVATE_NAME 10 /* longest private_name accepted by SP_connect() */
#define MAX_PROC_NAME    20 /* longest daemon (process) name */

#if MAX_PRIVATE_NAME >= 128
#  error "MAX_PRIVATE_NAME is sent in one signed byte and must stay below 128"
#endif

/* Service types: ordering and reliability levels of data messages. */
#define UNRELIABLE_MESS 0x00000001
#define RELIABLE_MESS   0x00000002
#define FIFO_MESS       0x00000004
#define CAUSAL_MESS     0x00000008
#define AGREED_MESS     0x00000010
#define SAFE_MESS       0x00000020
#define REGULAR_MESS    0x0000003f

/* Flags a sender or receiver may add. */
#define SELF_DISCARD    0x00000040
#define DROP_RECV       0x01000000

/* Membership messages and their causes. */
#define REG_MEMB_MESS        0x00001000
#define TRANSITION_MESS      0x00002000
#define CAUSED_BY_JOIN       0x00000100
#define CAUSED_BY_LEAVE      0x00000200
#define CAUSED_BY_DISCONNECT 0x00000400
#define CAUSED_BY_NETWORK    0x00000800
#define MEMBERSHIP_MESS      0x00003f00

/* Bits with special meaning (ENDIAN_RESERVED is an unsigned int). */
#define ENDIAN_RESERVED 0x80000080
#define RESERVED        0x003fc000
#define REJECT_MESS     0x00400000

/* Tests on a service type. The single-flag forms yield the masked bit, the
 * compound forms 0 or 1. */
#define Is_unreliable_mess( t )        ( (t) & UNRELIABLE_MESS )
#define Is_reliable_mess( t )          ( (t) & RELIABLE_MESS )
#define Is_fifo_mess( t )              ( (t) & FIFO_MESS )
#define Is_causal_mess( t )            ( (t) & CAUSAL_MESS )
#define Is_agreed_mess( t )            ( (t) & AGREED_MESS )
#define Is_safe_mess( t )              ( (t) & SAFE_MESS )
#define Is_regular_mess( t )           ( ( (t) & REGULAR_MESS ) && !( (t) & REJECT_MESS ) )

#define Is_self_discard( t )           ( (t) & SELF_DISCARD )

#define Is_reg_memb_mess( t )          ( (t) & REG_MEMB_MESS )
#define Is_transition_mess( t )        ( (t) & TRANSITION_MESS )
#define Is_caused_join_mess( t )       ( (t) & CAUSED_BY_JOIN )
#define Is_caused_leave_mess( t )      ( (t) & CAUSED_BY_LEAVE )
#define Is_caused_disconnect_mess( t ) ( (t) & CAUSED_BY_DISCONNECT )
#define Is_caused_network_mess( t )    ( (t) & CAUSED_BY_NETWORK )
#define Is_membership_mess( t )        ( ( (t) & MEMBERSHIP_MESS ) && !( (t) & REJECT_MESS ) )

#define Is_reject_mess( t )            ( (t) & REJECT_MESS )

/* A leave message that is not a membership change: the member itself left. */
#define Is_self_leave( t )             ( ( (t) & CAUSED_BY_LEAVE ) && !( (t) & ( REG_MEMB_MESS | TRANSITION_MESS ) ) )

/* Results of SP_connect() and error codes of the other calls. */
#define ACCEPT_SESSION       (1)
#define ILLEGAL_SPREAD       (-1)
#define COULD_NOT_CONNECT    (-2)
#define REJECT_QUOTA         (-3)
#define REJECT_NO_NAME       (-4)
#define REJECT_ILLEGAL_NAME  (-5)
#define REJECT_NOT_UNIQUE    (-6)
#define REJECT_VERSION       (-7)
#define CONNECTION_CLOSED    (-8)
#define REJECT_AUTH          (-9)

#define ILLEGAL_SESSION      (-11)
#define ILLEGAL_SERVICE      (-12)
#define ILLEGAL_MESSAGE      (-13)
#define ILLEGAL_GROUP        (-14)
#define BUFFER_TOO_SHORT     (-15)
#define GROUPS_TOO_SHORT     (-16)
#define MESSAGE_TOO_LONG     (-17)
#define NET_ERROR_ON_SESSION (-18)
#define SP_BUG               (-19)
#define ILLEGAL_TIME         (-20)

/* Capacity of a scatter. */
#define MAX_CLIENT_SCATTER_ELEMENTS 100

/* ---- generated by cbindgen from libspread-ffi/src/types.rs ---- */
typedef int mailbox;

typedef int service;

typedef struct dummy_scat_element {
  char *buf;
  size_t len;
} scat_element;

typedef struct dummy_scatter {
  size_t num_elements;
  scat_element elements[MAX_CLIENT_SCATTER_ELEMENTS];
} scatter;

typedef struct dummy_group_id {
  int32 id[3];
} group_id;

typedef struct dummy_vs_set_info {
  unsigned int num_members;
  unsigned int members_offset;
} vs_set_info;

typedef struct dummy_membership_info {
  group_id gid;
  char changed_member[MAX_GROUP_NAME];
  unsigned int num_vs_sets;
  vs_set_info my_vs_set;
} membership_info;
/* ---- end of generated section ---- */

#include "sp_events.h"
#include "sp_func.h"

#ifdef __cplusplus
}
#endif

#endif /* INC_SP */
