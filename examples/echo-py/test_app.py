"""Unit tests of echo-py on the fake host of ``wactor.testing``.

Run from this directory with the SDK on the path:
``PYTHONPATH=../../sdk-python python3 -m unittest`` (``wactor test`` does
that for you).
"""

import os
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The SDK: `wactor build` copies it to .wactor/sdk/python; in this repository
# it is ../../sdk-python. PYTHONPATH, when set, wins.
for candidate in (HERE / ".wactor" / "sdk" / "python", HERE.parent.parent / "sdk-python"):
    if (candidate / "wactor").is_dir() and str(candidate) not in sys.path:
        sys.path.append(str(candidate))
sys.path.insert(0, str(HERE))

from wactor import Done, Event, Retry, testing  # noqa: E402

import app  # noqa: E402


class EchoTest(unittest.TestCase):
    def test_the_sample_event_is_echoed_with_key_and_headers(self):
        result = testing.run(app, HERE / "event.json", config={"out_topic": "orders.echo"})
        self.assertEqual(result.outcome, Done())
        self.assertEqual(len(result.emits), 1)
        record = result.emits[0]
        self.assertEqual(record.topic, "orders.echo")
        self.assertEqual(record.key, b"order-1001")
        self.assertEqual(record.payload, b'{"order_id":"order-1001","total_cents":1999}')
        self.assertEqual(record.headers, [("trace-id", b"4bf92f3577b34da6")])
        self.assertIn("echoing 44 bytes from orders/0@42 to orders.echo", result.log_text())

    def test_without_config_the_topic_is_source_dot_echo(self):
        result = testing.run(app.handle, Event("payments", "x", key="k"))
        self.assertEqual(result.emits[0].topic, "payments.echo")

    def test_a_tombstone_stays_a_tombstone_and_a_null_header_stays_null(self):
        event = Event.tombstone("users", key="user-7", headers=[("gone", None), ("empty", "")])
        result = testing.run(app, event)
        self.assertEqual(result.outcome, Done())
        record = result.emits[0]
        self.assertTrue(record.is_tombstone())
        self.assertEqual(record.headers, [("gone", None), ("empty", b"")])

    def test_a_refused_emit_retries_and_publishes_nothing(self):
        host = testing.FakeHost()
        host.refuse_emits = "emit: more than 1000 records in one call (limits.max_emits)"
        result = testing.run(app, Event("orders", "x"), host=host)
        self.assertEqual(
            result.outcome,
            Retry("emit rejected: emit: more than 1000 records in one call (limits.max_emits)"),
        )
        self.assertEqual(result.emits, [])


if __name__ == "__main__":
    unittest.main()
