/*
 * config.c - YAML loading and table-driven binding of component configuration.
 * The loader converts libyaml's document (yaml_parser_load) into cfg_node_t trees allocated from
 * one per-document pool, so a document is freed in one call; aliases become shared nodes, which
 * keeps "billion laughs" documents linear in memory (and a node cap bounds what walkers see).
 * cfg_apply is the one generic binder every component uses (craft convention 6).
 */
#include "config.h"
#include "sb.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* ------------------------------------------------------------------------------------------ */
/* Per-document pool: a list of blocks, bump-allocated, freed together by cfg_doc_destroy.    */

#define POOL_BLOCK 16384
#define POOL_ALIGN _Alignof(max_align_t)

typedef struct pool_blk {
    struct pool_blk *next;
    size_t used, cap;
    max_align_t data[];
} pool_blk_t;

typedef struct {
    cfg_doc_t pub; /* first, so a cfg_doc_t * is a doc_impl_t * */
    pool_blk_t *blocks;
} doc_impl_t;

static void *pool_alloc(doc_impl_t *d, size_t n)
{
    n = (n + POOL_ALIGN - 1) & ~(POOL_ALIGN - 1);
    pool_blk_t *b = d->blocks;
    if (b && b->cap - b->used >= n) {
        void *p = (char *)b->data + b->used;
        b->used += n;
        return p;
    }
    /* Big requests get a block of their own, linked behind the current one so the free
     * space left in the current block is not abandoned. */
    size_t cap = n > POOL_BLOCK / 4 ? n : POOL_BLOCK;
    pool_blk_t *nb = malloc(sizeof(*nb) + cap);
    if (!nb) {
        return NULL;
    }
    nb->cap = cap;
    nb->used = n;
    if (cap == n && b) {
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        d->blocks = nb;
    }
    return nb->data;
}

static void *pool_calloc(doc_impl_t *d, size_t n)
{
    void *p = pool_alloc(d, n);
    if (p) {
        memset(p, 0, n);
    }
    return p;
}

static char *pool_strndup(doc_impl_t *d, const char *s, size_t len)
{
    char *p = pool_alloc(d, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = 0;
    }
    return p;
}

void cfg_doc_destroy(cfg_doc_t *doc)
{
    if (!doc) {
        return;
    }
    doc_impl_t *d = (doc_impl_t *)doc;
    pool_blk_t *b = d->blocks;
    while (b) {
        pool_blk_t *next = b->next;
        free(b);
        b = next;
    }
    free(d);
}

/* ------------------------------------------------------------------------------------------ */
/* Loader: libyaml document -> cfg_node tree.                                                 */

enum { NODE_NEW = 0, NODE_BUSY, NODE_DONE };

typedef struct {
    doc_impl_t *d;
    yaml_document_t *y;
    const char *file;
    mt_errbuf_t *eb;
    cfg_node_t **memo;    /* converted node of each yaml node (index - 1) */
    uint64_t *size;       /* its node count after alias expansion */
    unsigned char *state; /* NODE_* per yaml node, to detect recursive aliases */
    char path[512];       /* dotted path of the node being converted, for messages */
    size_t plen;
    int failed;
} loader_t;

/* Fills eb with "FILE:LINE: path: reason" (path omitted at the root). Always returns NULL. */
__attribute__((format(printf, 3, 4))) static void *load_fail(loader_t *L, int line,
                                                              const char *fmt, ...)
{
    char reason[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (L->plen) {
        mt_failf(L->eb, "%s:%d: %s: %s", L->file, line, L->path, reason);
    } else {
        mt_failf(L->eb, "%s:%d: %s", L->file, line, reason);
    }
    L->failed = 1;
    return NULL;
}

/* Appends ".key" (or "key" at the root, or "[i]" when key is NULL) to the path; returns the
 * old length for path_pop. A path that no longer fits ends in "..." instead of being cut
 * silently. */
static size_t path_push(loader_t *L, const char *key, size_t idx)
{
    size_t old = L->plen;
    size_t room = sizeof(L->path) - old;
    int n;
    if (key) {
        n = snprintf(L->path + old, room, "%s%s", old ? "." : "", key);
    } else {
        n = snprintf(L->path + old, room, "[%zu]", idx);
    }
    if (n < 0 || (size_t)n >= room) {
        strcpy(L->path + sizeof(L->path) - 4, "...");
        L->plen = sizeof(L->path) - 1;
    } else {
        L->plen = old + (size_t)n;
    }
    return old;
}

static void path_pop(loader_t *L, size_t old)
{
    L->plen = old;
    L->path[old] = 0;
}

static int line_of(const yaml_mark_t *m)
{
    return m->line >= (size_t)INT_MAX ? INT_MAX : (int)m->line + 1;
}

static size_t ident_len(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) {
        return 0;
    }
    while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_')) {
        i++;
    }
    return i;
}

/* Resolves one reference, the text between "${" and "}". Returns 0 and appends, or -1. */
static int expand_ref(loader_t *L, int line, const char *r, size_t rlen, sb_t *b)
{
    const char *ref = r;
    size_t len = rlen;
    int env_scheme = 0;
    if (len >= 4 && memcmp(ref, "env:", 4) == 0) {
        ref += 4;
        len -= 4;
        env_scheme = 1;
    }
    size_t nl = ident_len(ref, len);
    const char *def = NULL;
    size_t deflen = 0;
    if (nl > 0 && nl == len) {
        /* ${NAME} */
    } else if (nl > 0 && len - nl >= 2 && ref[nl] == ':' && ref[nl + 1] == '-') {
        def = ref + nl + 2;
        deflen = len - nl - 2;
    } else if (!env_scheme && nl > 0 && ref[nl] == ':') {
        load_fail(L, line, "unsupported config provider \"%.*s\" in \"${%.*s}\" (only env is supported)",
                  (int)nl, ref, (int)(rlen > 64 ? 64 : rlen), r);
        return -1;
    } else {
        load_fail(L, line, "invalid environment variable reference \"${%.*s}\"",
                  (int)(rlen > 64 ? 64 : rlen), r);
        return -1;
    }
    char name[256];
    if (nl >= sizeof(name)) {
        load_fail(L, line, "environment variable name longer than %zu characters",
                  sizeof(name) - 1);
        return -1;
    }
    memcpy(name, ref, nl);
    name[nl] = 0;
    /* As in the OpenTelemetry Collector, the default applies only when the variable is unset;
     * a variable set to "" stays empty. */
    const char *v = getenv(name);
    if (v) {
        sb_puts(b, v);
    } else if (def) {
        sb_put(b, def, deflen);
    }
    if (b->err) {
        load_fail(L, line, "out of memory");
        return -1;
    }
    return 0;
}

