"""Unit tests of payment-reversal-py on the fake host of ``wactor.testing``:
the same cases the Rust twin's integration tests check against a real
server (tests/tests/invoke.rs, tests/tests/runtime.rs).

Run from this directory with the SDK on the path:
``PYTHONPATH=../../sdk-python python3 -m unittest`` (``wactor test`` does
that for you).
"""

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

from wactor import Dead, Done, Event, Retry, testing  # noqa: E402
from wactor.errors import HttpTimeout  # noqa: E402

import app  # noqa: E402

EVENT = HERE / "event.json"
WALLET = "http://127.0.0.1:7781"
CONFIG = {"wallet_url": WALLET, "timeout_ms": "3000"}
BOOKING = {
    "type": "booking.cancelled",
    "booking_id": "B-1001",
    "customer_id": "C-77",
    "reservation_id": "R-555",
    "amount": {"value": 25000, "currency": "IDR"},
}


def booking(**changes):
    """The sample booking event (event-file format) with `changes` to its payload."""
    return {"topic": "bookings", "key": "B-1001", "payload": {**BOOKING, **changes}}


class ReversalTest(unittest.TestCase):
    def test_a_cancellation_is_reversed_marked_and_confirmed(self):
        result = testing.run(app, EVENT, config=CONFIG, http=[testing.Reply(200, '{"status":"reversed"}')])
        self.assertEqual(result.outcome, Done())

        [request] = result.requests
        self.assertEqual(request.method, "POST")
        self.assertEqual(request.url, f"{WALLET}/reservations/R-555/reverse")
        self.assertEqual(request.header_str("idempotency-key"), "B-1001")
        self.assertEqual(request.header_str("content-type"), "application/json")
        self.assertEqual(request.timeout_ms, 3000)
        self.assertEqual(
            request.json(),
            {"booking_id": "B-1001", "customer_id": "C-77", "amount": {"value": 25000, "currency": "IDR"}},
        )

        [record] = result.emits
        self.assertEqual(record.topic, "wallet.reversal.completed")
        self.assertIsNone(record.key, "the source key is used")
        self.assertEqual(
            record.payload,
            b'{"booking_id":"B-1001","reservation_id":"R-555","amount":{"value":25000,"currency":"IDR"}}',
        )
        self.assertEqual(result.state["reversed:B-1001"], b'{"reservation_id":"R-555","wallet_status":200}')
        self.assertIn("INFO reversed reservation R-555 of booking B-1001 (25000 IDR)", result.log_text())

    def test_the_idempotency_marker_makes_a_redelivery_do_nothing(self):
        first = testing.run(app, EVENT, config=CONFIG, http=[testing.Reply(200)])
        again = testing.run(app, EVENT, config=CONFIG, state=first.state)  # no reply scripted: no call allowed
        self.assertEqual(again.outcome, Done())
        self.assertEqual(again.requests, [])
        self.assertEqual(again.emits, [])
        self.assertEqual(again.writes, {})
        self.assertIn("DEBUG booking B-1001 already reversed", again.log_text())

    def test_a_409_means_already_reversed(self):
        result = testing.run(app, EVENT, config=CONFIG, http=[testing.Reply(409, "already reversed")])
        self.assertEqual(result.outcome, Done())
        self.assertEqual(result.state_json("reversed:B-1001"), {"reservation_id": "R-555", "wallet_status": 409})
        self.assertEqual(len(result.emits), 1)

    def test_a_503_retries_after_the_wallets_retry_after_and_changes_nothing(self):
        result = testing.run(app, EVENT, config=CONFIG, http=[testing.Reply(503, headers={"Retry-After": "30"})])
        self.assertEqual(result.outcome, Retry("wallet answered 503", delay_ms=30000))
        self.assertEqual(str(result.outcome), "retry after 30000 ms: wallet answered 503")
        self.assertEqual(result.emits, [])
        self.assertEqual(result.state, {}, "no marker after a failed reversal")
        self.assertIn("WARN reversal of booking B-1001 not done: retry after 30s: wallet answered 503", result.log_text())

    def test_a_429_without_retry_after_leaves_the_delay_to_the_policy(self):
        result = testing.run(app, EVENT, config=CONFIG, http=[testing.Reply(429)])
        self.assertEqual(result.outcome, Retry("wallet answered 429"))

    def test_a_404_is_dead_with_the_status_and_the_body(self):
        result = testing.run(app, EVENT, config=CONFIG, http=[testing.Reply(404, "no such reservation")])
        self.assertEqual(result.outcome, Dead("wallet refused the reversal with 404: no such reservation"))
        self.assertEqual(result.emits, [])
        self.assertEqual(result.state, {})

    def test_a_long_error_body_is_quoted_in_part(self):
        result = testing.run(app, EVENT, config=CONFIG, http=[testing.Reply(400, "x" * 600)])
        self.assertEqual(result.outcome, Dead("wallet refused the reversal with 400: " + "x" * 512 + "..."))

    def test_a_timeout_retries(self):
        result = testing.run(app, EVENT, config=CONFIG, http=[HttpTimeout("ErrorCode::ConnectionTimeout")])
        self.assertEqual(result.outcome, Retry("wallet unreachable: HTTP request timed out: ErrorCode::ConnectionTimeout"))

    def test_a_host_not_on_the_allow_list_is_denied_without_a_call(self):
        result = testing.run(app, EVENT, config=CONFIG, allow_hosts=["wallet.internal"])
        self.assertEqual(
            result.outcome,
            Retry(
                "wallet unreachable: HTTP request to 127.0.0.1:7781 denied: the host is not in "
                "the actor's allowed_hosts (actor.toml) or --allow-host (wactor invoke)"
            ),
        )
        self.assertEqual(result.requests, [])

    def test_malformed_json_is_dead_without_calling_the_wallet(self):
        result = testing.run(app, {"topic": "bookings", "payload_text": "{oops"}, config=CONFIG)
        self.assertIsInstance(result.outcome, Dead)
        self.assertTrue(result.outcome.reason.startswith("malformed JSON payload"), result.outcome)
        self.assertEqual(result.requests, [])

    def test_a_missing_field_is_dead_and_named(self):
        event = Event("bookings", '{"type":"booking.cancelled","booking_id":"B-1"}', key="B-1")
        result = testing.run(app, event, config=CONFIG)
        self.assertEqual(result.outcome, Dead("malformed JSON payload: missing field `customer_id`"))
        self.assertEqual(result.requests, [])

    def test_a_wrongly_typed_amount_is_dead(self):
        result = testing.run(app, booking(amount={"value": "25000", "currency": "IDR"}), config=CONFIG)
        self.assertEqual(
            result.outcome, Dead("malformed JSON payload: invalid type at `amount.value`: expected int, found str")
        )

    def test_empty_ids_are_dead(self):
        result = testing.run(app, booking(reservation_id=""), config=CONFIG)
        self.assertEqual(result.outcome, Dead("booking_id and reservation_id must not be empty"))

    def test_other_event_types_are_ignored(self):
        result = testing.run(app, {"payload": {"type": "booking.created"}}, config=CONFIG)
        self.assertEqual(result.outcome, Done())
        self.assertEqual(result.requests, [])
        self.assertIn("DEBUG ignoring a booking.created event", result.log_text())

    def test_missing_wallet_url_is_dead(self):
        result = testing.run(app, EVENT)
        self.assertEqual(result.outcome, Dead("config wallet_url is not set"))

    def test_a_timeout_that_is_not_a_number_is_dead(self):
        result = testing.run(app, EVENT, config={"wallet_url": WALLET, "timeout_ms": "soon"})
        self.assertEqual(result.outcome, Dead('config timeout_ms is not a number: "soon"'))

    def test_a_refused_marker_write_retries_and_emits_nothing(self):
        host = testing.FakeHost(config=CONFIG, replies=[testing.Reply(200)])
        host.refuse_state_writes = "state: the limit is 0 (limits.max_state_writes)"
        result = testing.run(app, EVENT, host=host)
        self.assertEqual(
            result.outcome,
            Retry("cannot record the marker: state write rejected: state: the limit is 0 (limits.max_state_writes)"),
        )
        self.assertEqual(result.emits, [])

    def test_ids_cannot_escape_their_path_segment(self):
        self.assertEqual(app.encode_path_segment("R-555"), "R-555")
        self.assertEqual(app.encode_path_segment("../admin?x"), "%2E%2E%2Fadmin%3Fx")
        result = testing.run(app, booking(reservation_id="../admin"), config=CONFIG, http=[testing.Reply(200)])
        self.assertEqual(result.requests[0].path_with_query, "/reservations/%2E%2E%2Fadmin/reverse")


if __name__ == "__main__":
    unittest.main()
