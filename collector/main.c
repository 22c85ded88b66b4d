/*
 * main.c - the meltp command line: run, check-config, version, help. Signals are handled
 * by sigwait() in the main thread (every other thread has them blocked): SIGTERM/SIGINT
 * drain and exit 0, SIGHUP reloads the configuration and keeps the old one if the new one
 * is invalid.
 */
#include "service.h"
#include "component.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "meltp %s - MELTP observability collector and SLO evaluator\n\n"
            "usage:\n"
            "  meltp run --config FILE        run the collector\n"
            "  meltp check-config --config FILE\n"
            "                                 validate the configuration without binding sockets;\n"
            "                                 prints FILE:LINE: path.to.key: reason, exit 1 on error\n"
            "  meltp help-config              list every component and its settings\n"
            "  meltp version                  print the version\n"
            "  meltp help | --help            this text\n",
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

static service_t *load(const char *path)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, path);
    service_t *s = service_load(path, NULL, &c);
    for (size_t i = 0; i < c.nerr; i++) {
        fprintf(stderr, "%s\n", c.errs[i]);
    }
    cfg_ctx_fini(&c);
    return s;
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

    service_t *s = load(path);
    if (!s) {
        return 1;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (service_start(s, &eb) != MT_OK) {
        mt_log(MT_LOG_ERROR, "start failed: %s", eb.msg);
        service_stop_destroy(s);
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
            service_t *ns = load(path);
            if (!ns) {
                mt_log(MT_LOG_ERROR, "reload: new configuration is invalid; keeping the old one");
                continue;
            }
            /* stop the old one first: the new one usually binds the same ports */
            service_stop_destroy(s);
            mt_errbuf_clear(&eb);
            if (service_start(ns, &eb) != MT_OK) {
                mt_log(MT_LOG_ERROR, "reload: start failed (%s); restarting the previous configuration is not possible once replaced, exiting", eb.msg);
                service_stop_destroy(ns);
                curl_global_cleanup();
                return 1;
            }
            s = ns;
            mt_log(MT_LOG_INFO, "reload: done");
            continue;
        }
        mt_log(MT_LOG_INFO, "%s: draining queues (up to %lld ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               (long long)service_shutdown_timeout_ms(s));
        service_stop_destroy(s);
        mt_log(MT_LOG_INFO, "stopped");
        curl_global_cleanup();
        return 0;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("meltp %s\n", MELTP_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help-config")) {
        registry_print_help(stdout);
        return 0;
    }
    if (!strcmp(cmd, "run")) {
        return cmd_run(parse_config_flag(argc, argv));
    }
    if (!strcmp(cmd, "check-config") || !strcmp(cmd, "validate")) {
        return cmd_check(parse_config_flag(argc, argv));
    }
    fprintf(stderr, "meltp: unknown command or flag \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
