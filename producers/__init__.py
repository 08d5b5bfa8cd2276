"""Producers: the emitter library, the HTTP gateway and the harvesters that publish events."""
