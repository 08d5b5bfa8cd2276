"""The one exception tree of the project.

Every error a component raises on purpose derives from :class:`LineageError`, and is either
*retryable* (the same operation may succeed later: a broker or database that is starting, a
transient network fault) or *fatal* (retrying will not help: bad configuration, a missing tool).
Invalid OpenLineage events are **not** exceptions: they are data, routed to a dead-letter queue
with their reasons. :class:`InvalidInput` is raised only inside a stage, and caught there to
dead-letter the record or answer the request with its reasons; it never stops a service.

::

    LineageError                 root; ``retryable`` tells the two branches apart
    ├── RetryableError           try again with backoff
    │   ├── ServiceUnavailable   Kafka or Neo4j did not answer in time
    │   ├── EmitFailed           Kafka did not acknowledge some events (the emitter)
    │   ├── BufferFull           the emitter's buffer stayed full: Kafka is slow or away
    │   └── Interrupted          the service is stopping: what it waited for is left undone
    └── FatalError               stop and tell the user
        ├── ConfigError          a setting is invalid or missing
        ├── StackError           the local stack cannot start (port, Java, Maven, ...)
        ├── NotFound             a dataset, job, column or version named by the user is absent
        └── InvalidInput         input that fails for its own sake: refused with its reasons
            ├── BadRequest       an HTTP request that cannot be answered (a 4xx)
            │   └── BadBody      a request body that cannot be read as what its headers say
            ├── RefusedByKafka   a message Kafka refuses for good: too large for the broker
            ├── UndecodableRecord  a message on the changes topic that is no known change record
            └── ContractViolation  a change record the graph contract cannot take

A module's private control-flow exception derives from one of these too.

Every error carries a one-line ``cause`` and, where there is one, a ``hint``; the CLI prints
exactly those two lines instead of a stack trace.

>>> err = ConfigError("LINEAGE_KAFKA__BOOTSTRAP_SERVERS is empty", hint="set it to host:port")
>>> err.retryable, str(err)
(False, 'LINEAGE_KAFKA__BOOTSTRAP_SERVERS is empty (hint: set it to host:port)')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LineageError(Exception):
    """Root of every error raised on purpose by this project."""

    retryable: bool = False

    def __init__(self, cause: str, *, hint: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.cause} (hint: {self.hint})" if self.hint else self.cause


class RetryableError(LineageError):
    """The operation may succeed if tried again later."""

    retryable = True


class ServiceUnavailable(RetryableError):
    """A service (Kafka, Neo4j) did not answer in time."""


class Interrupted(RetryableError):
    """The service was told to stop while it waited (to retry Kafka or Neo4j): the work is left
    undone and uncommitted, for whoever takes it up next."""


class FatalError(LineageError):
    """Retrying will not help; the user has to change something."""


class ConfigError(FatalError):
    """A setting is invalid or missing."""


class StackError(FatalError):
    """The local stack cannot be started, checked or stopped."""


class NotFound(FatalError):
    """A dataset, job, column or version the user named is not in the lineage graph."""


class EmitFailed(RetryableError):
    """Kafka did not acknowledge some events; ``failures`` says which and why.

    Each failure has a ``key`` and a ``reason`` (``producers.emitter.DeliveryFailure``).
    """

    def __init__(self, failures: Sequence[Any]) -> None:
        first = failures[0]
        super().__init__(f"{len(failures)} OpenLineage event(s) were not acknowledged by Kafka; "
                         f"first: key {first.key!r}: {first.reason}",
                         hint="the events were not written; emit them again")
        self.failures = list(failures)


class BufferFull(RetryableError):
    """The emitter's buffer stayed full for ``block_seconds``: Kafka is slow or unreachable."""


class InvalidInput(FatalError):
    """Input that fails for its own sake; retrying the same bytes gives the same answer."""


class RefusedByKafka(InvalidInput):
    """Kafka refused a message for good: it is too large for the broker (the gateway's 413)."""


class BadRequest(InvalidInput):
    """An HTTP request that cannot be answered as asked (the gateway's and read API's 4xx)."""


class BadBody(BadRequest):
    """A request body that cannot be read as what its headers say it is."""


class UndecodableRecord(InvalidInput):
    """A message on the changes topic that is not a change record this reader understands.

    This is data, not a crash: the sink sends it to the changes DLQ with ``cause`` as reason.
    """


class ContractViolation(InvalidInput):
    """A change record the graph contract cannot take (it goes to the changes DLQ)."""
