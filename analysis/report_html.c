/* The page and charts of `strobe report` (report_html.h). Every chart is one gnuplot script
 * rendered twice (PNG, SVG) from data files under OUT/data/; the page lists the runs and
 * shows the charts in the order they were rendered. */
#include "report_html.h"

#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct chart {
    char name[64];
    char title[256];
    int written;
};

/* The first file that could not be written whole, and why (a full disk shows at fclose). */
static void note_write_error(struct report_outcome *o, const char *path, int err)
{
    if (o->write_errno) return;
    o->write_errno = err ? err : EIO;
    snprintf(o->write_path, sizeof o->write_path, "%s", path);
}

static FILE *open_out(const char *out, const char *name, struct report_outcome *o)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, name);
    FILE *f = fopen(path, "we"); /* not inherited by gnuplot */
    if (!f) note_write_error(o, path, errno);
    return f;
}

/* Closes a file open_out gave: 0, or -1 (noted in o) when any of it was not written. */
static int close_out(FILE *f, const char *out, const char *name, struct report_outcome *o)
{
    int bad = ferror(f);
    errno = 0;
    if (fclose(f)) bad = 1;
    if (!bad) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, name);
    note_write_error(o, path, errno);
    return -1;
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

/* A character as it may go into a gnuplot script: a line break there (a run directory's name,
 * a model or server name from a log) would end the line and start a command of the text's
 * choosing ('!cmd' runs a shell), so every control character becomes a space; and a backquote
 * inside a double-quoted string (a title) runs its text as a command, so it becomes a quote. */
static int gp_char(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f ? ' ' : c == '`' ? '\'' : c;
}

/* gnuplot strings are single-quoted; a quote inside is doubled */
static void gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(gp_char(*s), f);
    }
    fputc('\'', f);
}

/* set title "MAIN\nSUB" noenhanced: double quotes for the line break, with \ and " escaped */
static void gp_title(FILE *f, const char *main_line, const char *sub)
{
    fputs("set title \"", f);
    for (const char *p = main_line; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', f);
        fputc(gp_char(*p), f);
    }
    if (sub && *sub) {
        fputs("\\n", f);
        for (const char *p = sub; *p; p++) {
            if (*p == '"' || *p == '\\') fputc('\\', f);
            fputc(gp_char(*p), f);
        }
    }
    fputs("\" noenhanced\n", f);
}

/* gnuplot SCRIPT in OUT, its errors appended to OUT/gnuplot.log: 0 when it succeeded. Run
 * without a shell, so that OUT may hold any character. */
