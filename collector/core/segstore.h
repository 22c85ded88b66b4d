/*
 * segstore.h - an append-only store of records on disk: what a persistent exporter queue
 * keeps (file_storage). Records go to segment files with a CRC-32 per header and per payload;
 * what the consumer confirmed goes to an ack file beside each segment; at open the rest is
 * replayed in order, a torn or corrupt tail is cut off and counted, and segments are deleted
 * once every record in them is confirmed. The store also keeps the loss ledger of what went
 * through it (accepted, sent, dropped by reason), so the ledger survives restarts.
 *
 * Thread safety: every function may be called from any thread; one mutex per store. With
 * fsync, seg_append returns once the record is on disk, and concurrent appends share one
 * fdatasync (group commit).
 */
#ifndef SEGSTORE_H
#define SEGSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "mt.h"

typedef struct seg_store seg_store_t;

typedef struct seg_opts {
    const char *dir;        /* the store's own directory, created if missing */
    int fsync;              /* seg_append returns only after fdatasync (group commit) */
    uint64_t max_bytes;     /* quota on the bytes of live segments; 0 = none */
    uint64_t segment_bytes; /* start a new segment file past this size; 0 = 64 MiB */
} seg_opts_t;

#define SEG_TENANT_MAX 63

/* What a record carries besides its payload. */
typedef struct seg_meta {
    uint64_t seq; /* out: assigned by seg_append, increasing, never reused */
    uint32_t items;
    uint8_t signal;
    uint8_t format;
    char tenant[SEG_TENANT_MAX + 1];
    uint32_t len; /* payload bytes */
} seg_meta_t;

/* The ledger of what went through the store, in items: accepted = sent + dropped + queued. */
#define SEG_REASONS 16
typedef struct seg_ledger {
    uint64_t accepted, sent, queued;
    struct {
        char reason[28];
        uint64_t items;
    } dropped[SEG_REASONS];
    size_t ndropped;
} seg_ledger_t;
/* Adds n items to dropped{reason} (a 17th reason is folded into "other"). */
void seg_ledger_drop(seg_ledger_t *l, uint64_t n, const char *reason);
/* dst += src, reason by reason. */
void seg_ledger_add(seg_ledger_t *dst, const seg_ledger_t *src);

/* Opens (creating) the store in o->dir: checks every segment, cuts torn or corrupt tails,
 * and positions the reader at the first unconfirmed record. Only one process may hold a
 * directory (flock). Returns the store or NULL with the reason in eb. */
seg_store_t *seg_open(const seg_opts_t *o, mt_errbuf_t *eb);

/* Writes the ledger and closes. Unconfirmed records stay for the next open. Accepts NULL. */
void seg_close(seg_store_t *s);

/* Reserves quota for a record of `bytes` payload (plus its header). MT_OK, or MT_AGAIN when
 * the quota would be exceeded; an empty store always takes one record, however big. */
int seg_reserve(seg_store_t *s, size_t bytes);
void seg_unreserve(seg_store_t *s, size_t bytes);

/* Appends one record into reserved room (the reservation is consumed either way); m->seq is
 * set. Returns MT_OK once written (and fsynced when the store fsyncs); MT_AGAIN when it could
 * not be written (disk full, quota of the file system, I/O error: nothing was kept); MT_EIO
 * when it was written but the fsync failed (the record stays and will be read). */
int seg_append(seg_store_t *s, seg_meta_t *m, const void *data, size_t len);

/* Takes the next unread record in append order. `alloc` returns room for m->len bytes (or
 * NULL: the record stays unread and seg_next returns MT_ENOMEM); the payload is read into it
 * and *out set. Returns 1 when a record was taken, 0 when none is unread, or an error. */
int seg_next(seg_store_t *s, seg_meta_t *m, void *(*alloc)(void *arg, const seg_meta_t *m),
             void *arg, void **out);

/* Records how a taken record ended: `sent` items delivered, `dropped` dropped for `reason`.
 * A segment whose records are all confirmed is deleted. Confirmations are not fsynced: after a
 * crash, one that was lost means the record is sent again (a duplicate, never a loss). */
void seg_ack(seg_store_t *s, uint64_t seq, uint32_t sent, uint32_t dropped, const char *reason);

/* Counts items accepted and dropped without a record (a full queue that drops). */
void seg_note_drop(seg_store_t *s, uint64_t items, const char *reason);

/* Records appended and not yet taken by seg_next. */
uint64_t seg_unread(seg_store_t *s);
/* Bytes of live segments (what the quota bounds). */
uint64_t seg_used_bytes(seg_store_t *s);
/* Records cut off or skipped as torn or corrupt since open. */
uint64_t seg_corrupt_records(seg_store_t *s);
/* Copies the ledger (including what earlier runs left). */
void seg_get_ledger(seg_store_t *s, seg_ledger_t *out);

#endif
