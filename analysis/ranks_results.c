#include "ranks_results.h"

#include <math.h>

static void number_or_null(cJSON *o, const char *name, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, v);
}

void ranks_results_json(cJSON *root, const struct run_facts *f)
{
    if (f->nranks < 2) return;
    cJSON *r = cJSON_AddObjectToObject(root, "ranks");
    cJSON_AddNumberToObject(r, "size", (double)f->nranks);
    cJSON_AddNumberToObject(r, "offset_uncertainty_s", (double)f->offset_uncertainty_ns / 1e9);
    cJSON_AddStringToObject(
        r, "offset_uncertainty_means",
        "every rank's stamps are mapped onto rank 0's clock by measured offsets; a latency "
        "between stamps of one rank (TTFT, E2E, speed) is exact, but where it is compared "
        "with rank 0's phase windows (which requests and tokens a window holds) it may be "
        "off by up to this much");
    cJSON *list = cJSON_AddArrayToObject(r, "per_rank");
    for (size_t k = 0; k < f->nranks; k++) {
        const struct rank_load *L = &f->ranks[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", L->rank);
        cJSON_AddStringToObject(o, "host", L->host);
        cJSON *ph = cJSON_AddArrayToObject(o, "phases");
        for (size_t i = 0; L->sent && i < f->nphases; i++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "phase", f->phases[i].index);
            cJSON_AddNumberToObject(p, "requests_sent_whole_phase", (double)L->sent[i]);
            cJSON_AddNumberToObject(p, "requests_failed_whole_phase", (double)L->failed[i]);
            cJSON_AddNumberToObject(p, "system_output_tokens_per_s", L->output_tps[i]);
            number_or_null(p, "ttft_p50_s", L->ttft_p50_s[i]);
            number_or_null(p, "first_request_after_phase_start_s", L->start_s[i]);
            cJSON_AddItemToArray(ph, p);
        }
        cJSON_AddItemToArray(list, o);
    }
}

void ranks_results_print(FILE *out, const struct run_facts *f)
{
    if (f->nranks < 2) return;
    fprintf(out,
            "\n%zu MPI ranks; clock offsets to rank 0 known within %.3f ms (latencies are "
            "per rank; windows are rank 0's)\n",
            f->nranks, (double)f->offset_uncertainty_ns / 1e6);
    fprintf(out, "%5s %5s %-20s %7s %6s %14s %12s %12s\n", "phase", "rank", "host", "sent",
            "failed", "tokens/s", "TTFT p50 s", "start +s");
    for (size_t i = 0; i < f->nphases; i++)
        for (size_t k = 0; k < f->nranks; k++) {
            const struct rank_load *L = &f->ranks[k];
            if (!L->sent) continue;
            fprintf(out, "%5d %5d %-20.20s %7zu %6zu %14.1f %12.4f %12.4f\n", f->phases[i].index,
                    L->rank, L->host, L->sent[i], L->failed[i], L->output_tps[i], L->ttft_p50_s[i],
                    L->start_s[i]);
        }
}
