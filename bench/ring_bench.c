/* The event log's ring across two cores (a benchmark, never a test): a producer on one CPU
 * writes messages of a record and a body, as a worker does, and a consumer on another reads
 * them, as the collector does; prints the producer's CPU per message.
 * Usage: ring_bench [MESSAGES [BYTES [PRODUCER_CPU CONSUMER_CPU]]]
 * (defaults 20000000, 264: a 64-byte record and a 200-byte chunk; CPUs 0 and 1). */
#include "spsc_ring.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct spsc_ring ring;
static atomic_int producer_done, consumer_unpinned;
static int consumer_cpu;

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static double thread_cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void *consume(void *arg)
{
    (void)arg;
    if (pin(consumer_cpu)) {
        atomic_store(&consumer_unpinned, 1); /* main says so */
        return NULL;
    }
    unsigned long sum = 1;
    size_t len;
    for (;;) {
        const unsigned char *p = spsc_peek(&ring, &len);
        if (!p) {
            if (atomic_load(&producer_done) && !spsc_peek(&ring, &len)) break;
            continue;
        }
        sum += p[0] + p[len - 1];
        spsc_release(&ring, len);
    }
    return (void *)(uintptr_t)(sum | 1); /* never NULL: NULL says the pinning failed */
}

/* A whole number in [lo, hi] from arg, or -1. */
static long number(const char *arg, long lo, long hi)
{
    char *end;
    long v = strtol(arg, &end, 10);
    return end != arg && !*end && v >= lo && v <= hi ? v : -1;
}

int main(int argc, char **argv)
{
    long messages = argc > 1 ? number(argv[1], 1, 1L << 40) : 20000000;
    long bytes = argc > 2 ? number(argv[2], 1, 1 << 20) : 264;
    long producer_cpu = argc > 4 ? number(argv[3], 0, CPU_SETSIZE - 1) : 0;
    long consumer = argc > 4 ? number(argv[4], 0, CPU_SETSIZE - 1) : 1;
    if (argc == 4 || argc > 5 || messages < 0 || bytes < 0 || producer_cpu < 0 || consumer < 0) {
        fprintf(stderr, "usage: ring_bench [MESSAGES [BYTES (1 to 1048576) [PRODUCER_CPU "
                        "CONSUMER_CPU]]]\n");
        return 2;
    }
    consumer_cpu = (int)consumer;
    if (spsc_init(&ring, 32u << 20)) {
        fprintf(stderr, "ring_bench: out of memory for a 32 MiB ring\n");
        return 1;
    }
    if (pin((int)producer_cpu)) {
        fprintf(stderr,
                "ring_bench: cannot run the producer on CPU %ld; name CPUs this machine has\n",
                producer_cpu);
        return 1;
    }
    pthread_t consumer_thread;
    if (pthread_create(&consumer_thread, NULL, consume, NULL)) {
        fprintf(stderr, "ring_bench: cannot start the consumer thread\n");
        return 1;
    }
    double t0 = thread_cpu_s();
    for (long i = 0; i < messages; i++) {
        unsigned char *p;
        while (!(p = spsc_reserve(&ring, (size_t)bytes))) {
            if (atomic_load(&consumer_unpinned)) break;
            sched_yield();
        }
        if (!p) break;
        memset(p, (int)i, (size_t)bytes);
        spsc_commit(&ring, (size_t)bytes);
    }
    double t1 = thread_cpu_s();
    atomic_store(&producer_done, 1);
    void *pinned;
    pthread_join(consumer_thread, &pinned);
    if (!pinned) {
        fprintf(stderr,
                "ring_bench: cannot run the consumer on CPU %d; name CPUs this machine has\n",
                consumer_cpu);
        return 1;
    }
    printf(
        "%ld messages of %ld bytes, producer on CPU %ld, consumer on CPU %d: %.1f ns of producer "
        "CPU per message, ring full %llu times\n",
        messages, bytes, producer_cpu, consumer_cpu, (t1 - t0) / (double)messages * 1e9,
        (unsigned long long)ring.full_waits);
    spsc_free(&ring);
    return 0;
}
