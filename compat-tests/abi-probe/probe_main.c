/*
 * ABI probe, runtime half (the compile-time half is generated from
 * ../shared/ref/abi.json by harness.rs into probe_gen_*.c).
 *
 * usage: probe OUTFILE LABEL=LIBRARY_PATH...
 *
 * Writes one "key<TAB>value" line per fact to OUTFILE. The library functions
 * are looked up with dlsym, so a function a library does not export shows up
 * as the value MISSING-SYMBOL instead of breaking the link; each function
 * pointer gets the type of the prototype in the headers under test.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl.h"

/* from the generated part */
extern const int probe_error_codes[];
extern const int probe_n_error_codes;
extern const char *const probe_function_names[];
extern const int probe_n_function_names;
void probe_static(FILE *out);

static FILE *out;

/* Print a string value with \\, \n, \t and non-printable bytes escaped. */
static void put_escaped(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\')
            fputs("\\\\", out);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

static void kv_str(const char *lib, const char *key, const char *val, size_t n)
{
    fprintf(out, "rt.%s.%s\t", lib, key);
    put_escaped(val, n);
    fputc('\n', out);
}

static void kv_int(const char *lib, const char *key, long long v)
{
    fprintf(out, "rt.%s.%s\t%lld\n", lib, key, v);
}

static void kv_missing(const char *lib, const char *key)
{
    fprintf(out, "rt.%s.%s\tMISSING-SYMBOL\n", lib, key);
}

/* Run fn(code) with file descriptor 1 sent to a temporary file; return what
 * was written (malloc'd, *len set). */
static char *capture_stdout(void (*fn)(int), int code, size_t *len)
{
    FILE *tmp = tmpfile();
    int saved;
    long size;
    char *buf;

    *len = 0;
    if (tmp == NULL)
        return NULL;
    fflush(stdout);
    saved = dup(1);
    if (saved < 0 || dup2(fileno(tmp), 1) < 0) {
        fclose(tmp);
        return NULL;
    }
    fn(code);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    size = lseek(fileno(tmp), 0, SEEK_END);
    if (size < 0)
        size = 0;
    buf = malloc((size_t)size + 1);
    if (buf == NULL) {
        fclose(tmp);
        return NULL;
    }
    lseek(fileno(tmp), 0, SEEK_SET);
    *len = (size_t)read(fileno(tmp), buf, (size_t)size);
    if (*len > (size_t)size)
        *len = 0;
    buf[*len] = '\0';
    fclose(tmp);
    return buf;
}

#define LOOKUP(h, name) ((__typeof__(&name))dlsym((h), #name))

static void probe_library(const char *label, const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    char key[128];
    int i;

    if (h == NULL) {
        const char *e = dlerror();
        if (e == NULL)
            e = "dlopen failed";
        kv_str(label, "dlopen", e, strlen(e));
        return;
    }
    fprintf(out, "rt.%s.dlopen\tok\n", label);

    /* which declared functions the library defines */
    for (i = 0; i < probe_n_function_names; i++) {
        snprintf(key, sizeof key, "sym.%s", probe_function_names[i]);
        kv_int(label, key, dlsym(h, probe_function_names[i]) != NULL);
    }

    {
        __typeof__(&SP_version) f = LOOKUP(h, SP_version);
        if (f == NULL) {
            kv_missing(label, "SP_version");
            kv_missing(label, "SP_version_null");
        } else {
            int a = -1, b = -1, c = -1, r = f(&a, &b, &c);
            char v[64];
            snprintf(v, sizeof v, "%d %d.%d.%d", r, a, b, c);
            kv_str(label, "SP_version", v, strlen(v));
            kv_int(label, "SP_version_null", f(NULL, NULL, NULL));
        }
    }
    {
        __typeof__(&SP_equal_group_ids) f = LOOKUP(h, SP_equal_group_ids);
        if (f == NULL) {
            kv_missing(label, "SP_equal_group_ids.equal");
            kv_missing(label, "SP_equal_group_ids.different");
        } else {
            group_id g1, g2, g3;
            g1.id[0] = 11; g1.id[1] = 22; g1.id[2] = 33;
            g2 = g1;
            g3 = g1;
            g3.id[2] = 34;
            kv_int(label, "SP_equal_group_ids.equal", f(g1, g2));
            kv_int(label, "SP_equal_group_ids.different", f(g1, g3));
        }
    }
    {
        __typeof__(&SP_poll) f = LOOKUP(h, SP_poll);
        if (f == NULL)
            kv_missing(label, "SP_poll_unknown_mbox");
        else
            kv_int(label, "SP_poll_unknown_mbox", f(1000));
    }
    {
        __typeof__(&SP_strerror) fs = LOOKUP(h, SP_strerror);
        __typeof__(&SP_error) fe = LOOKUP(h, SP_error);
        for (i = 0; i < probe_n_error_codes; i++) {
            int code = probe_error_codes[i];
            snprintf(key, sizeof key, "SP_strerror.%d", code);
            if (fs == NULL) {
                kv_missing(label, key);
            } else {
                const char *s = fs(code);
                kv_str(label, key, s ? s : "(null)", strlen(s ? s : "(null)"));
            }
            snprintf(key, sizeof key, "SP_error.%d", code);
            if (fe == NULL) {
                kv_missing(label, key);
            } else {
                size_t n;
                char *s = capture_stdout(fe, code, &n);
                kv_str(label, key, s ? s : "", s ? n : 0);
                free(s);
            }
        }
    }

    if (strcmp(label, "libspread") == 0) {
        __typeof__(&FL_version) fv = LOOKUP(h, FL_version);
        __typeof__(&FL_error) fe = LOOKUP(h, FL_error);
        __typeof__(&FL_get_gid_offset_memb_mess) g1 = LOOKUP(h, FL_get_gid_offset_memb_mess);
        __typeof__(&FL_get_num_vs_offset_memb_mess) g2 = LOOKUP(h, FL_get_num_vs_offset_memb_mess);
        __typeof__(&FL_get_vs_set_offset_memb_mess) g3 = LOOKUP(h, FL_get_vs_set_offset_memb_mess);
        if (fv == NULL) {
            kv_missing(label, "FL_version");
        } else {
            int a = -1, b = -1, c = -1;
            char v[64];
            fv(&a, &b, &c);
            snprintf(v, sizeof v, "%d.%d.%d", a, b, c);
            kv_str(label, "FL_version", v, strlen(v));
        }
        if (g1) kv_int(label, "FL_get_gid_offset_memb_mess", g1());
        else kv_missing(label, "FL_get_gid_offset_memb_mess");
        if (g2) kv_int(label, "FL_get_num_vs_offset_memb_mess", g2());
        else kv_missing(label, "FL_get_num_vs_offset_memb_mess");
        if (g3) kv_int(label, "FL_get_vs_set_offset_memb_mess", g3());
        else kv_missing(label, "FL_get_vs_set_offset_memb_mess");
        for (i = 0; i < probe_n_error_codes; i++) {
            int code = probe_error_codes[i];
            snprintf(key, sizeof key, "FL_error.%d", code);
            if (fe == NULL) {
                kv_missing(label, key);
            } else {
                size_t n;
                char *s = capture_stdout(fe, code, &n);
                kv_str(label, key, s ? s : "", s ? n : 0);
                free(s);
            }
        }
    }
    /* left loaded: unloading a library with Rust thread-locals is not worth the risk */
}

int main(int argc, char **argv)
{
    int i;
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUTFILE [LABEL=LIBRARY]...\n", argv[0]);
        return 2;
    }
    out = fopen(argv[1], "w");
    if (out == NULL) {
        perror(argv[1]);
        return 1;
    }
    probe_static(out);
    fflush(out);
    for (i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        probe_library(argv[i], eq + 1);
        fflush(out);
    }
    fclose(out);
    return 0;
}
