/* cJSON's allocations made must_alloc's (must_alloc.h): cJSON answers running out of memory
 * by leaving out the key or value it was adding, so results.json would lack figures without
 * a word. With these hooks the process exits, status 1, saying so. Each program calls
 * json_must_init once, at start, before any cJSON call. */
#ifndef STROBE_JSON_MUST_H
#define STROBE_JSON_MUST_H

void json_must_init(void);
/* Puts back the hooks a program chose (json_must_init's, else cJSON's own malloc and free),
 * for code that installs its own for a while (a parse that says "out of memory" itself). */
void json_hooks_restore(void);

#endif
