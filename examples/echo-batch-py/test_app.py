"""Unit tests of echo-batch-py on the fake host of ``wactor.testing``: the
handler is the same function whether the host calls it alone or in a
batch, so it is tested one event at a time.

Run from this directory with the SDK on the path:
``PYTHONPATH=../../sdk-python python3 -m unittest`` (``wactor test`` does
that for you).
"""

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
for candidate in (HERE / ".wactor" / "sdk" / "python", HERE.parent.parent / "sdk-python"):
    if (candidate / "wactor").is_dir() and str(candidate) not in sys.path:
        sys.path.append(str(candidate))
sys.path.insert(0, str(HERE))

from wactor import Done, Event, testing  # noqa: E402

import app  # noqa: E402


class EchoBatchTest(unittest.TestCase):
    def test_an_event_is_echoed_with_its_key(self):
        result = testing.run(app.handle, Event("orders", "hello", key="k1"), config={"out_topic": "orders.echo"})
        self.assertEqual(result.outcome, Done())
        self.assertEqual([(r.topic, r.key, r.payload) for r in result.emits], [("orders.echo", b"k1", b"hello")])

    def test_the_world_export_takes_batches(self):
        self.assertTrue(callable(getattr(app.WitWorld, "handle_batch", None)))


if __name__ == "__main__":
    unittest.main()
