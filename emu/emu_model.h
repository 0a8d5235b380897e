/* Pure parts of the performance model that both the server and --capacity use, so the
 * closed forms and the implementation cannot drift apart. */
#ifndef EMU_MODEL_H
#define EMU_MODEL_H
#include "emu_params.h"
#include <stddef.h>
#include <stdint.h>

/* t_step(b) = A + C·b, in nanoseconds. */
int64_t emu_model_step_ns(const struct emu_params *p, int running);
/* Uncached prompt tokens / prefill rate, in nanoseconds. */
int64_t emu_model_prefill_ns(const struct emu_params *p, int64_t uncached_tokens);
/* Expected tokens per step: 1 + p + p² + … + p^K. */
double emu_model_tokens_per_step(const struct emu_params *p);
/* Draws this step's token count (1 + leading accepted drafts) from rng. */
int emu_model_draw_tokens(const struct emu_params *p, uint64_t *rng);
/* Accelerator power for `running` decoding requests, watts (all accelerators). */
double emu_model_power_w(const struct emu_params *p, int running);
/* Input tokens of a rendered prompt: ceil(bytes / 4). */
int64_t emu_model_prompt_tokens(size_t rendered_bytes);
/* Length of a request's output when the model stops by itself. */
int emu_model_natural_tokens(const struct emu_params *p, uint64_t request_hash);

uint64_t emu_model_hash(uint64_t h, const void *data, size_t n);

#endif
