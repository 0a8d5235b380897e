#include "redact.h"

#include <string.h>

static const char *secret;
static size_t secret_len;

int redact_set(const char *s)
{
    secret = NULL;
    secret_len = 0;
    if (!s || !*s) return 0;
    if (strlen(s) < REDACT_MIN_LEN) return -1;
    secret = s;
    secret_len = strlen(s);
    return 0;
}

int redact_holds(const char *buf, size_t len)
{
    return secret_len && buf && memmem(buf, len, secret, secret_len) != NULL;
}

size_t redact(char *buf, size_t len)
{
    if (!secret_len || !buf) return 0;
    size_t n = 0;
    char *p = buf, *end = buf + len;
    while ((size_t)(end - p) >= secret_len &&
           (p = memmem(p, (size_t)(end - p), secret, secret_len))) {
        memset(p, '*', secret_len);
        p += secret_len;
        n++;
    }
    return n;
}

size_t redact_str(char *s) { return s ? redact(s, strlen(s)) : 0; }
