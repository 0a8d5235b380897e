/* The API key (STROBE_API_KEY) blanked out of everything strobe writes or prints: a server
 * may echo it (a 401 body "bad key: Authorization: Bearer sk-…", a debug field in a chunk).
 * Every occurrence becomes as many '*': the length is kept, so the body offsets that
 * events.bin's records hold into bodies.bin stay valid. The event log's writer thread
 * scans bodies before they are written (never the workers); control scans its own
 * messages. */
#ifndef STROBE_REDACT_H
#define STROBE_REDACT_H
#include <stddef.h>

/* Shorter keys are not redacted: they would match ordinary text and corrupt the answers
 * strobe measures. */
#define REDACT_MIN_LEN 8

/* Sets the secret, once, before any thread that redacts starts (NULL or "": none).
 * Returns 0, or -1 when the key is too short to be redacted (it is then not set). */
int redact_set(const char *secret);
/* Whether buf holds the secret (0 when none is set). */
int redact_holds(const char *buf, size_t len);
/* Blanks every occurrence of the secret in buf; returns how many there were. */
size_t redact(char *buf, size_t len);
/* The same on a NUL-terminated string. */
size_t redact_str(char *s);

#endif
