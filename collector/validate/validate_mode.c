/*
 * validate_mode.c - `meltp validate`: feeds recorded or live telemetry through the configured
 * processors without exporting it and reports, per service x environment, which signals were
 * seen, where a coverage policy is not met, schema violations, PII findings, SLO coverage and
 * how the data would look in Prometheus and Loki. The report model and its writers live in
 * validate_report.c; this file is the CLI and the final report, validate_mode_policy.c the
 * policy loader, the SLO spec audit and the mirrored processors, validate_mode_analyze.c the
 * analysis walk and validate_mode_input.c the input decoders and --listen mode (shared
 * declarations: validate_mode_int.h).
 *
 * How processors run: the service is loaded (service_load validates everything and reports
 * FILE:LINE errors) but never started for file inputs. validate_mode_policy.c takes the
 * service's own instances of the mutating processors of the FIRST pipeline of each signal
 * (config order, service_first_pipeline()) and validate_mode_analyze.c calls ops->process() on
 * each request, which is what that pipeline does before its exporter queues. `validate`
 * processors are mirrored by a private schema_t that counts violations with schema_check()
 * just before the processor applies its actions, so validation mode and the inline processor
 * see the same data and report the same counts. With --listen the service runs for real
 * (receivers AND exporters, as configured) and a pipeline observer feeds the report with what
 * the first pipeline delivered; point it at a config whose exporters may receive the traffic.
 */
#include "validate_mode.h"
#include "validate_mode_int.h"
#include "validate_report.h"
#include "validate_pii.h"
#include "component.h"
#include "service.h"
#include "config.h"
#include "otlp.h"
#include "otlp_json.h"
#include "codec.h"
#include "prw_decode.h"
#include "promconv.h"
#include "schema.h"
#include "pii.h"
#include "model.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- finishing --------------------------------------------------------------------------------- */

static void finish(vm_t *v, slo_owner_t *own, size_t nown)
{
    vr_report_t *r = &v->rep;
    /* services the policy names exactly but that never appeared */
    for (size_t i = 0; i < v->pol.nrules; i++) {
        const vm_rule_t *rule = &v->pol.rules[i];
        int found = 0;
        for (size_t k = 0; k < r->nservices && !found; k++) {
            found = strcmp(r->services[k]->service, rule->pattern) == 0;
        }
        if (rule->exact && !found) {
            vm_service_of(v, rule->pattern, "");
        }
    }
    for (size_t i = 0; i < r->nservices; i++) {
        vr_service_t *s = r->services[i];
        s->missing = 0;
        for (int k = 0; k < VR_NSIG; k++) {
            if (((s->required >> k) & 1) && !s->count[k]) {
                s->missing |= 1u << k;
            }
        }
    }
    /* SLO coverage: every service seen or named by a spec */
    for (size_t i = 0; i < r->nservices; i++) {
        int any = 0;
        for (int k = 0; k < VR_NSIG; k++) {
            any |= r->services[i]->count[k] > 0;
        }
        vr_slo_cov_t *c = vr_slo_cov_get(r, r->services[i]->service);
        if (c) {
            c->seen |= any;
            c->require_slo |= r->services[i]->require_slo;
        }
    }
    for (size_t i = 0; i < nown; i++) {
        vr_slo_cov_t *c = vr_slo_cov_get(r, own[i].service);
        vr_slo_t **ns = c ? realloc(c->slos, (c->nslos + 1) * sizeof(*ns)) : NULL;
        if (ns) {
            c->slos = ns;
            c->slos[c->nslos++] = own[i].slo;
        }
    }
    for (size_t i = 0; i < r->nslos; i++) {
        vr_slo_t *s = r->slos[i];
        for (size_t k = 0; k < s->series.n; k++) {
            if (!vr_strset_has(&v->series_seen, s->series.v[k])) {
                vr_strset_add(&s->missing_series, s->series.v[k]);
            }
        }
    }
    vr_report_sort(r);
    int ok = r->nviolations == 0 && r->npii == 0 && r->ninput_errors == 0;
    for (size_t i = 0; i < r->nservices; i++) {
        ok &= !r->services[i]->missing && !r->services[i]->missing_attributes.n;
    }
    for (size_t i = 0; i < r->nslo_cov; i++) {
        const vr_slo_cov_t *c = r->slo_cov[i];
        ok &= !(c->require_slo && !c->nslos);
        for (size_t k = 0; c->seen && k < c->nslos; k++) {
            ok &= !c->slos[k]->missing_series.n;
        }
    }
    r->ok = ok;
}

