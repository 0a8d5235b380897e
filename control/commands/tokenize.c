/* `strobe tokenize`: text on stdin, token ids on stdout, for checking strobe's tokenizer
 * against other implementations. */
#include "flag_once.h"
#include "commands.h"

#include "tokenizer.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: strobe tokenize --tokenizer FILE [--special|--no-special] [--count] < TEXT\n\n"
        "Reads all of stdin as UTF-8 text and prints its token ids on one line, separated by\n"
        "commas (no BOS/EOS added).\n\n"
        "  --tokenizer FILE   o200k_base.tiktoken (gpt-oss, with the o200k_harmony special\n"
        "                     tokens), cl100k_base.tiktoken, or a byte-level BPE tokenizer.json\n"
        "                     (DeepSeek V3 and the like); scripts/setup.sh fetches two into "
        "tokenizers/\n"
        "  --special          special tokens written in the text become their ids (the default\n"
        "                     for tokenizer.json, as Hugging Face does)\n"
        "  --no-special       special tokens are plain text (the default for .tiktoken, as\n"
        "                     tiktoken's encode_ordinary)\n"
        "  --count            print the number of tokens instead of the ids\n\n"
        "Exit status: 0 done, 1 the tokenizer file, stdin or stdout cannot be used, 2 bad command\n"
        "line.\n");
}

int cmd_tokenize(int argc, char **argv)
{
    enum { O_TOK = 1, O_SPECIAL, O_NO_SPECIAL, O_COUNT, O_HELP };
    static const struct option opts[] = {{"tokenizer", 1, 0, O_TOK},
                                         {"special", 0, 0, O_SPECIAL},
                                         {"no-special", 0, 0, O_NO_SPECIAL},
                                         {"count", 0, 0, O_COUNT},
                                         {"help", 0, 0, O_HELP},
                                         {0}};
    const char *path = NULL;
    int specials = -1, count_only = 0, said_special = 0, said_no_special = 0, o;
    opterr = 0;
    struct flag_once seen = {0};
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (flag_once(&seen, opts, o, optarg, "tokenize", NULL)) return 2;
        switch (o) {
        case O_TOK: path = optarg; break;
        case O_SPECIAL: specials = 1, said_special = 1; break;
        case O_NO_SPECIAL: specials = 0, said_no_special = 1; break;
        case O_COUNT: count_only = 1; break;
        case O_HELP:
        case 'h': usage(stdout); return 0;
        default: {
            /* a short option inside a cluster (-xyz) leaves optind on its word: name the
             * letter */
            char letter[3] = {'-', (char)optopt, 0};
            fprintf(
                stderr,
                "strobe tokenize: unknown or incomplete option '%s'; see strobe tokenize --help.\n",
                isgraph(optopt) ? letter : argv[optind - 1]);
            return 2;
        }
        }
    }
    /* the last of the two once won without a word; a command line with both does not say
     * which was meant */
    if (said_special && said_no_special) {
        fprintf(stderr, "strobe tokenize: --special and --no-special contradict each other; give "
                        "one; see strobe tokenize --help.\n");
        return 2;
    }
    if (!path || optind != argc) {
        fprintf(stderr, "strobe tokenize: give --tokenizer FILE and the text on stdin; see strobe "
                        "tokenize --help.\n");
        return 2;
    }
    char err[512];
    struct tokenizer *t = tokenizer_load(path, err, sizeof err);
    if (!t) {
        fprintf(stderr, "strobe tokenize: --tokenizer: %s.\n", err);
        return 1;
    }
    size_t len = 0, cap = 1 << 16;
    char *text = malloc(cap);
    for (size_t got; text && (got = fread(text + len, 1, cap - len, stdin)) > 0;) {
        len += got;
        if (len < cap) continue;
        char *more = realloc(text, cap *= 2);
        if (!more) free(text);
        text = more;
    }
    if (!text) {
        fprintf(stderr, "strobe tokenize: out of memory reading stdin (%zu bytes read).\n", len);
        tokenizer_free(t);
        return 1;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "strobe tokenize: reading stdin failed (%s); pipe the text in.\n",
                strerror(errno));
        free(text);
        tokenizer_free(t);
        return 1;
    }
    if (specials < 0) specials = tokenizer_specials_by_default(t);
    size_t n = tokenizer_encode(t, text, len, specials, NULL, 0);
    int rc = 0;
    if (count_only) {
        printf("%zu\n", n);
    } else {
        uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        if (ids) {
            tokenizer_encode(t, text, len, specials, ids, n);
            for (size_t i = 0; i < n; i++) printf(i ? ",%u" : "%u", ids[i]);
            printf("\n");
        } else {
            fprintf(stderr, "strobe tokenize: out of memory for %zu token ids; try --count.\n", n);
            rc = 1;
        }
        free(ids);
    }
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "strobe tokenize: writing the result to stdout failed (%s).\n",
                strerror(errno));
        rc = 1;
    }
    free(text);
    tokenizer_free(t);
    return rc;
}
