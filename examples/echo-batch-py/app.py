"""echo-batch-py: echo-py taken in batches. ``batch = true`` in actor.toml
builds it against the world ``actor-batch``, so the host may hand it up to
64 events in one call; the function below still sees one event at a time,
and each event's emit is published only if *that* event ends ``Done``.

An event whose echo topic the host refuses (``__consumer_offsets.echo``,
say: names starting with ``__`` are Kafka's) ends ``Retry`` alone; the
events beside it in the batch keep their emits.
"""

from wactor import Done, Event, Record, actor, config, emit


@actor
def handle(event: Event):
    topic = config.get("out_topic", f"{event.topic}.echo")
    emit.send(Record(topic, event.payload, key=event.key, headers=event.headers))
    return Done()
