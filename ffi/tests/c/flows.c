/*
 * The XEP-0347 flows through the C ABI, every emitted stanza checked, plus the
 * ABI's edges: NULL pointers, zero and oversized lengths, bytes that are not
 * UTF-8, bad options, a database on disk, the version.
 *
 * Usage: flows <scratch directory> <expected version>
 * Exit status 0 when every check passed. Run by ffi/tests/c_programs.rs
 * (directly and under valgrind).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"

#define REG "discovery.example.org"
#define NS "urn:xmpp:iot:discovery"
#define STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

static uint64_t now = 1000;

/* Feeds one stanza (its strlen bytes) to the registry, collecting into k. */
static int feed(iotdisco_registry *reg, sink *k, const char *stanza) {
    sink_reset(k);
    return iotdisco_handle(reg, stanza, strlen(stanza), now, collect, k);
}

static uint64_t deadline(iotdisco_registry *reg) {
    uint64_t d = 0;
    int rc = iotdisco_next_deadline(reg, &d);
    CHECK(rc == IOTDISCO_OK, "next_deadline returned %d", rc);
    return d;
}

static const char *last_error(void) { return iotdisco_last_error(); }

#define TAGS                                                                   \
    "<str name='SN' value='394872348732948723'/><str name='MAN' value='www.ktc.se'/>" \
    "<str name='MODEL' value='IMC'/><num name='V' value='1.2'/>"                 \
    "<str name='KEY' value='4857402340298342'/>"

#define REGISTER                                                               \
    "<iq type='set' from='thing@example.org/imc' to='" REG "' id='1'>"           \
    "<register xmlns='" NS "'>" TAGS "</register></iq>"

#define CLAIM                                                                  \
    "<iq type='set' from='owner@example.org/phone' to='" REG "' id='4'>"         \
    "<mine xmlns='" NS "'>" TAGS "</mine></iq>"

#define RESULT_TO(to, id) "<iq type='result' from='" REG "' to='" to "' id='" id "'/>"

#define ERROR_TO(to, id, type, condition)                                      \
    "<iq type='error' from='" REG "' to='" to "' id='" id "'><error type='" type \
    "'><" condition " xmlns='" STANZAS "'/></error></iq>"

#define SEARCH_MODEL                                                           \
    "<iq type='get' from='curious@example.org/client' to='" REG "' id='9'>"      \
    "<search xmlns='" NS "'><strEq name='MODEL' value='IMC'/></search></iq>"

#define FOUND_THING                                                            \
    "<iq type='result' from='" REG "' to='curious@example.org/client' id='9'>"     \
    "<found xmlns='" NS "' more='false'><thing owner='owner@example.org' jid='thing@example.org'>" \
    "<str name='SN' value='394872348732948723'/><str name='MAN' value='www.ktc.se'/>" \
    "<str name='MODEL' value='IMC'/><num name='V' value='1.2'/></thing></found></iq>"

#define FOUND_NOTHING(id)                                                      \
    "<iq type='result' from='" REG "' to='curious@example.org/client' id='" id "'>" \
    "<found xmlns='" NS "' more='false'/></iq>"

/* The thing answers a notification it received (stanza `n` of k). */
static int ack(iotdisco_registry *reg, sink *k, const char *notification, const char *from) {
    char id[128], buf[512];
    attr(notification, "id", id, sizeof id);
    CHECK(id[0] == 'd' && strchr(id, '-') != NULL, "generated id %s", id);
    snprintf(buf, sizeof buf, "<iq type='result' from='%s' to='" REG "' id='%s'/>", from, id);
    return feed(reg, k, buf);
}

/* Register (listing 10), claim (15 -> 17 + 20), the thing's answer (23). */
static void register_and_claim(iotdisco_registry *reg, sink *k) {
    EXPECT(feed(reg, k, REGISTER), IOTDISCO_OK, k, 1, RESULT_TO("thing@example.org/imc", "1"));
    EXPECT(feed(reg, k, CLAIM), IOTDISCO_OK, k, 2,
           "<iq type='result' from='" REG "' to='owner@example.org/phone' id='4'>"
           "<claimed xmlns='" NS "' jid='thing@example.org'/></iq>",
           "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'>"
           "<claimed xmlns='" NS "' jid='owner@example.org'/></iq>");
    if (k->n != 2) return;
    /* The notification waits for its answer until notification_timeout_ms. */
    CHECK(deadline(reg) == now + 30000, "deadline %llu", (unsigned long long)deadline(reg));
    char *notification = k->stanza[1];
    k->stanza[1] = NULL;
    k->n = 1;
    EXPECT(ack(reg, k, notification, "thing@example.org/imc"), IOTDISCO_OK, k, 0);
    free(notification);
    CHECK(deadline(reg) == IOTDISCO_NO_DEADLINE, "nothing waits");
}

