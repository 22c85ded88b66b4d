/*
 * main.c - the meltp command line: run, check-config, version, help. Signals are handled
 * by sigwait() in the main thread (every other thread has them blocked): SIGTERM/SIGINT
 * drain and exit 0, SIGHUP reloads the configuration without a gap (service.h: the new one
 * starts beside the old one, listeners and unchanged exporters are carried over) and keeps
 * the old one if the new one is invalid or does not start.
 */
#include "service.h"
#include "component.h"
#include "listener.h"
#include "slo.h"
#include "validate_mode.h"
#include "sb.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f,
        "meltp %s - MELTP observability collector and SLO evaluator\n\n"
        "usage:\n"
        "  meltp run --config FILE        run the collector\n"
        "  meltp check-config --config FILE\n"
        "                                 validate the configuration without binding sockets;\n"
        "                                 prints FILE:LINE: path.to.key: reason, exit 1 on error\n"
        "  meltp help-config [--format text|markdown]\n"
        "                                 list every component and its settings (markdown:\n"
        "                                 docs/CONFIGURATION.md, as `make docs` writes it)\n"
        "  meltp validate --config FILE [--input PATH...] [--listen DURATION] [--policy FILE]\n"
        "                 [--format text|json|markdown|junit|html] [--output FILE]\n"
        "                                 audit MELTP coverage per service (exit 1 on gaps)\n"
        "  meltp slo explain|rules|dashboards|test-notify ...\n"
        "                                 SLO tooling (see docs)\n"
        "  meltp version                  print the version\n"
        "  meltp help [COMMAND] | --help  this text, or one command's usage\n",
        MELTP_VERSION);
}

static const char *parse_config_flag(int argc, char **argv)
{
    const char *cfg = NULL;
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            cfg = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            cfg = argv[i] + 9;
        } else {
            fprintf(stderr, "meltp: unknown flag %s\n\n", argv[i]);
            usage(stderr);
            exit(2);
        }
    }
    if (!cfg) {
        fprintf(stderr, "meltp: --config FILE is required\n\n");
        usage(stderr);
        exit(2);
    }
    return cfg;
}

/* Reads the whole config file (one read: the text loaded is the text checked). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    sb_t b = {0};
    int rc = sb_fread(&b, f);
    fclose(f);
    if (rc == MT_EIO) {
        b.err = 0; /* as before: what could be read is the text (the loader reports on it) */
    }
    return sb_take(&b, NULL);
}

static service_t *load_text(const char *path, const char *text)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, path);
    service_t *s = service_load(path, text, &c);
    for (size_t i = 0; i < c.nerr; i++) {
        fprintf(stderr, "%s\n", c.errs[i]);
    }
    cfg_ctx_fini(&c);
    return s;
}

static service_t *load(const char *path)
{
    return load_text(path, NULL);
}

static int cmd_check(const char *path)
{
    service_t *s = load(path);
    if (!s) {
        return 1;
    }
    service_stop_destroy(s);
    printf("%s: configuration is valid\n", path);
    return 0;
}

static int cmd_run(const char *path)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    char *text = slurp(path);
    service_t *s = text ? load_text(path, text) : load(path);
    if (!s) {
        free(text);
        return 1;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (service_start(s, &eb) != MT_OK) {
        mt_log(MT_LOG_ERROR, "start failed: %s", eb.msg);
        service_stop_destroy(s);
        free(text);
        return 1;
    }
    mt_log(MT_LOG_INFO, "meltp %s running with %s", MELTP_VERSION, path);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            mt_log(MT_LOG_INFO, "SIGHUP: reloading %s", path);
            char *ntext = slurp(path);
            service_t *ns = ntext ? load_text(path, ntext) : NULL;
            if (!ns) {
                mt_log(MT_LOG_ERROR, "reload: %s; keeping the old one",
                       ntext ? "new configuration is invalid" : "cannot read the file");
                free(ntext);
                continue;
            }
            /* the new one starts beside the old one, which keeps serving until the swap */
            listener_stage_begin();
            mt_errbuf_clear(&eb);
            if (service_reload_start(ns, s, &eb) != MT_OK) {
                mt_log(MT_LOG_ERROR,
                       "reload: start failed (%s); going back to the previous configuration "
                       "(it kept running)",
                       eb.msg);
                service_stop_destroy(ns);
                listener_stage_end();
                free(ntext);
                continue;
            }
            service_reload_commit(ns, s);
            s = ns;
            free(text);
            text = ntext;
            mt_log(MT_LOG_INFO, "reload: done");
            continue;
        }
        mt_log(MT_LOG_INFO, "%s: draining queues (up to %lld ms)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)service_shutdown_timeout_ms(s));
        service_stop_destroy(s);
        free(text);
        mt_log(MT_LOG_INFO, "stopped");
        curl_global_cleanup();
        return 0;
    }
}