static int run_gnuplot(const char *out, const char *script)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* only async-signal-safe calls after fork: a fixed sentence, then out */
        static const char no_dir[] = "strobe report: cannot enter the output folder to run "
                                     "gnuplot.\n",
                          no_exec[] = "strobe report: cannot run gnuplot; is it installed "
                                      "(apt-get install gnuplot-nox)?\n";
        if (chdir(out)) {
            (void)!write(STDERR_FILENO, no_dir, sizeof no_dir - 1);
            _exit(127);
        }
        int log = open("gnuplot.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log >= 0) dup2(log, STDERR_FILENO);
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        (void)!write(STDERR_FILENO, no_exec, sizeof no_exec - 1);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Runs one gnuplot script twice: PNG and SVG. 0, or -1 (gnuplot missing or failing, or the
 * script not written: o says which). */
static int render(const char *out, const char *name, const char *body, struct report_outcome *o)
{
    for (int svg = 0; svg < 2; svg++) {
        char gp[128];
        snprintf(gp, sizeof gp, "%s.%s.gp", name, svg ? "svg" : "png");
        FILE *f = open_out(out, gp, o);
        if (!f) return -1;
        if (svg)
            fprintf(f, "set terminal svg size 900,520 dynamic font 'sans,11'\n");
        else
            fprintf(f, "set terminal pngcairo size 900,520 font 'sans,10'\n");
        fprintf(f,
                "set output '%s.%s'\nset termoption noenhanced\nset grid\n"
                "set key outside right top\n%s",
                name, svg ? "svg" : "png", body);
        if (close_out(f, out, gp, o) || run_gnuplot(out, gp)) return -1;
        char path[4300];
        snprintf(path, sizeof path, "%s/%s", out, gp);
        remove(path);
    }
    return 0;
}

/* "runs A, B; model M; kernel timestamps": each distinct model and clock once */
/* Renders a chart and lists it for the page. 0, or -1 when gnuplot failed. */
static int add_chart(const char *out, const char *name, const char *title, const char *body,
                     struct chart *ch, int *nch, struct report_outcome *o)
{
    if (render(out, name, body, o)) return -1;
    snprintf(ch[*nch].name, sizeof ch[0].name, "%s", name);
    snprintf(ch[*nch].title, sizeof ch[0].title, "%s", title);
    (*nch)++;
    return 0;
}

static void subtitle(char *buf, size_t n, struct report_run *runs, int nruns)
{
    size_t at = (size_t)snprintf(buf, n, "runs ");
    for (int i = 0; i < nruns && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%s", i ? ", " : "", runs[i].label);
    for (int pass = 0; pass < 2 && at < n; pass++) {
        at += (size_t)snprintf(buf + at, n - at, "; %s", pass ? "" : "model ");
        int shown = 0;
        for (int i = 0; i < nruns && at < n; i++) {
            const char *v = pass ? runs[i].clock : runs[i].model;
            int seen = 0;
            for (int k = 0; k < i; k++) seen |= !strcmp(v, pass ? runs[k].clock : runs[k].model);
            if (!seen) at += (size_t)snprintf(buf + at, n - at, "%s%s", shown++ ? ", " : "", v);
        }
    }
}

/* The last `parts` components of dir (trailing slashes aside), as a label may show them. */
static void label_from(char *label, size_t n, const char *dir, int parts)
{
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/') end--;
    size_t from = end;
    for (int k = 0; k < parts && from > 0; k++) {
        if (k) from--; /* the slash between two components */
        while (from > 0 && dir[from - 1] != '/') from--;
    }
    if (end == from) from = 0, end = strlen(dir); /* "/" names itself */
    snprintf(label, n, "%.*s", (int)(end - from), dir + from);
    /* the label also goes into data files' quoted strings */
    for (char *p = label; *p; p++)
        if (*p == '\'' || *p == '"' || gp_char(*p) != *p) *p = '_';
}

/* Runs of the same folder name in different places get their parent's name too, and any two
 * still alike a number: a chart's legend must tell every run apart. */
static void distinct_labels(struct report_run *runs, int n)
{
    int alike[REPORT_MAX_RUNS] = {0};
    for (int i = 0; i < n && i < REPORT_MAX_RUNS; i++)
        for (int k = 0; k < n; k++) alike[i] |= k != i && !strcmp(runs[k].label, runs[i].label);
    for (int i = 0; i < n && i < REPORT_MAX_RUNS; i++)
        if (alike[i]) label_from(runs[i].label, sizeof runs[i].label, runs[i].dir, 2);
    /* the same folder given twice, or two alike to their parents: numbered in order */
    static char was[REPORT_MAX_RUNS][sizeof runs->label];
    for (int i = 0; i < n && i < REPORT_MAX_RUNS; i++) memcpy(was[i], runs[i].label, sizeof was[i]);
    for (int i = 0; i < n && i < REPORT_MAX_RUNS; i++) {
        int same = 1;
        for (int k = 0; k < i; k++) same += !strcmp(was[k], was[i]);
        if (same > 1) {
            size_t len = strlen(runs[i].label);
            if (len > 140) len = 140;
            snprintf(runs[i].label + len, sizeof runs[i].label - len, " (%d)", same);
        }
    }
}

static void load_labels(struct report_run *r)
{
    cJSON *h = cJSON_Parse(r->res.facts.header_json);
    const cJSON *m =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "config"), "model");
    snprintf(r->model, sizeof r->model, "%s", cJSON_IsString(m) ? m->valuestring : "?");
    label_from(r->label, sizeof r->label, r->dir, 1);
    /* the model goes into chart titles */
    for (char *p = r->model; *p; p++)
        if (gp_char(*p) != *p) *p = ' ';
    cJSON_Delete(h);
    /* the clock the chunk timestamps came from: the most common source */
    static const char *const names[5] = {"none", "userspace", "kernel", "NIC", "FPGA"};
    int best = 0;
    for (int s = 1; s < 5; s++)
        if (r->res.facts.ts_source_events[s] > r->res.facts.ts_source_events[best]) best = s;
    snprintf(r->clock, sizeof r->clock, "%s timestamps", names[best]);
    r->t0 = r->res.facts.nphases ? r->res.facts.phases[0].t_start : 0;
}

