/* The OpenAI streaming wire format as real servers write it: chat.completion.chunk and
 * text_completion chunks, the usage object, OpenAI-style errors. Pure formatting. */
#ifndef EMU_WIRE_H
#define EMU_WIRE_H
#include <stddef.h>
#include <stdint.h>

struct wire_req {
    const char *id; /* "chatcmpl-emu-…" or "cmpl-emu-…" */
    const char *model;
    int64_t created; /* Unix seconds */
    int chat;        /* 1: chat.completion.chunk, 0: text_completion */
};

struct wire_usage {
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens;
};

enum wire_delta { DELTA_ROLE, DELTA_CONTENT, DELTA_REASONING, DELTA_FINISH };

/* Each writes "data: {...}\n\n" into buf and returns its length (or -1 if cap is too small).
 * usage may be NULL. finish is NULL except for DELTA_FINISH. sent/sched are the emulator's
 * truth stamps, written as x_emu_sent_ns / x_emu_sched_ns; tokens (the chunk's token count,
 * or -1 to leave it out) as x_emu_tokens. */
int emu_wire_chunk(char *buf, size_t cap, const struct wire_req *r, enum wire_delta kind,
                   const char *text, size_t text_len, const char *finish,
                   const struct wire_usage *usage, int64_t sent_ns, int64_t sched_ns, int tokens);
int emu_wire_usage_chunk(char *buf, size_t cap, const struct wire_req *r,
                         const struct wire_usage *u, int64_t sent_ns);
/* A whole non-streaming response body. */
int emu_wire_full_response(char *buf, size_t cap, const struct wire_req *r, const char *content,
                           size_t content_len, const char *reasoning, size_t reasoning_len,
                           const char *finish, const struct wire_usage *u);
/* llama.cpp's per-request timings, as its server puts them in a stream's last chunk. */
struct wire_timings {
    int64_t prompt_n, predicted_n;
    double prompt_ms, predicted_ms;
};
/* Adds ,"timings":{...} to the chunk of length n in buf (made by emu_wire_chunk); returns the
 * new length, or -1 if cap is too small. */
int emu_wire_add_timings(char *buf, size_t cap, int n, const struct wire_timings *t);
int emu_wire_error_body(char *buf, size_t cap, int status, const char *message);
int emu_wire_usage_json(char *buf, size_t cap, const struct wire_usage *u);

#endif
