#include "emu_wire.h"

#include <stdio.h>
#include <string.h>

/* Appends s as a JSON string body (no quotes). Token text is ASCII words, but escape
 * anyway so a profile can never produce invalid JSON. */
static int put_escaped(char *buf, size_t cap, size_t *at, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char tmp[8];
        const char *rep = NULL;
        size_t rn = 1;
        if (ch == '"')
            rep = "\\\"", rn = 2;
        else if (ch == '\\')
            rep = "\\\\", rn = 2;
        else if (ch == '\n')
            rep = "\\n", rn = 2;
        else if (ch < 0x20)
            rn = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", ch), rep = tmp;
        if (*at + rn >= cap) return -1;
        if (rep)
            memcpy(buf + *at, rep, rn);
        else
            buf[*at] = (char)ch;
        *at += rn;
    }
    return 0;
}

/* The per-token path (a chunk, its usage) appends with these rather than snprintf, whose
 * format parsing was most of the emulator's time per chunk when unpaced. Like snprintf they
 * keep room for, and write, a terminating NUL; -1 when buf is too small. */
static int put_bytes(char *buf, size_t cap, size_t *at, const char *s, size_t n)
{
    if (*at + n >= cap) return -1;
    memcpy(buf + *at, s, n);
    *at += n;
    buf[*at] = 0;
    return 0;
}

/* two digits per division: a chunk's two nanosecond stamps have 19 digits each */
static const char digit_pairs[] = "0001020304050607080910111213141516171819202122232425262728293031"
                                  "323334353637383940414243444546474849"
                                  "5051525354555657585960616263646566676869707172737475767778798081"
                                  "828384858687888990919293949596979899";

static int put_int(char *buf, size_t cap, size_t *at, long long v)
{
    char digits[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
    for (; u >= 100; u /= 100) {
        n += 2;
        memcpy(digits + sizeof digits - n, digit_pairs + 2 * (u % 100), 2);
    }
    if (u >= 10) {
        n += 2;
        memcpy(digits + sizeof digits - n, digit_pairs + 2 * u, 2);
    } else {
        digits[sizeof digits - ++n] = (char)('0' + u);
    }
    if (v < 0) digits[sizeof digits - ++n] = '-';
    return put_bytes(buf, cap, at, digits + sizeof digits - n, n);
}

#define PUT_LIT(lit)                                                                               \
    do {                                                                                           \
        if (put_bytes(buf, cap, &at, lit, sizeof lit - 1)) return -1;                              \
    } while (0)
#define PUT_STR(s)                                                                                 \
    do {                                                                                           \
        if (put_bytes(buf, cap, &at, s, strlen(s))) return -1;                                     \
    } while (0)
#define PUT_INT(v)                                                                                 \
    do {                                                                                           \
        if (put_int(buf, cap, &at, (long long)(v))) return -1;                                     \
    } while (0)

#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + at, cap - at, __VA_ARGS__);                                        \
        if (w_ < 0 || (size_t)w_ >= cap - at) return -1;                                           \
        at += (size_t)w_;                                                                          \
    } while (0)

int emu_wire_usage_json(char *buf, size_t cap, const struct wire_usage *u)
{
    size_t at = 0;
    PUT_LIT("{\"prompt_tokens\":");
    PUT_INT(u->prompt_tokens);
    PUT_LIT(",\"completion_tokens\":");
    PUT_INT(u->completion_tokens);
    PUT_LIT(",\"total_tokens\":");
    PUT_INT(u->prompt_tokens + u->completion_tokens);
    PUT_LIT(",\"prompt_tokens_details\":{\"cached_tokens\":");
    PUT_INT(u->cached_tokens);
    PUT_LIT("},\"completion_tokens_details\":{\"reasoning_tokens\":");
    PUT_INT(u->reasoning_tokens);
    PUT_LIT("}}");
    return (int)at;
}

static int put_head(char *buf, size_t cap, size_t at0, const struct wire_req *r)
{
    size_t at = at0;
    PUT_LIT("{\"id\":\"");
    PUT_STR(r->id);
    if (r->chat)
        PUT_LIT("\",\"object\":\"chat.completion.chunk\",\"created\":");
    else
        PUT_LIT("\",\"object\":\"text_completion\",\"created\":");
    PUT_INT(r->created);
    PUT_LIT(",\"model\":\"");
    PUT_STR(r->model);
    PUT_LIT("\",");
    return (int)(at - at0);
}

