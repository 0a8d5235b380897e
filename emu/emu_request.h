/* What emu_request.c offers outside the server's own state (emu_state.h has the rest). */
#ifndef EMU_REQUEST_H
#define EMU_REQUEST_H

struct tokenizer;
/* From now on prompt_tokens is t's count of the rendered prompt, not its bytes / 4. */
void emu_request_count_prompts_with(struct tokenizer *t);

#endif