/* Substitutes ${...} references and $$ in s[0..len) into a pool string. NULL on error. */
static char *expand_env(loader_t *L, int line, const char *s, size_t len)
{
    if (!memchr(s, '$', len)) {
        char *p = pool_strndup(L->d, s, len);
        return p ? p : load_fail(L, line, "out of memory");
    }
    sb_t b = {0}; /* malloc'd, copied into the pool at the end */
    size_t i = 0, lit = 0; /* s[lit..i) is literal text not yet copied */
    int rc = 0;
    while (i < len && rc == 0) {
        if (s[i] != '$' || i + 1 >= len || (s[i + 1] != '$' && s[i + 1] != '{')) {
            i++;
            continue;
        }
        sb_put(&b, s + lit, i - lit);
        if ((rc = b.err) != 0) {
            break;
        }
        if (s[i + 1] == '$') {
            sb_putc(&b, '$');
            i += 2;
            lit = i;
            continue;
        }
        const char *start = s + i + 2;
        const char *end = memchr(start, '}', len - (i + 2));
        if (!end) {
            sb_fini(&b);
            return load_fail(L, line, "unterminated \"${\" (write \"$$\" for a literal \"$\")");
        }
        if (expand_ref(L, line, start, (size_t)(end - start), &b)) {
            sb_fini(&b);
            return NULL;
        }
        i = (size_t)(end - s) + 1;
        lit = i;
    }
    sb_put(&b, s + lit, len - lit);
    char *p = b.err ? NULL : pool_strndup(L->d, sb_str(&b), b.len);
    sb_fini(&b);
    return p ? p : load_fail(L, line, "out of memory");
}

static int is_null_scalar(const yaml_node_t *yn)
{
    if (yn->tag && strcmp((const char *)yn->tag, YAML_NULL_TAG) == 0) {
        return 1;
    }
    if (yn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return 0; /* quoted text is always text */
    }
    const char *v = (const char *)yn->data.scalar.value;
    size_t n = yn->data.scalar.length;
    return n == 0 || (n == 1 && v[0] == '~') ||
           (n == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) || !memcmp(v, "NULL", 4)));
}

static int is_merge_key(const yaml_node_t *k)
{
    if (k->tag && strcmp((const char *)k->tag, "tag:yaml.org,2002:merge") == 0) {
        return 1;
    }
    return k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && k->data.scalar.length == 2 &&
           memcmp(k->data.scalar.value, "<<", 2) == 0;
}

static cfg_node_t *conv(loader_t *L, int idx, int depth);

static int conv_scalar(loader_t *L, const yaml_node_t *yn, cfg_node_t *n)
{
    const char *v = (const char *)yn->data.scalar.value;
    size_t len = yn->data.scalar.length;
    if (is_null_scalar(yn)) {
        n->kind = CFG_NODE_NULL;
        return 0;
    }
    if (memchr(v, 0, len)) {
        load_fail(L, n->line, "NUL byte in value");
        return -1;
    }
    n->kind = CFG_NODE_SCALAR;
    n->value = expand_env(L, n->line, v, len);
    return n->value ? 0 : -1;
}

