"""What the reviewer attacked: payloads nested too deep to parse, hostile
exceptions and outcomes, and the text of a denied HTTP request. Each case
must end as an outcome, never as an exception out of the wrapper (a trap
inside a component).

Run: ``cd sdk-python && python3 -m unittest discover -s tests``
"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wactor import Dead, Done, Event, PayloadError, Retry, http, state, testing  # noqa: E402
from wactor._jsonlimit import MAX_DEPTH, JsonTooDeep, depth_exceeds, loads  # noqa: E402
from wactor.actor import UNREADABLE, checked, run_handler  # noqa: E402
from wactor.errors import HttpDenied, StateDecodeError, WactorError, host_port  # noqa: E402


def deep(n: int) -> str:
    return "[" * n + "]" * n


class DepthTest(unittest.TestCase):
    def test_the_scan_counts_only_brackets_outside_strings(self):
        self.assertFalse(depth_exceeds(deep(MAX_DEPTH)))
        self.assertTrue(depth_exceeds(deep(MAX_DEPTH + 1)))
        self.assertTrue(depth_exceeds('{"k":' + "[" * 600))  # a prefix is enough
        self.assertFalse(depth_exceeds('["' + "[" * 600 + '"]'))
        self.assertFalse(depth_exceeds('["\\"' + "{" * 600 + '"]'))  # an escaped quote does not end the string
        self.assertFalse(depth_exceeds("[" + ",".join(["[1]"] * 5000) + "]"))  # many, but shallow

    def test_loads_refuses_too_deep_documents_as_a_value_error(self):
        self.assertEqual(loads(deep(MAX_DEPTH).encode()), loads(deep(MAX_DEPTH)))
        self.assertEqual(loads(b'{"a": "]]]"}'), {"a": "]]]"})
        with self.assertRaises(JsonTooDeep) as caught:
            loads(deep(5000).encode())
        self.assertIsInstance(caught.exception, ValueError)
        self.assertEqual(str(caught.exception), "nested deeper than 512")

    def test_a_deep_payload_is_dead_not_a_trap(self):
        for n in (513, 1000, 5000, 100_000):
            with self.subTest(depth=n):
                outcome = testing.run(lambda e: e.json(), Event("t", deep(n))).outcome
                self.assertEqual(outcome, Dead("malformed JSON payload: nested deeper than 512"))
        self.assertEqual(testing.run(lambda e: e.json() and None, Event("t", deep(512))).outcome, Done())
        with self.assertRaises(PayloadError):
            Event("t", "{" * 600).json(dict)

    def test_deep_state_retries_and_a_deep_response_body_raises_value_error(self):
        outcome = testing.run(lambda e: state.get_json("k"), Event(), state={"k": deep(600).encode()}).outcome
        self.assertEqual(outcome, Retry("state k does not decode: nested deeper than 512"))
        caught = []

        def catching(event):
            try:
                state.get_json("k")
            except StateDecodeError as err:
                caught.append(err)

        testing.run(catching, Event(), state={"k": deep(600).encode()})
        self.assertEqual(caught[0].key, "k")

        def body(event):
            http.get("http://svc/").json()

        result = testing.run(body, Event(), http=[testing.Reply(200, deep(5000))])
        self.assertEqual(result.outcome, Retry("JsonTooDeep: nested deeper than 512"))
        self.assertEqual(http.Response(200, body=b"[[1]]").json(), [[1]])


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("str fails")


class BadBoth(Exception):
    def __str__(self):
        raise RuntimeError("str fails")

    def __repr__(self):
        raise RuntimeError("repr fails")


class StrRaisesBase(Exception):
    def __str__(self):
        raise KeyboardInterrupt


class MyBase(BaseException):
    pass


class HostileMeta(type):
    @property
    def __name__(cls):
        raise RuntimeError("no name")


class Nameless(Exception, metaclass=HostileMeta):
    def __str__(self):
        raise RuntimeError("no str")


class BadOutcomeError(WactorError):
    def outcome(self):
        raise RuntimeError("outcome fails")


class BadRetry(Retry):
    pass


def raising(exc):
    def handler(event):
        raise exc

    return handler


class HostileExceptionTest(unittest.TestCase):
    def outcome(self, handler):
        return run_handler(handler, Event())

    def test_exceptions_whose_text_cannot_be_read_retry_with_a_fallback(self):
        self.assertEqual(self.outcome(raising(BadStr())), Retry("BadStr (its message could not be read)"))
        self.assertEqual(self.outcome(raising(BadBoth())), Retry("BadBoth (its message could not be read)"))
        self.assertEqual(self.outcome(raising(StrRaisesBase())), Retry("StrRaisesBase (its message could not be read)"))
        self.assertEqual(self.outcome(raising(Nameless())), Retry("exception (its message could not be read)"))
        self.assertEqual(self.outcome(raising(BadOutcomeError("x"))), Retry("BadOutcomeError: x"))

    def test_base_exceptions_retry(self):
        self.assertEqual(self.outcome(raising(MyBase("custom"))), Retry("MyBase: custom"))
        self.assertEqual(self.outcome(raising(KeyboardInterrupt())), Retry("KeyboardInterrupt"))
        self.assertEqual(self.outcome(raising(GeneratorExit())), Retry("GeneratorExit"))
        self.assertEqual(self.outcome(raising(SystemExit(3))), Retry("SystemExit: 3"))

    def test_the_traceback_is_still_logged_when_the_message_is_unreadable(self):
        result = testing.run(raising(BadBoth()), Event())
        self.assertEqual(result.outcome, Retry("BadBoth (its message could not be read)"))
        [(level, message)] = result.logs
        self.assertEqual(level, "error")
        self.assertIn("BadBoth", message)

    def test_outcomes_the_host_could_not_take_become_a_retry(self):
        broken = BadRetry("x")
        broken.reason = object()
        self.assertTrue(self.outcome(lambda e: broken).reason.startswith("the handler's BadRetry has a reason"))
        late = Retry("x")
        late.delay_ms = -5
        self.assertIsInstance(self.outcome(lambda e: late), Retry)
        gone = Dead("x")
        gone.reason = 3
        self.assertEqual(self.outcome(lambda e: gone), Retry("the handler's Dead has a reason that is not str"))
        self.assertEqual(checked("nope"), Retry("the handler ended with str, not an outcome"))
        self.assertEqual(self.outcome(lambda e: BadRetry("y", 5)), BadRetry("y", 5))  # a valid subclass is kept

    def test_the_fallback_reason(self):
        self.assertEqual(UNREADABLE, "unhandled exception (its message could not be read)")


class DeniedTest(unittest.TestCase):
    def test_a_denial_names_the_host_and_port_and_the_fix(self):
        err = HttpDenied("ErrorCode::HttpRequestDenied", host="127.0.0.1:7781")
        self.assertEqual(
            str(err),
            "HTTP request to 127.0.0.1:7781 denied: the host is not in the actor's allowed_hosts "
            "(actor.toml) or --allow-host (wactor invoke)",
        )
        self.assertEqual(err.outcome(), Retry(str(err)))
        self.assertEqual((err.host, err.detail), ("127.0.0.1:7781", "ErrorCode::HttpRequestDenied"))
        # Without a host (as tests script it), the text it always had.
        self.assertEqual(str(HttpDenied("ErrorCode::HttpRequestDenied")), "HTTP request denied by the host: ErrorCode::HttpRequestDenied")

    def test_the_port_is_the_one_the_allow_list_matches(self):
        self.assertEqual(host_port("http", "wallet.internal"), "wallet.internal:80")
        self.assertEqual(host_port("https", "api.example.com"), "api.example.com:443")
        self.assertEqual(host_port("http", "127.0.0.1:7781"), "127.0.0.1:7781")
        self.assertEqual(host_port("https", "[::1]"), "[::1]:443")
        self.assertEqual(host_port("http", "[::1]:8080"), "[::1]:8080")


if __name__ == "__main__":
    unittest.main()
