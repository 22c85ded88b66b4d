/*
 * arena.h - a bump allocator that lives as long as one request or batch.
 * Everything allocated from it is freed in one arena_destroy()/arena_reset() call.
 * arena_pb_allocator() adapts it to protobuf-c so unpacking a message costs a few
 * large mallocs instead of one per field. A byte cap bounds what one request may use, and an
 * account (arena_account) charges every block to the process-wide memory figure the memory
 * limiter watches, so decoding is refused before it grows past the limit rather than after.
 */
#ifndef ARENA_H
#define ARENA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

typedef struct arena arena_t;

/* Creates an arena whose first block holds `first_block` bytes and which refuses to grow
 * beyond `cap` bytes in total (0 = no cap). Returns NULL on out of memory. */
arena_t *arena_create(size_t first_block, size_t cap);
/* Frees every block. Accepts NULL. */
void arena_destroy(arena_t *a);
/* Forgets all allocations but keeps the first block for reuse. */
void arena_reset(arena_t *a);
/* Returns 16-byte aligned memory, or NULL when out of memory or over the cap. */
void *arena_alloc(arena_t *a, size_t n);
void *arena_calloc(arena_t *a, size_t n);
/* Copies `len` bytes and appends a NUL. */
char *arena_strndup(arena_t *a, const char *s, size_t len);
/* Registers fn(arg) to run when the arena is reset or destroyed (newest first): for memory or
 * handles that cannot come from the arena itself. Returns 0, or -1 when out of memory (then
 * the caller still owns arg). */
int arena_on_release(arena_t *a, void (*fn)(void *), void *arg);
/* Bytes handed out so far, and bytes reserved from malloc. */
size_t arena_used(const arena_t *a);
size_t arena_reserved(const arena_t *a);
/* Set when an allocation failed because of the cap (so callers can answer 413, not 503). */
int arena_over_cap(const arena_t *a);
/* The calling thread's request arena (the receivers' per-request scratch): created on first
 * use with a 256 KiB first block and kept for the thread's next request. NULL on out of
 * memory (answer 503). Not re-entrant: one request at a time per thread. */
arena_t *arena_thread(void);
/* Done with the thread's request arena: reset, or freed when a huge request made it reserve
 * more than 4 MiB, so each thread keeps one modest arena. */
void arena_thread_release(arena_t *a);
/* Set when an allocation failed because the account would pass its limit (answer 503). */
int arena_over_limit(const arena_t *a);
/* Whether arena_account() was called on this arena. */
int arena_accounted(const arena_t *a);
/* Changes the cap (0 = none) for what follows; what is already reserved stays. */
void arena_set_cap(arena_t *a, size_t cap);
/* From now on every byte the arena reserves from malloc (its blocks, and arena_charge) is added
 * to *in_use and given back when freed; a block that would take *in_use past *limit (when
 * *limit > 0) is refused like one over the cap, with arena_over_limit() set. Both pointers
 * must outlive the arena. Charges what is already reserved at once, without a limit check. */
void arena_account(arena_t *a, _Atomic int64_t *in_use, _Atomic int64_t *limit);
/* Counts n bytes that live outside the arena until the next reset/destroy (a library's own
 * mallocs, a heap buffer handed over with arena_on_release) against the cap and the account.
 * Returns 0, or -1 with arena_over_cap()/arena_over_limit() set (nothing is charged then). */
int arena_charge(arena_t *a, size_t n);
/* A ProtobufCAllocator backed by this arena (free is a no-op). Valid while the arena lives. */
ProtobufCAllocator *arena_pb_allocator(arena_t *a);

#endif
