/*
 * segstore.c - see segstore.h. Layout of a store directory:
 *   LOCK                 flock'ed while a process holds the store
 *   ledger               what deleted segments contributed to the ledger (rewritten whole)
 *   seg-<id>.log         records: 32-byte header (CRC-32 of its own bytes), tenant, payload
 *   seg-<id>.ack         48-byte confirmations (seq, sent, dropped, reason, CRC-32)
 * A segment's part of the ledger is recomputed from its two files at open, so the ledger
 * stays exact across kill -9: an item is counted accepted iff its record is on disk (or was
 * folded into `ledger`), and sent/dropped iff its confirmation is. The checksum is zlib's
 * crc32 (Debian zlib), not a hand-written one.
 *
 * Appends go to the last segment only; segments found at open are never appended to again.
 * Group commit: the first appender that finds no fdatasync running becomes the leader, syncs
 * everything written so far on a dup of the active file, and wakes every appender it covered.
 */
#include "segstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define REC_MAGIC         0x4753544du /* "MTSG" */
#define LEDGER_MAGIC      0x4744454cu
#define LEDGER_VERSION    1u
#define SEG_DEFAULT_BYTES (64ull << 20)
#define SEG_MAX_RECORD    (1ull << 30) /* a header claiming more is corrupt */
#define WARN_EVERY_NS     (10ull * 1000000000ull)

typedef struct rec_hdr {
    uint32_t magic;
    uint32_t len;
    uint64_t seq;
    uint32_t items;
    uint8_t signal, format, tenant_len, pad;
    uint32_t data_crc; /* tenant + payload */
    uint32_t hdr_crc;  /* the 28 bytes above */
} rec_hdr_t;
_Static_assert(sizeof(rec_hdr_t) == 32, "record header layout");

typedef struct ack_ent {
    uint64_t seq;
    uint32_t sent, dropped;
    char reason[28];
    uint32_t crc; /* the 44 bytes above */
} ack_ent_t;
_Static_assert(sizeof(ack_ent_t) == 48, "ack entry layout");

typedef struct ledger_file {
    uint32_t magic, version;
    uint64_t last_folded; /* segment id counted here whose files may survive a crash */
    uint64_t next_seq, next_seg;
    seg_ledger_t led;
    uint32_t crc, pad;
} ledger_file_t;

typedef struct skip {
    uint64_t start, end;
} skip_t;

typedef struct seg {
    uint64_t id;
    int fd, afd;
    uint64_t size, asize;
    uint64_t first_seq; /* UINT64_MAX while empty */
    uint64_t nrecs, nacked;
    seg_ledger_t led; /* this segment's part of the ledger */
    ack_ent_t *acks;  /* confirmations found at open, sorted by seq (reader skips them) */
    size_t nacks;
    skip_t *skips; /* corrupt ranges found at open (reader jumps over them) */
    size_t nskips;
} seg_t;

struct seg_store {
    seg_opts_t o;
    char *dir;
    int dirfd, lockfd;
    int locked; /* holds the directory's flock: only then may it write */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    seg_t **segs;
    size_t nsegs, capsegs;
    int active_open; /* segs[nsegs-1] takes appends */
    uint64_t next_seq, next_seg, last_folded;
    seg_ledger_t base; /* deleted segments and drops without a record */
    uint64_t used, reserved, unread, corrupt;
    uint64_t warned_ns; /* last write-failure warning: one per WARN_EVERY_NS, not per request */
    size_t rseg;        /* read cursor: segment index and offset */
    uint64_t roff;
    uint64_t written_lsn, synced_lsn;
    int syncing;
};

/* ---- ledger arithmetic ---------------------------------------------------------------- */

void seg_ledger_drop(seg_ledger_t *l, uint64_t n, const char *reason)
{
    size_t i = 0;
    for (; i < l->ndropped &&
           strncmp(l->dropped[i].reason, reason, sizeof(l->dropped[i].reason) - 1) != 0;
         i++) {
    }
    if (i == l->ndropped) {
        if (l->ndropped == SEG_REASONS) {
            /* a handful of fixed labels exist; the table only guards against a new one */
            i = SEG_REASONS - 1;
            snprintf(l->dropped[i].reason, sizeof(l->dropped[i].reason), "other");
        } else {
            snprintf(l->dropped[i].reason, sizeof(l->dropped[i].reason), "%s", reason);
            l->dropped[i].items = 0;
            l->ndropped++;
        }
    }
    l->dropped[i].items += n;
}

