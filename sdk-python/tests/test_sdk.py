"""Unit tests of the SDK under plain CPython (no component): outcomes, the
event, typed JSON decoding, the error -> outcome table, emit/state/config/
log/http through wactor.testing's fake host, and the fake itself.

Run: ``cd sdk-python && python3 -m unittest discover -s tests``
"""

import sys
import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wactor import (  # noqa: E402
    Dead,
    Done,
    Event,
    PayloadError,
    Record,
    Retry,
    actor,
    config,
    emit,
    http,
    log,
    state,
    testing,
)
from wactor import _host  # noqa: E402
from wactor.actor import handler_of, run_handler  # noqa: E402
from wactor.errors import (  # noqa: E402
    EmitEncodeError,
    HttpDenied,
    HttpInvalidUrl,
    HttpTimeout,
    MissingConfig,
    StateDecodeError,
    StateEncodeError,
)
from wactor.http import split_url  # noqa: E402


@dataclass
class Amount:
    value: int
    currency: str


@dataclass
class Booking:
    booking_id: str
    amount: Amount
    tags: List[str] = field(default_factory=list)
    note: Optional[str] = None
    extra: Dict[str, float] = field(default_factory=dict)


class OutcomeTest(unittest.TestCase):
    def test_outcomes_compare_by_value_and_read_like_invoke(self):
        self.assertEqual(Retry("x", 5), Retry("x", delay_ms=5))
        self.assertNotEqual(Retry("x"), Retry("x", 5))
        self.assertNotEqual(Dead("x"), Retry("x"))
        self.assertEqual(str(Done()), "done")
        self.assertEqual(str(Retry("busy")), "retry: busy")
        self.assertEqual(str(Retry("busy", 30000)), "retry after 30000 ms: busy")
        self.assertEqual(str(Dead("bad")), "dead: bad")
        self.assertEqual(repr(Retry("a", 1)), "Retry('a', delay_ms=1)")

    def test_delays_round_up_and_must_not_be_negative(self):
        self.assertEqual(Retry("x", 0.001).delay_ms, 1)
        self.assertEqual(Retry("x", 0).delay_ms, 0)
        with self.assertRaises(ValueError):
            Retry("x", -1)
        with self.assertRaises(TypeError):
            Retry("x", "5")


