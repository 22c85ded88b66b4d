/*
 * fuzz.h - what every libFuzzer target in tests/fuzz shares: the arena per input (the
 * receivers' per-request arena, capped the same way so a hostile input cannot grow it without
 * bound), NUL-terminated copies for APIs that take C strings, and the oracle switch.
 *
 * An oracle is a property two code paths must agree on (the wire scanner and protobuf-c, the
 * remote-write wire check and the converter, encode and decode). When one fires the target
 * prints both verdicts and aborts so libFuzzer saves the input; FUZZ_ORACLE=0 in the
 * environment turns the abort into a counted note, so a known disagreement that someone else
 * is fixing does not stop a run that is looking for crashes. Crashes, leaks and sanitizer
 * reports are never switchable.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "mt.h"

/* The receivers' default body cap is of this order; decoded structures stay well below it. */
#define FUZZ_ARENA_CAP (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 unless FUZZ_ORACLE=0 is set: read once, the environment does not change during a run. */
static inline int fuzz_oracle_aborts(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("FUZZ_ORACLE");
        v = !(e && strcmp(e, "0") == 0);
    }
    return v;
}

/* Reports an oracle disagreement; aborts unless FUZZ_ORACLE=0 (then the first few are printed
 * and the rest only counted, so a run stays readable). */
#define FUZZ_ORACLE_FAIL(...)                                                      \
    do {                                                                           \
        static unsigned long fuzz_fired_;                                          \
        if (fuzz_oracle_aborts()) {                                                \
            fprintf(stderr, "ORACLE: " __VA_ARGS__);                               \
            fputc('\n', stderr);                                                   \
            abort();                                                               \
        }                                                                          \
        if (fuzz_fired_++ < 3) {                                                   \
            fprintf(stderr, "ORACLE (FUZZ_ORACLE=0, not aborting): " __VA_ARGS__); \
            fputc('\n', stderr);                                                   \
        }                                                                          \
    } while (0)

/* The first byte of an input picks a mode / signal in targets that have several; the rest is
 * the payload. Returns the selector (0 for an empty input) and advances *data / *size. */
static inline unsigned fuzz_take_byte(const uint8_t **data, size_t *size)
{
    if (*size == 0) {
        return 0;
    }
    unsigned b = (*data)[0];
    (*data)++;
    (*size)--;
    return b;
}

/* A malloc'd NUL-terminated copy (the caller frees), or NULL on out of memory. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        if (size) {
            memcpy(s, data, size);
        }
        s[size] = 0;
    }
    return s;
}

/* Silences warnings from the code under test: a fuzzer produces millions of bad inputs. */
static inline void fuzz_quiet(void)
{
    mt_log_level = -1;
}

#endif