void seg_ledger_add(seg_ledger_t *dst, const seg_ledger_t *src)
{
    dst->accepted += src->accepted;
    dst->sent += src->sent;
    dst->queued += src->queued;
    for (size_t i = 0; i < src->ndropped; i++) {
        seg_ledger_drop(dst, src->dropped[i].items, src->dropped[i].reason);
    }
}

/* ---- files ---------------------------------------------------------------------------- */

static uint32_t crc(const void *p, size_t n)
{
    return (uint32_t)crc32(0L, p, (uInt)n);
}

static void seg_path(const seg_store_t *s, uint64_t id, const char *ext, char *buf, size_t n)
{
    snprintf(buf, n, "%s/seg-%016" PRIx64 ".%s", s->dir, id, ext);
}

static int write_all_at(int fd, const void *p, size_t n, off_t off)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        b += w, n -= (size_t)w, off += w;
    }
    return 0;
}

static int read_all_at(int fd, void *p, size_t n, off_t off)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = pread(fd, b, n, off);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        b += r, n -= (size_t)r, off += r;
    }
    return 0;
}

/* Rewrites `ledger` (tmp + rename, fsynced when the store fsyncs). */
static int write_ledger(seg_store_t *s)
{
    ledger_file_t lf;
    memset(&lf, 0, sizeof(lf));
    lf.magic = LEDGER_MAGIC;
    lf.version = LEDGER_VERSION;
    lf.last_folded = s->last_folded;
    lf.next_seq = s->next_seq;
    lf.next_seg = s->next_seg;
    lf.led = s->base;
    lf.led.queued = 0;
    lf.crc = crc(&lf, offsetof(ledger_file_t, crc));
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof(tmp), "%s/ledger.tmp", s->dir);
    snprintf(path, sizeof(path), "%s/ledger", s->dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    int rc = write_all_at(fd, &lf, sizeof(lf), 0);
    if (rc == 0 && s->o.fsync) {
        rc = fdatasync(fd);
    }
    close(fd);
    if (rc == 0) {
        rc = rename(tmp, path);
    }
    if (rc == 0 && s->o.fsync) {
        fsync(s->dirfd);
    }
    if (rc != 0) {
        mt_log(MT_LOG_ERROR, "file_storage %s: cannot write the ledger: %s", s->dir,
               strerror(errno));
    }
    return rc;
}

static void read_ledger(seg_store_t *s)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/ledger", s->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    ledger_file_t lf;
    if (read_all_at(fd, &lf, sizeof(lf), 0) == 0 && lf.magic == LEDGER_MAGIC &&
        lf.version == LEDGER_VERSION && lf.crc == crc(&lf, offsetof(ledger_file_t, crc)) &&
        lf.led.ndropped <= SEG_REASONS) {
        s->last_folded = lf.last_folded;
        s->next_seq = lf.next_seq;
        s->next_seg = lf.next_seg;
        s->base = lf.led;
        s->base.queued = 0;
    } else {
        mt_log(MT_LOG_WARN, "file_storage %s: ledger file is damaged; counting from zero", s->dir);
    }
    close(fd);
}

static void seg_free(seg_t *g)
{
    if (!g) {
        return;
    }
    if (g->fd >= 0) {
        close(g->fd);
    }
    if (g->afd >= 0) {
        close(g->afd);
    }
    free(g->acks);
    free(g->skips);
    free(g);
}

static seg_t *seg_new(uint64_t id)
{
    seg_t *g = calloc(1, sizeof(*g));
    if (g) {
        g->id = id;
        g->fd = g->afd = -1;
        g->first_seq = UINT64_MAX;
    }
    return g;
}

