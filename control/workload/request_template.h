/* SLT requests: one pre-rendered HTTP request (head + JSON body, --extra-body merged) with a
 * fixed-width nonce slot at the start of the prompt. Per request only the nonce digits are
 * written (seeded by worker and sequence), so every prompt is distinct and no prefix cache
 * can help, while building a request costs one memcpy and no allocation. */
#ifndef STROBE_REQUEST_TEMPLATE_H
#define STROBE_REQUEST_TEMPLATE_H
#include "endpoint.h"
#include <stddef.h>
#include <stdint.h>

struct request_template {
    char *bytes;
    size_t len;
    size_t nonce_at;      /* offset of the nonce slot in bytes */
    size_t request_id_at; /* offset of the X-Request-ID digits */
    uint64_t seed;
};

struct template_params {
    const struct endpoint *ep;
    const char *model;
    int chat;         /* 1: /v1/chat/completions, 0: /v1/completions */
    int filler_words; /* prompt length knob, calibrated against usage.prompt_tokens */
    int max_tokens;
    int ignore_eos;
    const char *extra_body; /* JSON object text or NULL */
    const char *api_key;    /* or NULL; only ever copied into the Authorization header */
    uint64_t seed;
};

/* The prompt text of filler_words words after the nonce slot, as every request carries it,
 * with the slot rendered as a sample nonce (its token count is the same for every nonce:
 * single digits and spaces). malloc'd, NUL-terminated. */
char *template_prompt_sample(int filler_words);

/* Checks --extra-body: a JSON object that sets none of the keys strobe sets itself (model,
 * messages, prompt, stream, max_tokens; with agents also tools and ignore_eos) and, in
 * stream_options (merged into strobe's), leaves include_usage true. 0, or -1 with one
 * clause in err. */
int extra_body_check(const char *extra_body, int agents, char *err, size_t errlen);

/* Agents' request tail: ",\"model\":…,\"stream\":true,\"stream_options\":{…}" plus
 * --extra-body's other fields, JSON-escaped (the model may hold any character). malloc'd;
 * NULL with err set when --extra-body is refused or the fields are longer than
 * TEMPLATE_TAIL_FIELDS_MAX. */
#define TEMPLATE_TAIL_FIELDS_MAX 6144
char *template_tail_fields(const char *model, const char *extra_body, char *err, size_t errlen);

/* 0, or -1 with err set (e.g. --extra-body is not a JSON object). The nonce slot is found
 * from the end of the body (the prompt is its last field), never by searching it. */
int template_build(struct request_template *t, const struct template_params *p, char *err,
                   size_t errlen);
void template_free(struct request_template *t);
/* request_build_fn for the workers: copies the template and writes a fresh nonce and the
 * request's id (worker.h). */
size_t template_fill(void *arg, int worker, uint64_t seq, char *buf, size_t cap);

#endif
