/*
 * test_segstore.c - tests for collector/core/segstore.c: records come back in order with
 * their metadata across a reopen, confirmed ones do not, drained segments are deleted, the
 * ledger survives, truncated and bit-flipped files lose only the damaged records (counted),
 * the quota refuses, concurrent fsynced appends all land, and a directory has one owner.
 */
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segstore.h"

static void tmpdir(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/meltp-segtest-XXXXXX");
    if (!mkdtemp(buf)) {
        buf[0] = 0;
    }
}

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];
    while (d && (de = readdir(d))) {
        if (de->d_name[0] != '.') {
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(dir);
}

/* Number of files in dir whose name ends with ext. */
static int count_files(const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name), e = strlen(ext);
        n += l > e && strcmp(de->d_name + l - e, ext) == 0;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/* The one segment file (first found). */
static int seg_file(const char *dir, char *out, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int found = 0;
    while (d && (de = readdir(d))) {
        if (!found && strncmp(de->d_name, "seg-", 4) == 0 && strstr(de->d_name, ".log")) {
            snprintf(out, n, "%s/%s", dir, de->d_name);
            found = 1;
        }
    }
    if (d) {
        closedir(d);
    }
    return found;
}

static seg_store_t *open_store(const char *dir, int fsync, uint64_t max, uint64_t segbytes)
{
    seg_opts_t o = {.dir = dir, .fsync = fsync, .max_bytes = max, .segment_bytes = segbytes};
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    seg_store_t *s = seg_open(&o, &eb);
    if (!s) {
        fprintf(stderr, "    seg_open: %s\n", eb.msg);
    }
    return s;
}

/* Appends record i: payload "rec-<i>" repeated to 40 bytes, i+1 items, tenant t<i%2>. */
static int put(seg_store_t *s, int i)
{
    char data[64];
    for (int k = 0; k < 40; k++) {
        data[k] = (char)('a' + (i + k) % 26);
    }
    snprintf(data, sizeof(data), "rec-%03d", i);
    data[7] = '|';
    seg_meta_t m;
    memset(&m, 0, sizeof(m));
    m.items = (uint32_t)i + 1;
    m.signal = 2;
    m.format = 1;
    snprintf(m.tenant, sizeof(m.tenant), "t%d", i % 2);
    if (seg_reserve(s, 40) != MT_OK) {
        return MT_AGAIN;
    }
    return seg_append(s, &m, data, 40);
}

static void *alloc_buf(void *arg, const seg_meta_t *m)
{
    (void)arg;
    return malloc(m->len ? m->len : 1);
}

/* Takes the next record and returns its number (from the payload), -1 when none. */
static int take(seg_store_t *s, seg_meta_t *m)
{
    void *buf = NULL;
    int rc = seg_next(s, m, alloc_buf, NULL, &buf);
    if (rc != 1) {
        return -1;
    }
    int n = -1;
    if (m->len == 40 && memcmp(buf, "rec-", 4) == 0) {
        n = atoi((char *)buf + 4);
    }
    free(buf);
    return n;
}

static uint64_t total_dropped(const seg_ledger_t *l)
{
    uint64_t n = 0;
    for (size_t i = 0; i < l->ndropped; i++) {
        n += l->dropped[i].items;
    }
    return n;
}

static int balanced(const seg_ledger_t *l)
{
    return l->accepted == l->sent + total_dropped(l) + l->queued;
}

UNIT_TEST(segstore_replays_in_order_with_metadata_after_reopen)
{
    char dir[64];
    tmpdir(dir, sizeof(dir));
    seg_store_t *s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    for (int i = 0; i < 10; i++) {
        CHECK(put(s, i) == MT_OK);
    }
    CHECK(seg_unread(s) == 10);
    seg_close(s);
    s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    CHECK(seg_unread(s) == 10);
    CHECK(seg_corrupt_records(s) == 0);
    seg_meta_t m;
    uint64_t last_seq = 0;
    for (int i = 0; i < 10; i++) {
        CHECK(take(s, &m) == i);
        CHECK(m.items == (uint32_t)i + 1);
        CHECK(m.signal == 2 && m.format == 1);
        CHECK(strcmp(m.tenant, i % 2 ? "t1" : "t0") == 0);
        CHECK(i == 0 || m.seq > last_seq);
        last_seq = m.seq;
    }
    CHECK(take(s, &m) == -1);
    seg_ledger_t l;
    seg_get_ledger(s, &l);
    CHECK(l.accepted == 55 && l.queued == 55 && l.sent == 0 && balanced(&l));
    seg_close(s);
    rmtree(dir);
}

UNIT_TEST(segstore_confirmed_records_stay_gone_and_drained_segments_are_deleted)
{
    char dir[64];
    tmpdir(dir, sizeof(dir));
    /* 200-byte segments: about two records each */
    seg_store_t *s = open_store(dir, 0, 0, 200);
    REQUIRE(s);
    for (int i = 0; i < 10; i++) {
        CHECK(put(s, i) == MT_OK);
    }
    CHECK(count_files(dir, ".log") >= 4);
    seg_meta_t m;
    for (int i = 0; i < 6; i++) {
        REQUIRE(take(s, &m) == i);
        /* record 3 is dropped by the backend, the others sent */
        seg_ack(s, m.seq, i == 3 ? 0 : m.items, i == 3 ? m.items : 0, "http_4xx");
    }
    seg_ledger_t l;
    seg_get_ledger(s, &l);
    CHECK(l.accepted == 55 && l.sent == 21 - 4 && total_dropped(&l) == 4 && l.queued == 34);
    CHECK(balanced(&l));
    seg_close(s);
    s = open_store(dir, 0, 0, 200);
    REQUIRE(s);
    CHECK(seg_unread(s) == 4);
    for (int i = 6; i < 10; i++) {
        CHECK(take(s, &m) == i);
        seg_ack(s, m.seq, m.items, 0, NULL);
    }
    CHECK(take(s, &m) == -1);
    seg_get_ledger(s, &l);
    CHECK(l.accepted == 55 && l.sent == 51 && total_dropped(&l) == 4 && l.queued == 0);
    CHECK(l.ndropped == 1 && strcmp(l.dropped[0].reason, "http_4xx") == 0);
    CHECK(count_files(dir, ".log") == 0);
    CHECK(seg_used_bytes(s) == 0);
    seg_close(s);
    /* the ledger outlives the deleted segments */
    s = open_store(dir, 0, 0, 200);
    REQUIRE(s);
    seg_get_ledger(s, &l);
    CHECK(l.accepted == 55 && l.sent == 51 && total_dropped(&l) == 4 && l.queued == 0);
    CHECK(put(s, 42) == MT_OK);
    CHECK(take(s, &m) == 42);
    seg_close(s);
    rmtree(dir);
}

UNIT_TEST(segstore_truncated_file_keeps_the_good_records_and_counts_the_torn_one)
{
    char dir[64], path[512];
    tmpdir(dir, sizeof(dir));
    seg_store_t *s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    for (int i = 0; i < 5; i++) {
        CHECK(put(s, i) == MT_OK);
    }
    seg_close(s);
    REQUIRE(seg_file(dir, path, sizeof(path)));
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    REQUIRE(truncate(path, st.st_size - 7) == 0);
    s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    CHECK(seg_corrupt_records(s) == 1);
    CHECK(seg_unread(s) == 4);
    seg_meta_t m;
    for (int i = 0; i < 4; i++) {
        CHECK(take(s, &m) == i);
    }
    CHECK(take(s, &m) == -1);
    seg_ledger_t l;
    seg_get_ledger(s, &l);
    CHECK(l.accepted == 10 && l.queued == 10 && balanced(&l));
    /* the torn tail is gone from the file, and appending goes on */
    struct stat st2;
    REQUIRE(stat(path, &st2) == 0);
    CHECK(st2.st_size < st.st_size - 7);
    CHECK(put(s, 5) == MT_OK);
    CHECK(take(s, &m) == 5);
    seg_close(s);
    s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    CHECK(seg_corrupt_records(s) == 0);
    CHECK(seg_unread(s) == 5);
    seg_close(s);
    rmtree(dir);
}

static void flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    if (!f) {
        return;
    }
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
}