/* SLT-style curves, for every run that has phases. */
static int slt_charts(const char *out, struct report_run *runs, int n, struct chart *ch, int *nch,
                      struct report_outcome *o)
{
    char sub[1024], body[16384];
    subtitle(sub, sizeof sub, runs, n);
    int any = 0;
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "data/load_%d.dat", i);
        FILE *f = open_out(out, name, o);
        if (!f) return -1;
        fprintf(f, "# concurrency speed_p50_tokens_per_s system_output_tokens_per_s e2e_p50_s\n");
        const struct run_results *r = &runs[i].res;
        /* by concurrency: an agent search visits counts out of order */
        size_t *order = must_calloc(r->nphases + 1, sizeof *order, "the report's phase order");
        for (size_t k = 0; k < r->nphases; k++) {
            size_t j = k;
            while (j > 0 &&
                   r->phases[order[j - 1]].info.concurrency > r->phases[k].info.concurrency) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = k;
        }
        for (size_t q = 0; q < r->nphases; q++) {
            const struct phase_metrics *m = &r->phases[order[q]];
            fprintf(f, "%d %.6f %.6f %.6f\n", m->info.concurrency, m->speed.p50,
                    m->system_output_tps, m->e2e.p50);
            any = 1;
        }
        free(order);
        if (close_out(f, out, name, o)) return -1;
    }
    if (!any) return 0;
    /* "Optimal" (methodology.md §5): per concurrency, the higher throughput of the SLT runs
     * given (e.g. a max-throughput and a min-latency configuration of one system) */
    int slt_runs = 0;
    for (int i = 0; i < n; i++) slt_runs += !runs[i].res.is_agents && runs[i].res.nphases;
    FILE *opt = open_out(out, "data/optimal.dat", o);
    if (!opt) return -1;
    fprintf(opt, "# concurrency best_system_output_tokens_per_s (over the SLT runs)\n");
    for (int c = 1; slt_runs > 1 && c <= 1 << 20; c++) {
        double best = -1;
        for (int i = 0; i < n; i++)
            for (size_t k = 0; !runs[i].res.is_agents && k < runs[i].res.nphases; k++)
                if (runs[i].res.phases[k].info.concurrency == c &&
                    runs[i].res.phases[k].system_output_tps > best)
                    best = runs[i].res.phases[k].system_output_tps;
        if (best >= 0) fprintf(opt, "%d %.6f\n", c, best);
    }
    if (close_out(opt, out, "data/optimal.dat", o)) return -1;
    const char *defs[4][4] = {
        {"throughput_vs_speed", "System output throughput vs output speed per query",
         "Output speed per query, median (tokens/s)", "System output throughput (tokens/s)"},
        {"speed_vs_concurrency", "Output speed per query vs concurrency",
         "Concurrent queries or agents", "Output speed per query, median (tokens/s)"},
        {"latency_vs_concurrency", "End-to-end latency vs concurrency",
         "Concurrent queries or agents", "End-to-end latency, median (s)"},
        {"throughput_vs_concurrency", "System output throughput vs concurrency",
         "Concurrent queries or agents", "System output throughput (tokens/s)"}};
    const char *cols[4] = {"2:3", "1:2", "1:4", "1:3"};
    for (int c = 0; c < 4; c++) {
        FILE *b = fmemopen(body, sizeof body, "w");
        gp_title(b, defs[c][1], sub);
        fprintf(b, "set xlabel '%s'\nset ylabel '%s'\n%splot ", defs[c][2], defs[c][3],
                c ? "set logscale x 2\n" : "");
        for (int i = 0; i < n; i++) {
            fprintf(b, "%s'data/load_%d.dat' using %s with linespoints lw 2 pt 7 title ",
                    i ? ", " : "", i, cols[c]);
            gp_string(b, runs[i].label);
        }
        if (c == 3 && slt_runs > 1)
            fprintf(b, ", 'data/optimal.dat' using 1:2 with lines dt 2 lw 3 lc rgb '#000000' "
                       "title 'Optimal (best of the SLT runs per concurrency)'");
        fprintf(b, "\n");
        fclose(b);
        if (add_chart(out, defs[c][0], defs[c][1], body, ch, nch, o)) return -1;
    }
    return 0;
}