static int conv_seq(loader_t *L, const yaml_node_t *yn, cfg_node_t *n, int depth, uint64_t *size)
{
    size_t cnt = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
    n->kind = CFG_NODE_SEQ;
    n->children = pool_calloc(L->d, (cnt ? cnt : 1) * sizeof(*n->children));
    if (!n->children) {
        load_fail(L, n->line, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        int item = yn->data.sequence.items.start[i];
        size_t old = path_push(L, NULL, i);
        n->children[i] = conv(L, item, depth + 1);
        path_pop(L, old);
        if (!n->children[i]) {
            return -1;
        }
        *size += L->size[item - 1];
        n->n = i + 1;
    }
    return 0;
}

static int map_find(const cfg_node_t *n, const char *key)
{
    /* Linear: config maps are small. A map with tens of thousands of keys would make the
     * duplicate check quadratic; the file-size cap keeps that bounded. */
    for (size_t i = 0; i < n->n; i++) {
        if (strcmp(n->keys[i], key) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Merges the pairs of `src` (a map) that `n` lacks: explicit keys win over merged ones and
 * earlier merge sources over later ones, as the YAML merge-key spec says. */
static void merge_from(cfg_node_t *n, const cfg_node_t *src)
{
    for (size_t j = 0; j < src->n; j++) {
        if (map_find(n, src->keys[j]) < 0) {
            n->keys[n->n] = src->keys[j];
            n->key_lines[n->n] = src->key_lines[j];
            n->children[n->n] = src->children[j];
            n->n++;
        }
    }
}

static int conv_map(loader_t *L, const yaml_node_t *yn, cfg_node_t *n, int depth, uint64_t *size)
{
    const yaml_node_pair_t *pairs = yn->data.mapping.pairs.start;
    size_t cnt = (size_t)(yn->data.mapping.pairs.top - pairs);
    const cfg_node_t *merge = NULL;
    int merge_line = 0;
    size_t cap = cnt;
    n->kind = CFG_NODE_MAP;

    /* Pass 1: check keys, convert the merge source (if any) to size the arrays. */
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *k = yaml_document_get_node(L->y, pairs[i].key);
        if (!k || k->type != YAML_SCALAR_NODE) {
            load_fail(L, k ? line_of(&k->start_mark) : n->line, "map key must be a scalar");
            return -1;
        }
        if (!is_merge_key(k)) {
            continue;
        }
        int kl = line_of(&k->start_mark);
        if (merge) {
            load_fail(L, kl, "duplicate merge key \"<<\" (first at line %d)", merge_line);
            return -1;
        }
        size_t old = path_push(L, "<<", 0);
        merge = conv(L, pairs[i].value, depth + 1);
        path_pop(L, old);
        if (!merge) {
            return -1;
        }
        merge_line = kl;
        cap--;
        *size += L->size[pairs[i].value - 1];
        if (merge->kind == CFG_NODE_MAP) {
            cap += merge->n;
        } else if (merge->kind == CFG_NODE_SEQ) {
            for (size_t j = 0; j < merge->n; j++) {
                if (merge->children[j]->kind != CFG_NODE_MAP) {
                    load_fail(L, kl, "merge key \"<<\" needs a map or a list of maps");
                    return -1;
                }
                cap += merge->children[j]->n;
            }
        } else if (merge->kind != CFG_NODE_NULL) {
            load_fail(L, kl, "merge key \"<<\" needs a map or a list of maps");
            return -1;
        }
    }
    if (cap == 0) {
        cap = 1;
    }
    n->keys = pool_alloc(L->d, cap * sizeof(*n->keys));
    n->key_lines = pool_alloc(L->d, cap * sizeof(*n->key_lines));
    n->children = pool_alloc(L->d, cap * sizeof(*n->children));
    if (!n->keys || !n->key_lines || !n->children) {
        load_fail(L, n->line, "out of memory");
        return -1;
    }

    /* Pass 2: explicit pairs in document order. */
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *k = yaml_document_get_node(L->y, pairs[i].key);
        if (is_merge_key(k)) {
            continue;
        }
        const char *kv = (const char *)k->data.scalar.value;
        size_t klen = k->data.scalar.length;
        int kl = line_of(&k->start_mark);
        if (memchr(kv, 0, klen)) {
            load_fail(L, kl, "NUL byte in key");
            return -1;
        }
        char *key = pool_strndup(L->d, kv, klen);
        if (!key) {
            load_fail(L, kl, "out of memory");
            return -1;
        }
        size_t old = path_push(L, key, 0);
        int prev = map_find(n, key);
        if (prev >= 0) {
            load_fail(L, kl, "duplicate key (first at line %d)", n->key_lines[prev]);
            return -1;
        }
        cfg_node_t *child = conv(L, pairs[i].value, depth + 1);
        path_pop(L, old);
        if (!child) {
            return -1;
        }
        n->keys[n->n] = key;
        n->key_lines[n->n] = kl;
        n->children[n->n] = child;
        n->n++;
        *size += L->size[pairs[i].value - 1];
    }

    if (merge && merge->kind == CFG_NODE_MAP) {
        merge_from(n, merge);
    } else if (merge && merge->kind == CFG_NODE_SEQ) {
        for (size_t j = 0; j < merge->n; j++) {
            merge_from(n, merge->children[j]);
        }
    }
    return 0;
}

/* Converts yaml node `idx` (1-based). Returns the node (shared when already converted through
 * another alias) or NULL with eb set. */
static cfg_node_t *conv(loader_t *L, int idx, int depth)
{
    yaml_node_t *yn = yaml_document_get_node(L->y, idx);
    if (!yn) {
        return load_fail(L, 0, "internal error: bad YAML node index %d", idx);
    }
    size_t i = (size_t)idx - 1;
    int line = line_of(&yn->start_mark);
    if (L->state[i] == NODE_DONE) {
        return L->memo[i];
    }
    if (L->state[i] == NODE_BUSY) {
        return load_fail(L, line, "recursive alias (a node contains itself)");
    }
    if (depth > CFG_MAX_DEPTH) {
        return load_fail(L, line, "nested deeper than %d levels", CFG_MAX_DEPTH);
    }
    L->state[i] = NODE_BUSY;
    cfg_node_t *n = pool_calloc(L->d, sizeof(*n));
    if (!n) {
        return load_fail(L, line, "out of memory");
    }
    n->line = line;
    uint64_t size = 1;
    int rc;
    switch (yn->type) {
    case YAML_SCALAR_NODE:
        rc = conv_scalar(L, yn, n);
        break;
    case YAML_SEQUENCE_NODE:
        rc = conv_seq(L, yn, n, depth, &size);
        break;
    case YAML_MAPPING_NODE:
        rc = conv_map(L, yn, n, depth, &size);
        break;
    default:
        n->kind = CFG_NODE_NULL;
        rc = 0;
        break;
    }
    if (rc) {
        return NULL;
    }
    /* Children sizes are each <= CFG_MAX_NODES, so the sums above cannot overflow 64 bits. */
    if (size > CFG_MAX_NODES) {
        return load_fail(L, line, "more than %u nodes after expanding aliases", CFG_MAX_NODES);
    }
    L->size[i] = size;
    L->memo[i] = n;
    L->state[i] = NODE_DONE;
    return n;
}

/* Reports a libyaml error as "FILE:LINE: problem (context)". */
static void yaml_fail(mt_errbuf_t *eb, const char *file, const yaml_parser_t *p, const char *text,
                      size_t len)
{
    const char *problem = p->problem ? p->problem : "YAML syntax error";
    if (p->error == YAML_MEMORY_ERROR) {
        mt_failf(eb, "%s: out of memory while parsing YAML", file);
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        /* Encoding errors carry a byte offset, not a mark. */
        int line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            line += text[i] == '\n';
        }
        mt_failf(eb, "%s:%d: %s", file, line, problem);
        return;
    }
    int line = line_of(&p->problem_mark);
    int cline = line_of(&p->context_mark);
    /* "could not find expected ':'" is detected where the scanner gave up, often the line
     * after the offending key; the context mark is the key itself, which is what to fix. */
    if (p->context && strcmp(p->context, "while scanning a simple key") == 0) {
        line = cline;
    }
    if (p->context && cline != line) {
        mt_failf(eb, "%s:%d: %s (%s at line %d)", file, line, problem, p->context, cline);
    } else if (p->context) {
        mt_failf(eb, "%s:%d: %s (%s)", file, line, problem, p->context);
    } else {
        mt_failf(eb, "%s:%d: %s", file, line, problem);
    }
}

static int convert_document(loader_t *L, yaml_document_t *y)
{
    size_t nn = (size_t)(y->nodes.top - y->nodes.start);
    yaml_node_t *root = yaml_document_get_root_node(y);
    if (!root) {
        cfg_node_t *n = pool_calloc(L->d, sizeof(*n));
        if (!n) {
            load_fail(L, 1, "out of memory");
            return -1;
        }
        n->kind = CFG_NODE_NULL;
        n->line = 1;
        L->d->pub.root = n;
        return 0;
    }
    L->y = y;
    L->memo = calloc(nn, sizeof(*L->memo));
    L->size = calloc(nn, sizeof(*L->size));
    L->state = calloc(nn, 1);
    if (L->memo && L->size && L->state) {
        L->d->pub.root = conv(L, 1, 0);
    } else {
        load_fail(L, 1, "out of memory");
    }
    free(L->memo);
    free(L->size);
    free(L->state);
    return L->d->pub.root ? 0 : -1;
}

cfg_doc_t *cfg_load_string(const char *name, const char *text, size_t len, mt_errbuf_t *eb)
{
    if (!name) {
        name = "<config>";
    }
    if (!text) {
        text = "";
        len = 0;
    }
    if (len > CFG_MAX_FILE_BYTES) {
        mt_failf(eb, "%s: larger than %u bytes", name, CFG_MAX_FILE_BYTES);
        return NULL;
    }
    doc_impl_t *d = calloc(1, sizeof(*d));
    if (!d || !(d->pub.file = pool_strndup(d, name, strlen(name)))) {
        mt_failf(eb, "%s: out of memory", name);
        cfg_doc_destroy((cfg_doc_t *)d);
        return NULL;
    }
    loader_t L = {.d = d, .file = name, .eb = eb};
    yaml_parser_t p;
    yaml_document_t y;
    if (!yaml_parser_initialize(&p)) {
        mt_failf(eb, "%s: out of memory", name);
        cfg_doc_destroy(&d->pub);
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int ok = 0;
    if (!yaml_parser_load(&p, &y)) {
        yaml_fail(eb, name, &p, text, len);
    } else {
        ok = convert_document(&L, &y) == 0;
        yaml_document_delete(&y);
        /* A second document would be silently ignored by the collector; refuse it instead. */
        if (ok && !yaml_parser_load(&p, &y)) {
            yaml_fail(eb, name, &p, text, len);
            ok = 0;
        } else if (ok) {
            yaml_node_t *r2 = yaml_document_get_root_node(&y);
            if (r2) {
                mt_failf(eb, "%s:%d: more than one YAML document (\"---\") is not supported", name,
                         line_of(&r2->start_mark));
                ok = 0;
            }
            yaml_document_delete(&y);
        }
    }
    yaml_parser_delete(&p);
    if (!ok) {
        cfg_doc_destroy(&d->pub);
        return NULL;
    }
    return &d->pub;
}

cfg_doc_t *cfg_load_file(const char *path, mt_errbuf_t *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mt_failf(eb, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    /* Read in chunks up to the cap (+1 to detect oversize) so pipes work too. */
    sb_t b;
    sb_init(&b, (size_t)CFG_MAX_FILE_BYTES + 1);
    int rc = sb_fread(&b, f);
    fclose(f);
    if (rc != 0) {
        sb_fini(&b);
        if (rc == MT_ETOOBIG) {
            mt_failf(eb, "%s: larger than %u bytes", path, CFG_MAX_FILE_BYTES);
        } else {
            mt_failf(eb, "%s: %s", path, rc == MT_EIO ? "read error" : "out of memory");
        }
        return NULL;
    }
    cfg_doc_t *doc = cfg_load_string(path, sb_str(&b), b.len, eb);
    sb_fini(&b);
    return doc;
}

const cfg_node_t *cfg_map_get(const cfg_node_t *map, const char *key)
{
    if (!map || map->kind != CFG_NODE_MAP || !key) {
        return NULL;
    }
    int i = map_find(map, key);
    return i >= 0 ? map->children[i] : NULL;
}

const char *cfg_kind_name(cfg_kind_t k)
{
    switch (k) {
    case CFG_NODE_NULL:
        return "null";
    case CFG_NODE_SCALAR:
        return "scalar";
    case CFG_NODE_MAP:
        return "map";
    case CFG_NODE_SEQ:
        return "list";
    }
    return "unknown";
}

/* ------------------------------------------------------------------------------------------ */
/* Error collection.                                                                          */

void cfg_ctx_init(cfg_ctx_t *c, const char *file)
{
    c->file = file;
    c->errs = NULL;
    c->nerr = 0;
}

void cfg_ctx_fini(cfg_ctx_t *c)
{
    for (size_t i = 0; i < c->nerr; i++) {
        free(c->errs[i]);
    }
    free(c->errs);
    c->errs = NULL;
    c->nerr = 0;
}

void cfg_error(cfg_ctx_t *c, int line, const char *path, const char *fmt, ...)
{
    char reason[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);

    char lbuf[16] = "";
    if (line > 0) {
        snprintf(lbuf, sizeof(lbuf), "%d:", line);
    }
    const char *file = c->file ? c->file : "<config>";
    int has_path = path && *path;
    int n = snprintf(NULL, 0, "%s:%s %s%s%s", file, lbuf, has_path ? path : "",
                     has_path ? ": " : "", reason);
    char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    /* The array grows by doubling; its capacity is implied by nerr (4, then powers of two). */
    char **errs = c->errs;
    if (msg && (c->nerr == 0 || (c->nerr >= 4 && (c->nerr & (c->nerr - 1)) == 0))) {
        errs = realloc(c->errs, (c->nerr ? c->nerr * 2 : 4) * sizeof(*errs));
    }
    if (!msg || !errs) {
        mt_log(MT_LOG_ERROR, "%s:%s %s%s%s (out of memory recording this error)", file, lbuf,
               has_path ? path : "", has_path ? ": " : "", reason);
        free(msg);
        return;
    }
    snprintf(msg, (size_t)n + 1, "%s:%s %s%s%s", file, lbuf, has_path ? path : "",
             has_path ? ": " : "", reason);
    c->errs = errs;
    c->errs[c->nerr++] = msg;
}

void cfg_ctx_print(const cfg_ctx_t *c, FILE *f)
{
    for (size_t i = 0; i < c->nerr; i++) {
        fprintf(f, "%s\n", c->errs[i]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Scalar parsers.                                                                            */

int cfg_parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"true", "yes", "on"};
    static const char *no[] = {"false", "no", "off"};
    if (!s) {
        return MT_EINVAL;
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return MT_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return MT_OK;
        }
    }
    return MT_EINVAL;
}

/* Reads "digits[.digits]" at *pp: integer part exactly (fails on overflow), fraction as a double
 * in [0,1). Returns 0, or -1 when there is no digit or the integer part overflows. */
static int parse_decimal(const char **pp, uint64_t *ip, double *frac)
{
    const char *p = *pp;
    uint64_t v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
        p++;
        digits++;
    }
    double f = 0, scale = 1;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (scale < 1e18) { /* further digits are below double precision anyway */
                scale *= 10;
                f += (*p - '0') / scale;
            }
            p++;
            digits++;
        }
    }
    if (digits == 0) {
        return -1;
    }
    *pp = p;
    *ip = v;
    *frac = f;
    return 0;
}

