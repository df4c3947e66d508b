/*
 * Helpers shared by the C test programs: a stanza sink for the send callback,
 * a pattern match for expected stanzas, and failure counting.
 *
 * Patterns are the exact expected stanza text where '*' matches any run of
 * characters, so a generated notification id is written id='d*-*' and
 * everything else must match byte for byte.
 */
#ifndef IOTDISCO_TEST_CHECK_H
#define IOTDISCO_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotdisco.h"

#define SINK_MAX 16

/* What one call passed to its send callback, copied (the library's buffer is
 * only valid during the callback). */
typedef struct {
    size_t n;
    char *stanza[SINK_MAX];
    size_t len[SINK_MAX];
    int overflow;
} sink;

static inline void sink_reset(sink *k) {
    for (size_t i = 0; i < k->n; i++) free(k->stanza[i]);
    k->n = 0;
    k->overflow = 0;
}

static inline void collect(void *user, const char *stanza, size_t len) {
    sink *k = (sink *)user;
    if (k->n == SINK_MAX) {
        k->overflow = 1;
        return;
    }
    char *copy = (char *)malloc(len + 1);
    if (copy == NULL) abort();
    memcpy(copy, stanza, len);
    copy[len] = '\0';
    k->stanza[k->n] = copy;
    k->len[k->n] = len;
    k->n++;
}

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        checks++;                                                         \
        if (!(cond)) {                                                    \
            failures++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)

/* '*' matches any run of characters. */
static inline int glob(const char *p, const char *s) {
    if (*p == '\0') return *s == '\0';
    if (*p == '*') {
        for (const char *t = s;; t++) {
            if (glob(p + 1, t)) return 1;
            if (*t == '\0') return 0;
        }
    }
    return *p == *s && glob(p + 1, s + 1);
}

/* Copies the value of the first attribute `name` of `stanza` into `out`. */
static inline void attr(const char *stanza, const char *name, char *out, size_t cap) {
    char key[64];
    snprintf(key, sizeof key, " %s='", name);
    const char *at = strstr(stanza, key);
    out[0] = '\0';
    if (at == NULL) return;
    at += strlen(key);
    size_t i = 0;
    while (at[i] != '\0' && at[i] != '\'' && i + 1 < cap) {
        out[i] = at[i];
        i++;
    }
    out[i] = '\0';
}

static inline const char *rc_name(int rc) {
    switch (rc) {
        case IOTDISCO_OK: return "IOTDISCO_OK";
        case IOTDISCO_NOT_MINE: return "IOTDISCO_NOT_MINE";
        case IOTDISCO_EINVAL: return "IOTDISCO_EINVAL";
        case IOTDISCO_ESTORAGE: return "IOTDISCO_ESTORAGE";
        case IOTDISCO_EPANIC: return "IOTDISCO_EPANIC";
        case IOTDISCO_DROPPED: return "IOTDISCO_DROPPED";
        default: return "(unknown)";
    }
}

/* Checks that a call returned `want_rc` and sent exactly the `n` stanzas given
 * as patterns, in order. */
static inline void expect_sent(int line, int rc, int want_rc, const sink *k, size_t n, ...) {
    checks++;
    int ok = rc == want_rc && k->n == n && !k->overflow;
    va_list ap;
    va_start(ap, n);
    const char *want[SINK_MAX];
    for (size_t i = 0; i < n && i < SINK_MAX; i++) {
        want[i] = va_arg(ap, const char *);
        if (ok && !glob(want[i], k->stanza[i])) ok = 0;
    }
    va_end(ap);
    if (ok) return;
    failures++;
    fprintf(stderr, "FAIL line %d: returned %s (want %s), sent %zu stanza(s) (want %zu); last_error: %s\n",
            line, rc_name(rc), rc_name(want_rc), k->n, n, iotdisco_last_error());
    for (size_t i = 0; i < n && i < SINK_MAX; i++) fprintf(stderr, "  want[%zu] %s\n", i, want[i]);
    for (size_t i = 0; i < k->n; i++) fprintf(stderr, "   got[%zu] %s\n", i, k->stanza[i]);
}

#define EXPECT(rc, want_rc, k, ...) expect_sent(__LINE__, rc, want_rc, k, __VA_ARGS__)

#endif