int emu_wire_chunk(char *buf, size_t cap, const struct wire_req *r, enum wire_delta kind,
                   const char *text, size_t text_len, const char *finish,
                   const struct wire_usage *usage, int64_t sent_ns, int64_t sched_ns, int tokens)
{
    size_t at = 0;
    PUT_LIT("data: ");
    int w = put_head(buf, cap, at, r);
    if (w < 0) return -1;
    at += (size_t)w;
    if (r->chat) {
        PUT_LIT("\"choices\":[{\"index\":0,\"delta\":{");
        switch (kind) {
        case DELTA_ROLE: PUT_LIT("\"role\":\"assistant\",\"content\":\"\""); break;
        case DELTA_CONTENT:
        case DELTA_REASONING:
            PUT_STR(kind == DELTA_CONTENT ? "\"content\":\"" : "\"reasoning_content\":\"");
            if (put_escaped(buf, cap, &at, text, text_len)) return -1;
            PUT_LIT("\"");
            break;
        case DELTA_FINISH: break;
        }
        PUT_LIT("},\"logprobs\":null,\"finish_reason\":");
    } else {
        PUT_LIT("\"choices\":[{\"index\":0,\"text\":\"");
        if (kind == DELTA_CONTENT || kind == DELTA_REASONING)
            if (put_escaped(buf, cap, &at, text, text_len)) return -1;
        PUT_LIT("\",\"logprobs\":null,\"finish_reason\":");
    }
    if (finish) {
        PUT_LIT("\"");
        PUT_STR(finish);
        PUT_LIT("\"}]");
    } else {
        PUT_LIT("null}]");
    }
    if (usage) {
        PUT_LIT(",\"usage\":");
        int u = emu_wire_usage_json(buf + at, cap - at, usage);
        if (u < 0) return -1;
        at += (size_t)u;
    }
    PUT_LIT(",\"x_emu_sent_ns\":");
    PUT_INT(sent_ns);
    PUT_LIT(",\"x_emu_sched_ns\":");
    PUT_INT(sched_ns);
    if (tokens >= 0) {
        PUT_LIT(",\"x_emu_tokens\":");
        PUT_INT(tokens);
    }
    PUT_LIT("}\n\n");
    return (int)at;
}

int emu_wire_add_timings(char *buf, size_t cap, int n, const struct wire_timings *t)
{
    /* the chunk ends in "}\n\n": the object goes before its closing brace */
    if (n < 3) return -1;
    size_t at = (size_t)n - 3;
    double prompt_per_token = t->prompt_n ? t->prompt_ms / (double)t->prompt_n : 0;
    double predicted_per_token = t->predicted_n ? t->predicted_ms / (double)t->predicted_n : 0;
    PUT(",\"timings\":{\"prompt_n\":%lld,\"prompt_ms\":%.3f,\"prompt_per_token_ms\":%.6f,"
        "\"prompt_per_second\":%.3f,\"predicted_n\":%lld,\"predicted_ms\":%.3f,"
        "\"predicted_per_token_ms\":%.6f,\"predicted_per_second\":%.3f}}\n\n",
        (long long)t->prompt_n, t->prompt_ms, prompt_per_token,
        t->prompt_ms > 0 ? 1e3 * (double)t->prompt_n / t->prompt_ms : 0, (long long)t->predicted_n,
        t->predicted_ms, predicted_per_token,
        t->predicted_ms > 0 ? 1e3 * (double)t->predicted_n / t->predicted_ms : 0);
    return (int)at;
}

int emu_wire_usage_chunk(char *buf, size_t cap, const struct wire_req *r,
                         const struct wire_usage *u, int64_t sent_ns)
{
    size_t at = 0;
    PUT("data: ");
    int w = put_head(buf, cap, at, r);
    if (w < 0) return -1;
    at += (size_t)w;
    PUT("\"choices\":[],\"usage\":");
    int n = emu_wire_usage_json(buf + at, cap - at, u);
    if (n < 0) return -1;
    at += (size_t)n;
    PUT(",\"x_emu_sent_ns\":%lld}\n\n", (long long)sent_ns);
    return (int)at;
}

int emu_wire_full_response(char *buf, size_t cap, const struct wire_req *r, const char *content,
                           size_t content_len, const char *reasoning, size_t reasoning_len,
                           const char *finish, const struct wire_usage *u)
{
    size_t at = 0;
    PUT("{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":\"%s\",\"choices\":[{"
        "\"index\":0,",
        r->id, r->chat ? "chat.completion" : "text_completion", (long long)r->created, r->model);
    if (r->chat) {
        PUT("\"message\":{\"role\":\"assistant\",\"content\":\"");
        if (put_escaped(buf, cap, &at, content, content_len)) return -1;
        PUT("\"");
        if (reasoning_len) {
            PUT(",\"reasoning_content\":\"");
            if (put_escaped(buf, cap, &at, reasoning, reasoning_len)) return -1;
            PUT("\"");
        }
        PUT("},");
    } else {
        PUT("\"text\":\"");
        if (put_escaped(buf, cap, &at, reasoning, reasoning_len)) return -1;
        if (put_escaped(buf, cap, &at, content, content_len)) return -1;
        PUT("\",");
    }
    PUT("\"logprobs\":null,\"finish_reason\":\"%s\"}],\"usage\":", finish);
    int n = emu_wire_usage_json(buf + at, cap - at, u);
    if (n < 0) return -1;
    at += (size_t)n;
    PUT("}");
    return (int)at;
}

int emu_wire_error_body(char *buf, size_t cap, int status, const char *message)
{
    size_t at = 0;
    const char *type = status == 429   ? "rate_limit_exceeded"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    PUT("{\"error\":{\"message\":\"");
    if (put_escaped(buf, cap, &at, message, strlen(message))) return -1;
    PUT("\",\"type\":\"%s\",\"param\":null,\"code\":%d}}", type, status);
    return (int)at;
}
