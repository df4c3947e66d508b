#!/usr/bin/env python3
"""The XEP-0347 life cycle against a real Prosody serving an iotdisco registry,
whether as the Prosody module (ffi/tests/prosody.rs runs --phase basic) or as
the XEP-0114 component (component/tests/prosody_component.rs runs the other
phases between restarts).

Phases (--phase):
- basic: the life cycle below, alone.
- lifecycle: three slixmpp clients -- the thing, its owner and a third-party
  searcher -- drive the registry at the component's domain (default
  discovery.localhost) through the subscription handshake, register, claim,
  search, update by the thing and by the owner, remove, disown with the thing
  online and offline, the thing coming back, unsubscription, disco#info and an
  IQ the registry does not serve; every reply is compared with the exact stanza
  expected, and the thing must get no presence from the registry other than
  the subscription answers. Then the account `survivor` registers a thing that
  the owner claims as public.
- survivor: the searcher finds the survivor thing (run after the component
  was killed and restarted, and after Prosody was restarted).
- concurrent: N things (accounts t01..tNN) connect and register at the same
  time; every one must get its result.

Every wait has a time-out. Exit status 0 when every step passed; otherwise 1
and a message on stderr naming the step and what differed.

Usage: lifecycle.py --port 5222 --phase basic|lifecycle|survivor|concurrent
       [--server 127.0.0.1] [--domain localhost] [--registry discovery.localhost]
       [--password pw] [--things 50] [--identity-name NAME]
"""

import argparse
import asyncio
import logging
import sys
import time
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS = "urn:xmpp:iot:discovery"
CLIENT = "{jabber:client}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
TIMEOUT = 10.0  # seconds, for every single wait


class Failure(Exception):
    """A step did not get what it expected."""


def canon(el):
    """A comparable form of an element: name, attributes, text, children
    (sorted, so their order does not matter). jabber:client is no namespace."""
    tag = el.tag[len(CLIENT):] if el.tag.startswith(CLIENT) else el.tag
    attrs = tuple(sorted((k, v) for k, v in el.attrib.items() if k != XML_LANG))
    text = (el.text or "").strip()
    return (tag, attrs, text, tuple(sorted(canon(c) for c in el)))


def expect_stanza(step, got, want):
    """Fails `step` unless the stanza `got` (an ElementTree element) equals
    the XML text `want`."""
    if canon(got) != canon(ET.fromstring(want)):
        raise Failure(f"{step}:\n  want {want}\n  got  {ET.tostring(got, encoding='unicode')}")


class Client(slixmpp.ClientXMPP):
    """One real client connection; records notifications and presence it
    gets from the registry."""

    def __init__(self, jid, password, registry):
        super().__init__(jid, password)
        self.registry = registry
        # Prosody on 127.0.0.1 without certificates: plain TCP, SASL PLAIN.
        self.enable_direct_tls = False
        self.enable_starttls = False
        self.enable_plaintext = True
        self.plugin["feature_mechanisms"].unencrypted_plain = True
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        # Subscriptions are answered by the test, not automatically.
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.started = asyncio.Event()
        self.auth_failed = False
        self.notifications = asyncio.Queue()
        self.presences = []  # (type, from) of presence from the registry
        self.presence_seen = asyncio.Event()
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("failed_auth", self._failed_auth)
        self.add_event_handler("presence", self._presence)
        for name in ("claimed", "removed", "disowned", "disown"):
            self.register_handler(
                Callback(
                    f"iotdisco {name}",
                    MatchXPath(f"{CLIENT}iq/{{{NS}}}{name}"),
                    self._notification,
                )
            )

    async def _started(self, _event):
        # Like any client: fetch the roster (Prosody then delivers
        # subscription answers to this resource), then become available.
        await self.get_roster(timeout=TIMEOUT)
        self.send_presence()
        self.started.set()

    def _failed_auth(self, _event):
        self.auth_failed = True
        self.started.set()

    def _notification(self, iq):
        if iq["type"] == "set":
            self.notifications.put_nowait(iq)

    def _presence(self, pres):
        if pres["from"].bare == self.registry:
            self.presences.append((pres["type"], str(pres["from"])))
            self.presence_seen.set()

    async def start(self, server, port):
        self.connect(server, port)
        try:
            await asyncio.wait_for(self.started.wait(), TIMEOUT)
        except asyncio.TimeoutError:
            raise Failure(f"{self.boundjid.bare}: no session within {TIMEOUT}s") from None
        if self.auth_failed:
            raise Failure(f"{self.boundjid.bare}: authentication failed")

    async def request(self, step, itype, payload, to=None):
        """Sends an IQ with `payload` (XML text) and returns the reply's
        element, result or error alike."""
        iq = self.make_iq(ito=to or self.registry, itype=itype)
        iq.xml.append(ET.fromstring(payload))
        try:
            reply = await iq.send(timeout=TIMEOUT)
        except IqError as e:
            reply = e.iq
        except IqTimeout:
            raise Failure(f"{step}: no reply within {TIMEOUT}s") from None
        return iq["id"], reply.xml

    async def notification(self, step):
        try:
            return await asyncio.wait_for(self.notifications.get(), TIMEOUT)
        except asyncio.TimeoutError:
            raise Failure(f"{step}: no notification within {TIMEOUT}s") from None

    def ack(self, iq):
        iq.reply(clear=True).send()