/* Each record here is 32 (header) + 2 (tenant) + 40 bytes. */
#define REC_BYTES 74

UNIT_TEST(segstore_bit_flipped_payload_is_skipped_counted_and_dropped_once)
{
    char dir[64], path[512];
    tmpdir(dir, sizeof(dir));
    seg_store_t *s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    for (int i = 0; i < 5; i++) {
        CHECK(put(s, i) == MT_OK);
    }
    seg_close(s);
    REQUIRE(seg_file(dir, path, sizeof(path)));
    flip_byte(path, 2 * REC_BYTES + 32 + 2 + 20); /* inside record 2's payload */
    s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    CHECK(seg_corrupt_records(s) == 1);
    CHECK(seg_unread(s) == 4);
    seg_meta_t m;
    int want[] = {0, 1, 3, 4};
    for (int i = 0; i < 4; i++) {
        CHECK(take(s, &m) == want[i]);
    }
    CHECK(take(s, &m) == -1);
    seg_ledger_t l;
    seg_get_ledger(s, &l);
    CHECK(l.accepted == 15 && total_dropped(&l) == 3 && l.queued == 12 && balanced(&l));
    CHECK(l.ndropped == 1 && strcmp(l.dropped[0].reason, "corrupt") == 0);
    seg_close(s);
    /* counted once: the next open knows it was dropped */
    s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    CHECK(seg_corrupt_records(s) == 0);
    CHECK(seg_unread(s) == 4);
    seg_get_ledger(s, &l);
    CHECK(l.accepted == 15 && total_dropped(&l) == 3 && balanced(&l));
    seg_close(s);
    rmtree(dir);
}

