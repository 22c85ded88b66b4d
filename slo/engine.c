/*
 * engine.c - placeholder until the SLO engine lands: accepts no `slo:` section.
 */
#include "slo.h"

#include <stdio.h>
#include <stdlib.h>

slo_engine_t *slo_engine_load(const cfg_node_t *node, const char *config_path, cfg_ctx_t *c)
{
    (void)config_path;
    cfg_error(c, node ? node->line : 0, "slo", "the SLO engine is not available in this build");
    return NULL;
}

int slo_engine_start(slo_engine_t *e, struct service *svc, mt_errbuf_t *eb)
{
    (void)e;
    (void)svc;
    (void)eb;
    return MT_OK;
}

void slo_engine_stop_destroy(slo_engine_t *e)
{
    (void)e;
}

char *slo_engine_api_json(slo_engine_t *e, size_t *len)
{
    (void)e;
    char *s = malloc(12);
    if (s) {
        snprintf(s, 12, "{\"slos\":[]}");
        *len = 11;
    }
    return s;
}

int slo_cli_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "meltp slo: not available in this build\n");
    return 2;
}