int cfg_parse_duration_ms(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {
        /* two-letter units first so "ms" is not read as "m" followed by garbage */
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000}, /* U+03BC greek small mu */
        {"ms", 1000000},
        {"s", 1000000000ull},
        {"m", 60000000000ull},
        {"h", 3600000000000ull},
    };
    if (!s || !*s) {
        return MT_EINVAL;
    }
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return MT_OK;
    }
    uint64_t total = 0; /* nanoseconds */
    const char *p = s;
    while (*p) {
        uint64_t v;
        double frac;
        if (parse_decimal(&p, &v, &frac)) {
            return MT_EINVAL;
        }
        uint64_t unit = 0;
        for (size_t i = 0; i < MT_ARRAY_LEN(units); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, ul) == 0) {
                unit = units[i].ns;
                p += ul;
                break;
            }
        }
        if (!unit || v > (uint64_t)INT64_MAX / unit) {
            return MT_EINVAL;
        }
        uint64_t ns = v * unit;
        uint64_t fr = (uint64_t)(frac * (double)unit);
        if (fr > (uint64_t)INT64_MAX - ns || ns + fr > (uint64_t)INT64_MAX - total) {
            return MT_EINVAL;
        }
        total += ns + fr;
    }
    *out = (int64_t)(total / 1000000 + (total % 1000000 != 0));
    return MT_OK;
}

