/*
 * One registry, four threads at once: each registers its own things and
 * searches after every registration, checking every reply in full; a fifth
 * thread ticks and reads the deadline meanwhile. At the end every thing is
 * found exactly once.
 *
 * Usage: threads
 * Exit status 0 when every check passed. Run by ffi/tests/c_programs.rs.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#define REG "discovery.example.org"
#define NS "urn:xmpp:iot:discovery"
#define THREADS 4
#define THINGS 40

static iotdisco_registry *reg;
static pthread_mutex_t report = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop_ticking = 0;

typedef struct {
    int t;
    int failed;
} job;

/* Feeds a stanza; checks the status and that exactly `want` was sent. */
static int call(job *j, sink *k, const char *stanza, const char *want) {
    sink_reset(k);
    int rc = iotdisco_handle(reg, stanza, strlen(stanza), 1000, collect, k);
    const char *error = iotdisco_last_error();
    if (rc == IOTDISCO_OK && k->n == 1 && !k->overflow && strcmp(k->stanza[0], want) == 0 && error[0] == '\0')
        return 1;
    pthread_mutex_lock(&report);
    fprintf(stderr, "FAIL thread %d: %s returned %d (%s), sent %zu\n  want %s\n", j->t, stanza, rc, error, k->n,
            want);
    for (size_t i = 0; i < k->n; i++) fprintf(stderr, "   got %s\n", k->stanza[i]);
    pthread_mutex_unlock(&report);
    j->failed++;
    return 0;
}

static void *worker(void *arg) {
    job *j = (job *)arg;
    sink k = {0};
    char stanza[1024], want[2048];
    for (int i = 0; i < THINGS; i++) {
        snprintf(stanza, sizeof stanza,
                 "<iq type='set' from='t%d-%d@example.org/r' to='" REG "' id='r%d'>"
                 "<register xmlns='" NS "' selfOwned='true'><str name='SN' value='t%d-%d'/>"
                 "<num name='GRP' value='%d'/><num name='I' value='%d'/></register></iq>",
                 j->t, i, i, j->t, i, j->t, i);
        snprintf(want, sizeof want,
                 "<iq type='result' from='" REG "' to='t%d-%d@example.org/r' id='r%d'/>", j->t, i, i);
        call(j, &k, stanza, want);

        /* The thing just registered, found by its serial number. */
        snprintf(stanza, sizeof stanza,
                 "<iq type='get' from='s%d@example.org/r' to='" REG "' id='s%d'>"
                 "<search xmlns='" NS "'><strEq name='SN' value='t%d-%d'/></search></iq>",
                 j->t, i, j->t, i);
        snprintf(want, sizeof want,
                 "<iq type='result' from='" REG "' to='s%d@example.org/r' id='s%d'>"
                 "<found xmlns='" NS "' more='false'><thing owner='t%d-%d@example.org' jid='t%d-%d@example.org'>"
                 "<str name='SN' value='t%d-%d'/><num name='GRP' value='%d'/><num name='I' value='%d'/>"
                 "</thing></found></iq>",
                 j->t, i, j->t, i, j->t, i, j->t, i, j->t, i);
        call(j, &k, stanza, want);

        /* This thread's things with I >= i: exactly the one just registered
         * (later ones do not exist yet), never another thread's (other GRP). */
        snprintf(stanza, sizeof stanza,
                 "<iq type='get' from='s%d@example.org/r' to='" REG "' id='g%d'>"
                 "<search xmlns='" NS "' maxCount='5'><numEq name='GRP' value='%d'/>"
                 "<numGtEq name='I' value='%d'/></search></iq>",
                 j->t, i, j->t, i);
        snprintf(want, sizeof want,
                 "<iq type='result' from='" REG "' to='s%d@example.org/r' id='g%d'>"
                 "<found xmlns='" NS "' more='false'><thing owner='t%d-%d@example.org' jid='t%d-%d@example.org'>"
                 "<str name='SN' value='t%d-%d'/><num name='GRP' value='%d'/><num name='I' value='%d'/>"
                 "</thing></found></iq>",
                 j->t, i, j->t, i, j->t, i, j->t, i, j->t, i);
        call(j, &k, stanza, want);
    }
    sink_reset(&k);
    return NULL;
}

static void *ticker(void *arg) {
    job *j = (job *)arg;
    sink k = {0};
    uint64_t now = 0;
    while (!atomic_load(&stop_ticking)) {
        sink_reset(&k);
        if (iotdisco_tick(reg, now++, collect, &k) != IOTDISCO_OK || k.n != 0) j->failed++;
        uint64_t d;
        if (iotdisco_next_deadline(reg, &d) != IOTDISCO_OK || d != IOTDISCO_NO_DEADLINE) j->failed++;
        sched_yield();
    }
    sink_reset(&k);
    return NULL;
}

int main(void) {
    int rc = iotdisco_open(REG, NULL, "max_search_results=1000", &reg);
    if (rc != IOTDISCO_OK) {
        fprintf(stderr, "open: %s\n", iotdisco_last_error());
        return 1;
    }
    pthread_t threads[THREADS], tick;
    job jobs[THREADS + 1];
    for (int t = 0; t < THREADS; t++) {
        jobs[t].t = t;
        jobs[t].failed = 0;
        pthread_create(&threads[t], NULL, worker, &jobs[t]);
    }
    jobs[THREADS].t = THREADS;
    jobs[THREADS].failed = 0;
    pthread_create(&tick, NULL, ticker, &jobs[THREADS]);
    int failed = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        failed += jobs[t].failed;
    }
    atomic_store(&stop_ticking, 1);
    pthread_join(tick, NULL);
    failed += jobs[THREADS].failed;

    /* Every thing of every thread, each once. */
    sink k = {0};
    const char *all = "<iq type='get' from='c@example.org/r' to='" REG "' id='all'>"
                      "<search xmlns='" NS "' maxCount='1000'><numGtEq name='GRP' value='0'/></search></iq>";
    rc = iotdisco_handle(reg, all, strlen(all), 2000, collect, &k);
    if (rc != IOTDISCO_OK || k.n != 1) {
        fprintf(stderr, "FAIL final search: %d, %zu stanzas\n", rc, k.n);
        failed++;
    } else {
        int things = 0;
        for (const char *p = k.stanza[0]; (p = strstr(p, "<thing ")) != NULL; p++) things++;
        if (things != THREADS * THINGS || strstr(k.stanza[0], "more='false'") == NULL) {
            fprintf(stderr, "FAIL final search found %d things, want %d\n", things, THREADS * THINGS);
            failed++;
        }
        for (int t = 0; t < THREADS; t++)
            for (int i = 0; i < THINGS; i++) {
                char jid[64];
                snprintf(jid, sizeof jid, " jid='t%d-%d@example.org'", t, i);
                const char *first = strstr(k.stanza[0], jid);
                if (first == NULL || strstr(first + 1, jid) != NULL) {
                    fprintf(stderr, "FAIL t%d-%d found %s\n", t, i, first == NULL ? "never" : "twice");
                    failed++;
                }
            }
    }
    sink_reset(&k);
    iotdisco_close(reg);
    printf("threads: %d threads x %d things, %d failed\n", THREADS, THINGS, failed);
    return failed == 0 ? 0 : 1;
}
