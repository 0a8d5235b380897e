/* What one SSE event of an OpenAI stream says, as plain data: the facts facts.c needs from a
 * `chat.completion.chunk` or `text_completion` event (methodology.md §6). Two readers give
 * them: chunk_scan (chunk_scan.h), a purpose-built scanner for the common shape, and the full
 * cJSON parse here, which reads anything; chunk_facts_read tries the scanner first and parses
 * only what it does not recognise. Both must agree on every input (tests/unit/test_chunk_scan.c,
 * tests/fuzz/fuzz_chunk_scan.c).
 * Semantics are cJSON's: the first of duplicate keys wins, strings end at their first NUL,
 * numbers are integers by json_int64 (json_num.h). */
#ifndef STROBE_CHUNK_FACTS_H
#define STROBE_CHUNK_FACTS_H
#include <stddef.h>
#include <stdint.h>

enum chunk_field {
    FIELD_CONTENT,           /* choices[0].delta.content */
    FIELD_TEXT,              /* choices[0].text (text_completion) */
    FIELD_REASONING_CONTENT, /* choices[0].delta.reasoning_content */
    FIELD_REASONING,         /* choices[0].delta.reasoning */
    FIELD_TOOL_NAME,         /* choices[0].delta.tool_calls[call].function.name */
    FIELD_TOOL_ARGUMENTS,    /* choices[0].delta.tool_calls[call].function.arguments */
};

/* One non-empty text field, decoded (what the tokenizer counts). */
struct chunk_text {
    enum chunk_field field;
    uint32_t call; /* the tool call's position, 0 for the other fields */
    const char *s;
    size_t len;
    size_t buf_off; /* internal: where s lies in the reader's buffer, or SIZE_MAX */
};

struct chunk_facts {
    int is_object;             /* 0: the data is not a JSON object (a malformed chunk) */
    int has_error;             /* the event carried "error" */
    const char *error_message; /* its message, NUL-terminated, when has_error */
    int has_usage;             /* usage.completion_tokens was an integer; then: */
    int64_t completion_tokens;
    int has_prompt_tokens, has_cached_tokens, has_reasoning_tokens;
    int64_t prompt_tokens, cached_tokens, reasoning_tokens;
    size_t answer_bytes;       /* content, text, tool-call names and arguments */
    size_t visible_bytes;      /* answer_bytes plus reasoning_content and reasoning */
    const char *finish_reason; /* static: "stop", "length", ..., "other"; NULL when none */
    int has_sent_ns, has_sched_ns, has_emu_tokens; /* the emulator's truth stamps */
    int64_t sent_ns, sched_ns, emu_tokens;
    struct chunk_text *texts; /* the non-empty text fields, only when texts were asked for */
    size_t ntexts;
};

/* Scratch that one thread reuses for every event: decoded strings and the text list. */
struct chunk_reader {
    char *buf;
    size_t len, cap;
    struct chunk_text *texts;
    size_t ntexts, texts_cap;
    struct chunk_template *templates; /* chunk_template.h's shapes, or NULL */
    uint64_t scanned, parsed; /* events each reader gave (scanned: by the scanner's rules) */
    uint64_t templated;       /* of the scanned, those read by their stream's shape */
};

/* Facts of one event's data (not "[DONE]"); texts too when want_texts. Valid until the next
 * call with the same reader. Returns 1 when the scanner read it, 0 when cJSON did. */
int chunk_facts_read(const char *data, size_t len, int want_texts, struct chunk_reader *rd,
                     struct chunk_facts *cf);
/* The same, trying first the shape of the event before it with the same key (the request's
 * id; chunk_template.h): returns 2 when the shape gave the facts. */
int chunk_facts_read_keyed(const char *data, size_t len, uint64_t key, int want_texts,
                           struct chunk_reader *rd, struct chunk_facts *cf);
/* The full cJSON parse alone (the reference). */
void chunk_facts_parse(const char *data, size_t len, int want_texts, struct chunk_reader *rd,
                       struct chunk_facts *cf);
/* 1 when a and b are the same facts (texts compared as sets of (field, call, bytes)); else 0
 * with what differs written to why. */
int chunk_facts_equal(const struct chunk_facts *a, const struct chunk_facts *b, char *why,
                      size_t whylen);
void chunk_reader_free(struct chunk_reader *rd);

/* For the readers: a finish reason as one of the known static strings, "other" else. */
const char *chunk_finish_intern(const char *s, size_t len);
/* Begins an event: an empty buffer and text list, facts zeroed. */
void chunk_reader_begin(struct chunk_reader *rd, struct chunk_facts *cf);
/* Reserves n bytes in the buffer, returning their offset (the buffer may move). */
size_t chunk_reader_reserve(struct chunk_reader *rd, size_t n);
/* Adds a text of len bytes found at s, or at buf_off in the buffer when s is NULL. */
void chunk_reader_add_text(struct chunk_reader *rd, enum chunk_field field, uint32_t call,
                           const char *s, size_t buf_off, size_t len);
/* Ends an event: its texts point at their final bytes. */
void chunk_reader_end(struct chunk_reader *rd, struct chunk_facts *cf);

#endif
