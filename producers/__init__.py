"""Producers: the emitter library, the HTTP gateway and the harvesters that put OpenLineage events on Kafka."""
