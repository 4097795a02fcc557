"""Unit tests of {{name}}, on the fake host of ``wactor.testing`` (no
component, no Kafka): ``wactor test``, or
``PYTHONPATH=/path/to/sdk-python python3 -m unittest``.
"""

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
# `wactor build` and `wactor test` write the SDK into .wactor/sdk/python; use
# it when `wactor` is not importable otherwise (PYTHONPATH wins).
try:
    import wactor  # noqa: F401
except ImportError:
    sys.path.append(str(HERE / ".wactor" / "sdk" / "python"))

from wactor import Dead, Done, Event, Retry, testing  # noqa: E402

import app  # noqa: E402


class AppTest(unittest.TestCase):
    def test_decide_flags_payments_at_or_above_the_threshold(self):
        self.assertTrue(app.decide(app.Payment("tx-1", "user-7", 100_000), 100_000)["flagged"])
        self.assertFalse(app.decide(app.Payment("tx-1", "user-7", 99_999), 100_000)["flagged"])

    def test_the_sample_event_is_flagged_and_marked(self):
        result = testing.run(app, HERE / "event.json", config={"out_topic": "{{topic}}.out"})
        self.assertEqual(result.outcome, Done())
        [record] = result.emits
        self.assertEqual(record.topic, "{{topic}}.out")
        self.assertEqual(record.key, b"user-7")
        self.assertEqual(record.payload, b'{"id":"tx-1001","flagged":true,"amount_cents":250000}')
        self.assertEqual(result.state, {"done:tx-1001": b"1"})

    def test_a_redelivery_does_nothing(self):
        result = testing.run(app, HERE / "event.json", state={"done:tx-1001": "1"})
        self.assertEqual(result.outcome, Done())
        self.assertEqual(result.emits, [])
        self.assertEqual(result.writes, {})

    def test_a_malformed_payload_is_dead(self):
        result = testing.run(app, Event("{{topic}}", "{not json"))
        self.assertIsInstance(result.outcome, Dead)
        self.assertTrue(result.outcome.reason.startswith("malformed JSON payload"))
        result = testing.run(app, {"payload": {"id": "tx-2", "user": "u"}})
        self.assertEqual(result.outcome, Dead("malformed JSON payload: missing field `amount_cents`"))

    def test_a_refused_state_write_retries_and_emits_nothing(self):
        host = testing.FakeHost()
        host.refuse_state_writes = "state: the limit is 0 (limits.max_state_writes)"
        result = testing.run(app, HERE / "event.json", host=host)
        self.assertIsInstance(result.outcome, Retry)
        self.assertEqual(result.emits, [], "emits apply only when the call is done")


if __name__ == "__main__":
    unittest.main()
