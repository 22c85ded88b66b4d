/*
 * unit.h - a tiny test harness. Each test file defines tests with UNIT_TEST(name);
 * they register themselves at load time. build/unit [filter] runs the tests whose
 * "file:name" contains filter and ends with the line "N passed, N failed".
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

typedef void (*unit_fn)(int *failed);
void unit_register(const char *file, const char *name, unit_fn fn);

#define UNIT_TEST(name)                                            \
    static void unit_##name(int *unit_failed_);                    \
    __attribute__((constructor)) static void unit_reg_##name(void) \
    {                                                              \
        unit_register(__FILE__, #name, unit_##name);               \
    }                                                              \
    static void unit_##name(int *unit_failed_)

/* CHECK records a failure and continues; REQUIRE returns from the test. */
#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            *unit_failed_ = 1;                                                           \
        }                                                                                \
    } while (0)
#define REQUIRE(cond)                                                                      \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "    %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
            *unit_failed_ = 1;                                                             \
            return;                                                                        \
        }                                                                                  \
    } while (0)
#define CHECK_STR(a, b)                                                          \
    do {                                                                         \
        const char *a_ = (a), *b_ = (b);                                         \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                 \
            fprintf(stderr, "    %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
            *unit_failed_ = 1;                                                   \
        }                                                                        \
    } while (0)

/* A 127.0.0.1 port the kernel says is free (the caller binds it right after), or -1. */
int unit_free_port(void);
/* Directory of tests/fixtures (env MELTP_FIXTURES overrides). */
const char *unit_fixtures_dir(void);
/* Reads a whole file into malloc'd memory; NULL on error. */
unsigned char *unit_read_file(const char *path, size_t *len);

#endif