int cfg_parse_bytes(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1000ull},
        {"kb", 1000ull},
        {"ki", 1ull << 10},
        {"kib", 1ull << 10},
        {"m", 1000000ull},
        {"mb", 1000000ull},
        {"mi", 1ull << 20},
        {"mib", 1ull << 20},
        {"g", 1000000000ull},
        {"gb", 1000000000ull},
        {"gi", 1ull << 30},
        {"gib", 1ull << 30},
        {"t", 1000000000000ull},
        {"tb", 1000000000000ull},
        {"ti", 1ull << 40},
        {"tib", 1ull << 40},
    };
    if (!s) {
        return MT_EINVAL;
    }
    const char *p = s;
    uint64_t v;
    double frac;
    if (parse_decimal(&p, &v, &frac)) {
        return MT_EINVAL;
    }
    if (*p == ' ') {
        p++;
    }
    if (strlen(p) > 3) {
        return MT_EINVAL;
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(units); i++) {
        if (strcasecmp(p, units[i].unit) != 0) {
            continue;
        }
        uint64_t m = units[i].mult;
        if (v > (uint64_t)INT64_MAX / m) {
            return MT_EINVAL;
        }
        uint64_t whole = v * m;
        uint64_t fr = (uint64_t)(frac * (double)m + 0.5);
        if (fr > (uint64_t)INT64_MAX - whole) {
            return MT_EINVAL;
        }
        *out = (int64_t)(whole + fr);
        return MT_OK;
    }
    return MT_EINVAL;
}

/* Returns 0 ok, 1 not an integer, 2 out of range. Decimal, or hex with 0x. */
static int parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-') {
        p++;
    }
    if (!isdigit((unsigned char)*p)) {
        return 1;
    }
    int base = (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) ? 16 : 10;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, base);
    if (end == s || *end) {
        return 1;
    }
    if (errno == ERANGE) {
        return 2;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s)) {
        return 1;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) {
        return 1;
    }
    *out = v;
    return 0;
}

/* Index of `s` in "a|b|c", or -1. */
static int enum_index(const char *enums, const char *s)
{
    if (!enums) {
        return -1;
    }
    size_t sl = strlen(s);
    int i = 0;
    const char *p = enums;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == sl && memcmp(p, s, l) == 0) {
            return i;
        }
        if (!bar) {
            return -1;
        }
        p = bar + 1;
        i++;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* cfg_apply                                                                                  */

typedef struct {
    cfg_ctx_t *c;
    const cfg_field_t *f;
    size_t nf;
    const char *path; /* component path, e.g. "exporters.otlphttp/tempo" (may be "") */
    void *out;
    unsigned char *seen; /* per field: set (or already reported) */
    int nerr;
    int in_default; /* errors are in the table's defaults, a programming error */
} apply_t;

#define KEY_MAX 512

