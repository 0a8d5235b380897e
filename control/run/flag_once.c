#include "flag_once.h"

#include <stdio.h>
#include <string.h>

int flag_given_twice(const char *cmd, const char *name, const char *first, const char *second)
{
    fprintf(stderr,
            "strobe %s: --%s is given twice ('%.200s', then '%.200s'); give it once; see strobe "
            "%s --help.\n",
            cmd, name, first ? first : "", second ? second : "", cmd);
    return 2;
}

int flag_once(struct flag_once *seen, const struct option *table, int o, const char *value,
              const char *cmd, const char *const *repeatable)
{
    const struct option *opt = table;
    while (opt->name && opt->val != o) opt++;
    if (!opt->name || opt->has_arg == no_argument) return 0;
    for (const char *const *r = repeatable; r && *r; r++)
        if (!strcmp(*r, opt->name)) return 0;
    for (int i = 0; i < seen->n; i++)
        if (seen->id[i] == o) return flag_given_twice(cmd, opt->name, seen->value[i], value);
    if (seen->n == FLAG_ONCE_MAX) {
        fprintf(stderr,
                "strobe %s: more than %d options with a value on one command line; give "
                "fewer; see strobe %s --help.\n",
                cmd, FLAG_ONCE_MAX, cmd);
        return 2;
    }
    seen->id[seen->n] = o;
    seen->value[seen->n++] = value;
    return 0;
}