/* The agent runs' lines of the per-MW data files, and each run's search chart: -1 when a
 * file or chart failed, else whether any run had a figure per MW. */
static int agent_search_charts(const char *out, struct report_run *runs, int n, struct chart *ch,
                               int *nch, struct report_outcome *o, FILE *bars, FILE *scatter)
{
    char body[16384];
    fprintf(bars, "# run tier max_agents_per_mw\n");
    fprintf(scatter, "# speed_p25_tokens_per_s max_agents_per_mw\n");
    int any_mw = 0;
    for (int i = 0; i < n; i++) {
        const struct run_results *r = &runs[i].res;
        if (!r->is_agents) continue;
        for (size_t t = 0; t < r->agents.nsearches; t++) {
            const struct search_result *s = &r->agents.searches[t];
            double w = -1;
            if (s->at_max && r->power) {
                const struct phase_power *p = &r->power[s->at_max->phase];
                if (p->has_accel && p->accel_complete) w = p->accel_w;
            }
            if (w <= 0 && r->agents.power_w > 0) w = r->agents.power_w;
            if (w <= 0 || !s->at_max) continue;
            double mw = s->max_agents / (w / 1e6);
            fprintf(bars, "\"%s %s\" %.6f\n", runs[i].label, s->tier.name, mw);
            fprintf(scatter, "%.6f %.6f\n", s->at_max->speed_p25, mw);
            any_mw = 1;
        }
        /* this run's search */
        char name[64];
        snprintf(name, sizeof name, "data/search_%d.dat", i);
        FILE *f = open_out(out, name, o);
        if (!f) return -1;
        fprintf(f, "# iteration agents pass ttft_violated (first tier)\n");
        if (r->agents.nsearches) {
            const struct search_result *s = &r->agents.searches[0];
            for (int k = 0; k < s->nsteps; k++)
                fprintf(f, "%d %d %d %d\n", k + 1, s->steps[k].agents, s->steps[k].pass,
                        strstr(s->steps[k].reason, "ttft") != NULL);
        }
        if (close_out(f, out, name, o)) return -1;
        char title[1400], chart[64];
        snprintf(chart, sizeof chart, "search_%d", i);
        snprintf(title, sizeof title, "Search iterations of %s (%s, tier %s)", runs[i].label,
                 runs[i].model, r->agents.nsearches ? r->agents.searches[0].tier.name : "-");
        FILE *b = fmemopen(body, sizeof body, "w");
        gp_title(b, title, runs[i].clock);
        fprintf(b,
                "set xlabel 'Search iteration'\nset ylabel 'Concurrent agents'\n"
                "set logscale y 2\nset style fill solid 0.8\n"
                "plot '%s' using 1:($3==1?$2:1/0) with points pt 7 ps 1.6 lc rgb '#2a9d2a' title "
                "'pass', "
                "'%s' using 1:($3==0&&$4==0?$2:1/0) with points pt 5 ps 1.6 lc rgb '#d03030' title "
                "'fail (speed or errors)', "
                "'%s' using 1:($4==1?$2:1/0) with points pt 9 ps 1.8 lc rgb '#e08000' title 'fail "
                "(TTFT violated)', "
                "'%s' using 1:2 with lines lc rgb '#808080' notitle\n",
                name, name, name, name);
        fclose(b);
        if (add_chart(out, chart, title, body, ch, nch, o)) return -1;
    }
    return any_mw;
}