static int push_seg(seg_store_t *s, seg_t *g)
{
    if (s->nsegs == s->capsegs) {
        size_t n = s->capsegs ? s->capsegs * 2 : 16;
        seg_t **ns = realloc(s->segs, n * sizeof(*ns));
        if (!ns) {
            return -1;
        }
        s->segs = ns;
        s->capsegs = n;
    }
    s->segs[s->nsegs++] = g;
    return 0;
}

/* Counts segment i into the base ledger, records that in `ledger`, then deletes its files.
 * A crash between the two leaves files whose id is `last_folded`: open deletes them. */
static void fold_and_delete(seg_store_t *s, size_t i)
{
    seg_t *g = s->segs[i];
    if (g->nrecs > 0) { /* an empty file has nothing to count (and a full disk no room) */
        seg_ledger_t l = g->led;
        l.queued = 0;
        seg_ledger_add(&s->base, &l);
        s->last_folded = g->id;
        write_ledger(s);
    }
    char path[4200];
    seg_path(s, g->id, "log", path, sizeof(path));
    unlink(path);
    seg_path(s, g->id, "ack", path, sizeof(path));
    unlink(path);
    s->used -= g->size;
    seg_free(g);
    memmove(&s->segs[i], &s->segs[i + 1], (s->nsegs - i - 1) * sizeof(*s->segs));
    s->nsegs--;
    if (s->rseg > i) {
        s->rseg--;
    } else if (s->rseg == i) {
        s->roff = 0; /* every record of it was read: go on with the next */
    }
    if (i == s->nsegs) {
        s->active_open = 0; /* it was the last one */
    }
}

/* ---- open: check, repair, count ------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_ack(const void *a, const void *b)
{
    return cmp_u64(&((const ack_ent_t *)a)->seq, &((const ack_ent_t *)b)->seq);
}

static const ack_ent_t *find_ack(const seg_t *g, uint64_t seq)
{
    size_t lo = 0, hi = g->nacks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->acks[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < g->nacks && g->acks[lo].seq == seq ? &g->acks[lo] : NULL;
}

static void ack_ent_fill(ack_ent_t *a, uint64_t seq, uint32_t sent, uint32_t dropped,
                         const char *reason)
{
    memset(a, 0, sizeof(*a));
    a->seq = seq;
    a->sent = sent;
    a->dropped = dropped;
    snprintf(a->reason, sizeof(a->reason), "%s", reason ? reason : "");
    a->crc = crc(a, offsetof(ack_ent_t, crc));
}

static int open_ack_fd(seg_store_t *s, seg_t *g)
{
    if (g->afd < 0) {
        char path[4200];
        seg_path(s, g->id, "ack", path, sizeof(path));
        g->afd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    return g->afd;
}

static void append_ack(seg_store_t *s, seg_t *g, const ack_ent_t *a)
{
    if (open_ack_fd(s, g) < 0 || write_all_at(g->afd, a, sizeof(*a), (off_t)g->asize) != 0) {
        /* the record will be sent again after a restart: a duplicate, not a loss */
        mt_log(MT_LOG_WARN, "file_storage %s: cannot record a confirmation: %s", s->dir,
               strerror(errno));
        return;
    }
    g->asize += sizeof(*a);
}

/* Reads seg-<id>.ack: confirmations up to the first torn or damaged entry (cut there). */
static int load_acks(seg_store_t *s, seg_t *g)
{
    char path[4200];
    seg_path(s, g->id, "ack", path, sizeof(path));
    g->afd = open(path, O_RDWR | O_CLOEXEC);
    if (g->afd < 0) {
        return errno == ENOENT ? 0 : -1;
    }
    struct stat st;
    if (fstat(g->afd, &st) != 0) {
        return -1;
    }
    size_t n = (size_t)st.st_size / sizeof(ack_ent_t);
    g->acks = malloc((n ? n : 1) * sizeof(ack_ent_t));
    if (!g->acks || (n && read_all_at(g->afd, g->acks, n * sizeof(ack_ent_t), 0) != 0)) {
        return -1;
    }
    size_t good = 0;
    while (good < n && g->acks[good].crc == crc(&g->acks[good], offsetof(ack_ent_t, crc))) {
        g->acks[good].reason[sizeof(g->acks[good].reason) - 1] = 0;
        good++;
    }
    if ((uint64_t)st.st_size != good * sizeof(ack_ent_t)) {
        /* a torn confirmation only means a duplicate later; cut it so appends line up */
        if (ftruncate(g->afd, (off_t)(good * sizeof(ack_ent_t))) != 0) {
            return -1;
        }
    }
    g->nacks = good;
    g->asize = good * sizeof(ack_ent_t);
    qsort(g->acks, g->nacks, sizeof(ack_ent_t), cmp_ack);
    return 0;
}

