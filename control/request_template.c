#include "request_template.h"

#include "rng.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_DIGITS 32
#define NONCE_LEN (NONCE_DIGITS * 2) /* "d d d ... d\n" */

/* Common English words: real tokenizers give about one token each, so the prompt length
 * moves smoothly with the word count during calibration. */
static const char *const words[] = {
    "time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child", "world",
    "school", "state", "family", "student", "group", "country", "problem", "hand", "part",
    "place", "case", "week", "company", "system", "program", "question", "work", "government",
    "number", "night", "point", "home", "water", "room", "mother", "area", "money", "story",
    "fact", "month", "lot", "right", "study", "book", "eye", "job", "word", "business", "issue",
    "side", "kind", "head", "house", "service", "friend", "father", "power", "hour", "game",
    "line", "end", "member", "law", "car", "city", "community", "name", "president", "team",
    "minute", "idea", "kid", "body", "information", "back", "parent", "face", "others", "level",
    "office", "door", "health", "person", "art", "war", "history", "party", "result", "change",
    "morning", "reason", "research", "girl", "guy", "moment", "air", "teacher", "force",
    "education"};
#define NWORDS (sizeof words / sizeof words[0])

/* The prompt: a nonce slot of '#', then the filler words. */
static char *prompt_text(int filler_words)
{
    size_t cap = NONCE_LEN + (size_t)filler_words * 16 + 64;
    char *prompt = malloc(cap);
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

int template_build(struct request_template *t, const struct template_params *p, char *err,
                   size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->seed = p->seed;
    char *prompt = prompt_text(p->filler_words);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "model", p->model);
    if (p->chat) {
        cJSON *msgs = cJSON_AddArrayToObject(body, "messages");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", prompt);
        cJSON_AddItemToArray(msgs, m);
    } else {
        cJSON_AddStringToObject(body, "prompt", prompt);
    }
    free(prompt);
    cJSON_AddNumberToObject(body, "max_tokens", p->max_tokens);
    cJSON_AddBoolToObject(body, "stream", 1);
    cJSON *so = cJSON_AddObjectToObject(body, "stream_options");
    cJSON_AddBoolToObject(so, "include_usage", 1);
    if (p->ignore_eos) cJSON_AddBoolToObject(body, "ignore_eos", 1);
    if (p->extra_body && *p->extra_body) {
        cJSON *extra = cJSON_Parse(p->extra_body);
        if (!cJSON_IsObject(extra)) {
            snprintf(err, errlen, "--extra-body must be a JSON object, e.g. '{\"ignore_eos\":true}'");
            cJSON_Delete(extra);
            cJSON_Delete(body);
            return -1;
        }
        /* extra fields replace strobe's own of the same name */
        for (cJSON *it = extra->child; it; it = it->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(body, it->string);
            cJSON_AddItemToObject(body, it->string, cJSON_Duplicate(it, 1));
        }
        cJSON_Delete(extra);
    }
    char *json = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    size_t bl = strlen(json);
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
    int hl = snprintf(head, sizeof head,
                      "POST %s/v1/%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: strobe/0.1\r\n"
                      "Accept: text/event-stream\r\nContent-Type: application/json\r\n%s"
                      "Content-Length: %zu\r\n\r\n",
                      p->ep->base_path, p->chat ? "chat/completions" : "completions",
                      p->ep->host_header, auth, bl);
    memset(auth, 0, sizeof auth);
    t->len = (size_t)hl + bl;
    t->bytes = malloc(t->len);
    memcpy(t->bytes, head, (size_t)hl);
    memcpy(t->bytes + hl, json, bl);
    memset(head, 0, sizeof head);
    free(json);
    char *slot = memchr(t->bytes + hl, '#', bl);
    t->nonce_at = (size_t)(slot - t->bytes);
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
    return t->len;
}