async def lifecycle(args):
    reg, dom = args.registry, args.domain
    thing = Client(f"thing@{dom}/imc", args.password, reg)
    owner = Client(f"owner@{dom}/phone", args.password, reg)
    searcher = Client(f"searcher@{dom}/client", args.password, reg)
    clients = [thing, owner, searcher]
    t_jid, o_jid, s_jid = (str(c.boundjid) for c in clients)
    t_bare, o_bare = f"thing@{dom}", f"owner@{dom}"

    def log(msg):
        print(f"[{time.monotonic() - t0:6.2f}s] {msg}", flush=True)

    def result(to, id_, body=""):
        if body:
            return f"<iq type='result' from='{reg}' to='{to}' id='{id_}'>{body}</iq>"
        return f"<iq type='result' from='{reg}' to='{to}' id='{id_}'/>"

    def error(to, id_, etype, cond):
        return (
            f"<iq type='error' from='{reg}' to='{to}' id='{id_}'><error type='{etype}'>"
            f"<{cond} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        )

    async def notified(step, want_body):
        iq = await thing.notification(step)
        nid = iq["id"]
        expect_stanza(
            step,
            iq.xml,
            f"<iq type='set' from='{reg}' to='{t_jid}' id='{nid}'>{want_body}</iq>",
        )
        return iq

    t0 = time.monotonic()
    try:
        for c in clients:
            await c.start(args.server, args.port)
        log("three clients connected")

        # Subscription handshake, as things of the ekster era do it.
        thing.send_presence(pto=reg, ptype="subscribe")
        deadline = time.monotonic() + TIMEOUT
        while not {"subscribed", "subscribe"} <= {t for t, _ in thing.presences}:
            if time.monotonic() > deadline:
                raise Failure(f"subscribe: got {thing.presences}, want subscribed and subscribe")
            thing.presence_seen.clear()
            try:
                await asyncio.wait_for(thing.presence_seen.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        thing.send_presence(pto=reg, ptype="subscribed")
        log("subscription handshake done")

        tags = (
            "<str name='SN' value='394872348732948723'/><str name='MAN' value='www.ktc.se'/>"
            "<str name='MODEL' value='IMC'/><num name='V' value='1.2'/>"
        )
        key1 = "<str name='KEY' value='4857402340298342'/>"

        # Register (3.6).
        i, r = await thing.request("register", "set", f"<register xmlns='{NS}'>{tags}{key1}</register>")
        expect_stanza("register", r, result(t_jid, i))
        log("register: result")

        # Claim (3.9): owner gets <claimed jid=thing/>, thing gets `claimed`.
        i, r = await owner.request("claim", "set", f"<mine xmlns='{NS}'>{tags}{key1}</mine>")
        expect_stanza("claim", r, result(o_jid, i, f"<claimed xmlns='{NS}' jid='{t_bare}'/>"))
        n = await notified("claimed notification", f"<claimed xmlns='{NS}' jid='{o_bare}'/>")
        thing.ack(n)
        log("claim: owner got claimed, thing got claimed and acknowledged")

        # Search by a third party (3.11).
        search = (
            f"<search xmlns='{NS}' offset='0' maxCount='20'><strEq name='MODEL' value='IMC'/>"
            "<strMask name='SN' value='39487*' wildcard='*'/></search>"
        )
        i, r = await searcher.request("search", "get", search)
        expect_stanza(
            "search",
            r,
            result(
                s_jid,
                i,
                f"<found xmlns='{NS}' more='false'><thing owner='{o_bare}' jid='{t_bare}'>{tags}</thing></found>",
            ),
        )
        log("search: third party found the thing")

        # Update by the thing (3.13).
        upd = "<str name='CLASS' value='PLC'/><num name='LON' value='-71.519722'/>"
        i, r = await thing.request("thing update", "set", f"<update xmlns='{NS}'>{key1}{upd}</update>")
        expect_stanza("thing update", r, result(t_jid, i))
        i, r = await searcher.request("search after update", "get", search)
        expect_stanza(
            "search after update",
            r,
            result(
                s_jid,
                i,
                f"<found xmlns='{NS}' more='false'><thing owner='{o_bare}' jid='{t_bare}'>{tags}{upd}</thing></found>",
            ),
        )
        log("thing update: result, visible in search")

        # Update by the owner (3.14).
        room = "<str name='ROOM' value='42'/>"
        i, r = await owner.request(
            "owner update", "set", f"<update xmlns='{NS}' jid='{t_bare}'>{room}</update>"
        )
        expect_stanza("owner update", r, result(o_jid, i))
        i, r = await searcher.request(
            "search after owner update", "get", f"<search xmlns='{NS}'><strEq name='ROOM' value='42'/></search>"
        )
        expect_stanza(
            "search after owner update",
            r,
            result(
                s_jid,
                i,
                f"<found xmlns='{NS}' more='false'><thing owner='{o_bare}' jid='{t_bare}'>{tags}{upd}{room}</thing></found>",
            ),
        )
        log("owner update: result, visible in search")

        # Remove (3.10): the thing gets `removed`.
        i, r = await owner.request("remove", "set", f"<remove xmlns='{NS}' jid='{t_bare}'/>")
        expect_stanza("remove", r, result(o_jid, i))
        n = await notified("removed notification", f"<removed xmlns='{NS}'/>")
        thing.ack(n)
        i, r = await searcher.request("search after remove", "get", search)
        expect_stanza("search after remove", r, result(s_jid, i, f"<found xmlns='{NS}' more='false'/>"))
        log("remove: result, thing got removed, search finds nothing")

        async def register_and_claim(step, key):
            i, r = await thing.request(f"{step}: register", "set", f"<register xmlns='{NS}'>{tags}{key}</register>")
            expect_stanza(f"{step}: register", r, result(t_jid, i))
            i, r = await owner.request(f"{step}: claim", "set", f"<mine xmlns='{NS}'>{tags}{key}</mine>")
            expect_stanza(f"{step}: claim", r, result(o_jid, i, f"<claimed xmlns='{NS}' jid='{t_bare}'/>"))
            n = await notified(f"{step}: claimed notification", f"<claimed xmlns='{NS}' jid='{o_bare}'/>")
            thing.ack(n)

        # Disown with the thing online (3.17): the owner's reply waits for the
        # thing's acknowledgement.
        await register_and_claim("disown online", "<str name='KEY' value='k2'/>")
        owner_reply = asyncio.ensure_future(
            owner.request("disown online", "set", f"<disown xmlns='{NS}' jid='{t_bare}'/>")
        )
        n = await notified("disowned notification", f"<disowned xmlns='{NS}'/>")
        await asyncio.sleep(0.5)
        if owner_reply.done():
            raise Failure("disown online: the owner got a reply before the thing acknowledged")
        thing.ack(n)
        i, r = await asyncio.wait_for(owner_reply, TIMEOUT + 1)
        expect_stanza("disown online", r, result(o_jid, i))
        i, r = await searcher.request("search after disown", "get", search)
        expect_stanza("search after disown", r, result(s_jid, i, f"<found xmlns='{NS}' more='false'/>"))
        log("disown online: thing acknowledged, then the owner got its result")

        # Disown with the thing offline: not-allowed.
        await register_and_claim("disown offline", "<str name='KEY' value='k3'/>")
        await asyncio.wait_for(thing.disconnect(), TIMEOUT)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        i, r = await owner.request("disown offline", "set", f"<disown xmlns='{NS}' jid='{t_bare}'/>")
        expect_stanza("disown offline", r, error(o_jid, i, "cancel", "not-allowed"))
        log(f"disown offline: not-allowed after {time.monotonic() - started:.2f}s")

        # The thing comes back (a new session): its available presence reaches
        # the registry (Prosody also probes the registry, which must not
        # answer), so a disown is tried again and it acknowledges.
        first_session = thing
        thing = Client(f"thing@{dom}/imc", args.password, reg)
        clients.append(thing)
        await thing.start(args.server, args.port)
        await asyncio.sleep(0.3)
        owner_reply = asyncio.ensure_future(
            owner.request("disown after reconnect", "set", f"<disown xmlns='{NS}' jid='{t_bare}'/>")
        )
        n = await notified("disowned after reconnect", f"<disowned xmlns='{NS}'/>")
        thing.ack(n)
        i, r = await asyncio.wait_for(owner_reply, TIMEOUT + 1)
        expect_stanza("disown after reconnect", r, result(o_jid, i))
        log("reconnect: the registry saw the thing online again; disown acknowledged")

        # Unsubscribe: the registry answers unsubscribed and unsubscribes too.
        # (Prosody absorbs the `unsubscribed`, the thing having already dropped
        # its side; the registry's `unsubscribe` reaches the thing.)
        thing.send_presence(pto=reg, ptype="unsubscribe")
        deadline = time.monotonic() + TIMEOUT
        while "unsubscribe" not in {t for t, _ in thing.presences}:
            if time.monotonic() > deadline:
                raise Failure(f"unsubscribe: got {thing.presences}, want unsubscribe")
            thing.presence_seen.clear()
            try:
                await asyncio.wait_for(thing.presence_seen.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        log(f"unsubscribe: the registry answered {thing.presences}")

        # disco#info of the registry.
        i, r = await searcher.request(
            "disco#info", "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"
        )
        query = r.find("{http://jabber.org/protocol/disco#info}query")
        if r.get("type") != "result" or query is None:
            raise Failure(f"disco#info: {ET.tostring(r, encoding='unicode')}")
        features = {f.get("var") for f in query.findall("{http://jabber.org/protocol/disco#info}feature")}
        identities = [
            (x.get("category"), x.get("type"), x.get("name"))
            for x in query.findall("{http://jabber.org/protocol/disco#info}identity")
        ]
        if NS not in features:
            raise Failure(f"disco#info: no feature {NS} in {sorted(features)}")
        if identities != [("component", "generic", args.identity_name)]:
            raise Failure(f"disco#info: identities {identities}")
        log(f"disco#info: features {sorted(features)}")

        # An IQ the registry does not serve: Prosody answers service-unavailable.
        i, r = await searcher.request("foreign IQ", "get", "<query xmlns='jabber:iq:version'/>")
        expect_stanza("foreign IQ", r, error(s_jid, i, "cancel", "service-unavailable"))
        log("foreign IQ: service-unavailable")

        # The registry never sent the thing presence it did not ask for.
        await asyncio.sleep(0.2)
        subscription = ("subscribed", "subscribe", "unsubscribed", "unsubscribe")
        for session in (first_session, thing):
            unexpected = [p for p in session.presences if p[0] not in subscription]
            if unexpected:
                raise Failure(f"presence: the registry sent unsolicited presence {unexpected}")
        log(f"presence from the registry: {first_session.presences} then {thing.presences}")
    finally:
        for c in clients:
            try:
                await asyncio.wait_for(c.disconnect(), 3)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
    log("all steps passed")



SURVIVOR_TAGS = (
    "<str name='SN' value='survivor-0001'/><str name='MAN' value='iotdisco.test'/>"
    "<str name='MODEL' value='SURVIVOR'/>"
)


def log(msg):
    print(f"[{time.monotonic() - T0:6.2f}s] {msg}", flush=True)


T0 = time.monotonic()


async def register_survivor(args):
    """The survivor thing registers; the owner claims it as public."""
    reg, dom = args.registry, args.domain
    thing = Client(f"survivor@{dom}/box", args.password, reg)
    owner = Client(f"owner@{dom}/phone", args.password, reg)
    try:
        for c in (thing, owner):
            await c.start(args.server, args.port)
        key = "<str name='KEY' value='survivor-key'/>"
        i, r = await thing.request("survivor register", "set", f"<register xmlns='{NS}'>{SURVIVOR_TAGS}{key}</register>")
        expect_stanza("survivor register", r, f"<iq type='result' from='{reg}' to='{thing.boundjid}' id='{i}'/>")
        i, r = await owner.request("survivor claim", "set", f"<mine xmlns='{NS}'>{SURVIVOR_TAGS}{key}</mine>")
        expect_stanza(
            "survivor claim",
            r,
            f"<iq type='result' from='{reg}' to='{owner.boundjid}' id='{i}'><claimed xmlns='{NS}' jid='survivor@{dom}'/></iq>",
        )
        n = await thing.notification("survivor claimed notification")
        thing.ack(n)
        log("survivor: registered and claimed (public)")
    finally:
        for c in (thing, owner):
            try:
                await asyncio.wait_for(c.disconnect(), 3)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass


async def survivor(args):
    """The searcher finds the survivor thing."""
    reg, dom = args.registry, args.domain
    searcher = Client(f"searcher@{dom}/client", args.password, reg)
    try:
        await searcher.start(args.server, args.port)
        i, r = await searcher.request(
            "survivor search", "get", f"<search xmlns='{NS}'><strEq name='SN' value='survivor-0001'/></search>"
        )
        expect_stanza(
            "survivor search",
            r,
            f"<iq type='result' from='{reg}' to='{searcher.boundjid}' id='{i}'><found xmlns='{NS}' more='false'>"
            f"<thing owner='owner@{dom}' jid='survivor@{dom}'>{SURVIVOR_TAGS}</thing></found></iq>",
        )
        log("survivor: found by the searcher")
    finally:
        try:
            await asyncio.wait_for(searcher.disconnect(), 3)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


async def concurrent(args):
    """args.things things connect, then register all at once."""
    reg, dom = args.registry, args.domain
    things = [Client(f"t{n:02d}@{dom}/dev", args.password, reg) for n in range(1, args.things + 1)]
    try:
        await asyncio.gather(*(t.start(args.server, args.port) for t in things))
        log(f"concurrent: {len(things)} things connected")

        async def register(n, t):
            tags = f"<str name='SN' value='concurrent-{n:02d}'/><str name='KEY' value='k{n:02d}'/>"
            i, r = await t.request(f"t{n:02d} register", "set", f"<register xmlns='{NS}'>{tags}</register>")
            expect_stanza(f"t{n:02d} register", r, f"<iq type='result' from='{reg}' to='{t.boundjid}' id='{i}'/>")

        started = time.monotonic()
        await asyncio.gather(*(register(n, t) for n, t in enumerate(things, 1)))
        log(f"concurrent: {len(things)} registrations acknowledged in {time.monotonic() - started:.2f}s")
    finally:
        await asyncio.gather(
            *(asyncio.wait_for(t.disconnect(), 3) for t in things), return_exceptions=True
        )


async def run(args):
    if args.phase == "basic":
        await lifecycle(args)
    elif args.phase == "lifecycle":
        await lifecycle(args)
        await register_survivor(args)
        await survivor(args)
    elif args.phase == "survivor":
        await survivor(args)
    else:
        await survivor(args)
        await concurrent(args)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--phase", choices=["basic", "lifecycle", "survivor", "concurrent"], required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--registry", default="discovery.localhost")
    p.add_argument("--password", default="pw")
    p.add_argument("--things", type=int, default=50)
    p.add_argument("--identity-name", default="Thing Registry")
    p.add_argument("--debug", action="store_true", help="log the XML streams")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR)
    try:
        asyncio.run(asyncio.wait_for(run(args), 150))
    except Failure as e:
        print(f"FAIL ({args.phase}): {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except asyncio.TimeoutError:
        print(f"FAIL ({args.phase}): did not finish within 150s", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"PASS ({args.phase})", flush=True)


if __name__ == "__main__":
    main()