static int add_skip(seg_t *g, uint64_t start, uint64_t end)
{
    skip_t *ns = realloc(g->skips, (g->nskips + 1) * sizeof(*ns));
    if (!ns) {
        return -1;
    }
    g->skips = ns;
    g->skips[g->nskips].start = start;
    g->skips[g->nskips++].end = end;
    return 0;
}

/* Checks the record at off of a mapped segment. Returns its total size, or 0 when the header
 * is not a valid record header; *data_ok says whether tenant + payload match their CRC. */
static uint64_t check_record(const uint8_t *m, uint64_t size, uint64_t off, rec_hdr_t *h,
                             int *data_ok)
{
    if (size - off < sizeof(rec_hdr_t)) {
        return 0;
    }
    memcpy(h, m + off, sizeof(*h));
    if (h->magic != REC_MAGIC || h->hdr_crc != crc(h, offsetof(rec_hdr_t, hdr_crc)) ||
        h->len > SEG_MAX_RECORD || h->tenant_len > SEG_TENANT_MAX) {
        return 0;
    }
    uint64_t total = sizeof(rec_hdr_t) + h->tenant_len + (uint64_t)h->len;
    if (total > size - off) {
        return 0;
    }
    *data_ok = h->data_crc == crc(m + off + sizeof(rec_hdr_t), h->tenant_len + (size_t)h->len);
    return total;
}

/* Scans seg-<id>.log: counts records into the segment's ledger, skips (and counts) corrupt
 * ones, resynchronises on the next valid header after a damaged one, and cuts a torn or
 * corrupt tail. */
static int load_segment(seg_store_t *s, seg_t *g, uint64_t *max_seq)
{
    char path[4200];
    seg_path(s, g->id, "log", path, sizeof(path));
    g->fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (g->fd < 0 || fstat(g->fd, &st) != 0 || load_acks(s, g) != 0) {
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t *m = NULL;
    if (size > 0) {
        m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, g->fd, 0);
        if (m == MAP_FAILED) {
            return -1;
        }
    }
    uint64_t off = 0, valid_end = 0;
    while (off < size) {
        rec_hdr_t h;
        int data_ok = 0;
        uint64_t total = check_record(m, size, off, &h, &data_ok);
        if (total == 0) {
            /* a damaged header: look for the next record that checks out */
            uint64_t p = off + 1;
            const uint32_t magic = REC_MAGIC;
            for (;;) {
                const uint8_t *hit = p < size ? memmem(m + p, size - p, &magic, 4) : NULL;
                if (!hit) {
                    p = size;
                    break;
                }
                p = (uint64_t)(hit - m);
                rec_hdr_t h2;
                int ok2 = 0;
                if (check_record(m, size, p, &h2, &ok2) && ok2) {
                    break;
                }
                p++;
            }
            s->corrupt++;
            if (p == size) {
                break; /* a torn or corrupt tail: cut below */
            }
            if (add_skip(g, off, p) != 0) {
                munmap(m, size);
                return -1;
            }
            off = p;
            continue;
        }
        if (h.seq > *max_seq || *max_seq == UINT64_MAX) {
            *max_seq = h.seq;
        }
        const ack_ent_t *a = find_ack(g, h.seq);
        g->nrecs++;
        if (g->first_seq == UINT64_MAX) {
            g->first_seq = h.seq;
        }
        g->led.accepted += h.items;
        if (a) {
            g->nacked++;
            g->led.sent += a->sent;
            if (a->dropped) {
                seg_ledger_drop(&g->led, a->dropped, a->reason);
            }
        } else if (!data_ok) {
            /* a bit-flipped payload under a good header: its items are known; confirm it as
             * dropped so the next open does not count it again */
            s->corrupt++;
            ack_ent_t e;
            ack_ent_fill(&e, h.seq, 0, h.items, "corrupt");
            append_ack(s, g, &e);
            g->nacked++;
            seg_ledger_drop(&g->led, h.items, "corrupt");
            if (add_skip(g, off, off + total) != 0) {
                munmap(m, size);
                return -1;
            }
        } else {
            g->led.queued += h.items;
            s->unread++;
        }
        off += total;
        valid_end = off;
    }
    if (m) {
        munmap(m, size);
    }
    if (valid_end < size) {
        if (ftruncate(g->fd, (off_t)valid_end) != 0) {
            return -1;
        }
        mt_log(MT_LOG_WARN, "file_storage %s: cut %" PRIu64 " damaged bytes off %s", s->dir,
               size - valid_end, path);
    }
    g->size = valid_end;
    s->used += g->size;
    return 0;
}

