#include "request_template.h"
#include "worker.h"

#include "rng.h"
#include "must_alloc.h"
#include "json_whole.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_DIGITS 32
#define NONCE_LEN    (NONCE_DIGITS * 2) /* "d d d ... d\n" */

/* Common English words: real tokenizers give about one token each, so the prompt length
 * moves smoothly with the word count during calibration. */
static const char *const words[] = {
    "time",     "year",    "people",      "way",      "day",        "man",    "thing",   "woman",
    "life",     "child",   "world",       "school",   "state",      "family", "student", "group",
    "country",  "problem", "hand",        "part",     "place",      "case",   "week",    "company",
    "system",   "program", "question",    "work",     "government", "number", "night",   "point",
    "home",     "water",   "room",        "mother",   "area",       "money",  "story",   "fact",
    "month",    "lot",     "right",       "study",    "book",       "eye",    "job",     "word",
    "business", "issue",   "side",        "kind",     "head",       "house",  "service", "friend",
    "father",   "power",   "hour",        "game",     "line",       "end",    "member",  "law",
    "car",      "city",    "community",   "name",     "president",  "team",   "minute",  "idea",
    "kid",      "body",    "information", "back",     "parent",     "face",   "others",  "level",
    "office",   "door",    "health",      "person",   "art",        "war",    "history", "party",
    "result",   "change",  "morning",     "reason",   "research",   "girl",   "guy",     "moment",
    "air",      "teacher", "force",       "education"};
#define NWORDS (sizeof words / sizeof words[0])

/* The prompt: a nonce slot of '#', then the filler words. */
static char *prompt_text(int filler_words)
{
    size_t cap = NONCE_LEN + (size_t)filler_words * 16 + 64;
    char *prompt = must_malloc(cap, "the prompt");
    memset(prompt, '#', NONCE_LEN);
    size_t pl = NONCE_LEN;
    uint64_t s = 12345;
    for (int i = 0; i < filler_words; i++) {
        const char *w = words[splitmix64(&s) % NWORDS];
        pl += (size_t)snprintf(prompt + pl, cap - pl, "%s%s", i ? " " : "", w);
    }
    prompt[pl] = 0;
    return prompt;
}

char *template_prompt_sample(int filler_words)
{
    char *prompt = prompt_text(filler_words);
    for (int i = 0; i < NONCE_DIGITS; i++) {
        prompt[2 * i] = (char)('0' + i % 10);
        prompt[2 * i + 1] = ' ';
    }
    return prompt;
}

/* Keys strobe sets itself, or that change how long or how many the answers are: an
 * --extra-body naming one would silently change what is measured (another prompt, no
 * streaming, another length, several answers per request), so it is refused.
 * max_completion_tokens is max_tokens' newer name (servers take the smaller, or refuse both);
 * n and best_of make the server generate several answers per request, whose tokens the
 * stream interleaves and usage sums; echo puts the prompt at the head of the output, so the
 * first chunk arrives at once and carries prompt tokens. Keys that only shape the answer
 * (stop, min_tokens, temperature, logprobs, ...) stay the user's: the natural output policy
 * is whatever the server does with them, and usage counts what was generated. */
static const char *const owned[] = {"model",   "messages",   "prompt",
                                    "stream",  "max_tokens", "n",
                                    "best_of", "echo",       "max_completion_tokens",
                                    NULL};
/* agents also send each turn's recorded tools and, by --output-policy, ignore_eos */
static const char *const owned_agents[] = {"tools", "ignore_eos", NULL};

static const char *owned_by(const char *key, int agents)
{
    for (int i = 0; owned[i]; i++)
        if (!strcmp(key, owned[i])) return owned[i];
    for (int i = 0; agents && owned_agents[i]; i++)
        if (!strcmp(key, owned_agents[i])) return owned_agents[i];
    return NULL;
}

/* Where the value of an owned key comes from, for the refusal. */
static const char *set_by(const char *key, int agents)
{
    if (!strcmp(key, "model")) return "strobe sets it from --model";
    if (!strcmp(key, "stream")) return "strobe always streams";
    if (!strcmp(key, "max_tokens") || !strcmp(key, "max_completion_tokens"))
        return agents ? "strobe sets the output length from each turn's recorded output and "
                        "--output-policy"
                      : "strobe sets the output length (max_tokens) from --output-tokens";
    if (!strcmp(key, "n") || !strcmp(key, "best_of"))
        return "strobe measures one answer per request, and several would share its stream "
               "and usage";
    if (!strcmp(key, "echo"))
        return "the prompt would lead the output, arriving at once and counted as output";
    if (!strcmp(key, "ignore_eos")) return "strobe sets it from --output-policy";
    if (!strcmp(key, "tools")) return "each turn sends its trajectory's own";
    return agents ? "each turn sends its trajectory's history"
                  : "strobe writes the prompt (--input-tokens, with its cache-busting nonce)";
}

