"""{{name}}: a wactor actor in Python.

It reads JSON events like ``{"id": "tx-1001", "user": "user-7",
"amount_cents": 250000}`` from its topics, flags those at or above
``threshold_cents``, and emits the verdict to ``out_topic``. Each event id
is handled once: a marker in the actor's state makes a redelivery a no-op.

What it shows: SDK errors picking the outcome (a malformed payload is
dead, a refused emit or state write is retried), effects that apply only on
``Done``, config and state. Replace ``decide`` with your own logic; keep it
a plain function so that the unit tests can test it without a host.

Config:
- ``out_topic`` (default ``<source topic>.out``): where verdicts go;
- ``threshold_cents`` (default 100000): the smallest flagged amount.
"""

from dataclasses import dataclass

from wactor import Dead, Done, Event, actor, config, emit, log, state


@dataclass
class Payment:
    """The event this actor reads."""

    id: str  # unique id of the payment: the idempotency key
    user: str  # who paid
    amount_cents: int


def decide(payment: Payment, threshold_cents: int) -> dict:
    """The actor's logic, free of I/O: the verdict to emit for ``payment``."""
    return {
        "id": payment.id,
        "flagged": payment.amount_cents >= threshold_cents,
        "amount_cents": payment.amount_cents,
    }


@actor
def handle(event: Event):
    # Not JSON of this shape: PayloadError, so the event is dead (retrying
    # cannot fix it).
    payment = event.json(Payment)
    marker = f"done:{payment.id}"
    if state.get(marker) is not None:
        log.info(f"{payment.id} already handled")
        return Done()
    try:
        threshold_cents = int(config.get("threshold_cents", "100000"))
    except ValueError as err:
        return Dead(f"config threshold_cents: {err}")
    verdict = decide(payment, threshold_cents)
    topic = config.get("out_topic", f"{event.topic}.out")
    # A refused record or state write raises, and the call is retried; both
    # are applied only if the call ends Done.
    emit.send_json(topic, verdict, key=payment.user)
    state.set(marker, b"1")
    return Done()
