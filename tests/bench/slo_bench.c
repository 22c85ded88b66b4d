/*
 * slo_bench.c - SLO evaluation cost: N SLO instances (default 10,000) with 31 days of data,
 * each evaluated (7 windows + period, 4 MWMBR tiers) as the engine does every
 * evaluation_interval. Prints CPU per round, the CPU share at a 10 s interval and RSS per SLO.
 * Build: cc -O2 -D_GNU_SOURCE -Icollector -Islo tests/bench/slo_bench.c slo/eval.c collector/core/mt.c -lm
 */
#include "eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long rss_kib(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) {
            rss = 0;
        }
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000, rounds = argc > 2 ? atoi(argv[2]) : 20;
    slo_ev_params_t p = {0};
    p.objective = 0.999;
    p.period_ms = 30 * 86400000LL;
    p.ntiers = 4;
    p.tiers[0] = (slo_ev_tier_t){3600000LL, 300000LL, 14.4, 0, 0, 0, 1};
    p.tiers[1] = (slo_ev_tier_t){6 * 3600000LL, 1800000LL, 6, 0, 0, 0, 1};
    p.tiers[2] = (slo_ev_tier_t){86400000LL, 2 * 3600000LL, 3, 0, 0, 1, 1};
    p.tiers[3] = (slo_ev_tier_t){3 * 86400000LL, 6 * 3600000LL, 1, 0, 0, 1, 1};
    long rss0 = rss_kib();
    slo_inst_t **v = malloc((size_t)n * sizeof(*v));
    int64_t now = 1700000000000LL;
    for (int i = 0; i < n; i++) {
        v[i] = malloc(sizeof(slo_inst_t));
        slo_inst_init(v[i], &p, 1);
        for (int64_t t = now - 31 * 86400000LL; t < now; t += 600000) {
            slo_inst_add(v[i], &p, t, (uint64_t)(t / 600000 % 97 == 0), 1000, now);
        }
    }
    long rss1 = rss_kib();
    int ev[SLO_EV_MAX_TIERS];
    slo_result_t r;
    volatile double sink = 0;
    double c0 = cpu_s();
    for (int k = 0; k < rounds; k++) {
        now += 10000;
        for (int i = 0; i < n; i++) {
            slo_eval_run(v[i], &p, now, &r, ev);
            sink += r.budget_remaining;
        }
    }
    double per_round = (cpu_s() - c0) / rounds;
    printf("slos=%d rounds=%d cpu_per_round_ms=%.2f cpu_share_at_10s=%.3f%% "
           "rss_per_slo_bytes=%.0f sizeof_inst=%zu\n",
           n, rounds, per_round * 1000, per_round / 10.0 * 100.0,
           (double)(rss1 - rss0) * 1024.0 / n, sizeof(slo_inst_t));
    (void)sink;
    return 0;
}