UNIT_TEST(segstore_bit_flipped_header_resyncs_on_the_next_record)
{
    char dir[64], path[512];
    tmpdir(dir, sizeof(dir));
    seg_store_t *s = open_store(dir, 0, 0, 0);
    REQUIRE(s);
    for (int i = 0; i < 5; i++) {
        CHECK(put(s, i) == MT_OK);
    }
    seg_close(s);
    REQUIRE(seg_file(dir, path, sizeof(path)));
    flip_byte(path, 1 * REC_BYTES + 4); /* record 1's length field */
    s = open_store(dir, 0, 0, 0);
    REQUIRE(s);
    CHECK(seg_corrupt_records(s) == 1);
    seg_meta_t m;
    int want[] = {0, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        CHECK(take(s, &m) == want[i]);
    }
    CHECK(take(s, &m) == -1);
    seg_close(s);
    /* a flipped byte in the last header cuts the tail */
    s = open_store(dir, 0, 0, 0);
    REQUIRE(s);
    seg_close(s);
    flip_byte(path, 4 * REC_BYTES + 9);
    s = open_store(dir, 0, 0, 0);
    REQUIRE(s);
    CHECK(seg_corrupt_records(s) == 2); /* the damaged middle again, and the tail */
    CHECK(seg_unread(s) == 3);
    seg_close(s);
    rmtree(dir);
}

UNIT_TEST(segstore_quota_refuses_but_an_empty_store_takes_one)
{
    char dir[64];
    tmpdir(dir, sizeof(dir));
    seg_store_t *s = open_store(dir, 0, 100, 0);
    REQUIRE(s);
    /* one record reserves 32 + 63 + 40 > 100 bytes: only the first fits */
    CHECK(put(s, 0) == MT_OK);
    CHECK(put(s, 1) == MT_AGAIN);
    seg_meta_t m;
    CHECK(take(s, &m) == 0);
    seg_ack(s, m.seq, m.items, 0, NULL);
    CHECK(seg_used_bytes(s) <= REC_BYTES);
    seg_close(s);
    s = open_store(dir, 0, 1000, 0);
    REQUIRE(s);
    int ok = 0;
    while (put(s, ok) == MT_OK && ok < 100) {
        ok++;
    }
    CHECK(ok >= 12 && ok <= 13); /* 74 bytes each, the last reserving 135 */
    CHECK(seg_used_bytes(s) <= 1000);
    seg_close(s);
    rmtree(dir);
}

typedef struct appender {
    seg_store_t *s;
    int base, n, failed;
} appender_t;

static void *append_main(void *arg)
{
    appender_t *a = arg;
    for (int i = 0; i < a->n; i++) {
        if (put(a->s, a->base + i) != MT_OK) {
            a->failed++;
        }
    }
    return NULL;
}

