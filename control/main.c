/* strobe: the subcommand table, the usage list it prints, and dispatch. */
#include "commands.h"
#include "json_must.h"
#include "clock.h"
#include "ranks.h"
#include "redact.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct command {
    const char *name;
    const char *summary; /* its line in `strobe --help` */
    int (*run)(int argc, char **argv);
};

/* commands.def, in the order `strobe --help` lists them */
static const struct command commands[] = {
#define COMMAND(name, summary) {#name, summary, cmd_##name},
#include "commands.def"
#undef COMMAND
};

/* A subcommand's name as typed: the C name with '-' for '_' (export_aa is export-aa). */
static int name_is(const char *c_name, const char *typed)
{
    for (; *c_name && *typed; c_name++, typed++)
        if (*typed != (*c_name == '_' ? '-' : *c_name)) return 0;
    return !*c_name && !*typed;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: strobe SUBCOMMAND [options]\n\n"
               "A load tester for LLM inference systems, with timestamps that do not lie.\n\n"
               "subcommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char typed[32];
        snprintf(typed, sizeof typed, "%s", commands[i].name);
        for (char *p = typed; *p; p++)
            if (*p == '_') *p = '-';
        fprintf(f, "  %-9s %s\n", typed, commands[i].summary);
    }
    fprintf(f, "\nstrobe SUBCOMMAND --help tells more. Metric definitions: README.md, "
               "section Metrics.\n");
}

int main(int argc, char **argv)
{
    /* before any thread starts: every command blanks the key out of what it writes */
    redact_set(getenv("STROBE_API_KEY"));
    clock_init();
    json_must_init();
    /* a closed pipe on stdout (strobe import ... | head -1) is a write error each command
     * reports and cleans up after, not a signal that kills it half-way */
    signal(SIGPIPE, SIG_IGN);
    /* under mpirun: MPI starts here, before any thread */
    if (ranks_init(&argc, &argv)) return 1;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (name_is(commands[i].name, argv[1])) {
            int rc = commands[i].run(argc - 1, argv + 1);
            /* a failed rank ends them all: the others may wait for it */
            if (rc == 1 && ranks_size() > 1) ranks_abort(1);
            ranks_finalize();
            return rc;
        }
    fprintf(stderr, "strobe: unknown subcommand '%s'; try strobe --help.\n", argv[1]);
    return 2;
}
