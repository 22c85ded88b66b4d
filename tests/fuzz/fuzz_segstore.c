/*
 * fuzz_segstore.c - the persistent queue's segment reader (collector/core/segstore.c): what
 * `seg_open` finds on disk after a crash, a torn write or a bit flip. The input is one segment
 * file (and, when the first byte is odd, the tail of it becomes the segment's ack file); the
 * store opens it, replays every record it accepts and confirms each one.
 *
 * Oracle: replayed records carry payloads no longer than the file; a store that opened always
 * closes. Sequence numbers are not checked: a file holding the same record twice, or records
 * out of sequence, is replayed in file order (duplicates, never a loss; docs/FUZZING.md,
 * finding 6, open). Crashes, leaks
 * and sanitizer reports fail as in every target.
 *
 * Seed: LLVMFuzzerInitialize writes a valid three-record segment, made by seg_append itself,
 * into the first corpus directory it is given when that directory has no such seed yet.
 */
#include "fuzz.h"
#include "segstore.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64];

static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        return -1;
    }
    int ok = size == 0 || fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void *take_alloc(void *arg, const seg_meta_t *m)
{
    (void)arg;
    return malloc(m->len ? m->len : 1);
}

/* Writes a valid segment made by the store itself into corpus/seed-valid. */
static void write_seed(const char *corpus)
{
    char seed[512];
    snprintf(seed, sizeof(seed), "%s/seed-valid", corpus);
    if (access(seed, F_OK) == 0 || access(corpus, W_OK) != 0) {
        return;
    }
    char dir[] = "/tmp/meltp-fuzz-seed-XXXXXX";
    if (!mkdtemp(dir)) {
        return;
    }
    seg_opts_t o = {.dir = dir, .fsync = 0};
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    seg_store_t *s = seg_open(&o, &eb);
    if (s) {
        static const char *bodies[] = {"\x0a\x02\x08\x01", "second record", ""};
        for (int i = 0; i < 3; i++) {
            seg_meta_t m;
            memset(&m, 0, sizeof(m));
            m.items = (uint32_t)i + 1;
            m.signal = (uint8_t)i;
            snprintf(m.tenant, sizeof(m.tenant), "%s", i == 1 ? "lab-dev" : "");
            if (seg_reserve(s, strlen(bodies[i])) == MT_OK) {
                (void)seg_append(s, &m, bodies[i], strlen(bodies[i]));
            }
        }
        seg_close(s);
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".log") == 0) {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            FILE *f = fopen(p, "rb");
            uint8_t buf[4096];
            size_t got = f ? fread(buf + 1, 1, sizeof(buf) - 1, f) : 0;
            if (f) {
                fclose(f);
            }
            buf[0] = 0; /* even: no ack file */
            (void)write_file(seed, buf, got + 1);
        }
    }
    if (d) {
        closedir(d);
    }
    clear_dir(dir);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/meltp-fuzz-seg-XXXXXX");
    if (!mkdtemp(g_dir)) {
        abort();
    }
    for (int i = 1; i < *argc; i++) {
        struct stat st;
        if ((*argv)[i][0] != '-' && stat((*argv)[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            write_seed((*argv)[i]);
            break;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned mode = fuzz_take_byte(&data, &size);
    clear_dir(g_dir);
    char p[512];
    snprintf(p, sizeof(p), "%s/seg-0000000000000001.log", g_dir);
    size_t seg_len = size;
    if (mode & 1) {
        /* the last quarter becomes the ack file */
        seg_len = size - size / 4;
        char a[512];
        snprintf(a, sizeof(a), "%s/seg-0000000000000001.ack", g_dir);
        if (write_file(a, data + seg_len, size - seg_len) != 0) {
            return 0;
        }
    }
    if (write_file(p, data, seg_len) != 0) {
        return 0;
    }
    seg_opts_t o = {.dir = g_dir, .fsync = 0, .max_bytes = (mode & 2) ? 4096 : 0};
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    seg_store_t *s = seg_open(&o, &eb);
    if (!s) {
        return 0;
    }
    for (int n = 0; n < 100000; n++) {
        seg_meta_t m;
        void *payload = NULL;
        int rc = seg_next(s, &m, take_alloc, NULL, &payload);
        if (rc != 1) {
            break;
        }
        if (m.len > seg_len) {
            FUZZ_ORACLE_FAIL("segstore: a %u-byte payload from a %zu-byte file", m.len, seg_len);
        }
        seg_ack(s, m.seq, m.items, 0, NULL);
        free(payload);
    }
    seg_close(s);
    return 0;
}