class EventTest(unittest.TestCase):
    def test_from_dict_reads_the_event_file_format(self):
        event = Event.from_dict(
            {"topic": "t", "partition": 3, "offset": 42, "key": "k", "headers": {"h": "v", "n": None},
             "payload": {"a": 1, "b": "é"}, "attempt": 2, "timestamp_ms": 7}
        )
        self.assertEqual(event.payload, '{"a":1,"b":"é"}'.encode())
        self.assertEqual(event.headers, [("h", b"v"), ("n", None)])
        self.assertEqual((event.partition, event.offset, event.attempt, event.timestamp_ms), (3, 42, 2, 7))
        self.assertTrue(Event.from_dict({"payload": None}).is_tombstone())
        self.assertEqual(Event.from_dict({}).payload, b"")
        self.assertEqual(Event.from_dict({}).topic, "dev")
        self.assertEqual(Event.from_dict({"payload_base64": "AP8="}).payload, b"\x00\xff")
        self.assertEqual(Event.from_dict({"headers": [["a", "1"], ["a", "2"]]}).headers, [("a", b"1"), ("a", b"2")])
        with self.assertRaises(ValueError):
            Event.from_dict({"paylod": 1})

    def test_tombstones_and_empty_values_are_told_apart(self):
        tomb = Event.tombstone("t")
        self.assertTrue(tomb.is_tombstone())
        self.assertEqual(tomb.payload_bytes(), b"")
        self.assertFalse(Event("t", b"").is_tombstone())

    def test_headers_and_keys_read_as_text(self):
        event = Event("t", b"\xff", key="user-1", headers=[("trace", "abc"), ("trace", "2"), ("gone", None)])
        self.assertEqual(event.key_str(), "user-1")
        self.assertEqual(event.header_str("trace"), "abc")
        self.assertIsNone(event.header("Trace"))
        self.assertTrue(event.has_header("gone"))
        self.assertIsNone(event.header("gone"))
        with self.assertRaises(PayloadError) as caught:
            event.payload_str()
        self.assertTrue(str(caught.exception).startswith("payload is not UTF-8"))

    def test_json_errors_are_payload_errors_that_end_dead(self):
        with self.assertRaises(PayloadError) as caught:
            Event("t", "{").json()
        self.assertTrue(str(caught.exception).startswith("malformed JSON payload: "))
        self.assertIsInstance(caught.exception.outcome(), Dead)
        with self.assertRaises(PayloadError):
            Event.tombstone("t").json()

    def test_json_into_a_dataclass_checks_fields_and_types(self):
        booking = Event("t", '{"booking_id":"B","amount":{"value":5,"currency":"IDR"},"more":1}').json(Booking)
        self.assertEqual(booking, Booking("B", Amount(5, "IDR")))
        cases = {
            '{"amount":{"value":5,"currency":"IDR"}}': "missing field `booking_id`",
            '{"booking_id":"B","amount":{"currency":"IDR"}}': "missing field `amount.value`",
            '{"booking_id":"B","amount":{"value":true,"currency":"IDR"}}': "invalid type at `amount.value`: expected int, found bool",
            '{"booking_id":"B","amount":{"value":5,"currency":"IDR"},"tags":["a",1]}': "invalid type at `tags[1]`: expected str, found int",
            '{"booking_id":"B","amount":{"value":5,"currency":"IDR"},"note":3}': "invalid type at `note`: expected str, found int",
            '[1]': "invalid type: expected object (Booking), found list",
        }
        for payload, message in cases.items():
            with self.subTest(payload=payload):
                with self.assertRaises(PayloadError) as caught:
                    Event("t", payload).json(Booking)
                self.assertEqual(str(caught.exception), f"malformed JSON payload: {message}")
        full = Event("t", '{"booking_id":"B","amount":{"value":5,"currency":"X"},"note":null,"extra":{"a":1}}').json(Booking)
        self.assertEqual(full.extra, {"a": 1.0})
        self.assertEqual(Event("t", "[1,2]").json(List[int]), [1, 2])


def run(fn, event=None, **kwargs):
    return testing.run(fn, event if event is not None else Event("t", "{}"), **kwargs)