/* ---- CLI ----------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: meltp validate --config FILE [--input PATH...] [--listen DURATION]\n"
          "                      [--policy FILE] [--schema FILE]\n"
          "                      [--format text|json|markdown|junit|html] [--output FILE]\n"
          "\n"
          "Runs the configured processors on recorded or live telemetry without exporting it\n"
          "and reports coverage per service and environment, policy gaps, schema violations,\n"
          "PII findings, SLO coverage and a Prometheus / Loki translation preview.\n"
          "\n"
          "  --input PATH       OTLP/JSON lines as the file exporter writes them; or a request\n"
          "                     body named by kind: traces:PATH metrics:PATH logs:PATH\n"
          "                     profiles:PATH (protobuf or JSON, gzip/zstd detected),\n"
          "                     remotewrite:PATH (snappy protobuf, 1.0 or 2.0). Repeatable;\n"
          "                     several paths may follow one --input.\n"
          "  --listen DURATION  serve the configured receivers for DURATION (e.g. 30s) and\n"
          "                     audit what arrives; exporters run as configured. Ctrl-C ends\n"
          "                     early and still reports.\n"
          "  --policy FILE      coverage policy: services: {NAME_OR_GLOB: {signals: [...],\n"
          "                     resource_attributes: [...], require_slo: bool}}, slo_specs:\n"
          "                     [GLOB...], pii: {detectors, allow_domains, mrn_patterns}\n"
          "  --schema FILE      also check this schema after the processors\n"
          "  --format F         text (default), json, markdown, junit, html\n"
          "  --output FILE      write the report there instead of stdout\n"
          "\n"
          "Exit status: 0 policy met, 1 gaps / violations / PII / input errors, 2 usage or\n"
          "configuration errors.\n",
          f);
}

typedef struct vm_args {
    const char *config, *policy, *schema, *output;
    const char *inputs[VM_MAX_INPUTS];
    size_t ninputs;
    int64_t listen_ms;
    int format;
} vm_args_t;

/* Returns 0, 1 for --help, or 2 for a usage error (already printed). */
static int parse_args(int argc, char **argv, vm_args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->listen_ms = -1;
    a->format = VR_FMT_TEXT;
    for (int i = 1; i < argc; i++) {
        char flag[64];
        const char *val = NULL;
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "meltp validate: unexpected argument \"%s\"\n", arg);
            return 2;
        }
        const char *eq = strchr(arg, '=');
        snprintf(flag, sizeof(flag), "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        }
        if (!val) {
            fprintf(stderr, "meltp validate: %s needs a value\n", flag);
            return 2;
        }
        if (strcmp(flag, "--config") == 0) {
            a->config = val;
        } else if (strcmp(flag, "--policy") == 0) {
            a->policy = val;
        } else if (strcmp(flag, "--schema") == 0) {
            a->schema = val;
        } else if (strcmp(flag, "--output") == 0) {
            a->output = val;
        } else if (strcmp(flag, "--format") == 0) {
            a->format = vr_format_parse(val);
            if (a->format < 0) {
                fprintf(stderr,
                        "meltp validate: unknown format \"%s\" "
                        "(valid: text, json, markdown, junit, html)\n",
                        val);
                return 2;
            }
        } else if (strcmp(flag, "--listen") == 0) {
            if (cfg_parse_duration_ms(val, &a->listen_ms) != MT_OK || a->listen_ms <= 0) {
                fprintf(stderr,
                        "meltp validate: --listen: \"%s\" is not a positive duration "
                        "(e.g. 30s, 5m)\n",
                        val);
                return 2;
            }
        } else if (strcmp(flag, "--input") == 0) {
            for (;;) {
                if (!*val || a->ninputs == VM_MAX_INPUTS) {
                    fprintf(stderr, "meltp validate: %s\n",
                            *val ? "too many inputs" : "--input needs a path");
                    return 2;
                }
                a->inputs[a->ninputs++] = val;
                if (eq || i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
                    break;
                }
                val = argv[++i];
            }
        } else {
            fprintf(stderr, "meltp validate: unknown option \"%s\"\n", flag);
            return 2;
        }
    }
    if (!a->config) {
        fprintf(stderr, "meltp validate: --config FILE is required\n");
        return 2;
    }
    if (!a->ninputs && a->listen_ms < 0) {
        fprintf(stderr, "meltp validate: give --input PATH or --listen DURATION\n");
        return 2;
    }
    if (a->ninputs && a->listen_ms >= 0) {
        fprintf(stderr, "meltp validate: --input and --listen cannot be combined\n");
        return 2;
    }
    return 0;
}

static void vm_fini(vm_t *v)
{
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        for (size_t i = 0; i < v->nstages[s]; i++) {
            schema_destroy(v->stages[s][i].schema);
        }
    }
    schema_destroy(v->extra_schema);
    pii_destroy(v->pii);
    deltacum_destroy(v->dc);
    vr_strset_fini(&v->series_seen);
    slo_set_destroy(v->slos);
    arena_destroy(v->scratch);
    arena_destroy(v->listen_arena);
    cfg_doc_destroy(v->doc);
    vr_report_fini(&v->rep);
    vm_policy_fini(&v->pol);
    pthread_mutex_destroy(&v->mu);
}