/* Adds "FILE:LINE: path.key: reason". `key` is the dotted key inside the component. */
__attribute__((format(printf, 4, 5))) static void aerr(apply_t *A, int line, const char *key,
                                                        const char *fmt, ...)
{
    char reason[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    char full[KEY_MAX + 256];
    if (A->path && *A->path && key && *key) {
        snprintf(full, sizeof(full), "%s.%s", A->path, key);
    } else {
        snprintf(full, sizeof(full), "%s", key && *key ? key : (A->path ? A->path : ""));
    }
    if (A->in_default) {
        cfg_error(A->c, line, full, "invalid default in the config table: %s", reason);
    } else {
        cfg_error(A->c, line, full, "%s", reason);
    }
    A->nerr++;
}

static const char *type_name(cfg_type_t t)
{
    switch (t) {
    case CFG_T_STRING:
        return "string";
    case CFG_T_INT:
        return "int";
    case CFG_T_DOUBLE:
        return "number";
    case CFG_T_BOOL:
        return "bool";
    case CFG_T_DURATION:
        return "duration";
    case CFG_T_BYTES:
        return "bytes";
    case CFG_T_ENUM:
        return "enum";
    case CFG_T_STRMAP:
        return "map";
    case CFG_T_STRLIST:
        return "list";
    case CFG_T_NODE:
        return "any";
    }
    return "?";
}

static void zero_field(const cfg_field_t *f, void *out)
{
    void *dst = (char *)out + f->offset;
    switch (f->type) {
    case CFG_T_STRING:
        *(char **)dst = NULL;
        break;
    case CFG_T_INT:
    case CFG_T_DURATION:
    case CFG_T_BYTES:
        *(int64_t *)dst = 0;
        break;
    case CFG_T_DOUBLE:
        *(double *)dst = 0;
        break;
    case CFG_T_BOOL:
    case CFG_T_ENUM:
        *(int *)dst = 0;
        break;
    case CFG_T_STRMAP:
        memset(dst, 0, sizeof(cfg_strmap_t));
        break;
    case CFG_T_STRLIST:
        memset(dst, 0, sizeof(cfg_strlist_t));
        break;
    case CFG_T_NODE:
        *(const cfg_node_t **)dst = NULL;
        break;
    }
}

static void free_strmap(cfg_strmap_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->vals[i]);
    }
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

static void free_strlist(cfg_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i]);
    }
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Reports a bad scalar, quoting it unless the field is secret. */
static void bad_value(apply_t *A, const cfg_field_t *f, const cfg_node_t *v, const char *key,
                      const char *what, const char *hint)
{
    if (f->flags & CFG_SECRET) {
        aerr(A, v->line, key, "%s%s", what, hint);
        return;
    }
    size_t l = strlen(v->value);
    aerr(A, v->line, key, "%s, got \"%.*s%s\"%s", what, (int)(l > 60 ? 60 : l), v->value,
         l > 60 ? "..." : "", hint);
}

static void bind_strmap(apply_t *A, const cfg_field_t *f, const cfg_node_t *v, const char *key)
{
    cfg_strmap_t *dst = (cfg_strmap_t *)((char *)A->out + f->offset);
    cfg_strmap_t m = {0};
    if (v->kind == CFG_NODE_MAP && v->n) {
        m.keys = calloc(v->n, sizeof(*m.keys));
        m.vals = calloc(v->n, sizeof(*m.vals));
        if (!m.keys || !m.vals) {
            free(m.keys);
            free(m.vals);
            aerr(A, v->line, key, "out of memory");
            return;
        }
    } else if (v->kind != CFG_NODE_MAP && v->kind != CFG_NODE_NULL) {
        aerr(A, v->line, key, "expected a map of strings, got a %s", cfg_kind_name(v->kind));
        return;
    }
    int before = A->nerr;
    for (size_t i = 0; v->kind == CFG_NODE_MAP && i < v->n; i++) {
        const cfg_node_t *c = v->children[i];
        if (c->kind != CFG_NODE_SCALAR && c->kind != CFG_NODE_NULL) {
            char sub[KEY_MAX];
            snprintf(sub, sizeof(sub), "%s.%s", key, v->keys[i]);
            aerr(A, c->line, sub, "expected a string, got a %s", cfg_kind_name(c->kind));
            continue;
        }
        m.keys[m.n] = strdup(v->keys[i]);
        m.vals[m.n] = strdup(c->kind == CFG_NODE_SCALAR ? c->value : "");
        m.n++;
        if (!m.keys[m.n - 1] || !m.vals[m.n - 1]) {
            aerr(A, c->line, key, "out of memory");
            break;
        }
    }
    if (A->nerr != before) {
        free_strmap(&m);
        return;
    }
    free_strmap(dst);
    *dst = m;
}

static void bind_strlist(apply_t *A, const cfg_field_t *f, const cfg_node_t *v, const char *key)
{
    cfg_strlist_t *dst = (cfg_strlist_t *)((char *)A->out + f->offset);
    cfg_strlist_t l = {0};
    if (v->kind == CFG_NODE_SEQ && v->n) {
        l.items = calloc(v->n, sizeof(*l.items));
        if (!l.items) {
            aerr(A, v->line, key, "out of memory");
            return;
        }
    } else if (v->kind != CFG_NODE_SEQ && v->kind != CFG_NODE_NULL) {
        aerr(A, v->line, key, "expected a list of strings, got a %s", cfg_kind_name(v->kind));
        return;
    }
    int before = A->nerr;
    for (size_t i = 0; v->kind == CFG_NODE_SEQ && i < v->n; i++) {
        const cfg_node_t *c = v->children[i];
        if (c->kind != CFG_NODE_SCALAR) {
            char sub[KEY_MAX];
            snprintf(sub, sizeof(sub), "%s[%zu]", key, i);
            aerr(A, c->line, sub, "expected a string, got a %s", cfg_kind_name(c->kind));
            continue;
        }
        if (!(l.items[l.n++] = strdup(c->value))) {
            aerr(A, c->line, key, "out of memory");
            break;
        }
    }
    if (A->nerr != before) {
        free_strlist(&l);
        return;
    }
    free_strlist(dst);
    *dst = l;
}

