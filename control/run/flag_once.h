/* An option that keeps one value, given twice on one command line (`--out a --out b`), would
 * lose its first value without a word: most likely a script's mistake. Each command's
 * parser asks here before it takes an option. */
#ifndef STROBE_FLAG_ONCE_H
#define STROBE_FLAG_ONCE_H
#include <getopt.h>

/* options with a value one command line may give: more than any command has (slt and agents
 * about 52); past it, flag_once refuses the command line rather than stop watching */
#define FLAG_ONCE_MAX 128

struct flag_once {
    int id[FLAG_ONCE_MAX];
    const char *value[FLAG_ONCE_MAX];
    int n;
};

/* 0 when option id `o` may be taken with `value`: the first time, an option without a value
 * or not in `table`, or one named in `repeatable` (names without dashes, NULL-terminated;
 * NULL: none). Otherwise 2, after one sentence on stderr: "strobe CMD: --NAME is given twice
 * ('A', then 'B'); give it once; see strobe CMD --help." */
int flag_once(struct flag_once *seen, const struct option *table, int o, const char *value,
              const char *cmd, const char *const *repeatable);
/* That sentence, for a command that parses its own argv (no getopt table); returns 2. */
int flag_given_twice(const char *cmd, const char *name, const char *first, const char *second);

#endif