static int config_errors(cfg_ctx_t *c)
{
    cfg_ctx_print(c, stderr);
    cfg_ctx_fini(c);
    return 2;
}

int validate_main(int argc, char **argv)
{
    vm_args_t args;
    int rc = parse_args(argc, argv, &args);
    if (rc) {
        usage(rc == 1 ? stdout : stderr);
        return rc == 1 ? 0 : 2;
    }
    vm_t *v = calloc(1, sizeof(*v));
    if (!v) {
        fprintf(stderr, "meltp validate: out of memory\n");
        return 2;
    }
    pthread_mutex_init(&v->mu, NULL);
    vr_report_init(&v->rep);
    v->config_path = args.config;
    v->rep.config_path = args.config;
    v->rep.policy_path = args.policy;
    v->rep.have_policy = args.policy != NULL;
    v->series_seen.limit = VM_MAX_SERIES_SEEN;
    slo_owner_t *own = NULL;
    size_t nown = 0;
    service_t *svc = NULL;
    int exit_code = 2;

    /* 1. configuration: the service validates it all (FILE:LINE errors), then our copy */
    cfg_ctx_t c;
    cfg_ctx_init(&c, args.config);
    svc = service_load(args.config, NULL, &c);
    if (!svc) {
        exit_code = config_errors(&c);
        goto out;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    v->doc = cfg_load_file(args.config, &eb);
    if (!v->doc) {
        cfg_error(&c, 0, "", "%s", eb.msg);
        exit_code = config_errors(&c);
        goto out;
    }
    int other_errs = 0; /* printed already, with their own file names */
    if (args.policy) {
        cfg_ctx_t pc;
        cfg_ctx_init(&pc, args.policy);
        other_errs += vm_policy_load(args.policy, &v->pol, &pc) != MT_OK;
        cfg_ctx_print(&pc, stderr);
        cfg_ctx_fini(&pc);
    }
    if (!c.nerr && !other_errs) {
        vm_build_stages(v, svc, &c);
    }
    if (!c.nerr && !other_errs && args.schema) {
        v->extra_schema = schema_load(args.schema, &c);
    }
    if (!c.nerr && !other_errs) {
        vm_slo_specs_audit(v, &c, &own, &nown);
    }
    if (!c.nerr && !other_errs) {
        pii_config_t pc;
        memset(&pc, 0, sizeof(pc));
        pc.detectors = v->pol.pii_detectors;
        pc.allow_domains = (const char *const *)v->pol.allow_domains;
        pc.n_allow_domains = v->pol.nallow;
        pc.mrn_patterns = (const char *const *)v->pol.mrn;
        pc.n_mrn_patterns = v->pol.nmrn;
        v->pii = pii_create(&pc, &eb);
        if (!v->pii) {
            fprintf(stderr, "%s: pii: %s\n", args.policy ? args.policy : "meltp validate", eb.msg);
            other_errs++;
        }
    }
    if (c.nerr || other_errs) {
        exit_code = config_errors(&c);
        goto out;
    }
    cfg_ctx_fini(&c);
    v->dc = deltacum_create(0, 0);
    v->scratch = arena_create(256 * 1024, VM_MAX_REQUEST_ARENA);
    if (!v->dc || !v->scratch) {
        fprintf(stderr, "meltp validate: out of memory\n");
        goto out;
    }

    /* 2. data */
    if (args.listen_ms > 0) {
        if (vm_run_listen(v, svc, args.listen_ms) != 0) {
            goto out;
        }
        service_stop_destroy(svc); /* receivers stop first: no observer call after this */
        svc = NULL;
        pipeline_remove_observer(vm_listen_observer, v);
    } else {
        for (size_t i = 0; i < args.ninputs; i++) {
            mt_errbuf_clear(&eb);
            if (vm_run_input(v, args.inputs[i], &eb) != MT_OK) {
                fprintf(stderr, "meltp validate: %s\n", eb.msg);
                goto out;
            }
        }
    }

    /* 3. report */
    finish(v, own, nown);
    FILE *f = stdout;
    if (args.output && !(f = fopen(args.output, "w"))) {
        fprintf(stderr, "meltp validate: %s: %s\n", args.output, strerror(errno));
        goto out;
    }
    int wrc = vr_report_write(&v->rep, (vr_format_t)args.format, f);
    if (f != stdout) {
        wrc |= fclose(f);
    } else {
        fflush(f);
    }
    if (wrc != 0) {
        fprintf(stderr, "meltp validate: cannot write the report\n");
        goto out;
    }
    exit_code = v->rep.ok ? 0 : 1;
out:
    service_stop_destroy(svc);
    free(own);
    vm_fini(v);
    free(v);
    return exit_code;
}