UNIT_TEST(segstore_concurrent_fsynced_appends_all_land_in_order_per_writer)
{
    char dir[64];
    tmpdir(dir, sizeof(dir));
    seg_store_t *s = open_store(dir, 1, 0, 4096);
    REQUIRE(s);
    pthread_t th[4];
    appender_t a[4];
    for (int t = 0; t < 4; t++) {
        a[t] = (appender_t){s, t * 100, 50, 0};
        pthread_create(&th[t], NULL, append_main, &a[t]);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        CHECK(a[t].failed == 0);
    }
    seg_close(s);
    s = open_store(dir, 1, 0, 4096);
    REQUIRE(s);
    CHECK(seg_unread(s) == 200);
    int last[4] = {-1, -1, -1, -1}, n = 0;
    seg_meta_t m;
    int v;
    while ((v = take(s, &m)) >= 0) {
        int t = v / 100;
        CHECK(v % 100 > last[t]);
        last[t] = v % 100;
        n++;
    }
    CHECK(n == 200);
    seg_close(s);
    rmtree(dir);
}

UNIT_TEST(segstore_a_directory_has_one_owner)
{
    char dir[64];
    tmpdir(dir, sizeof(dir));
    seg_store_t *s = open_store(dir, 0, 0, 0);
    REQUIRE(s);
    seg_opts_t o = {.dir = dir};
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    seg_store_t *s2 = seg_open(&o, &eb);
    CHECK(!s2);
    CHECK(strstr(eb.msg, "in use") != NULL);
    seg_close(s2);
    seg_close(s);
    rmtree(dir);
}

UNIT_TEST(segstore_disk_full_keeps_nothing_and_recovers)
{
    char dir[64], path[512];
    tmpdir(dir, sizeof(dir));
    seg_store_t *s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    /* the first segment file the store will create is /dev/full: every write gets ENOSPC */
    snprintf(path, sizeof(path), "%s/seg-%016x.log", dir, 1);
    REQUIRE(symlink("/dev/full", path) == 0);
    CHECK(put(s, 0) == MT_AGAIN);
    CHECK(seg_unread(s) == 0);
    seg_ledger_t l;
    seg_get_ledger(s, &l);
    CHECK(l.accepted == 0 && l.queued == 0);
    /* the next append starts a new file and works */
    CHECK(put(s, 1) == MT_OK);
    seg_meta_t m;
    CHECK(take(s, &m) == 1);
    seg_close(s);
    s = open_store(dir, 1, 0, 0);
    REQUIRE(s);
    CHECK(seg_unread(s) == 1);
    CHECK(seg_corrupt_records(s) == 0);
    seg_get_ledger(s, &l);
    CHECK(l.accepted == 2 && l.queued == 2 && balanced(&l));
    seg_close(s);
    rmtree(dir);
}

typedef struct drainer {
    seg_store_t *s;
    _Atomic int writers_done;
    int got;
} drainer_t;

/* Takes and confirms records as they come, until the writers are done and nothing is left. */
static void *drain_main(void *arg)
{
    drainer_t *d = arg;
    seg_meta_t m;
    for (;;) {
        int done = atomic_load(&d->writers_done);
        if (take(d->s, &m) >= 0) {
            seg_ack(d->s, m.seq, m.items, 0, NULL);
            d->got++;
        } else if (done) {
            return NULL;
        } else {
            sched_yield();
        }
    }
}

UNIT_TEST(segstore_fsynced_appends_while_a_consumer_drains_and_retires_files)
{
    /* records are read and confirmed while their writers still wait for the fsync, so the
     * file they are in may be retired and deleted under the group commit */
    char dir[64];
    tmpdir(dir, sizeof(dir));
    seg_store_t *s = open_store(dir, 1, 0, 1024);
    REQUIRE(s);
    pthread_t th[4], dt;
    appender_t a[4];
    drainer_t d = {.s = s};
    pthread_create(&dt, NULL, drain_main, &d);
    for (int t = 0; t < 4; t++) {
        a[t] = (appender_t){s, t * 1000, 150, 0};
        pthread_create(&th[t], NULL, append_main, &a[t]);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        CHECK(a[t].failed == 0);
    }
    atomic_store(&d.writers_done, 1);
    pthread_join(dt, NULL);
    CHECK(d.got == 600);
    seg_ledger_t l;
    seg_get_ledger(s, &l);
    CHECK(l.queued == 0 && l.accepted == l.sent && balanced(&l));
    seg_close(s);
    rmtree(dir);
}