class OutcomeMappingTest(unittest.TestCase):
    """The ? table of the Rust SDK, in Python."""

    def test_bad_json_is_dead(self):
        self.assertIsInstance(run(lambda e: e.json()["x"], Event("t", "nope")).outcome, Dead)

    def test_missing_config_is_dead(self):
        self.assertEqual(run(lambda e: config.require("url")).outcome, Dead("config url is not set"))

    def test_refused_emit_and_state_writes_retry(self):
        host = testing.FakeHost()
        host.refuse_emits = "too many"
        self.assertEqual(run(lambda e: emit.send(Record("t", "x")), host=host).outcome, Retry("emit rejected: too many"))
        host = testing.FakeHost()
        host.refuse_state_writes = "over the limit"
        self.assertEqual(run(lambda e: state.set("k", "v"), host=host).outcome, Retry("state write rejected: over the limit"))
        host = testing.FakeHost()
        host.refuse_state_writes = "over the limit"
        self.assertEqual(run(lambda e: state.delete("k"), host=host).outcome, Retry("state write rejected: over the limit"))

    def test_values_that_do_not_encode_are_dead_and_stored_values_that_do_not_decode_retry(self):
        outcome = run(lambda e: emit.send_json("t", {1, 2})).outcome
        self.assertIsInstance(outcome, Dead)
        self.assertTrue(outcome.reason.startswith("emit value is not encodable as JSON"))
        outcome = run(lambda e: state.set_json("k", object())).outcome
        self.assertIsInstance(outcome, Dead)
        self.assertTrue(outcome.reason.startswith("state k does not encode"))
        outcome = run(lambda e: state.get_json("k"), state={"k": b"{"}).outcome
        self.assertIsInstance(outcome, Retry)
        self.assertTrue(outcome.reason.startswith("state k does not decode"))

    def test_http_errors_retry(self):
        outcome = run(lambda e: http.get("http://x/"), http=[HttpTimeout("ErrorCode::ConnectionTimeout")]).outcome
        self.assertEqual(outcome, Retry("HTTP request timed out: ErrorCode::ConnectionTimeout"))
        outcome = run(lambda e: http.get("http://x/"), allow_hosts=["y"]).outcome
        self.assertEqual(
            outcome,
            Retry(
                "HTTP request to x:80 denied: the host is not in the actor's allowed_hosts "
                "(actor.toml) or --allow-host (wactor invoke)"
            ),
        )
        self.assertEqual(run(lambda e: http.get("x")).outcome, Retry("invalid URL: x: no scheme (expected http:// or https://)"))

    def test_any_other_exception_retries_with_one_line_and_logs_the_traceback(self):
        def boom(event):
            raise ValueError("bad\nthing")

        result = run(boom)
        self.assertEqual(result.outcome, Retry("ValueError: bad thing"))
        [(level, message)] = result.logs
        self.assertEqual(level, "error")
        self.assertIn("Traceback", message)
        self.assertIn("in boom", message)
        self.assertEqual(run(lambda e: {}["k"]).outcome, Retry("KeyError: 'k'"))

    def test_outcomes_can_be_returned_or_raised_and_none_is_done(self):
        def deep(event):
            raise Dead("deep")

        self.assertEqual(run(deep).outcome, Dead("deep"))
        self.assertEqual(run(lambda e: None).outcome, Done())
        self.assertEqual(run(lambda e: Retry("r", 5)).outcome, Retry("r", 5))
        outcome = run(lambda e: "done").outcome
        self.assertEqual(outcome, Retry("handle returned str, not an outcome (Done(), Retry(...) or Dead(...))"))


class EffectsTest(unittest.TestCase):
    def test_effects_apply_only_when_done_and_reads_see_pending_writes(self):
        def handler(event):
            state.set("a", "1")
            state.delete("old")
            assert state.get("a") == b"1" and state.get("old") is None
            emit.send(Record("out", "x", key="k", headers={"h": "v"}, delay_ms=1000))
            return Retry("later") if event.key_str() == "fail" else Done()

        done = run(handler, Event("t", "", key="ok"), state={"old": "x", "keep": {"n": 1}})
        self.assertEqual(done.state, {"a": b"1", "keep": b'{"n":1}'})
        self.assertEqual(done.emits[0].headers, [("h", b"v"), ("wactor-delay-ms", b"1000")])
        failed = run(handler, Event("t", "", key="fail"), state={"old": "x"})
        self.assertEqual(failed.state, {"old": b"x"})
        self.assertEqual(failed.emits, [])
        self.assertEqual(len(failed.sent), 1)
        self.assertEqual(failed.writes, {"a": b"1", "old": None})

    def test_records(self):
        self.assertTrue(Record.tombstone("t", key="k").is_tombstone())
        self.assertEqual(Record.json("t", {"a": "é"}).payload, '{"a":"é"}'.encode())
        self.assertEqual(Record("t", "x", deliver_at_ms=5).headers, [("wactor-deliver-at", b"5")])
        with self.assertRaises(EmitEncodeError):
            Record.json("t", float("nan"))

    def test_config_and_logs(self):
        def handler(event):
            log.info("n=%d", 3)
            log.warning("w")
            log.debug(f"{config.get('a')} {config.get('b', 'dflt')} {config.all()}")

        result = run(handler, config={"a": 1})
        self.assertEqual(result.logs, [("info", "n=3"), ("warn", "w"), ("debug", "1 dflt {'a': '1'}")])
        self.assertEqual(result.log_text(), "INFO n=3\nWARN w\nDEBUG 1 dflt {'a': '1'}")


