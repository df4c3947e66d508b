#!/usr/bin/env python3
"""Spec 3.5 (Finding Thing Registry), method 5, as a thing does it: a slixmpp
client logs in to the XMPP server, asks the server's domain for its
disco#items, asks each item for its disco#info, and keeps the items that
advertise the feature urn:xmpp:iot:discovery. Run by
component/tests/disco35.rs against a real Prosody with iotdisco components.

Prints one line `registry: JID (identity category/type "name")` per registry
found and `not a registry: JID` for the other items, then checks them against
--expect (each must be found as a registry) and --not (each must be listed
but not be a registry). Exit status 0 when all checks pass; otherwise 1 and
a message on stderr.

Usage: disco35.py --port 5222 [--server 127.0.0.1] [--domain localhost]
       [--user thing] [--password pw] [--expect JID ...] [--not JID ...]
"""

import argparse
import asyncio
import logging
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

FEATURE = "urn:xmpp:iot:discovery"
TIMEOUT = 10.0  # seconds, for every single wait


class Failure(Exception):
    """A step did not get what it expected."""


class Thing(slixmpp.ClientXMPP):
    """A thing looking for its registry."""

    def __init__(self, jid, password):
        super().__init__(jid, password)
        # Prosody on 127.0.0.1 without certificates: plain TCP, SASL PLAIN.
        self.enable_direct_tls = False
        self.enable_starttls = False
        self.enable_plaintext = True
        self.plugin["feature_mechanisms"].unencrypted_plain = True
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        self.register_plugin("xep_0030")
        self.started = asyncio.Event()
        self.auth_failed = False
        self.add_event_handler("session_start", lambda _e: self.started.set())
        self.add_event_handler("failed_auth", self._failed_auth)

    def _failed_auth(self, _event):
        self.auth_failed = True
        self.started.set()


async def find_registries(thing, domain):
    """disco#items of the server, then disco#info of each item: (registries,
    others), registries as (jid, identities)."""
    try:
        items = await thing.plugin["xep_0030"].get_items(jid=domain, timeout=TIMEOUT)
    except (IqError, IqTimeout) as e:
        raise Failure(f"disco#items of {domain}: {e}") from None
    listed = [jid for jid, _node, _name in items["disco_items"]["items"]]
    print(f"disco#items of {domain}: {listed}", flush=True)
    registries, others = [], []
    for jid in listed:
        try:
            info = await thing.plugin["xep_0030"].get_info(jid=jid, timeout=TIMEOUT)
        except (IqError, IqTimeout) as e:
            print(f"disco#info of {jid} failed: {e}", flush=True)
            others.append(jid)
            continue
        features = set(info["disco_info"]["features"])
        identities = [f'{c}/{t} "{n or ""}"' for c, t, _lang, n in info["disco_info"]["identities"]]
        if FEATURE in features:
            print(f"registry: {jid} (identity {', '.join(identities)})", flush=True)
            registries.append(jid)
        else:
            print(f"not a registry: {jid}", flush=True)
            others.append(jid)
    return registries, others


async def run(args):
    thing = Thing(f"{args.user}@{args.domain}/imc", args.password)
    thing.connect(args.server, args.port)
    try:
        await asyncio.wait_for(thing.started.wait(), TIMEOUT)
    except asyncio.TimeoutError:
        raise Failure(f"no session within {TIMEOUT}s") from None
    if thing.auth_failed:
        raise Failure("authentication failed")
    try:
        registries, others = await find_registries(thing, args.domain)
    finally:
        try:
            await asyncio.wait_for(thing.disconnect(), 3)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    for jid in args.expect:
        if jid not in registries:
            raise Failure(f"{jid} was not found as a registry (registries {registries}, others {others})")
    for jid in args.not_:
        if jid not in others:
            raise Failure(f"{jid} should be listed and not be a registry (registries {registries}, others {others})")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--user", default="thing")
    p.add_argument("--password", default="pw")
    p.add_argument("--expect", action="append", default=[])
    p.add_argument("--not", dest="not_", action="append", default=[])
    p.add_argument("--debug", action="store_true", help="log the XML streams")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR)
    try:
        asyncio.run(asyncio.wait_for(run(args), 60))
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except asyncio.TimeoutError:
        print("FAIL: did not finish within 60s", file=sys.stderr, flush=True)
        sys.exit(1)
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
