/* Helpers shared by the generated ABI probe sources (see harness.rs). */
#ifndef RSPREAD_ABI_PROBE_H
#define RSPREAD_ABI_PROBE_H

#include <stddef.h>
#include <stdio.h>

/* The C type of an expression, as a name. */
#define PROBE_TYPE_NAME(x) _Generic((x), \
    char: "char", signed char: "signed char", unsigned char: "unsigned char", \
    short: "short", unsigned short: "unsigned short", \
    int: "int", unsigned int: "unsigned int", \
    long: "long", unsigned long: "unsigned long", \
    long long: "long long", unsigned long long: "unsigned long long", \
    default: "other")

static inline void probe_int(FILE *o, const char *key, long long v)
{
    fprintf(o, "%s\t%lld\n", key, v);
}

static inline void probe_str(FILE *o, const char *key, const char *v)
{
    fprintf(o, "%s\t%s\n", key, v);
}

#endif
