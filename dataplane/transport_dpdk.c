/* The main program's side of the DPDK transport: EAL, one port per worker, and one copy of the
 * lwIP module per worker, each loaded with dlmopen(LM_ID_NEWLM) so that its liblwip (and the
 * libc and OpenSSL under it) has globals of its own. Only neutral headers: the module gets
 * its port as a table of pointers to dpdk_port.c. */
#include "transport_dpdk.h"

#include "dpdk_port.h"
#include "lwip_stack.h"
#include "tcp_linger.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* glibc's default glibc.rtld.nns: static TLS is reserved for this many link namespaces,
 * the program's own included */
#define DEFAULT_NAMESPACES 4

struct worker_stack {
    struct dpdk_port *port;
    void *module; /* dlmopen handle: this worker's namespace */
    const struct lwip_stack_api *api;
    struct transport_ctx *ctx;
    struct dpdk_options o; /* o.local_ips points at ips */
    char ips[1024];
};

struct dpdk_dataplane {
    int n;
    char impair[128];
    char idle[160]; /* the idle policy in force, for describe */
    struct worker_stack w[DPDK_MAX_WORKERS];
};

/* Run from the build tree (the tests): the module built there; installed: the installed one,
 * whichever build tree may still exist. */
static void module_path(char *buf, size_t n)
{
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = 0;
    size_t root = strlen(STROBE_BUILD_ROOT);
    int in_build = !strncmp(exe, STROBE_BUILD_ROOT, root) && exe[root] == '/';
    snprintf(buf, n, "%s", in_build ? STROBE_LWIP_MODULE_BUILD : STROBE_LWIP_MODULE_INSTALL);
}

int transport_dpdk_prepare(int workers, char *err, size_t errlen)
{
    if (workers + 1 <= DEFAULT_NAMESPACES) return 0;
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "glibc.rtld.nns=")) return 0; /* set already: by us, or by the user */
    char value[512];
    snprintf(value, sizeof value, "%s%sglibc.rtld.nns=%d", t ? t : "", t ? ":" : "", workers + 1);
    /* the same command line, read back from the kernel */
    static char cmdline[65536];
    char *argv[1024];
    int argc = 0;
    FILE *f = fopen("/proc/self/cmdline", "r");
    size_t len = f ? fread(cmdline, 1, sizeof cmdline - 1, f) : 0;
    if (f) fclose(f);
    for (size_t at = 0; at < len && argc < 1023; at += strlen(cmdline + at) + 1)
        argv[argc++] = cmdline + at;
    argv[argc] = NULL;
    if (argc && setenv("GLIBC_TUNABLES", value, 1) == 0) {
        fprintf(stderr,
                "strobe: restarting with GLIBC_TUNABLES=%s: %d lwIP stacks need %d link "
                "namespaces with static TLS (glibc reserves %d)\n",
                value, workers, workers + 1, DEFAULT_NAMESPACES);
        execv("/proc/self/exe", argv);
    }
    snprintf(err, errlen,
             "--threads %d with --transport dpdk needs GLIBC_TUNABLES=glibc.rtld.nns=%d and "
             "strobe could not restart itself with it (%s): set it in the environment",
             workers, workers + 1, strerror(errno));
    return -1;
}

/* Addresses [from, to) of the comma-separated list into buf, comma-separated. */
static void slice(const char *list, int from, int to, char *buf, size_t n)
{
    size_t at = 0;
    int i = 0;
    buf[0] = 0;
    for (const char *a = list; *a && i < to; i++) {
        size_t len = strcspn(a, ",");
        if (i >= from && at < n)
            at += (size_t)snprintf(buf + at, n - at, "%s%.*s", at ? "," : "", (int)len, a);
        a += len + (a[len] == ',');
    }
}

static int count_addresses(const char *list)
{
    int n = 0;
    for (const char *a = list; a && *a; a += strcspn(a, ","), a += *a == ',') n++;
    return n;
}

/* The policy the options ask for: --idle, else the older --idle-backoff-us alone (0
 * busy-polls), else interrupts. */
static enum dpdk_idle idle_requested(const struct dpdk_options *o)
{
    if (o->idle && !strcmp(o->idle, "poll")) return DPDK_IDLE_POLL;
    if (o->idle && !strcmp(o->idle, "backoff")) return DPDK_IDLE_BACKOFF;
    if (!o->idle && o->idle_backoff_us >= 0)
        return o->idle_backoff_us > 0 ? DPDK_IDLE_BACKOFF : DPDK_IDLE_POLL;
    return DPDK_IDLE_INTERRUPT;
}

