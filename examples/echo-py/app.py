"""echo-py: re-publishes each event (payload, key and headers) to another
topic. A tombstone is echoed as a tombstone, a null header value as a null
one. The Python twin of examples/echo.

Config:
- ``out_topic``: where to publish; default ``<source topic>.echo``.

The smallest useful actor: it shows the shape of every Python actor (one
function under ``@actor``) and that an emit is published only when the call
returns ``Done``.
"""

from wactor import Done, Event, Record, actor, config, emit, log


@actor
def handle(event: Event):
    topic = config.get("out_topic", f"{event.topic}.echo")
    log.debug(
        f"echoing {len(event.payload_bytes())} bytes from "
        f"{event.topic}/{event.partition}@{event.offset} to {topic}"
    )
    # A tombstone stays a tombstone (payload None), a null header value a
    # null one; the key is the source's.
    record = Record(topic, event.payload, key=event.key, headers=event.headers)
    # The host refuses a record only for a limit or a reserved topic: that
    # raises EmitRejected, which ends the call as a Retry.
    emit.send(record)
    return Done()