/* Agent runs: per-MW per tier, per-MW vs speed, and each run's search iterations. */
static int agent_charts(const char *out, struct report_run *runs, int n, struct chart *ch, int *nch,
                        struct report_outcome *o)
{
    char sub[1024], body[16384];
    subtitle(sub, sizeof sub, runs, n);
    FILE *bars = open_out(out, "data/agents_per_mw.dat", o);
    FILE *scatter = bars ? open_out(out, "data/agents_mw_vs_speed.dat", o) : NULL;
    if (!scatter) {
        if (bars) fclose(bars);
        return -1;
    }
    int rc = agent_search_charts(out, runs, n, ch, nch, o, bars, scatter);
    /* both closed, also after a failure, and checked */
    if (close_out(bars, out, "data/agents_per_mw.dat", o)) rc = -1;
    if (close_out(scatter, out, "data/agents_mw_vs_speed.dat", o)) rc = -1;
    if (rc <= 0) return rc;
    FILE *b = fmemopen(body, sizeof body, "w");
    gp_title(b, "Max concurrent agents per MW of accelerator power, per SLO tier", sub);
    fprintf(b, "set ylabel 'Agents per MW (agents/MW)'\nset style data histograms\n"
               "set style fill solid 0.8\nset xtics rotate by -20\nset yrange [0:*]\n"
               "plot 'data/agents_per_mw.dat' using 2:xtic(1) lc rgb '#3060c0' title 'max agents "
               "per MW'\n");
    fclose(b);
    if (add_chart(out, "agents_per_mw", "Max concurrent agents per MW per SLO tier", body, ch, nch,
                  o))
        return -1;
    b = fmemopen(body, sizeof body, "w");
    gp_title(b, "Agents per MW vs P25 output speed", sub);
    fprintf(b, "set xlabel 'Output speed per query, P25 at max agents (tokens/s)'\n"
               "set ylabel 'Agents per MW (agents/MW)'\n"
               "plot 'data/agents_mw_vs_speed.dat' using 1:2 with points pt 7 ps 1.5 title 'tier "
               "results'\n");
    fclose(b);
    if (add_chart(out, "agents_mw_vs_speed", "Agents per MW vs P25 output speed", body, ch, nch, o))
        return -1;
    return 0;
}

/* Watts of one series at each reading: given, or from the energy counter's differences. */
/* The measured windows, shaded behind a chart over time. */
static void shade_windows(FILE *b, const struct run_facts *f, int64_t t0)
{
    for (size_t k = 0; k < f->nphases; k++) {
        double from = stamps_apart(t0, f->phases[k].t_window_start, 1e9),
               to = stamps_apart(t0, f->phases[k].t_window_end, 1e9);
        if (isnan(from) || isnan(to)) continue; /* a damaged log's window: gnuplot takes no nan */
        fprintf(b,
                "set object %zu rect from %.3f, graph 0 to %.3f, graph 1 fc rgb '#d8e8ff' fs "
                "solid 0.6 noborder behind\n",
                k + 1, from, to);
    }
}