seg_store_t *seg_open(const seg_opts_t *o, mt_errbuf_t *eb)
{
    seg_store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        mt_failf(eb, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->dir = strdup(o->dir);
    s->dirfd = s->lockfd = -1;
    if (!s->o.segment_bytes) {
        s->o.segment_bytes = SEG_DEFAULT_BYTES;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!s->dir || (mkdir(s->dir, 0755) != 0 && errno != EEXIST)) {
        mt_failf(eb, "cannot create %s: %s", o->dir, strerror(errno));
        goto fail;
    }
    s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char path[4200];
    snprintf(path, sizeof(path), "%s/LOCK", s->dir);
    s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->dirfd < 0 || s->lockfd < 0) {
        mt_failf(eb, "cannot open %s: %s", o->dir, strerror(errno));
        goto fail;
    }
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        mt_failf(eb, "%s is in use by another process", o->dir);
        goto fail;
    }
    s->locked = 1;
    read_ledger(s);
    DIR *d = opendir(s->dir);
    if (!d) {
        mt_failf(eb, "cannot list %s: %s", o->dir, strerror(errno));
        goto fail;
    }
    uint64_t *ids = NULL;
    size_t nids = 0, capids = 0;
    int oom = 0;
    struct dirent *de;
    while (!oom && (de = readdir(d))) {
        uint64_t id;
        char ext[8];
        if (sscanf(de->d_name, "seg-%16" SCNx64 ".%3s", &id, ext) == 2 && !strcmp(ext, "log")) {
            if (nids == capids) {
                capids = capids ? capids * 2 : 16;
                uint64_t *n = realloc(ids, capids * sizeof(*n));
                if (!n) {
                    oom = 1;
                    break;
                }
                ids = n;
            }
            ids[nids++] = id;
        }
    }
    closedir(d);
    if (oom) {
        free(ids);
        mt_failf(eb, "out of memory listing %s", o->dir);
        goto fail;
    }
    if (nids) { /* qsort wants a valid pointer even for 0 elements */
        qsort(ids, nids, sizeof(*ids), cmp_u64);
    }
    uint64_t max_seq = UINT64_MAX;
    int failed = 0;
    for (size_t i = 0; i < nids && !failed; i++) {
        if (ids[i] == s->last_folded && s->last_folded != 0) {
            /* counted in `ledger` just before a crash; finish deleting it */
            seg_path(s, ids[i], "log", path, sizeof(path));
            unlink(path);
            seg_path(s, ids[i], "ack", path, sizeof(path));
            unlink(path);
            continue;
        }
        seg_t *g = seg_new(ids[i]);
        if (!g || load_segment(s, g, &max_seq) != 0 || push_seg(s, g) != 0) {
            mt_failf(eb, "cannot read segment %" PRIx64 " in %s: %s", ids[i], o->dir,
                     strerror(errno));
            seg_free(g);
            failed = 1;
        }
        if (ids[i] >= s->next_seg) {
            s->next_seg = ids[i] + 1;
        }
    }
    free(ids);
    if (failed) {
        goto fail;
    }
    if (max_seq != UINT64_MAX && max_seq >= s->next_seq) {
        s->next_seq = max_seq + 1;
    }
    if (s->next_seg == 0) {
        s->next_seg = 1; /* 0 means "none" in last_folded */
    }
    /* segments found here are never appended to: fold the ones with nothing left */
    for (size_t i = 0; i < s->nsegs;) {
        if (s->segs[i]->nacked == s->segs[i]->nrecs) {
            fold_and_delete(s, i);
        } else {
            i++;
        }
    }
    s->active_open = 0;
    if (s->corrupt) {
        mt_log(MT_LOG_WARN, "file_storage %s: %" PRIu64 " torn or corrupt records skipped", s->dir,
               s->corrupt);
    }
    return s;
