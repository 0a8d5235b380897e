/* The SPSC ring across wrap-around, with a producer and a consumer thread; most messages are
 * committed shorter than the room reserved for them (the event log's in-place writes), so
 * that a reservation that wrapped is sometimes committed at a length that would have fit. */
#include "check.h"
#include "spsc_ring.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

#define MESSAGES 200000

static struct spsc_ring ring;

static void *producer(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < MESSAGES; i++) {
        size_t len = 1 + i % 300;
        unsigned char *p;
        size_t room = len + (i % 7) * 40;
        while (!(p = spsc_reserve(&ring, room))) sched_yield();
        for (size_t k = 0; k < len; k++) p[k] = (unsigned char)(i + k);
        spsc_commit(&ring, len);
    }
    return NULL;
}

int main(void)
{
    spsc_init(&ring, 4096);
    pthread_t t;
    pthread_create(&t, NULL, producer, NULL);
    uint32_t got = 0, bad = 0;
    while (got < MESSAGES) {
        size_t len;
        const unsigned char *p = spsc_peek(&ring, &len);
        if (!p) {
            sched_yield();
            continue;
        }
        if (len != 1 + got % 300) bad++;
        for (size_t k = 0; k < len; k++)
            if (p[k] != (unsigned char)(got + k)) {
                bad++;
                break;
            }
        spsc_release(&ring, len);
        got++;
    }
    pthread_join(t, NULL);
    CHECK(bad == 0, "%u of %d messages came back wrong", bad, MESSAGES);
    CHECK(spsc_reserve(&ring, 3000) == NULL, "a message over half the ring is refused");
    spsc_free(&ring);
    return check_done("test_ring");
}
