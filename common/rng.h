/* splitmix64: a tiny seedable generator for nonces, word choice and acceptance draws.
 * Deterministic for a seed, which is what the tests and --seed need; not for secrets. */
#ifndef STROBE_RNG_H
#define STROBE_RNG_H
#include <stdint.h>

static inline uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
