/*
 * A tiny client used by the install and interop tests: prints the library
 * version, one error text, whether the monotonic clock runs, and the file the
 * dynamic linker resolved SP_version from.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

#include <sp.h>

int main(void)
{
    int major = 0, minor = 0, patch = 0;
    int ok = SP_version(&major, &minor, &patch);
    sp_time t = E_get_time_monotonic();
    Dl_info info;
    const char *where = "?";

    if (dladdr((void *)&SP_version, &info) != 0 && info.dli_fname != NULL)
        where = info.dli_fname;
    printf("version %d %d.%d.%d\n", ok, major, minor, patch);
    printf("strerror %s\n", SP_strerror(CONNECTION_CLOSED));
    printf("clock %s\n", (t.sec > 0 || t.usec > 0) ? "runs" : "zero");
    printf("from %s\n", where);
    return 0;
}
