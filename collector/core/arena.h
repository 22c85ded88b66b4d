/*
 * arena.h - a bump allocator that lives as long as one request or batch.
 * Everything allocated from it is freed in one arena_destroy()/arena_reset() call.
 * arena_pb_allocator() adapts it to protobuf-c so unpacking a message costs a few
 * large mallocs instead of one per field. A byte cap bounds what one request may use.
 */
#ifndef ARENA_H
#define ARENA_H

#include <stddef.h>
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
/* A ProtobufCAllocator backed by this arena (free is a no-op). Valid while the arena lives. */
ProtobufCAllocator *arena_pb_allocator(arena_t *a);

#endif