/* Stores the value node `v` (not a NULL node, except for maps/lists/nodes) into field f. */
static void bind(apply_t *A, const cfg_field_t *f, const cfg_node_t *v, const char *key)
{
    void *dst = (char *)A->out + f->offset;
    switch (f->type) {
    case CFG_T_NODE:
        *(const cfg_node_t **)dst = v;
        return;
    case CFG_T_STRMAP:
        bind_strmap(A, f, v, key);
        return;
    case CFG_T_STRLIST:
        bind_strlist(A, f, v, key);
        return;
    default:
        break;
    }
    if (v->kind != CFG_NODE_SCALAR) {
        aerr(A, v->line, key, "expected a %s value, got a %s", type_name(f->type),
             cfg_kind_name(v->kind));
        return;
    }
    const char *s = v->value;
    int rc;
    switch (f->type) {
    case CFG_T_STRING: {
        char *p = strdup(s);
        if (!p) {
            aerr(A, v->line, key, "out of memory");
            return;
        }
        free(*(char **)dst);
        *(char **)dst = p;
        return;
    }
    case CFG_T_INT: {
        int64_t x;
        rc = parse_int(s, &x);
        if (rc == 1) {
            bad_value(A, f, v, key, "expected an integer", "");
        } else if (rc == 2) {
            bad_value(A, f, v, key, "integer out of range", "");
        } else {
            *(int64_t *)dst = x;
        }
        return;
    }
    case CFG_T_DOUBLE: {
        double x;
        if (parse_double(s, &x)) {
            bad_value(A, f, v, key, "expected a number", "");
        } else {
            *(double *)dst = x;
        }
        return;
    }
    case CFG_T_BOOL: {
        int x;
        if (cfg_parse_bool(s, &x) != MT_OK) {
            bad_value(A, f, v, key, "expected true or false", "");
        } else {
            *(int *)dst = x;
        }
        return;
    }
    case CFG_T_DURATION: {
        int64_t x;
        if (cfg_parse_duration_ms(s, &x) != MT_OK) {
            bad_value(A, f, v, key, "invalid duration", " (use e.g. 200ms, 5s, 1m30s)");
        } else {
            *(int64_t *)dst = x;
        }
        return;
    }
    case CFG_T_BYTES: {
        int64_t x;
        if (cfg_parse_bytes(s, &x) != MT_OK) {
            bad_value(A, f, v, key, "invalid size", " (use e.g. 1024, 64KiB, 20MiB)");
        } else {
            *(int64_t *)dst = x;
        }
        return;
    }
    case CFG_T_ENUM: {
        int i = enum_index(f->enums, s);
        if (i < 0) {
            char hint[256];
            size_t off = (size_t)snprintf(hint, sizeof(hint), " (expected one of: ");
            for (const char *p = f->enums ? f->enums : ""; *p && off + 3 < sizeof(hint); p++) {
                if (*p == '|') {
                    hint[off++] = ',';
                    hint[off++] = ' ';
                } else {
                    hint[off++] = *p;
                }
            }
            snprintf(hint + off, sizeof(hint) - off, ")");
            bad_value(A, f, v, key, "invalid value", hint);
        } else {
            *(int *)dst = i;
        }
        return;
    }
    default:
        return;
    }
}

static void apply_default(apply_t *A, const cfg_field_t *f)
{
    zero_field(f, A->out);
    if (!f->def || f->type == CFG_T_NODE) {
        return;
    }
    A->in_default = 1;
    if (f->type == CFG_T_STRMAP || f->type == CFG_T_STRLIST) {
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        cfg_doc_t *d = cfg_load_string("default", f->def, strlen(f->def), &eb);
        if (!d) {
            aerr(A, 0, f->key, "%s", eb.msg);
        } else {
            bind(A, f, d->root, f->key);
            cfg_doc_destroy(d);
        }
    } else {
        cfg_node_t tmp = {.kind = CFG_NODE_SCALAR, .line = 0, .value = (char *)f->def};
        bind(A, f, &tmp, f->key);
    }
    A->in_default = 0;
}