/* --extra-body as a JSON object, or NULL with err set. The whole text must be that one
 * value (json_whole.h). */
static cJSON *parse_extra(const char *extra, char *err, size_t errlen)
{
    char where[80];
    int more;
    cJSON *x = json_parse_whole(extra, &more, where, sizeof where);
    if (!x) {
        if (more)
            snprintf(err, errlen,
                     "--extra-body must be a single JSON object, but more follows it %s; put "
                     "all the fields into one object",
                     where);
        else
            snprintf(err, errlen,
                     "--extra-body is not valid JSON %s; give one JSON object, e.g. "
                     "'{\"ignore_eos\":true}'",
                     where);
        return NULL;
    }
    if (!cJSON_IsObject(x)) {
        snprintf(err, errlen,
                 "--extra-body must be a JSON object, e.g. '{\"ignore_eos\":true}', "
                 "got '%.300s'",
                 extra);
        cJSON_Delete(x);
        return NULL;
    }
    return x;
}

/* The first key an object holds twice, or NULL. cJSON keeps both of {"a":1,"a":2}; a server
 * keeps one, which one depends on the server, and the merge below would send both (in
 * stream_options the last would win, and could turn include_usage off after the check read
 * the first): the body would not say what was meant. */
static const char *twice(const cJSON *obj)
{
    for (const cJSON *it = obj->child; it; it = it->next)
        for (const cJSON *b = obj->child; b != it; b = b->next)
            if (!strcmp(b->string, it->string)) return it->string;
    return NULL;
}

int extra_body_check(const char *extra, int agents, char *err, size_t errlen)
{
    if (!extra || !*extra) return 0;
    cJSON *x = parse_extra(extra, err, errlen);
    if (!x) return -1;
    int rc = 0;
    const char *dup = twice(x);
    if (dup) {
        snprintf(err, errlen, "--extra-body sets \"%.200s\" twice; give each field once", dup);
        rc = -1;
    }
    for (const cJSON *it = rc ? NULL : x->child; it && !rc; it = it->next) {
        const char *k = owned_by(it->string, agents);
        if (k) {
            snprintf(err, errlen, "--extra-body may not set \"%s\": %s; leave it out", k,
                     set_by(k, agents));
            rc = -1;
        } else if (!strcmp(it->string, "stream_options")) {
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "include_usage");
            if (!cJSON_IsObject(it)) {
                snprintf(err, errlen,
                         "--extra-body's \"stream_options\" must be a JSON object "
                         "(its fields are merged into strobe's)");
                rc = -1;
            } else if ((dup = twice(it))) {
                snprintf(err, errlen,
                         "--extra-body sets stream_options.%.200s twice; give each field once",
                         dup);
                rc = -1;
            } else if (u && !cJSON_IsTrue(u)) {
                snprintf(err, errlen,
                         "--extra-body may not set stream_options.include_usage to "
                         "anything but true: strobe counts output tokens from usage");
                rc = -1;
            }
        }
    }
    cJSON_Delete(x);
    return rc;
}

/* --extra-body's fields into body: stream_options merged field by field into strobe's
 * (include_usage stays true), any other field added or replacing strobe's optional ones
 * (ignore_eos). The keys strobe owns were refused by extra_body_check. */
static int merge_extra(cJSON *body, const char *extra, char *err, size_t errlen)
{
    if (!extra || !*extra) return 0;
    if (extra_body_check(extra, 0, err, errlen)) return -1;
    cJSON *x = parse_extra(extra, err, errlen);
    if (!x) return -1;
    for (cJSON *it = x->child; it; it = it->next) {
        if (!strcmp(it->string, "stream_options")) {
            cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
            for (cJSON *f = it->child; f; f = f->next) {
                cJSON_DeleteItemFromObjectCaseSensitive(so, f->string);
                cJSON_AddItemToObject(so, f->string, cJSON_Duplicate(f, 1));
            }
            continue;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(body, it->string);
        cJSON_AddItemToObject(body, it->string, cJSON_Duplicate(it, 1));
    }
    cJSON_Delete(x);
    return 0;
}

/* The body's fields other than the prompt: model, limits, streaming, extras. */
static cJSON *body_fields(const char *model, int max_tokens, int ignore_eos, const char *extra,
                          char *err, size_t errlen)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "model", model);
    if (max_tokens >= 0) cJSON_AddNumberToObject(body, "max_tokens", max_tokens);
    cJSON_AddBoolToObject(body, "stream", 1);
    cJSON *so = cJSON_AddObjectToObject(body, "stream_options");
    cJSON_AddBoolToObject(so, "include_usage", 1);
    if (ignore_eos) cJSON_AddBoolToObject(body, "ignore_eos", 1);
    if (merge_extra(body, extra, err, errlen)) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