fail:
    seg_close(s);
    return NULL;
}

void seg_close(seg_store_t *s)
{
    if (!s) {
        return;
    }
    if (s->locked) {
        write_ledger(s);
    }
    for (size_t i = 0; i < s->nsegs; i++) {
        seg_free(s->segs[i]);
    }
    free(s->segs);
    if (s->dirfd >= 0) {
        close(s->dirfd);
    }
    if (s->lockfd >= 0) {
        close(s->lockfd); /* releases the flock */
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->dir);
    free(s);
}

/* ---- append ----------------------------------------------------------------------------- */

static uint64_t rec_size(size_t len)
{
    return sizeof(rec_hdr_t) + SEG_TENANT_MAX + (uint64_t)len;
}

int seg_reserve(seg_store_t *s, size_t bytes)
{
    int rc = MT_OK;
    pthread_mutex_lock(&s->mu);
    uint64_t need = rec_size(bytes);
    int busy = s->used + s->reserved > 0;
    if (busy && s->o.max_bytes > 0 && s->used + s->reserved + need > s->o.max_bytes) {
        rc = MT_AGAIN;
    } else {
        s->reserved += need;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void unreserve_locked(seg_store_t *s, size_t bytes)
{
    uint64_t need = rec_size(bytes);
    s->reserved = s->reserved > need ? s->reserved - need : 0;
}

void seg_unreserve(seg_store_t *s, size_t bytes)
{
    pthread_mutex_lock(&s->mu);
    unreserve_locked(s, bytes);
    pthread_mutex_unlock(&s->mu);
}

/* Stops appending to the last segment (deleting it when every record in it is confirmed).
 * The group commit relies on one invariant: while synced_lsn < written_lsn, every unsynced
 * record is in the open last segment. So appends still waiting for a sync are covered here
 * first: by an fdatasync of the file, or by nothing when it is `drained` (all confirmed: sent,
 * the file is going). When that fdatasync fails, `force` retires the file anyway (a failed
 * write must not leave it open) and the waiters are released: an I/O error the disk reported
 * once cannot be made good by waiting. Returns 0, or -1 when the sync failed. */
static int retire_active_locked(seg_store_t *s, int drained, int force)
{
    seg_t *a = s->segs[s->nsegs - 1];
    int rc = 0;
    if (s->synced_lsn < s->written_lsn) {
        if (s->o.fsync && !drained && fdatasync(a->fd) != 0) {
            mt_log(MT_LOG_ERROR, "file_storage %s: fdatasync failed: %s", s->dir, strerror(errno));
            rc = -1;
            if (!force) {
                return rc;
            }
        }
        s->synced_lsn = s->written_lsn;
        pthread_cond_broadcast(&s->cv);
    }
    s->active_open = 0;
    if (a->nacked == a->nrecs) {
        fold_and_delete(s, s->nsegs - 1);
    }
    return rc;
}

/* Makes the last segment one that takes appends, starting a new file when there is none or
 * the current one is full. */
static int ensure_active(seg_store_t *s, uint64_t total)
{
    if (s->active_open) {
        seg_t *a = s->segs[s->nsegs - 1];
        if (a->size == 0 || a->size + total <= s->o.segment_bytes) {
            return 0;
        }
        /* roll: what was written to the old file is made durable first */
        if (retire_active_locked(s, 0, 0) != 0) {
            return -1;
        }
    }
    seg_t *g = seg_new(s->next_seg++);
    if (!g) {
        return -1;
    }
    char path[4200];
    seg_path(s, g->id, "log", path, sizeof(path));
    g->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (g->fd < 0 || push_seg(s, g) != 0) {
        seg_free(g);
        return -1;
    }
    if (s->o.fsync) {
        fsync(s->dirfd); /* the new file's name must survive a crash too */
    }
    s->active_open = 1;
    return 0;
}

int seg_append(seg_store_t *s, seg_meta_t *m, const void *data, size_t len)
{
    rec_hdr_t h;
    memset(&h, 0, sizeof(h));
    size_t tlen = strnlen(m->tenant, SEG_TENANT_MAX);
    uint64_t total = sizeof(h) + tlen + len;
    pthread_mutex_lock(&s->mu);
    unreserve_locked(s, len);
    if (ensure_active(s, total) != 0) {
        int e = errno;
        pthread_mutex_unlock(&s->mu);
        mt_log(MT_LOG_ERROR, "file_storage %s: cannot start a segment: %s", s->dir, strerror(e));
        return MT_AGAIN;
    }
    seg_t *a = s->segs[s->nsegs - 1];
    h.magic = REC_MAGIC;
    h.len = (uint32_t)len;
    h.seq = s->next_seq;
    h.items = m->items;
    h.signal = m->signal;
    h.format = m->format;
    h.tenant_len = (uint8_t)tlen;
    h.data_crc = (uint32_t)crc32(crc32(0L, (const Bytef *)m->tenant, (uInt)tlen), data, (uInt)len);
    h.hdr_crc = crc(&h, offsetof(rec_hdr_t, hdr_crc));
    struct iovec iov[3] = {{&h, sizeof(h)}, {m->tenant, tlen}, {(void *)data, len}};
    ssize_t w = pwritev(a->fd, iov, 3, (off_t)a->size);
    if (w != (ssize_t)total) {
        int e = w < 0 ? errno : ENOSPC; /* a short write: the disk filled up */
        if (ftruncate(a->fd, (off_t)a->size) != 0) {
            /* the torn record fails its CRC at the next open and is cut there */
        }
        /* retire the file: the next append starts a new one, so a failure bound to this file
         * (or a disk that has room again) does not refuse forever */
        retire_active_locked(s, 0, 1);
        uint64_t now = mt_now_ns();
        int warn = s->warned_ns == 0 || now - s->warned_ns >= WARN_EVERY_NS;
        if (warn) {
            s->warned_ns = now;
        }
        pthread_mutex_unlock(&s->mu);
        if (warn) {
            mt_log(MT_LOG_WARN,
                   "file_storage %s: write failed (%s): refusing or dropping per "
                   "on_full until it works again",
                   s->dir, strerror(e));
        }
        return MT_AGAIN;
    }
    m->seq = s->next_seq++;
    m->len = (uint32_t)len;
    a->size += total;
    s->used += total;
    if (a->first_seq == UINT64_MAX) {
        a->first_seq = m->seq;
    }
    a->nrecs++;
    a->led.accepted += m->items;
    a->led.queued += m->items;
    s->unread++;
    uint64_t lsn = ++s->written_lsn;
    int rc = MT_OK;
    while (s->o.fsync && s->synced_lsn < lsn) {
        if (s->syncing) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        if (!s->active_open) {
            /* cannot happen: retiring the last segment covers every waiter first */
            s->synced_lsn = s->written_lsn;
            break;
        }
        /* leader: one fdatasync covers every append written so far */
        s->syncing = 1;
        uint64_t target = s->written_lsn;
        int fd = dup(s->segs[s->nsegs - 1]->fd);
        pthread_mutex_unlock(&s->mu);
        int src = fd >= 0 ? fdatasync(fd) : -1;
        if (fd >= 0) {
            close(fd);
        }
        pthread_mutex_lock(&s->mu);
        s->syncing = 0;
        if (src == 0 && target > s->synced_lsn) {
            s->synced_lsn = target;
        }
        pthread_cond_broadcast(&s->cv);
        if (src != 0) {
            mt_log(MT_LOG_ERROR, "file_storage %s: fdatasync failed: %s", s->dir, strerror(errno));
            rc = MT_EIO;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- read and confirm ------------------------------------------------------------------ */

int seg_next(seg_store_t *s, seg_meta_t *m, void *(*alloc)(void *arg, const seg_meta_t *m),
             void *arg, void **out)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (s->rseg < s->nsegs) {
        seg_t *g = s->segs[s->rseg];
        if (s->roff >= g->size) {
            if (s->rseg + 1 < s->nsegs) {
                s->rseg++;
                s->roff = 0;
                continue;
            }
            break;
        }
        int skipped = 0;
        for (size_t i = 0; i < g->nskips; i++) {
            if (g->skips[i].start == s->roff) {
                s->roff = g->skips[i].end;
                skipped = 1;
            }
        }
        if (skipped) {
            continue;
        }
        rec_hdr_t h;
        if (read_all_at(g->fd, &h, sizeof(h), (off_t)s->roff) != 0 || h.magic != REC_MAGIC ||
            h.hdr_crc != crc(&h, offsetof(rec_hdr_t, hdr_crc))) {
            /* damaged after open (it was checked then): give up on the rest of this file */
            mt_log(MT_LOG_ERROR, "file_storage %s: segment %" PRIx64 " damaged at %" PRIu64, s->dir,
                   g->id, s->roff);
            s->corrupt++;
            s->roff = g->size;
            continue;
        }
        uint64_t total = sizeof(h) + h.tenant_len + (uint64_t)h.len;
        if (find_ack(g, h.seq)) {
            s->roff += total;
            continue;
        }
        memset(m, 0, sizeof(*m));
        m->seq = h.seq;
        m->items = h.items;
        m->signal = h.signal;
        m->format = h.format;
        m->len = h.len;
        if (read_all_at(g->fd, m->tenant, h.tenant_len, (off_t)(s->roff + sizeof(h))) != 0) {
            rc = MT_EIO;
            break;
        }
        m->tenant[h.tenant_len] = 0;
        void *buf = alloc(arg, m);
        if (!buf) {
            rc = MT_ENOMEM;
            break;
        }
        if (h.len && read_all_at(g->fd, buf, h.len, (off_t)(s->roff + sizeof(h) + h.tenant_len))) {
            rc = MT_EIO; /* the caller frees buf: *out stays unset */
            break;
        }
        *out = buf;
        s->roff += total;
        s->unread--;
        rc = 1;
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void seg_ack(seg_store_t *s, uint64_t seq, uint32_t sent, uint32_t dropped, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    size_t lo = 0, hi = s->nsegs;
    while (lo < hi) { /* the last segment whose first record is <= seq */
        size_t mid = (lo + hi) / 2;
        if (s->segs[mid]->first_seq <= seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    size_t i = lo - 1;
    seg_t *g = s->segs[i];
    ack_ent_t e;
    ack_ent_fill(&e, seq, sent, dropped, reason);
    append_ack(s, g, &e);
    g->nacked++;
    g->led.sent += sent;
    g->led.queued -= (uint64_t)sent + dropped;
    if (dropped) {
        seg_ledger_drop(&g->led, dropped, reason ? reason : "");
    }
    int active = s->active_open && i == s->nsegs - 1;
    /* a drained active segment is retired once it is a quarter full, so a healthy queue keeps
     * its disk use near one small file */
    if (g->nacked == g->nrecs && (!active || g->size >= s->o.segment_bytes / 4)) {
        if (active) {
            retire_active_locked(s, 1, 1);
        } else {
            fold_and_delete(s, i);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

void seg_note_drop(seg_store_t *s, uint64_t items, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    s->base.accepted += items;
    seg_ledger_drop(&s->base, items, reason);
    pthread_mutex_unlock(&s->mu);
}

uint64_t seg_unread(seg_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->unread;
    pthread_mutex_unlock(&s->mu);
    return v;
}

uint64_t seg_used_bytes(seg_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->used;
    pthread_mutex_unlock(&s->mu);
    return v;
}

uint64_t seg_corrupt_records(seg_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->corrupt;
    pthread_mutex_unlock(&s->mu);
    return v;
}

void seg_get_ledger(seg_store_t *s, seg_ledger_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->base;
    for (size_t i = 0; i < s->nsegs; i++) {
        seg_ledger_add(out, &s->segs[i]->led);
    }
    pthread_mutex_unlock(&s->mu);
}
