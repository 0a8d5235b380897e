/* Whether a run's figures stand, decided once from its results and stated before any figure
 * (MLPerf LoadGen's habit): `valid` says the run measured what it claims; `comparable` says it
 * also met the published methods' durations and gates. The gates are named here so that the
 * live runs (slt, agents) and the analysis apply the same ones. */
#ifndef STROBE_VALIDITY_H
#define STROBE_VALIDITY_H
#include <stddef.h>

/* SLT: at most this share of the requests sent in measured windows may fail */
#define SLT_MAX_FAILED_SHARE 0.01
/* durations of AA's SLT, for `comparable` */
#define SLT_COMPARABLE_PHASE_S 180.0
#define SLT_COMPARABLE_RAMP_S  30.0
/* AgentPerf's steady-state gates of a window, for `comparable` */
#define AGENTS_COMPARABLE_WINDOW_S 600.0
#define AGENTS_MIN_TRAJECTORIES    30
#define AGENTS_MIN_PER_AGENT       3

#define VALIDITY_MAX_NOTES 16

struct run_validity {
    int valid, comparable;
    char why[300];    /* the first reason the run is not valid, one sentence; "" when valid */
    const char *rule; /* the rule applied, in words */
    char notes[VALIDITY_MAX_NOTES][640]; /* room for a tap clock note naming its file */
    size_t nnotes;
};

struct run_results;
/* Fills v from res (its facts, phases, and the run header's configuration). */
void validity_decide(const struct run_results *res, struct run_validity *v);

#endif
