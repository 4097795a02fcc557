"""payment-reversal-py: when a booking is cancelled, give the customer's
money back by reversing the wallet reservation made for it. The Python twin
of examples/payment-reversal, with the same observable behaviour (state
marker, request, outcomes, reasons, emitted record, log lines).

This is the GO-JEK case: a cancellation event must cause exactly one
reversal, even though Kafka delivers at least once and the wallet service is
sometimes slow or down. The actor gets there with:

- an idempotency marker in state (``reversed:<booking_id>``): a redelivered
  event finds it and does nothing. It is written in the same call that
  succeeds, and state writes are applied only on ``Done``, so the marker
  exists exactly when the reversal was confirmed;
- an ``Idempotency-Key: <booking_id>`` header, so that the wallet itself
  ignores a repeat (a call that timed out after the wallet acted, then
  retried);
- a precise mapping of replies onto outcomes: 2xx and 409 (already
  reversed) are success, 429/5xx/timeouts retry (honouring ``Retry-After``),
  other 4xx are dead because asking again cannot help.

Config:
- ``wallet_url`` (required): base URL of the wallet service, e.g.
  ``http://127.0.0.1:8080``;
- ``completed_topic`` (default ``wallet.reversal.completed``): where to
  publish the confirmation;
- ``timeout_ms`` (default 5000): how long one wallet call may take.
"""

import json
from dataclasses import dataclass

from wactor import Dead, Done, Event, PayloadError, Retry, actor, config, emit, http, log, state

#: The event type this actor acts on; every other type is ignored.
BOOKING_CANCELLED = "booking.cancelled"
#: Default topic of the confirmation record.
DEFAULT_COMPLETED_TOPIC = "wallet.reversal.completed"
#: Default timeout of one wallet call, in milliseconds.
DEFAULT_TIMEOUT_MS = 5000
#: How much of an error body (in characters) to quote in a dead-letter reason.
MAX_QUOTED_BODY = 512


@dataclass
class Envelope:
    """Just enough of any booking event to see its type."""

    type: str


@dataclass
class Amount:
    """Money in minor units (IDR has none: 25000 is 25,000 rupiah)."""

    value: int
    currency: str


@dataclass
class BookingCancelled:
    """A ``booking.cancelled`` event."""

    booking_id: str
    customer_id: str
    reservation_id: str
    amount: Amount


@actor
def handle(event: Event):
    # Not JSON, or no `type`: nothing could ever make sense of it (Dead).
    envelope = event.json(Envelope)
    if envelope.type != BOOKING_CANCELLED:
        log.debug(f"ignoring a {envelope.type} event")
        return Done()
    cancelled = event.json(BookingCancelled)
    if cancelled.amount.value < 0:
        raise PayloadError(f"malformed JSON payload: invalid value: integer `{cancelled.amount.value}`, expected u64")
    if not cancelled.booking_id or not cancelled.reservation_id:
        return Dead("booking_id and reservation_id must not be empty")

    marker_key = f"reversed:{cancelled.booking_id}"
    if state.get(marker_key) is not None:
        log.debug(f"booking {cancelled.booking_id} already reversed")
        return Done()

    wallet_url = config.require("wallet_url")  # missing => Dead
    url = f"{wallet_url.rstrip('/')}/reservations/{encode_path_segment(cancelled.reservation_id)}/reverse"
    body = {
        "booking_id": cancelled.booking_id,
        "customer_id": cancelled.customer_id,
        "amount": amount_json(cancelled.amount),
    }
    try:
        response = http.post(
            url,
            headers={"Idempotency-Key": cancelled.booking_id},
            json=body,
            timeout_ms=timeout_ms(),
        )
    except http.HttpError as err:
        return Retry(f"wallet unreachable: {err}")

    failed = judge(response)
    if failed is not None:
        log.warn(f"reversal of booking {cancelled.booking_id} not done: {describe(failed)}")
        return failed

    marker = {"reservation_id": cancelled.reservation_id, "wallet_status": response.status}
    try:
        state.set_json(marker_key, marker)
    except state.StateError as err:
        return Retry(f"cannot record the marker: {err}")
    completed = {
        "booking_id": cancelled.booking_id,
        "reservation_id": cancelled.reservation_id,
        "amount": amount_json(cancelled.amount),
    }
    emit.send_json(config.get("completed_topic", DEFAULT_COMPLETED_TOPIC), completed)
    log.info(
        f"reversed reservation {cancelled.reservation_id} of booking {cancelled.booking_id} "
        f"({cancelled.amount.value} {cancelled.amount.currency})"
    )
    return Done()


def amount_json(amount: Amount) -> dict:
    """The amount as it is sent and emitted: ``{"value": 25000, "currency": "IDR"}``."""
    return {"value": amount.value, "currency": amount.currency}


def timeout_ms() -> int:
    """The wallet call's timeout from config ``timeout_ms`` (ms). Not a
    whole number: ``Dead``, since only a new manifest fixes it."""
    text = config.get("timeout_ms")
    if text is None:
        return DEFAULT_TIMEOUT_MS
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit():
        raise Dead(f"config timeout_ms is not a number: {json.dumps(text, ensure_ascii=False)}")
    return int(stripped)


def judge(response: http.Response):
    """What a wallet reply means for the event: ``None`` when the
    reservation is reversed (now, or by an earlier call: 2xx and 409), else
    the ``Retry`` or ``Dead`` the event ends with."""
    status = response.status
    if 200 <= status < 300 or status == 409:
        return None
    if status == 429 or 500 <= status < 600:
        return Retry(f"wallet answered {status}", delay_ms=response.retry_after_ms())
    return Dead(f"wallet refused the reversal with {status}: {quote(response.text())}")


def describe(outcome) -> str:
    """An outcome as the Rust twin's log line prints it (``retry after 30s:
    wallet answered 503``, ``dead: ...``), so that both log the same text."""
    if isinstance(outcome, Retry) and outcome.delay_ms is not None:
        seconds = outcome.delay_ms / 1000
        text = f"{seconds:g}s" if outcome.delay_ms % 1000 else f"{outcome.delay_ms // 1000}s"
        return f"retry after {text}: {outcome.reason}"
    return str(outcome)


def quote(text: str) -> str:
    """The start of ``text`` (``MAX_QUOTED_BODY`` characters), ``...`` when cut."""
    if len(text) > MAX_QUOTED_BODY:
        return text[:MAX_QUOTED_BODY] + "..."
    return text


def encode_path_segment(segment: str) -> str:
    """Percent-encodes everything but RFC 3986 unreserved characters (and
    dots too, so that an id of ``..`` stays a name), so that an id can never
    change the path it is put in."""
    out = []
    for byte in segment.encode("utf-8"):
        char = chr(byte)
        if (char.isascii() and char.isalnum()) or char in "-_~":
            out.append(char)
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)