static int power_charts(const char *out, struct report_run *runs, int n, struct chart *ch, int *nch,
                        struct report_outcome *o)
{
    char body[32768];
    for (int i = 0; i < n; i++) {
        const struct run_facts *f = &runs[i].res.facts;
        if (!f->npower) continue;
        char title[512];
        snprintf(title, sizeof title, "Power over time, %s (%s); measured windows shaded",
                 runs[i].label, runs[i].model);
        FILE *b = fmemopen(body, sizeof body, "w");
        gp_title(b, title, runs[i].clock);
        fprintf(b, "set xlabel 'Time since the first phase started (s)'\nset ylabel 'Power (W)'\n"
                   "set yrange [0:*]\n");
        shade_windows(b, f, runs[i].t0);
        fprintf(b, "plot ");
        for (size_t s = 0; s < f->npower; s++) {
            const struct power_series *ps = &f->power[s];
            char name[64];
            snprintf(name, sizeof name, "data/power_%d_%zu.dat", i, s);
            FILE *d = open_out(out, name, o);
            if (!d) {
                fclose(b);
                return -1;
            }
            fprintf(d, "# t_s watts (source %d device %d)\n", ps->source, ps->device);
            for (size_t k = 0; k < ps->n; k++) {
                double w = ps->watts[k];
                if (isnan(w) && k > 0 && !isnan(ps->energy_j[k]) && ps->t[k] > ps->t[k - 1])
                    w = (ps->energy_j[k] - ps->energy_j[k - 1]) /
                        (stamps_apart(ps->t[k - 1], ps->t[k], 1e9));
                if (!isnan(w))
                    fprintf(d, "%.3f %.3f\n", stamps_apart(runs[i].t0, ps->t[k], 1e9), w);
            }
            if (close_out(d, out, name, o)) {
                fclose(b);
                return -1;
            }
            fprintf(b, "%s'%s' using 1:2 with lines lw 2 title 'source %d device %d'",
                    s ? ", " : "", name, ps->source, ps->device);
        }
        fprintf(b, "\n");
        fclose(b);
        char chart[64];
        snprintf(chart, sizeof chart, "power_%d", i);
        if (add_chart(out, chart, title, body, ch, nch, o)) return -1;
    }
    return 0;
}

/* The server's own view over time (--server-metrics): requests running and waiting, and its
 * KV-cache usage on the right axis, with the measured windows shaded. */
static int server_charts(const char *out, struct report_run *runs, int n, struct chart *ch,
                         int *nch, struct report_outcome *o)
{
    char body[32768];
    for (int i = 0; i < n; i++) {
        const struct run_facts *f = &runs[i].res.facts;
        const struct server_metrics *m = &f->server;
        if (!m->n) continue;
        char name[64], title[512];
        snprintf(name, sizeof name, "data/server_%d.dat", i);
        FILE *d = open_out(out, name, o);
        if (!d) return -1;
        fprintf(d, "# t_s requests_running requests_waiting kv_cache_usage_percent (NaN: not "
                   "exposed)\n");
        for (size_t k = 0; k < m->n; k++)
            fprintf(d, "%.3f %.3f %.3f %.3f\n", stamps_apart(runs[i].t0, m->s[k].t, 1e9),
                    m->s[k].gauge[SG_RUNNING], m->s[k].gauge[SG_WAITING],
                    100 * m->s[k].gauge[SG_KV_USAGE]);
        if (close_out(d, out, name, o)) return -1;
        snprintf(title, sizeof title, "The server's view over time, %s (%s: %s); windows shaded",
                 runs[i].label, runs[i].model, m->server ? m->server : "names not recognised");
        FILE *b = fmemopen(body, sizeof body, "w");
        gp_title(b, title, runs[i].clock);
        fprintf(b, "set xlabel 'Time since the first phase started (s)'\n"
                   "set ylabel 'Requests at the server'\nset yrange [0:*]\n"
                   "set y2label 'KV-cache usage (%%)'\nset y2range [0:100]\nset y2tics\n"
                   "set datafile missing 'nan'\n");
        shade_windows(b, f, runs[i].t0);
        fprintf(b,
                "plot '%s' using 1:2 with lines lw 2 title 'running', '%s' using 1:3 with lines "
                "lw 2 title 'waiting', '%s' using 1:4 axes x1y2 with lines lw 2 dt 2 title "
                "'KV-cache usage'\n",
                name, name, name);
        fclose(b);
        char chart[64];
        snprintf(chart, sizeof chart, "server_%d", i);
        if (add_chart(out, chart, title, body, ch, nch, o)) return -1;
    }
    return 0;
}