/* What worker i's port gives of the requested policy, into c and, for worker 0, d->idle. */
static void resolve_idle(struct dpdk_dataplane *d, int i, const struct dpdk_options *o,
                         struct lwip_stack_config *c)
{
    const struct worker_stack *w = &d->w[i];
    c->idle = idle_requested(o);
    c->backoff_us = o->idle_backoff_us > 0 ? o->idle_backoff_us : DPDK_DEFAULT_BACKOFF_US;
    const char *missing =
        c->idle == DPDK_IDLE_INTERRUPT ? dpdk_port_rx_intr_missing(w->port) : NULL;
    if (missing) c->idle = DPDK_IDLE_BACKOFF;
    if (i) return;
    if (c->idle == DPDK_IDLE_INTERRUPT)
        snprintf(d->idle, sizeof d->idle, "Rx interrupt after %g us without a frame",
                 o->idle_spin_us);
    else if (c->idle == DPDK_IDLE_POLL)
        snprintf(d->idle, sizeof d->idle, "busy-poll");
    else
        snprintf(d->idle, sizeof d->idle, "back-off from %g us after %g us without a frame%s%s%s",
                 c->backoff_us, o->idle_spin_us, missing ? " (" : "", missing ? missing : "",
                 missing ? ")" : "");
}

/* Worker i: its port, its own copy of the module, its stack. */
static int start_worker(struct dpdk_dataplane *d, int i, const struct dpdk_options *o,
                        const struct endpoint *ep, char *err, size_t errlen)
{
    struct worker_stack *w = &d->w[i];
    int want_intr = idle_requested(o) == DPDK_IDLE_INTERRUPT;
    if (!(w->port = dpdk_port_open(i, want_intr, err, errlen))) return -1;
    char path[4200];
    module_path(path, sizeof path);
    w->module = dlmopen(LM_ID_NEWLM, path, RTLD_NOW | RTLD_LOCAL);
    const struct lwip_stack_api *(*entry)(void) =
        w->module ? (const struct lwip_stack_api *(*)(void))dlsym(w->module, LWIP_STACK_ENTRY)
                  : NULL;
    if (!entry) {
        const char *why = dlerror();
        snprintf(err, errlen, "cannot load worker %d's lwIP stack %s: %s%s", i, path,
                 why ? why : "no entry",
                 why && strstr(why, "static TLS")
                     ? " (set GLIBC_TUNABLES=glibc.rtld.nns= to the workers + 1)"
                 : why && strstr(why, LWIP_STACK_ENTRY)
                     ? " (the module is from another strobe build: install strobe and "
                       "strobe-lwip.so from one build)"
                     : "");
        return -1;
    }
    w->api = entry();
    w->o = *o;
    w->o.local_ips = w->ips;
    struct lwip_stack_config c = {
        &w->o,
        ep,
        {w->port, dpdk_port_rx, dpdk_port_rx_done, dpdk_port_tx, dpdk_port_tx_flush,
         dpdk_port_calibrate, dpdk_port_mac, dpdk_port_driver, dpdk_port_rx_intr_arm,
         dpdk_port_rx_intr_wait, dpdk_port_tx_pending},
        DPDK_IDLE_INTERRUPT,
        0,
    };
    resolve_idle(d, i, o, &c);
    char why[400];
    if (!(w->ctx = w->api->start(&c, why, sizeof why))) {
        if (d->n > 1)
            snprintf(err, errlen, "worker %d (DPDK port %d): %s", i, i, why);
        else
            snprintf(err, errlen, "%s", why);
        return -1;
    }
    return 0;
}

/* The ports and the EAL, without waiting for connections: a failed start had none. */
static void close_ports(struct dpdk_dataplane *d)
{
    /* the modules stay loaded: their lwIP cannot be torn down, and the process exits */
    for (int i = 0; i < d->n; i++) dpdk_port_close(d->w[i].port);
    dpdk_eal_cleanup();
    free(d);
}

struct dpdk_dataplane *transport_dpdk_start(const struct dpdk_options *o, const struct endpoint *ep,
                                            int workers, int fit_ports, char *err, size_t errlen)
{
    int naddr = count_addresses(o->local_ips);
    if (workers < 1 || workers > DPDK_MAX_WORKERS) {
        snprintf(err, errlen, "--transport dpdk runs 1 to %d workers, not %d", DPDK_MAX_WORKERS,
                 workers);
        return NULL;
    }
    if (naddr < workers) {
        snprintf(err, errlen,
                 "--local-ip gives %d address(es) for %d workers: give at least one per worker",
                 naddr, workers);
        return NULL;
    }
    if (dpdk_eal_init(o->eal_args, err, errlen)) return NULL;
    int ports = dpdk_port_count();
    if (fit_ports && ports > 0 && ports < workers) workers = ports;
    if (ports > 0 && ports < workers) {
        snprintf(err, errlen,
                 "DPDK found %d port(s) for %d workers: give one port per worker in --dpdk-args "
                 "(e.g. one --vdev=net_af_packetN,iface=IF per interface)",
                 ports, workers);
        dpdk_eal_cleanup();
        return NULL;
    }
    struct dpdk_dataplane *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory while starting the DPDK workers");
        dpdk_eal_cleanup();
        return NULL;
    }
    d->n = workers;
    if (o->impair) snprintf(d->impair, sizeof d->impair, "%s", o->impair);
    for (int i = 0; i < workers; i++) {
        /* contiguous slices, the first workers taking one more when they do not divide */
        slice(o->local_ips, i * naddr / workers, (i + 1) * naddr / workers, d->w[i].ips,
              sizeof d->w[i].ips);
        if (start_worker(d, i, o, ep, err, errlen)) {
            close_ports(d);
            return NULL;
        }
    }
    return d;
}