/* meltp help-config [--format text|markdown] */
static int cmd_help_config(int argc, char **argv)
{
    registry_help_format_t fmt = REGISTRY_HELP_TEXT;
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            v = argv[++i];
        } else if (!strncmp(argv[i], "--format=", 9)) {
            v = argv[i] + 9;
        }
        if (v && !strcmp(v, "text")) {
            fmt = REGISTRY_HELP_TEXT;
        } else if (v && !strcmp(v, "markdown")) {
            fmt = REGISTRY_HELP_MARKDOWN;
        } else {
            fprintf(stderr, "meltp: help-config: %s %s\n\n", v ? "unknown format" : "unknown flag",
                    v ? v : argv[i]);
            usage(stderr);
            return 2;
        }
    }
    registry_print_help(stdout, fmt);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

/* `meltp help COMMAND`: one entry per command, the synopsis as docs/OPERATIONS.md's command
 * table writes it (tests/integration/test_install.py holds the two together). validate and
 * slo print their own usage, so their flags are described in one place. */
typedef struct {
    const char *cmd;
    const char *text;
} help_entry_t;

static const help_entry_t help_entries[] = {
    {"run", "usage: meltp run --config FILE\n\n"
            "Runs the collector with FILE. SIGTERM/SIGINT stop the receivers, drain the queues\n"
            "for up to service.shutdown_timeout (default 10s) and exit 0; SIGHUP reloads FILE\n"
            "and keeps the running configuration when the new one is invalid. Exit 1 when the\n"
            "configuration is invalid or a port cannot be bound.\n"},
    {"check-config",
     "usage: meltp check-config --config FILE\n\n"
     "Loads and validates the whole configuration without binding sockets and prints every\n"
     "problem as FILE:LINE: path.to.key: reason. Exit 1 on error, 0 when valid.\n"},
    {"help-config",
     "usage: meltp help-config [--format text|markdown]\n\n"
     "Every component with every setting, its type, default and meaning. --format markdown\n"
     "prints docs/CONFIGURATION.md as `make docs` writes it.\n"},
    {"version", "usage: meltp version\n\nPrints the version.\n"},
    {"help", "usage: meltp help [COMMAND]\n\n"
             "Without COMMAND: the list of commands. With one: that command's usage. Unknown\n"
             "commands or flags print the usage and exit 2.\n"},
};

/* Returns the exit status of `meltp help [COMMAND]`. */
static int cmd_help(int argc, char **argv)
{
    if (argc < 3) {
        usage(stdout);
        return 0;
    }
    const char *c = argv[2];
    if (!strcmp(c, "validate")) {
        char *v[] = {"validate", "--help", NULL};
        return validate_main(2, v);
    }
    if (!strcmp(c, "slo")) {
        char *v[] = {"slo", "--help", NULL};
        return slo_cli_main(2, v);
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(help_entries); i++) {
        if (!strcmp(c, help_entries[i].cmd)) {
            fputs(help_entries[i].text, stdout);
            return 0;
        }
    }
    fprintf(stderr, "meltp: help: unknown command \"%s\"\n\n", c);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help")) {
        return cmd_help(argc, argv);
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("meltp %s\n", MELTP_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help-config")) {
        return cmd_help_config(argc, argv);
    }
    if (!strcmp(cmd, "run")) {
        return cmd_run(parse_config_flag(argc, argv));
    }
    if (!strcmp(cmd, "check-config")) {
        return cmd_check(parse_config_flag(argc, argv));
    }
    if (!strcmp(cmd, "validate")) {
        return validate_main(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "slo")) {
        return slo_cli_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "meltp: unknown command or flag \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