class HttpTest(unittest.TestCase):
    def test_urls_split_like_the_rust_sdk(self):
        self.assertEqual(split_url("http://127.0.0.1:8080/r/R-1/reverse?x=1#f"), ("http", "127.0.0.1:8080", "/r/R-1/reverse?x=1"))
        self.assertEqual(split_url("HTTPS://example.com"), ("https", "example.com", "/"))
        self.assertEqual(split_url("http://example.com?q=1"), ("http", "example.com", "/?q=1"))
        for bad in ["example.com/x", "ftp://example.com/", "http:///path", "http://u:p@h/", "http://a b/"]:
            with self.subTest(url=bad), self.assertRaises(HttpInvalidUrl):
                split_url(bad)

    def test_requests_get_content_length_and_json_content_type(self):
        def handler(event):
            response = http.post("http://w/x", headers={"Idempotency-Key": "B"}, json={"a": 1}, timeout_ms=1500)
            return Done() if response.is_success() and response.json() == {"ok": True} else Dead("no")

        result = run(handler, http=[testing.Reply(200, json={"ok": True})])
        self.assertEqual(result.outcome, Done())
        [request] = result.requests
        self.assertEqual(request.headers, [("Idempotency-Key", b"B"), ("content-type", b"application/json"), ("content-length", b"7")])
        self.assertEqual((request.body, request.timeout_ms, request.method), (b'{"a":1}', 1500, "POST"))

    def test_responses_read_headers_case_insensitively(self):
        response = testing.Reply(503, "{}", headers={"Retry-After": " 7 "}).response()
        self.assertFalse(response.is_success())
        self.assertEqual(response.retry_after_ms(), 7000)
        self.assertEqual(response.header_str("retry-after"), " 7 ")
        self.assertIsNone(testing.Reply(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}).response().retry_after_ms())

    def test_a_request_without_a_scripted_reply_fails_the_test(self):
        with self.assertRaises(AssertionError):
            run(lambda e: http.get("http://x/"))
        result = run(lambda e: http.get("http://x/"), strict_http=False)
        self.assertTrue(result.outcome.reason.startswith("HTTP request failed: no scripted reply"))

    def test_allow_list_rules(self):
        allowed = testing._host_allowed
        self.assertTrue(allowed("127.0.0.1:8080", "http", ["127.0.0.1:8080"]))
        self.assertTrue(allowed("127.0.0.1", "http", ["127.0.0.1:80"]))
        self.assertFalse(allowed("127.0.0.1", "https", ["127.0.0.1:80"]))
        self.assertTrue(allowed("api.example.com", "https", ["*.example.com"]))
        self.assertFalse(allowed("example.com", "https", ["*.example.com"]))
        self.assertTrue(allowed("Any.Host:1", "http", ["*"]))
        self.assertTrue(allowed("API.example.com:9", "http", ["api.example.com"]))


class ActorTest(unittest.TestCase):
    def test_the_decorator_sets_the_modules_witworld(self):
        import types

        module = types.ModuleType("fake_app")
        sys.modules["fake_app"] = module
        try:
            def handle(event):
                return Dead("x")

            handle.__module__ = "fake_app"
            returned = actor(handle)
            self.assertIs(returned, handle)
            self.assertIs(module.WitWorld, handle.WitWorld)
            self.assertIs(handler_of(module), handle)
            self.assertIs(handler_of(module.WitWorld), handle)
            self.assertEqual(testing.run(module, {}).outcome, Dead("x"))
        finally:
            del sys.modules["fake_app"]

    def test_outside_a_component_and_testing_the_host_is_missing(self):
        previous = _host.install(None)
        try:
            with self.assertRaises(_host.NoHost):
                config.get("x")
            self.assertEqual(run_handler(lambda e: state.get("k"), Event()).kind, "retry")
        finally:
            _host.install(previous)


if __name__ == "__main__":
    unittest.main()
