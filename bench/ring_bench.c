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
static atomic_int producer_done;
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
    if (pin(consumer_cpu)) fprintf(stderr, "ring_bench: cannot pin the consumer to CPU %d\n", consumer_cpu);
    unsigned long sum = 0;
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
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv)
{
    long messages = argc > 1 ? atol(argv[1]) : 20000000;
    long bytes = argc > 2 ? atol(argv[2]) : 264;
    int producer_cpu = argc > 4 ? atoi(argv[3]) : 0;
    consumer_cpu = argc > 4 ? atoi(argv[4]) : 1;
    if (messages <= 0 || bytes <= 0 || bytes > (1 << 20)) {
        fprintf(stderr, "usage: ring_bench [MESSAGES [BYTES (1 to 1048576) [PRODUCER_CPU "
                        "CONSUMER_CPU]]]\n");
        return 2;
    }
    if (spsc_init(&ring, 32u << 20)) {
        fprintf(stderr, "ring_bench: out of memory for a 32 MiB ring\n");
        return 1;
    }
    pthread_t consumer;
    pthread_create(&consumer, NULL, consume, NULL);
    if (pin(producer_cpu)) fprintf(stderr, "ring_bench: cannot pin the producer to CPU %d\n", producer_cpu);
    double t0 = thread_cpu_s();
    for (long i = 0; i < messages; i++) {
        unsigned char *p;
        while (!(p = spsc_reserve(&ring, (size_t)bytes))) sched_yield();
        memset(p, (int)i, (size_t)bytes);
        spsc_commit(&ring, (size_t)bytes);
    }
    double t1 = thread_cpu_s();
    atomic_store(&producer_done, 1);
    pthread_join(consumer, NULL);
    printf("%ld messages of %ld bytes, producer on CPU %d, consumer on CPU %d: %.1f ns of producer "
           "CPU per message, ring full %llu times\n",
           messages, bytes, producer_cpu, consumer_cpu, (t1 - t0) / (double)messages * 1e9,
           (unsigned long long)ring.full_waits);
    spsc_free(&ring);
    return 0;
}
