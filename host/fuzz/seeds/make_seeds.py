#!/usr/bin/env python3
"""Writes the starting corpus of each fuzz target into corpus/<target>/:
values in the store's binary format (0x01 + postcard) and in the JSON of
0.1, changelog records, re-drive envelopes, the examples' manifests and
event files. Run from host/fuzz: python3 seeds/make_seeds.py. The fuzzers
grow the corpora from here; `cargo fuzz cmin` keeps them small.
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(ROOT))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zz(n):
    return varint((n << 1) ^ (n >> 63) if n < 0 else n << 1)


def bstr(b):
    return varint(len(b)) + b


def text(s):
    return bstr(s.encode())


def opt(v, enc):
    return b"\x00" if v is None else b"\x01" + enc(v)


def seq(items, enc):
    return varint(len(items)) + b"".join(enc(i) for i in items)


def event(payload=b"{}", key=b"k-1", headers=((b"trace", b"abc"), (b"gone", None), (b"\xff\xfe", b""))):
    return (text("bookings") + zz(2) + zz(77) + opt(1_700_000_000_000, zz)
            + opt(key, bstr) + opt(payload, bstr)
            + seq(list(headers), lambda h: bstr(h[0]) + opt(h[1], bstr)))


def attempt(n, outcome=1):
    return varint(n) + zz(5) + struct.pack("<d", 1.25) + varint(3) + varint(outcome) + text("wallet down")


LANES = [varint(0), varint(1) + bstr(b"k-1"), varint(2) + zz(77)]


def held(lane=1, payload=b"{}", attempts=1):
    return (b"\x01" + event(payload) + LANES[lane]
            + seq(list(range(1, attempts + 1)), attempt)
            + opt(5, zz) + opt(1005, zz) + opt(2, varint))


def dead_letter_body(payload=b"{}"):
    return (text("a:bookings:2:77") + text("a") + varint(1) + text("wactor.a")
            + event(payload) + seq([1, 2], attempt) + text("dead") + text("actor_dead")
            + zz(1) + zz(2) + varint(0))


OLD_HELD = json.dumps({
    "event": {"topic": "bookings", "partition": 2, "offset": 77, "timestamp_ms": None,
              "key": [107], "payload": [123, 125], "headers": [["trace", [97, 98]]]},
    "lane": {"Key": [107]},
    "attempts": [{"attempt": 1, "started_at_ms": 5, "duration_ms": 1.5, "version": 3,
                  "outcome": "retry", "error": "down"}],
    "first_attempt_at_ms": 5, "next_attempt_at_ms": 9, "version_override": None,
}).encode()

OLD_DEAD = json.dumps({
    "id": "a:bookings:2:77", "actor": "a", "version": 1, "group": "wactor.a",
    "event": {"topic": "bookings", "partition": 2, "offset": 77, "timestamp_ms": 9,
              "key": None, "payload": [], "headers": []},
    "attempts": [], "reason": "dead", "kind": "actor_dead",
    "first_attempt_at_ms": 1, "dead_at_ms": 2, "redrives": 0,
}).encode()


def write(target, name, data):
    path = os.path.join(ROOT, "corpus", target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "seed-" + name), "wb") as f:
        f.write(data)


def changelog(key, payload):
    flags = (1 if key is None else 0) | (2 if payload is None else 0)
    key = key or b""
    return bytes([flags]) + struct.pack(">H", len(key)) + key + (payload or b"")


def main():
    for lane in range(3):
        write("store_value", f"held-lane{lane}", held(lane))
    write("store_value", "held-tombstone", held(1, payload=None, attempts=0))
    write("store_value", "held-json", OLD_HELD)
    write("store_value", "dead-letter", b"\x01" + dead_letter_body())
    write("store_value", "dead-letter-json", OLD_DEAD)

    write("changelog_record", "held", changelog(b"bookings:2:key.6b2d31:77", held(1)))
    write("changelog_record", "shared", changelog(b"orders:a:b:0:shared:5", held(0)))
    write("changelog_record", "own", changelog(b"t:3:own.9:9", held(2)))
    write("changelog_record", "tombstone", changelog(b"t:3:own:9", None))
    write("changelog_record", "json", changelog(b"bookings:2:key.6b:77", OLD_HELD))

    env = dead_letter_body() + opt(2, varint) + zz(1_700_000_000_000) + text("alice")
    write("redrive_envelope", "envelope", b"\x01" + env)
    write("redrive_envelope", "envelope-null-version",
          b"\x01" + dead_letter_body(None) + b"\x00" + zz(3) + text(""))
    write("redrive_envelope", "envelope-json", json.dumps({
        "dead_letter": json.loads(OLD_DEAD), "version": None,
        "redriven_at_ms": 3, "by": "bob"}).encode())

    # kafka_record takes `arbitrary` input: any bytes will do.
    write("kafka_record", "bytes", bytes(range(64)))
    write("kafka_record", "headers", b"\x05topic\x01\x00\x00\x00\x07" + b"\xff\xfe\x00h\x01v" * 4)

    for example in ("echo", "payment-reversal", "search-indexer"):
        with open(os.path.join(REPO, "examples", example, "actor.toml"), "rb") as f:
            write("manifest", example, f.read())
        with open(os.path.join(REPO, "examples", example, "event.json"), "rb") as f:
            write("event_file", example, f.read())
    write("manifest", "full", b"""name = "a"
topics = ["t", "u"]
group = "g"
ordering = "partition"
max_in_flight = 8
allowed_hosts = ["*.example.com", "api:8443"]
[limits]
memory = "32MiB"
call_timeout = "1s500ms"
max_emits = 10
max_emit_bytes = "1MiB"
max_state_writes = 5
max_state_bytes = "64KiB"
[instances]
mode = "fresh"
max_uses = 100
max_idle = 2
[retry]
max_attempts = 9
initial_backoff = "100ms"
max_backoff = "1h"
multiplier = 1.5
max_age = "none"
jitter = "none"
[dead_letter]
topic = "default"
max_age = "7d"
max_count = 10
[config]
k = "v"
""")
    write("event_file", "full", json.dumps({
        "topic": "t", "partition": 1, "offset": 2, "timestamp_ms": 3,
        "key_base64": "AAE=", "payload_base64": "AAEC", "headers": [["h", None], ["h", ""]],
        "attempt": 2}).encode())
    write("event_file", "tombstone", b'{"key":"k","payload":null,"headers":{"a":"b"}}')
    write("event_file", "text", b'{"payload_text":"hi"}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