static void spec_flows(void) {
    iotdisco_registry *reg = NULL;
    sink k = {0};
    int rc = iotdisco_open(REG, NULL, "disown_timeout_ms=5000; identity_name=Test registry;", &reg);
    CHECK(rc == IOTDISCO_OK && reg != NULL, "open: %d %s", rc, last_error());
    if (reg == NULL) return;
    CHECK(strcmp(last_error(), "") == 0, "no error after OK: %s", last_error());
    CHECK(deadline(reg) == IOTDISCO_NO_DEADLINE, "fresh registry waits for nothing");

    /* Unclaimed things are not searchable. */
    EXPECT(feed(reg, &k, REGISTER), IOTDISCO_OK, &k, 1, RESULT_TO("thing@example.org/imc", "1"));
    EXPECT(feed(reg, &k, SEARCH_MODEL), IOTDISCO_OK, &k, 1, FOUND_NOTHING("9"));

    register_and_claim(reg, &k);

    /* Search (listing 40 -> 41): found, KEY never returned. */
    EXPECT(feed(reg, &k, SEARCH_MODEL), IOTDISCO_OK, &k, 1, FOUND_THING);

    /* Update by the thing (listing 31 -> 33), then a search on the new tags. */
    EXPECT(feed(reg, &k,
                "<iq type='set' from='thing@example.org/imc' to='" REG "' id='8'>"
                "<update xmlns='" NS "'><str name='CLASS' value='PLC'/>"
                "<num name='LON' value='-71.519722'/><num name='LAT' value='-33.008055'/>"
                "<str name='MODEL' value=''/></update></iq>"),
           IOTDISCO_OK, &k, 1, RESULT_TO("thing@example.org/imc", "8"));
    EXPECT(feed(reg, &k,
                "<iq type='get' from='curious@example.org/client' to='" REG "' id='10'>"
                "<search xmlns='" NS "' offset='0' maxCount='20'><strEq name='MAN' value='www.ktc.se'/>"
                "<numRange name='LAT' min='-34' minIncluded='true' max='-33' maxIncluded='true'/>"
                "<strMask name='SN' value='39487*' wildcard='*'/></search></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='result' from='" REG "' to='curious@example.org/client' id='10'>"
           "<found xmlns='" NS "' more='false'><thing owner='owner@example.org' jid='thing@example.org'>"
           "<str name='SN' value='394872348732948723'/><str name='MAN' value='www.ktc.se'/>"
           "<num name='V' value='1.2'/><str name='CLASS' value='PLC'/>"
           "<num name='LON' value='-71.519722'/><num name='LAT' value='-33.008055'/></thing></found></iq>");
    /* The empty value deleted MODEL. */
    EXPECT(feed(reg, &k, SEARCH_MODEL), IOTDISCO_OK, &k, 1, FOUND_NOTHING("9"));

    /* Owner update (listing 36 -> 38); another account may not (39). */
    EXPECT(feed(reg, &k,
                "<iq type='set' from='owner@example.org/1234' to='" REG "' id='8'>"
                "<update xmlns='" NS "' jid='thing@example.org'><str name='ROOM' value='kitchen'/></update></iq>"),
           IOTDISCO_OK, &k, 1, RESULT_TO("owner@example.org/1234", "8"));
    EXPECT(feed(reg, &k,
                "<iq type='set' from='other@example.org/1234' to='" REG "' id='8'>"
                "<update xmlns='" NS "' jid='thing@example.org'><str name='ROOM' value='x'/></update></iq>"),
           IOTDISCO_OK, &k, 1, ERROR_TO("other@example.org/1234", "8", "cancel", "item-not-found"));
    EXPECT(feed(reg, &k,
                "<iq type='get' from='curious@example.org/client' to='" REG "' id='11'>"
                "<search xmlns='" NS "'><strEq name='ROOM' value='kitchen'/></search></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='result' from='" REG "' to='curious@example.org/client' id='11'>"
           "<found xmlns='" NS "' more='false'><thing owner='owner@example.org' jid='thing@example.org'>"
           "<str name='SN' value='394872348732948723'/><str name='MAN' value='www.ktc.se'/>"
           "<num name='V' value='1.2'/><str name='CLASS' value='PLC'/>"
           "<num name='LON' value='-71.519722'/><num name='LAT' value='-33.008055'/>"
           "<str name='ROOM' value='kitchen'/></thing></found></iq>");

    /* Remove (listing 24 -> 26 + 28), the thing's answer (30). */
    EXPECT(feed(reg, &k,
                "<iq type='set' from='owner@example.org/phone' to='" REG "' id='6'>"
                "<remove xmlns='" NS "' jid='thing@example.org'/></iq>"),
           IOTDISCO_OK, &k, 2, RESULT_TO("owner@example.org/phone", "6"),
           "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'><removed xmlns='" NS "'/></iq>");
    if (k.n == 2) {
        char *n = k.stanza[1];
        k.stanza[1] = NULL;
        k.n = 1;
        EXPECT(ack(reg, &k, n, "thing@example.org/imc"), IOTDISCO_OK, &k, 0);
        free(n);
    }
    EXPECT(feed(reg, &k,
                "<iq type='get' from='curious@example.org/client' to='" REG "' id='12'>"
                "<search xmlns='" NS "'><strEq name='MAN' value='www.ktc.se'/></search></iq>"),
           IOTDISCO_OK, &k, 1, FOUND_NOTHING("12"));
    /* Removing again: not found (listing 27). */
    EXPECT(feed(reg, &k,
                "<iq type='set' from='owner@example.org/phone' to='" REG "' id='6'>"
                "<remove xmlns='" NS "' jid='thing@example.org'/></iq>"),
           IOTDISCO_OK, &k, 1, ERROR_TO("owner@example.org/phone", "6", "cancel", "item-not-found"));

    /* Disown round trip (listing 46 -> 50 -> 52 -> 53): the owner's reply comes
     * only after the thing acknowledged. */
    register_and_claim(reg, &k);
    const char *disown =
        "<iq type='set' from='owner@example.org/phone' to='" REG "' id='11'>"
        "<disown xmlns='" NS "' jid='thing@example.org'/></iq>";
    EXPECT(feed(reg, &k, disown), IOTDISCO_OK, &k, 1,
           "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'><disowned xmlns='" NS "'/></iq>");
    CHECK(deadline(reg) == now + 5000, "the disown waits disown_timeout_ms");
    if (k.n == 1) {
        char *n = k.stanza[0];
        k.stanza[0] = NULL;
        k.n = 0;
        now += 10;
        EXPECT(ack(reg, &k, n, "thing@example.org/imc"), IOTDISCO_OK, &k, 1,
               RESULT_TO("owner@example.org/phone", "11"));
        /* A second answer is no longer the registry's business. */
        EXPECT(ack(reg, &k, n, "thing@example.org/imc"), IOTDISCO_NOT_MINE, &k, 0);
        free(n);
    }
    CHECK(deadline(reg) == IOTDISCO_NO_DEADLINE, "nothing waits after the disown");
    /* Disowned: unclaimed, so no longer found; the owner cannot remove it. */
    EXPECT(feed(reg, &k,
                "<iq type='get' from='curious@example.org/client' to='" REG "' id='12'>"
                "<search xmlns='" NS "'><strEq name='MAN' value='www.ktc.se'/></search></iq>"),
           IOTDISCO_OK, &k, 1, FOUND_NOTHING("12"));
    /* Its update is answered with disowned (listing 35). */
    EXPECT(feed(reg, &k,
                "<iq type='set' from='thing@example.org/imc' to='" REG "' id='8'>"
                "<update xmlns='" NS "'><str name='CLASS' value='PLC'/></update></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='result' from='" REG "' to='thing@example.org/imc' id='8'><disowned xmlns='" NS "'/></iq>");

    /* Disown time-out through iotdisco_tick (the thing stays silent). */
    register_and_claim(reg, &k);
    EXPECT(feed(reg, &k, disown), IOTDISCO_OK, &k, 1,
           "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'><disowned xmlns='" NS "'/></iq>");
    char late[128] = "";
    if (k.n == 1) attr(k.stanza[0], "id", late, sizeof late);
    uint64_t due = deadline(reg);
    CHECK(due == now + 5000, "deadline %llu", (unsigned long long)due);
    sink_reset(&k);
    EXPECT(iotdisco_tick(reg, due - 1, collect, &k), IOTDISCO_OK, &k, 0);
    EXPECT(iotdisco_tick(reg, due, collect, &k), IOTDISCO_OK, &k, 1,
           ERROR_TO("owner@example.org/phone", "11", "cancel", "not-allowed"));
    CHECK(deadline(reg) == IOTDISCO_NO_DEADLINE, "nothing waits after the time-out");
    now = due + 1;
    {
        char buf[256];
        snprintf(buf, sizeof buf, "<iq type='result' from='thing@example.org/imc' to='" REG "' id='%s'/>", late);
        EXPECT(feed(reg, &k, buf), IOTDISCO_NOT_MINE, &k, 0);
    }
    /* Still claimed: found. */
    EXPECT(feed(reg, &k,
                "<iq type='get' from='curious@example.org/client' to='" REG "' id='13'>"
                "<search xmlns='" NS "'><strEq name='SN' value='394872348732948723'/></search></iq>"),
           IOTDISCO_OK, &k, 1, "<iq type='result' from='" REG "' to='curious@example.org/client' id='13'>"
                               "<found xmlns='" NS "' more='false'><thing owner='owner@example.org' *</found></iq>");

    /* Presence: a thing that goes offline while the disown waits fails it; an
     * offline thing cannot be disowned (listing 49). */
    EXPECT(feed(reg, &k, disown), IOTDISCO_OK, &k, 1,
           "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'><disowned xmlns='" NS "'/></iq>");
    sink_reset(&k);
    EXPECT(iotdisco_presence(reg, "thing@example.org/imc", 0, now, collect, &k), IOTDISCO_OK, &k, 1,
           ERROR_TO("owner@example.org/phone", "11", "cancel", "not-allowed"));
    EXPECT(feed(reg, &k, disown), IOTDISCO_OK, &k, 1,
           ERROR_TO("owner@example.org/phone", "11", "cancel", "not-allowed"));
    /* Forgotten (the thing unsubscribed): presence unknown, the disown is tried
     * at the last known full JID; going offline then fails it. */
    CHECK(iotdisco_forget_presence(reg, "thing@example.org") == IOTDISCO_OK, "forget: %s", last_error());
    EXPECT(feed(reg, &k, disown), IOTDISCO_OK, &k, 1,
           "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'><disowned xmlns='" NS "'/></iq>");
    sink_reset(&k);
    EXPECT(iotdisco_presence(reg, "thing@example.org/imc", 0, now, collect, &k), IOTDISCO_OK, &k, 1,
           ERROR_TO("owner@example.org/phone", "11", "cancel", "not-allowed"));
    CHECK(iotdisco_forget_presence(NULL, "a@b") == IOTDISCO_EINVAL, "forget(NULL)");
    CHECK(iotdisco_forget_presence(reg, NULL) == IOTDISCO_EINVAL, "forget jid NULL");
    CHECK(iotdisco_forget_presence(reg, "") == IOTDISCO_EINVAL, "forget empty jid");
    sink_reset(&k);
    EXPECT(iotdisco_presence(reg, "thing@example.org/imc", 1, now, collect, &k), IOTDISCO_OK, &k, 0);
    EXPECT(feed(reg, &k, disown), IOTDISCO_OK, &k, 1,
           "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'><disowned xmlns='" NS "'/></iq>");
    /* The thing refuses; a Smack thing gets the element once more as disown. */
    if (k.n == 1) {
        char id[128], buf[512];
        attr(k.stanza[0], "id", id, sizeof id);
        snprintf(buf, sizeof buf,
                 "<iq type='error' from='thing@example.org/imc' to='" REG "' id='%s'>"
                 "<error type='cancel'><feature-not-implemented xmlns='" STANZAS "'/></error></iq>", id);
        EXPECT(feed(reg, &k, buf), IOTDISCO_OK, &k, 1,
               "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'><disown xmlns='" NS "'/></iq>");
        attr(k.stanza[0], "id", id, sizeof id);
        snprintf(buf, sizeof buf,
                 "<iq type='error' from='thing@example.org/imc' to='" REG "' id='%s'>"
                 "<error type='cancel'><not-allowed xmlns='" STANZAS "'/></error></iq>", id);
        EXPECT(feed(reg, &k, buf), IOTDISCO_OK, &k, 1,
               ERROR_TO("owner@example.org/phone", "11", "cancel", "not-allowed"));
    }

    /* Service discovery (listings 54/55, 60/61). */
    EXPECT(feed(reg, &k,
                "<iq type='get' from='device@example.org/device' to='" REG "' id='16'>"
                "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='result' from='" REG "' to='device@example.org/device' id='16'>"
           "<query xmlns='http://jabber.org/protocol/disco#info'>"
           "<identity category='component' type='generic' name='Test registry'/>*</query></iq>");
    if (k.n == 1) {
        CHECK(strstr(k.stanza[0], "<feature var='" NS "'/>") != NULL, "feature: %s", k.stanza[0]);
        CHECK(strstr(k.stanza[0], "<feature var='http://jabber.org/protocol/disco#info'/>") != NULL,
              "disco#info feature: %s", k.stanza[0]);
    }
    EXPECT(feed(reg, &k,
                "<iq type='get' from='device@example.org/device' to='" REG "' id='15'>"
                "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='result' from='" REG "' to='device@example.org/device' id='15'>"
           "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>");

    /* Not for the registry: nothing sent, no error. */
    EXPECT(feed(reg, &k, "<message from='a@example.org/r' to='" REG "'><body>hi</body></message>"),
           IOTDISCO_NOT_MINE, &k, 0);
    EXPECT(feed(reg, &k,
                "<iq type='get' from='a@example.org/r' to='" REG "' id='v'>"
                "<query xmlns='jabber:iq:version'/></iq>"),
           IOTDISCO_NOT_MINE, &k, 0);
    CHECK(strcmp(last_error(), "") == 0, "NOT_MINE is no error: %s", last_error());

    /* A malformed discovery request is answered, not a C error. */
    EXPECT(feed(reg, &k,
                "<iq type='set' from='thing@example.org/imc' to='" REG "' id='b'>"
                "<register xmlns='" NS "'><str name='bad:name' value='1'/></register></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='error' from='" REG "' to='thing@example.org/imc' id='b'><error type='modify'>"
           "<bad-request xmlns='" STANZAS "'/><text xmlns='" STANZAS "'>*</text></error></iq>");
    EXPECT(feed(reg, &k,
                "<iq type='set' from='thing@example.org/imc' to='" REG "' id='b'>"
                "<frobnicate xmlns='" NS "'/></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='error' from='" REG "' to='thing@example.org/imc' id='b'><error type='cancel'>"
           "<feature-not-implemented xmlns='" STANZAS "'/><text xmlns='" STANZAS "'>*</text></error></iq>");
    /* Truncated XML. */
    EXPECT(feed(reg, &k,
                "<iq type='set' from='thing@example.org/imc' to='" REG "' id='t'>"
                "<register xmlns='" NS "'><str name='SN' value='1'/>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='error' from='" REG "' to='thing@example.org/imc' id='t'><error type='modify'>"
           "<bad-request xmlns='" STANZAS "'/>*</error></iq>");

    /* Unaddressable: dropped, the reason in last_error. */
    EXPECT(feed(reg, &k, "<iq type='get' from='a@example.org/r' to='" REG "'>"
                         "<search xmlns='" NS "'/></iq>"),
           IOTDISCO_DROPPED, &k, 0);
    CHECK(strstr(last_error(), "no id") != NULL, "dropped reason: %s", last_error());
    EXPECT(feed(reg, &k, "<iq type='get' id='1' to='" REG "'><search xmlns='" NS "'/></iq>"),
           IOTDISCO_DROPPED, &k, 0);
    CHECK(strstr(last_error(), "no from") != NULL, "dropped reason: %s", last_error());
    /* The message lasts until the next call on this thread, then clears. */
    CHECK(strstr(last_error(), "no from") != NULL, "stable: %s", last_error());
    EXPECT(feed(reg, &k, SEARCH_MODEL), IOTDISCO_OK, &k, 1, FOUND_THING);
    CHECK(strcmp(last_error(), "") == 0, "cleared: %s", last_error());

    sink_reset(&k);
    iotdisco_close(reg);
    CHECK(strcmp(last_error(), "") == 0, "clean close: %s", last_error());
}

/* A send callback that calls back into the library: the loopback thing
 * acknowledges every notification it is sent, from inside the callback. */
typedef struct {
    iotdisco_registry *reg;
    sink *k;
    int acked;
} loopback;

static void loopback_send(void *user, const char *stanza, size_t len) {
    loopback *l = (loopback *)user;
    collect(l->k, stanza, len);
    if (strstr(stanza, "to='thing@example.org/imc'") != NULL && strncmp(stanza, "<iq type='set'", 14) == 0) {
        char id[128], buf[256];
        attr(stanza, "id", id, sizeof id);
        snprintf(buf, sizeof buf, "<iq type='result' from='thing@example.org/imc' to='" REG "' id='%s'/>", id);
        sink inner = {0};
        int rc = iotdisco_handle(l->reg, buf, strlen(buf), now, collect, &inner);
        /* The ack of the disown produces the owner's reply. */
        for (size_t i = 0; i < inner.n; i++) collect(l->k, inner.stanza[i], inner.len[i]);
        CHECK(rc == IOTDISCO_OK, "re-entrant handle: %d %s", rc, iotdisco_last_error());
        uint64_t d;
        CHECK(iotdisco_next_deadline(l->reg, &d) == IOTDISCO_OK, "re-entrant next_deadline");
        sink_reset(&inner);
        l->acked++;
    }
}

static void reentrancy(void) {
    iotdisco_registry *reg = NULL;
    sink k = {0};
    CHECK(iotdisco_open(REG, NULL, NULL, &reg) == IOTDISCO_OK, "open: %s", last_error());
    if (reg == NULL) return;
    loopback l = {reg, &k, 0};
    EXPECT(feed(reg, &k, REGISTER), IOTDISCO_OK, &k, 1, RESULT_TO("thing@example.org/imc", "1"));
    sink_reset(&k);
    int rc = iotdisco_handle(reg, CLAIM, strlen(CLAIM), now, loopback_send, &l);
    EXPECT(rc, IOTDISCO_OK, &k, 2, "<iq type='result' from='" REG "' to='owner@example.org/phone' id='4'>*",
           "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'><claimed *");
    sink_reset(&k);
    const char *disown = "<iq type='set' from='owner@example.org/phone' to='" REG "' id='11'>"
                         "<disown xmlns='" NS "' jid='thing@example.org'/></iq>";
    rc = iotdisco_handle(reg, disown, strlen(disown), now, loopback_send, &l);
    /* The notification, then (from inside its callback) the owner's reply. */
    EXPECT(rc, IOTDISCO_OK, &k, 2,
           "<iq type='set' from='" REG "' to='thing@example.org/imc' id='d*-*'><disowned xmlns='" NS "'/></iq>",
           RESULT_TO("owner@example.org/phone", "11"));
    CHECK(l.acked == 2, "acked %d", l.acked);
    CHECK(deadline(reg) == IOTDISCO_NO_DEADLINE, "nothing waits");
    sink_reset(&k);
    iotdisco_close(reg);
}

static void null_and_length_edges(void) {
    iotdisco_registry *reg = NULL;
    sink k = {0};
    uint64_t d = 7;

    /* No registry. */
    CHECK(iotdisco_handle(NULL, "x", 1, now, collect, &k) == IOTDISCO_EINVAL, "handle(NULL)");
    CHECK(strstr(last_error(), "reg is NULL") != NULL, "%s", last_error());
    CHECK(iotdisco_presence(NULL, "a@b/c", 1, now, collect, &k) == IOTDISCO_EINVAL, "presence(NULL)");
    CHECK(iotdisco_tick(NULL, now, collect, &k) == IOTDISCO_EINVAL, "tick(NULL)");
    CHECK(iotdisco_next_deadline(NULL, &d) == IOTDISCO_EINVAL && d == 7, "next_deadline(NULL)");
    iotdisco_close(NULL); /* a no-op */
    CHECK(strcmp(last_error(), "") == 0, "close(NULL): %s", last_error());

    /* open's pointers. */
    CHECK(iotdisco_open(REG, NULL, NULL, NULL) == IOTDISCO_EINVAL, "open(out NULL)");
    CHECK(strstr(last_error(), "out is NULL") != NULL, "%s", last_error());
    reg = (iotdisco_registry *)&d; /* must be overwritten with NULL */
    CHECK(iotdisco_open(NULL, NULL, NULL, &reg) == IOTDISCO_EINVAL && reg == NULL, "open(jid NULL)");
    CHECK(strstr(last_error(), "registry_jid is NULL") != NULL, "%s", last_error());
    CHECK(iotdisco_open("not a jid@", NULL, NULL, &reg) == IOTDISCO_EINVAL && reg == NULL, "bad jid");
    CHECK(strstr(last_error(), "registry_jid") != NULL, "%s", last_error());
    CHECK(iotdisco_open(REG "/resource", NULL, NULL, &reg) == IOTDISCO_EINVAL, "jid with resource");
    CHECK(iotdisco_open("\xff\xfe.example", NULL, NULL, &reg) == IOTDISCO_EINVAL, "jid not UTF-8");
    CHECK(strstr(last_error(), "not UTF-8") != NULL, "%s", last_error());
    CHECK(iotdisco_open(REG, "", NULL, &reg) == IOTDISCO_EINVAL, "empty db_path");

    CHECK(iotdisco_open(REG, NULL, NULL, &reg) == IOTDISCO_OK && reg != NULL, "open: %s", last_error());
    if (reg == NULL) return;

    /* handle's pointers and lengths. */
    sink_reset(&k);
    CHECK(iotdisco_handle(reg, NULL, 10, now, collect, &k) == IOTDISCO_EINVAL && k.n == 0, "stanza NULL");
    CHECK(strstr(last_error(), "stanza is NULL") != NULL, "%s", last_error());
    CHECK(iotdisco_handle(reg, SEARCH_MODEL, strlen(SEARCH_MODEL), now, NULL, &k) == IOTDISCO_EINVAL,
          "send NULL");
    CHECK(strstr(last_error(), "send is NULL") != NULL, "%s", last_error());
    /* len 0: nothing to handle, with or without a pointer. */
    EXPECT(iotdisco_handle(reg, NULL, 0, now, collect, &k), IOTDISCO_NOT_MINE, &k, 0);
    EXPECT(iotdisco_handle(reg, "<iq", 0, now, collect, &k), IOTDISCO_NOT_MINE, &k, 0);
    /* user may be NULL: the library never touches it. */
    CHECK(iotdisco_handle(reg, "<x/>", 4, now, collect, NULL) == IOTDISCO_NOT_MINE, "user NULL");
    /* The length, not a NUL, ends the stanza: a prefix is a truncated iq. */
    EXPECT(iotdisco_handle(reg, SEARCH_MODEL, strlen(SEARCH_MODEL) - 6, now, collect, &k), IOTDISCO_OK, &k, 1,
           "<iq type='error' from='" REG "' to='curious@example.org/client' id='9'><error type='modify'>"
           "<bad-request xmlns='" STANZAS "'/>*</error></iq>");
    sink_reset(&k);
    /* Bytes after an embedded NUL are part of the stanza. */
    {
        char buf[sizeof(SEARCH_MODEL) + 8];
        memcpy(buf, SEARCH_MODEL, sizeof(SEARCH_MODEL)); /* with its NUL */
        memcpy(buf + sizeof(SEARCH_MODEL), "<junk/>", 7);
        EXPECT(iotdisco_handle(reg, buf, sizeof(SEARCH_MODEL) + 7, now, collect, &k), IOTDISCO_OK, &k, 1,
               "<iq type='error' from='" REG "' to='curious@example.org/client' id='9'><error type='modify'>"
               "<bad-request xmlns='" STANZAS "'/><text xmlns='" STANZAS "'>"
               "the stanza holds the character U+0000, which XML does not allow</text></error></iq>");
        sink_reset(&k);
    }

    /* Larger than max_stanza_bytes (128 KiB by default): bad-request, OK. */
    {
        const char *head = "<iq type='set' from='thing@example.org/imc' to='" REG "' id='big'>"
                           "<register xmlns='" NS "'><str name='SN' value='1'/>";
        const char *tail = "</register></iq>";
        size_t pad = 200 * 1024;
        size_t len = strlen(head) + pad + strlen(tail);
        char *big = (char *)malloc(len);
        memcpy(big, head, strlen(head));
        memset(big + strlen(head), ' ', pad);
        memcpy(big + strlen(head) + pad, tail, strlen(tail));
        EXPECT(iotdisco_handle(reg, big, len, now, collect, &k), IOTDISCO_OK, &k, 1,
               "<iq type='error' from='" REG "' to='thing@example.org/imc' id='big'><error type='modify'>"
               "<bad-request xmlns='" STANZAS "'/><text xmlns='" STANZAS "'>"
               "the stanza is larger than 131072 bytes</text></error></iq>");
        sink_reset(&k);
        free(big);
    }

    /* Not UTF-8: in a value, answered; in the iq's own attributes, dropped. */
    EXPECT(feed(reg, &k,
                "<iq type='set' from='thing@example.org/imc' to='" REG "' id='u'>"
                "<register xmlns='" NS "'><str name='SN' value='\xff\xfe\x80'/></register></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='error' from='" REG "' to='thing@example.org/imc' id='u'><error type='modify'>"
           "<bad-request xmlns='" STANZAS "'/><text xmlns='" STANZAS "'>the stanza is not valid UTF-8</text>"
           "</error></iq>");
    EXPECT(feed(reg, &k,
                "<iq type='set' from='thing@example.org/imc' to='" REG "' id='\xc3\x28'>"
                "<register xmlns='" NS "'><str name='SN' value='1'/></register></iq>"),
           IOTDISCO_DROPPED, &k, 0);
    CHECK(last_error()[0] != '\0', "dropped has a reason");
    EXPECT(feed(reg, &k, "\xff\xfe\xfd"), IOTDISCO_NOT_MINE, &k, 0);

    /* presence's arguments. */
    CHECK(iotdisco_presence(reg, NULL, 1, now, collect, &k) == IOTDISCO_EINVAL, "presence jid NULL");
    CHECK(strstr(last_error(), "full_jid is NULL") != NULL, "%s", last_error());
    CHECK(iotdisco_presence(reg, "a@b/c", 1, now, NULL, &k) == IOTDISCO_EINVAL, "presence send NULL");
    CHECK(iotdisco_presence(reg, "", 1, now, collect, &k) == IOTDISCO_EINVAL, "presence empty jid");
    CHECK(strstr(last_error(), "full_jid") != NULL, "%s", last_error());
    CHECK(iotdisco_presence(reg, "a@\xff/c", 1, now, collect, &k) == IOTDISCO_EINVAL, "presence not UTF-8");
    EXPECT(iotdisco_presence(reg, "someone@example.org", 0, now, collect, &k), IOTDISCO_OK, &k, 0);

    /* tick's and next_deadline's. */
    CHECK(iotdisco_tick(reg, now, NULL, NULL) == IOTDISCO_EINVAL, "tick send NULL");
    EXPECT(iotdisco_tick(reg, UINT64_MAX, collect, &k), IOTDISCO_OK, &k, 0);
    CHECK(iotdisco_next_deadline(reg, NULL) == IOTDISCO_EINVAL, "next_deadline out NULL");
    CHECK(strstr(last_error(), "out is NULL") != NULL, "%s", last_error());

    sink_reset(&k);
    iotdisco_close(reg);
}

static void bad_options(void) {
    struct {
        const char *options;
        const char *message;
    } cases[] = {
        {"max_result=5", "max_result"},
        {"max_search_results=5;bogus_key=1", "bogus_key"},
        {"max_things", "max_things"},
        {"max_search_results=lots", "max_search_results"},
        {"disown_timeout_ms=-1", "disown_timeout_ms"},
        {"disown_element_fallback=maybe", "disown_element_fallback"},
        {"foreign=ignore", "foreign"},
        {"durability=sometimes", "durability"},
        {"durability=group_commit:x", "durability"},
        {"allowed_tags=OK,bad tag", "allowed_tags"},
        {"max_depth=4;max_depth=5", "max_depth"},
        {"\xff=1", "options"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        iotdisco_registry *reg = NULL;
        int rc = iotdisco_open(REG, NULL, cases[i].options, &reg);
        CHECK(rc == IOTDISCO_EINVAL && reg == NULL, "options '%s' returned %s", cases[i].options, rc_name(rc));
        CHECK(strstr(last_error(), cases[i].message) != NULL, "options '%s': message '%s' lacks '%s'",
              cases[i].options, last_error(), cases[i].message);
        iotdisco_close(reg);
    }

    /* Options take effect: page size, foreign policy, allow-list. */
    iotdisco_registry *reg = NULL;
    sink k = {0};
    int rc = iotdisco_open(REG, NULL,
                           " max_search_results = 1 ; foreign=service_unavailable;"
                           "allowed_tags=ROOM, FLOOR;;",
                           &reg);
    CHECK(rc == IOTDISCO_OK, "options: %s", last_error());
    if (reg == NULL) return;
    for (int i = 0; i < 2; i++) {
        char buf[256];
        snprintf(buf, sizeof buf,
                 "<iq type='set' from='t%d@example.org/r' to='" REG "' id='r'>"
                 "<register xmlns='" NS "' selfOwned='true'><str name='ROOM' value='hall'/></register></iq>", i);
        char want[128];
        snprintf(want, sizeof want, "<iq type='result' from='" REG "' to='t%d@example.org/r' id='r'/>", i);
        EXPECT(feed(reg, &k, buf), IOTDISCO_OK, &k, 1, want);
    }
    EXPECT(feed(reg, &k,
                "<iq type='get' from='c@example.org/r' to='" REG "' id='s'>"
                "<search xmlns='" NS "'><strEq name='ROOM' value='hall'/></search></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='result' from='" REG "' to='c@example.org/r' id='s'><found xmlns='" NS "' more='true'>"
           "<thing owner='t0@example.org' jid='t0@example.org'><str name='ROOM' value='hall'/></thing></found></iq>");
    EXPECT(feed(reg, &k,
                "<iq type='set' from='t9@example.org/r' to='" REG "' id='r'>"
                "<register xmlns='" NS "'><str name='COLOUR' value='red'/></register></iq>"),
           IOTDISCO_OK, &k, 1,
           "<iq type='error' from='" REG "' to='t9@example.org/r' id='r'><error type='modify'>"
           "<bad-request xmlns='" STANZAS "'/><text xmlns='" STANZAS "'>"
           "tag &apos;COLOUR&apos; is not accepted by this registry</text></error></iq>");
    EXPECT(feed(reg, &k,
                "<iq type='get' from='a@example.org/r' to='" REG "' id='v'><query xmlns='jabber:iq:version'/></iq>"),
           IOTDISCO_OK, &k, 1, ERROR_TO("a@example.org/r", "v", "cancel", "service-unavailable"));
    sink_reset(&k);
    iotdisco_close(reg);
}

static void on_disk(const char *dir) {
    char path[4096];
    sink k = {0};
    snprintf(path, sizeof path, "%s/registry.db", dir);
    const char *reg_self =
        "<iq type='set' from='lamp@example.org/l' to='" REG "' id='r'>"
        "<register xmlns='" NS "' selfOwned='true'><str name='SN' value='lamp-1'/>"
        "<num name='W' value='60'/><str name='KEY' value='secret'/></register></iq>";
    const char *search =
        "<iq type='get' from='c@example.org/r' to='" REG "' id='s'>"
        "<search xmlns='" NS "'><numGtEq name='W' value='40'/></search></iq>";
    const char *found =
        "<iq type='result' from='" REG "' to='c@example.org/r' id='s'><found xmlns='" NS "' more='false'>"
        "<thing owner='lamp@example.org' jid='lamp@example.org'><str name='SN' value='lamp-1'/>"
        "<num name='W' value='60'/></thing></found></iq>";

    for (int round = 0; round < 2; round++) {
        /* Round 0: every change flushed; round 1: group commit, flushed at close. */
        const char *options = round == 0 ? "durability=flush" : "durability=group_commit:5";
        if (round == 1) snprintf(path, sizeof path, "%s/group.db", dir);
        iotdisco_registry *reg = NULL;
        int rc = iotdisco_open(REG, path, options, &reg);
        CHECK(rc == IOTDISCO_OK, "open %s: %s", path, last_error());
        if (reg == NULL) return;
        EXPECT(feed(reg, &k, reg_self), IOTDISCO_OK, &k, 1, RESULT_TO("lamp@example.org/l", "r"));
        EXPECT(feed(reg, &k, search), IOTDISCO_OK, &k, 1, found);

        /* The database is locked while open. */
        iotdisco_registry *second = NULL;
        rc = iotdisco_open(REG, path, NULL, &second);
        CHECK(rc == IOTDISCO_ESTORAGE && second == NULL, "second open: %s", rc_name(rc));
        CHECK(strstr(last_error(), "in use") != NULL, "locked: %s", last_error());

        iotdisco_close(reg);
        CHECK(strcmp(last_error(), "") == 0, "close: %s", last_error());

        reg = NULL;
        rc = iotdisco_open(REG, path, NULL, &reg);
        CHECK(rc == IOTDISCO_OK, "reopen %s: %s", path, last_error());
        if (reg == NULL) return;
        EXPECT(feed(reg, &k, search), IOTDISCO_OK, &k, 1, found);
        sink_reset(&k);
        iotdisco_close(reg);
    }

    /* Not a database: a regular file, and a directory of something else. */
    snprintf(path, sizeof path, "%s/plain-file", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "create %s", path);
    if (f != NULL) {
        fputs("not a database\n", f);
        fclose(f);
    }
    iotdisco_registry *reg = NULL;
    int rc = iotdisco_open(REG, path, NULL, &reg);
    CHECK(rc == IOTDISCO_ESTORAGE && reg == NULL, "file as db_path: %s", rc_name(rc));
    CHECK(strstr(last_error(), "plain-file") != NULL, "message names the path: %s", last_error());
    snprintf(path, sizeof path, "%s/other", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/other/notes.txt", dir);
    f = fopen(path, "w");
    if (f != NULL) {
        fputs("hello\n", f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/other", dir);
    rc = iotdisco_open(REG, path, NULL, &reg);
    CHECK(rc == IOTDISCO_ESTORAGE && reg == NULL, "foreign directory: %s", rc_name(rc));
    CHECK(strstr(last_error(), "not an iotdisco database") != NULL, "%s", last_error());
    sink_reset(&k);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <scratch dir> <expected version>\n", argv[0]);
        return 2;
    }
    const char *version = iotdisco_version();
    CHECK(version != NULL && strcmp(version, argv[2]) == 0, "version '%s', want '%s'", version, argv[2]);

    spec_flows();
    reentrancy();
    null_and_length_edges();
    bad_options();
    on_disk(argv[1]);

    printf("flows: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
