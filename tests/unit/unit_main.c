/*
 * unit_main.c - the runner for every tests/unit/test_*.c suite.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define UNIT_MAX 1024
static struct {
    const char *file, *name;
    unit_fn fn;
} tests[UNIT_MAX];
static int ntests;

void unit_register(const char *file, const char *name, unit_fn fn)
{
    if (ntests < UNIT_MAX) {
        tests[ntests].file = file;
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    }
}

/* A 127.0.0.1 port the kernel says is free (released at once: the caller binds it right
 * after), or -1. */
int unit_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

const char *unit_fixtures_dir(void)
{
    const char *e = getenv("MELTP_FIXTURES");
    return e && *e ? e : "tests/fixtures";
}

unsigned char *unit_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = 0;
        *len = (size_t)n;
    }
    return p;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        char full[512];
        const char *base = strrchr(tests[i].file, '/');
        snprintf(full, sizeof(full), "%s:%s", base ? base + 1 : tests[i].file, tests[i].name);
        if (filter && !strstr(full, filter)) {
            continue;
        }
        int f = 0;
        tests[i].fn(&f);
        printf("%s %s\n", f ? "FAIL" : "ok  ", full);
        if (f) {
            failed++;
        } else {
            passed++;
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