char *template_tail_fields(const char *model, const char *extra_body, char *err, size_t errlen)
{
    cJSON *body = body_fields(model, -1, 0, extra_body, err, errlen);
    if (!body) return NULL;
    char *s = must_have(cJSON_PrintUnformatted(body), "the request's fields");
    cJSON_Delete(body);
    size_t n = strlen(s);
    if (n > TEMPLATE_TAIL_FIELDS_MAX) {
        snprintf(err, errlen,
                 "--model and --extra-body take %zu bytes of every request; at most "
                 "%d fit",
                 n, TEMPLATE_TAIL_FIELDS_MAX);
        free(s);
        return NULL;
    }
    /* "{...}" becomes ",..." to follow other fields */
    s[0] = ',';
    s[n - 1] = 0;
    if (n == 2) s[0] = 0;
    return s;
}

int template_build(struct request_template *t, const struct template_params *p, char *err,
                   size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->seed = p->seed;
    cJSON *body = body_fields(p->model, p->max_tokens, p->ignore_eos, p->extra_body, err, errlen);
    if (!body) return -1;
    /* The prompt goes last, so the nonce's place is known from the end of the serialised
     * body whatever --model or --extra-body hold (no search for a marker that user text
     * could also contain). The prompt is ASCII words and '#': JSON prints it unchanged. */
    char *prompt = prompt_text(p->filler_words);
    size_t prompt_len = strlen(prompt);
    const char *after = p->chat ? "\"}]}" : "\"}"; /* what follows the prompt's last byte */
    if (p->chat) {
        cJSON *msgs = cJSON_AddArrayToObject(body, "messages");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", prompt);
        cJSON_AddItemToArray(msgs, m);
    } else {
        cJSON_AddStringToObject(body, "prompt", prompt);
    }
    char *json = must_have(cJSON_PrintUnformatted(body), "the request");
    cJSON_Delete(body);
    size_t bl = strlen(json), al = strlen(after);
    if (bl < prompt_len + al || memcmp(json + bl - al - prompt_len, prompt, prompt_len) ||
        memcmp(json + bl - al, after, al)) {
        /* cannot happen with cJSON's printer; checked so a change there cannot misplace it */
        snprintf(err, errlen, "internal error: the request body does not end with its prompt");
        free(prompt);
        free(json);
        return -1;
    }
    size_t nonce_in_body = bl - al - prompt_len;
    free(prompt);
    char head[2048];
    char auth[600] = "";
    if (p->api_key && *p->api_key) {
        if (strlen(p->api_key) > 500) {
            snprintf(err, errlen, "STROBE_API_KEY is longer than 500 characters");
            free(json);
            return -1;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", p->api_key);
    }
    int hl =
        snprintf(head, sizeof head,
                 "POST %s/v1/%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: strobe/" STROBE_VERSION "\r\n"
                 "Accept: text/event-stream\r\nAccept-Encoding: identity\r\n"
                 "Content-Type: application/json\r\n%s"
                 "Content-Length: %zu\r\n" REQUEST_ID_HEADER "%0*d\r\n\r\n",
                 p->ep->base_path, p->chat ? "chat/completions" : "completions", p->ep->host_header,
                 auth, bl, REQUEST_ID_DIGITS, 0);
    memset(auth, 0, sizeof auth);
    t->len = (size_t)hl + bl;
    t->bytes = must_malloc(t->len, "the request");
    memcpy(t->bytes, head, (size_t)hl);
    memcpy(t->bytes + hl, json, bl);
    memset(head, 0, sizeof head);
    free(json);
    t->nonce_at = (size_t)hl + nonce_in_body;
    t->request_id_at = (size_t)hl - 4 - REQUEST_ID_DIGITS; /* before the blank line */
    return 0;
}

void template_free(struct request_template *t)
{
    if (t->bytes) memset(t->bytes, 0, t->len); /* it holds the API key */
    free(t->bytes);
    memset(t, 0, sizeof *t);
}

size_t template_fill(void *arg, int worker, uint64_t seq, char *buf, size_t cap)
{
    const struct request_template *t = arg;
    if (t->len > cap) return 0;
    memcpy(buf, t->bytes, t->len);
    uint64_t s = t->seed ^ ((uint64_t)worker << 56) ^ (seq * 0x2545f4914f6cdd1dULL);
    char *n = buf + t->nonce_at;
    uint64_t r = 0;
    for (int i = 0; i < NONCE_DIGITS; i++) {
        if (i % 16 == 0) r = splitmix64(&s);
        n[2 * i] = (char)('0' + r % 10);
        r /= 10;
        n[2 * i + 1] = ' ';
    }
    request_id_write(buf + t->request_id_at, request_id_of(worker, seq));
    return t->len;
}