static void run_table(FILE *h, struct report_run *runs, int n)
{
    fprintf(
        h, "<table><tr><th>run</th><th>kind</th><th>model</th><th>timestamps</th>"
           "<th>valid</th><th>peak system output (tokens/s)</th><th>max agents (tier)</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const struct run_results *r = &runs[i].res;
        double peak = 0;
        for (size_t k = 0; k < r->nphases; k++)
            if (r->phases[k].system_output_tps > peak) peak = r->phases[k].system_output_tps;
        fprintf(h, "<tr><td>");
        html_escape(h, runs[i].label);
        fprintf(h, "</td><td>%s</td><td>", r->is_agents ? "agents" : "slt");
        html_escape(h, runs[i].model);
        fprintf(h, "</td><td>%s</td><td>%s</td><td>%.1f</td><td>", runs[i].clock,
                r->facts.run_ended && !r->facts.interrupted ? "complete" : "incomplete", peak);
        for (size_t t = 0; r->is_agents && t < r->agents.nsearches; t++) {
            fprintf(h, "%s%d (", t ? "<br>" : "", r->agents.searches[t].max_agents);
            html_escape(h, r->agents.searches[t].tier.name);
            fprintf(h, ")");
        }
        fprintf(h, "</td></tr>\n");
    }
    fprintf(h, "</table>\n");
}

/* MPI runs: each rank's share of each phase beside the totals above, so a rank that fell
 * behind (fewer requests, less throughput, a late start) is visible. */
static void rank_tables(FILE *h, struct report_run *runs, int n)
{
    for (int i = 0; i < n; i++) {
        const struct run_facts *f = &runs[i].res.facts;
        if (f->nranks < 2) continue;
        fprintf(h, "<h2>Load per rank: ");
        html_escape(h, runs[i].label);
        fprintf(h,
                "</h2>\n<p>%zu MPI ranks; every rank's clock mapped onto rank 0's within "
                "%.3f ms.</p>\n<table><tr><th>phase</th><th>concurrency</th><th>rank</th>"
                "<th>host</th><th>requests</th><th>failed</th><th>output tokens/s</th>"
                "<th>TTFT p50 (s)</th><th>first request after the phase start (s)</th></tr>\n",
                f->nranks, (double)f->offset_uncertainty_ns / 1e6);
        for (size_t p = 0; p < f->nphases; p++)
            for (size_t k = 0; k < f->nranks; k++) {
                const struct rank_load *L = &f->ranks[k];
                if (!L->sent) continue;
                fprintf(h, "<tr><td>%d</td><td>%d</td><td>%d</td><td>", f->phases[p].index,
                        f->phases[p].concurrency, L->rank);
                html_escape(h, L->host);
                fprintf(
                    h,
                    "</td><td>%zu</td><td>%zu</td><td>%.1f</td><td>%.4f</td><td>%.4f</td></tr>\n",
                    L->sent[p], L->failed[p], L->output_tps[p], L->ttft_p50_s[p], L->start_s[p]);
            }
        fprintf(h, "</table>\n");
    }
}

void report_html_write(const char *out, struct report_run *runs, int n, struct report_outcome *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < n; i++) load_labels(&runs[i]);
    distinct_labels(runs, n);
    struct chart charts[4 + 2 + 3 * REPORT_MAX_RUNS];
    int nch = 0;
    if ((slt_charts(out, runs, n, charts, &nch, o) || agent_charts(out, runs, n, charts, &nch, o) ||
         power_charts(out, runs, n, charts, &nch, o) ||
         server_charts(out, runs, n, charts, &nch, o)) &&
        !o->write_errno)
        o->gnuplot_failed = 1;
    o->charts = nch;
    FILE *h = open_out(out, "index.html", o);
    if (!h) return;
    fprintf(
        h,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>strobe report</title>\n"
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;"
        "text-align:left}figure{margin:2em 0}img{max-width:100%%;border:1px solid #ddd}</style>"
        "</head><body>\n<h1>strobe report</h1>\n<p>%d run(s). Figures recomputed from each "
        "run's event log; definitions in strobe's README (Metrics).</p>\n",
        n);
    run_table(h, runs, n);
    rank_tables(h, runs, n);
    for (int i = 0; i < nch; i++) {
        fprintf(h, "<figure><img src=\"%s.png\" alt=\"", charts[i].name);
        html_escape(h, charts[i].title);
        fprintf(h, "\"><figcaption>");
        html_escape(h, charts[i].title);
        fprintf(h, " (<a href=\"%s.svg\">SVG</a>)</figcaption></figure>\n", charts[i].name);
    }
    fprintf(h, "</body></html>\n");
    close_out(h, out, "index.html", o);
}
