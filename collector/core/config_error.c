/*
 * config_error.c - configuration error collection: every problem becomes one
 * "FILE:LINE: path: reason" message in a cfg_ctx_t, so a user sees all mistakes at once;
 * cfg_error_key finds the line of a dotted key. Part of the config module.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        char safe[2048];
        fprintf(f, "%s\n", mt_redact_urls(c->errs[i], safe, sizeof(safe)));
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

void cfg_check_http_url(cfg_ctx_t *c, const cfg_node_t *node, const char *path, const char *key,
                        const char *url)
{
    if (url && strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        cfg_error_key(c, node, path, key, "\"%s\" is not an http:// or https:// URL", url);
    }
}