static int find_field(const apply_t *A, const char *key)
{
    for (size_t i = 0; i < A->nf; i++) {
        if (strcmp(A->f[i].key, key) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Whether some field key starts with "prefix." */
static int is_prefix(const apply_t *A, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < A->nf; i++) {
        if (strncmp(A->f[i].key, prefix, pl) == 0 && A->f[i].key[pl] == '.') {
            return 1;
        }
    }
    return 0;
}

/* Marks every field under "prefix." as seen, so one wrong map does not also report each of
 * its required keys as missing. */
static void mark_prefix_seen(apply_t *A, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < A->nf; i++) {
        if (strncmp(A->f[i].key, prefix, pl) == 0 && A->f[i].key[pl] == '.') {
            A->seen[i] = 1;
        }
    }
}

/* Reports an unknown key, listing the valid keys at that level when there are few. */
#define VALID_LIST_MAX 12
static void unknown_key(apply_t *A, const char *prefix, const char *key, int line)
{
    size_t pl = strlen(prefix);
    const char *seg[VALID_LIST_MAX];
    size_t segl[VALID_LIST_MAX];
    size_t ns = 0;
    int many = 0;
    for (size_t i = 0; i < A->nf && !many; i++) {
        const char *k = A->f[i].key;
        if (pl) {
            if (strncmp(k, prefix, pl) != 0 || k[pl] != '.') {
                continue;
            }
            k += pl + 1;
        }
        const char *dot = strchr(k, '.');
        size_t l = dot ? (size_t)(dot - k) : strlen(k);
        size_t j;
        for (j = 0; j < ns; j++) {
            if (segl[j] == l && memcmp(seg[j], k, l) == 0) {
                break;
            }
        }
        if (j < ns) {
            continue;
        }
        if (ns == VALID_LIST_MAX) {
            many = 1;
            break;
        }
        seg[ns] = k;
        segl[ns] = l;
        ns++;
    }
    if (many || ns == 0) {
        aerr(A, line, key, "unknown key");
        return;
    }
    char list[512];
    size_t off = 0;
    for (size_t j = 0; j < ns && off < sizeof(list); j++) {
        int n = snprintf(list + off, sizeof(list) - off, "%s%.*s", j ? ", " : "", (int)segl[j],
                         seg[j]);
        if (n < 0) {
            break;
        }
        off += (size_t)n;
    }
    aerr(A, line, key, "unknown key (valid: %s)", list);
}

static void walk(apply_t *A, const cfg_node_t *map, const char *prefix)
{
    for (size_t i = 0; i < map->n; i++) {
        char key[KEY_MAX];
        int kn = snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", map->keys[i]);
        const cfg_node_t *v = map->children[i];
        int kl = map->key_lines[i];
        if (kn < 0 || (size_t)kn >= sizeof(key)) {
            aerr(A, kl, prefix, "key \"%.40s...\" is too long", map->keys[i]);
            continue;
        }
        int fi = find_field(A, key);
        if (fi >= 0) {
            const cfg_field_t *f = &A->f[fi];
            A->seen[fi] = 1;
            int scalar_type = f->type != CFG_T_STRMAP && f->type != CFG_T_STRLIST &&
                              f->type != CFG_T_NODE;
            if (v->kind == CFG_NODE_NULL && scalar_type) {
                /* `key:` with nothing keeps the default, but cannot satisfy "required". */
                if (f->flags & CFG_REQUIRED) {
                    aerr(A, kl, key, "required key has no value");
                }
                continue;
            }
            bind(A, f, v, key);
            continue;
        }
        if (is_prefix(A, key)) {
            if (v->kind == CFG_NODE_MAP) {
                walk(A, v, key);
            } else if (v->kind != CFG_NODE_NULL) {
                aerr(A, v->line, key, "expected a map, got a %s", cfg_kind_name(v->kind));
                mark_prefix_seen(A, key);
            }
            continue;
        }
        unknown_key(A, prefix, key, kl);
    }
}

/* Line to blame for a missing key: the deepest map on its dotted path that exists. */
static int missing_line(const cfg_node_t *node, const char *key)
{
    int line = node ? node->line : 0;
    const cfg_node_t *cur = node;
    const char *p = key;
    const char *dot;
    while (cur && cur->kind == CFG_NODE_MAP && (dot = strchr(p, '.')) != NULL) {
        char seg[KEY_MAX];
        size_t l = (size_t)(dot - p);
        if (l >= sizeof(seg)) {
            break;
        }
        memcpy(seg, p, l);
        seg[l] = 0;
        cur = cfg_map_get(cur, seg);
        if (cur) {
            line = cur->line;
        }
        p = dot + 1;
    }
    return line;
}

int cfg_apply(cfg_ctx_t *c, const cfg_field_t *fields, size_t nfields, const cfg_node_t *node,
              const char *path, void *out)
{
    apply_t A = {.c = c, .f = fields, .nf = nfields, .path = path ? path : "", .out = out};
    for (size_t i = 0; i < nfields; i++) {
        apply_default(&A, &fields[i]);
    }
    if (node && node->kind != CFG_NODE_MAP && node->kind != CFG_NODE_NULL) {
        cfg_error(c, node->line, A.path, "expected a map, got a %s", cfg_kind_name(node->kind));
        return A.nerr + 1;
    }
    A.seen = calloc(nfields ? nfields : 1, 1);
    if (!A.seen) {
        cfg_error(c, node ? node->line : 0, A.path, "out of memory");
        return A.nerr + 1;
    }
    if (node && node->kind == CFG_NODE_MAP) {
        walk(&A, node, "");
    }
    for (size_t i = 0; i < nfields; i++) {
        if ((fields[i].flags & CFG_REQUIRED) && !A.seen[i]) {
            aerr(&A, missing_line(node, fields[i].key), fields[i].key, "required key is missing");
        }
    }
    free(A.seen);
    return A.nerr;
}

void cfg_free_fields(const cfg_field_t *fields, size_t nfields, void *out)
{
    for (size_t i = 0; i < nfields; i++) {
        void *dst = (char *)out + fields[i].offset;
        switch (fields[i].type) {
        case CFG_T_STRING:
            free(*(char **)dst);
            break;
        case CFG_T_STRMAP:
            free_strmap(dst);
            break;
        case CFG_T_STRLIST:
            free_strlist(dst);
            break;
        default:
            break;
        }
        zero_field(&fields[i], out);
    }
}

void cfg_print_help(FILE *f, const cfg_field_t *fields, size_t nfields)
{
    for (size_t i = 0; i < nfields; i++) {
        const cfg_field_t *fd = &fields[i];
        if (fd->type == CFG_T_ENUM) {
            fprintf(f, "  %s (one of %s", fd->key, fd->enums ? fd->enums : "");
        } else {
            fprintf(f, "  %s (%s", fd->key, type_name(fd->type));
        }
        if (fd->def && !(fd->flags & CFG_SECRET)) {
            fprintf(f, ", default %s", *fd->def ? fd->def : "\"\"");
        }
        if (fd->flags & CFG_REQUIRED) {
            fprintf(f, ", required");
        }
        if (fd->flags & CFG_SECRET) {
            fprintf(f, ", secret");
        }
        fprintf(f, "): %s\n", fd->desc ? fd->desc : "");
    }
}

int cfg_key_line(const cfg_node_t *map, const char *dotted)
{
    int line = map ? map->line : 0;
    const cfg_node_t *cur = map;
    char part[128];
    while (cur && *dotted) {
        const char *dot = strchr(dotted, '.');
        size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
        if (n >= sizeof(part)) {
            break;
        }
        memcpy(part, dotted, n);
        part[n] = 0;
        cur = cfg_map_get(cur, part);
        if (!cur) {
            break;
        }
        line = cur->line;
        dotted = dot ? dot + 1 : "";
    }
    return line;
}

void cfg_error_key(cfg_ctx_t *c, const cfg_node_t *node, const char *path, const char *key,
                   const char *fmt, ...)
{
    char reason[768], full[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "%s%s%s", path ? path : "", path && *path ? "." : "", key);
    cfg_error(c, cfg_key_line(node, key), full, "%s", reason);
}