int transport_dpdk_workers(const struct dpdk_dataplane *d) { return d->n; }

struct transport_ctx *transport_dpdk_ctx(struct dpdk_dataplane *d, int worker)
{
    return d->w[worker].ctx;
}

const struct transport_ops *transport_dpdk_ops(struct dpdk_dataplane *d, int worker)
{
    return d->w[worker].api->ops();
}

void transport_dpdk_describe(const struct dpdk_dataplane *d, char *buf, size_t n)
{
    const struct worker_stack *w0 = &d->w[0];
    char clock[200], addrs[256];
    dpdk_port_clock_describe(w0->port, clock, sizeof clock);
    size_t at =
        (size_t)snprintf(buf, n, "%s on %s", w0->api->ops()->name, dpdk_port_driver(w0->port));
    if (d->n > 1 && at < n)
        at += (size_t)snprintf(buf + at, n - at, ", %d workers (a port and an lwIP stack each)",
                               d->n);
    for (int i = 0; i < d->n && at < n; i++) {
        d->w[i].api->addresses(addrs, sizeof addrs);
        if (d->n > 1)
            at += (size_t)snprintf(buf + at, n - at, "%s w%d: %s", i ? "," : ", sources", i, addrs);
        else
            at += (size_t)snprintf(buf + at, n - at, ", source %s", addrs);
    }
    if (at < n) at += (size_t)snprintf(buf + at, n - at, "; stamps: %s", clock);
    if (at < n) at += (size_t)snprintf(buf + at, n - at, "; idle: %s", d->idle);
    if (d->impair[0] && at < n) snprintf(buf + at, n - at, "; IMPAIRED rx (test): %s", d->impair);
}

/* The workers whose stack started (a failed start leaves the rest without one). */
static unsigned linger_round(void *arg, int *frames)
{
    struct dpdk_dataplane *d = arg;
    unsigned unclosed = 0;
    for (int i = 0; i < d->n; i++)
        if (d->w[i].ctx) unclosed += d->w[i].api->linger_round(frames);
    return unclosed;
}

static unsigned linger_abort(void *arg)
{
    struct dpdk_dataplane *d = arg;
    unsigned reset = 0;
    for (int i = 0; i < d->n; i++)
        if (d->w[i].ctx) reset += d->w[i].api->linger_abort();
    return reset;
}

/* 1 when every started stack sent its barrier; 0 (settle) when one could not */
static int linger_barrier(void *arg)
{
    struct dpdk_dataplane *d = arg;
    int all = 1;
    for (int i = 0; i < d->n; i++)
        if (d->w[i].ctx) all &= d->w[i].api->linger_barrier();
    return all;
}

static int linger_barrier_done(void *arg)
{
    struct dpdk_dataplane *d = arg;
    for (int i = 0; i < d->n; i++)
        if (d->w[i].ctx && !d->w[i].api->linger_barrier_done()) return 0;
    return 1;
}

void transport_dpdk_stop(struct dpdk_dataplane *d)
{
    if (!d) return;
    /* every worker's connections finish closing, all at once, before the ports go */
    struct tcp_linger_outcome o = tcp_linger(&(struct tcp_linger_stacks){
        d, linger_round, linger_abort, linger_barrier, linger_barrier_done});
    if (o.reset)
        fprintf(stderr,
                "strobe: warning: %u TCP connection(s) had not finished closing when strobe "
                "left (the server's answer did not come within %lld ms of silence, or a frame "
                "was lost) and were reset; the run's results are not affected. If it recurs, "
                "look for drops in the port's statistics, a round trip above 100 ms, or "
                "--dpdk-impair\n",
                o.reset, TCP_LINGER_QUIET_NS / 1000000);
    if (o.barrier_late)
        fprintf(stderr,
                "strobe: warning: the server had not read strobe's last frames when strobe "
                "closed its DPDK ports (no reply to an ARP request sent behind them): it may "
                "keep some of strobe's connections half-open until it times them out; the run's "
                "results are not affected (a server far behind, or a next hop that does not "
                "answer ARP: give it with --gateway-mac)\n");
    close_ports(d);
}
