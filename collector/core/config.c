/*
 * config.c - YAML loading (with ${...} substitution) for component configuration.
 * The loader converts libyaml's document (yaml_parser_load) into cfg_node_t trees allocated from
 * one per-document pool, so a document is freed in one call; aliases become shared nodes, which
 * keeps "billion laughs" documents linear in memory (and a node cap bounds what walkers see).
 * cfg_apply, the one generic binder every component uses (craft convention 6), and the scalar
 * parsers are in config_apply.c; error collection (cfg_error, cfg_error_key) in config_error.c.
 */
#include "config.h"
#include "sb.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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
__attribute__((format(printf, 3, 4))) static void *load_fail(loader_t *L, int line, const char *fmt,
                                                             ...)
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
        load_fail(L, line,
                  "unsupported config provider \"%.*s\" in \"${%.*s}\" (only env is supported)",
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
    sb_t b = {0};          /* malloc'd, copied into the pool at the end */
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
