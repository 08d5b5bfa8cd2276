"""The one exception tree of the project.

Every error a component raises on purpose derives from :class:`LineageError`, and is either
*retryable* (the same operation may succeed later: a broker or database that is starting, a
transient network fault) or *fatal* (retrying will not help: bad configuration, a missing tool).
Invalid OpenLineage events are **not** exceptions: they are data, routed to a dead-letter queue
with their reasons.

::

    LineageError                 root; ``retryable`` tells the two branches apart
    ├── RetryableError           try again with backoff
    │   └── ServiceUnavailable   Kafka or Neo4j did not answer in time
    └── FatalError               stop and tell the user
        ├── ConfigError          a setting is invalid or missing
        ├── StackError           the local stack cannot start (port, Java, Maven, ...)
        └── NotFound             a dataset, job, column or version named by the user is absent

Every error carries a one-line ``cause`` and, where there is one, a ``hint``; the CLI prints
exactly those two lines instead of a stack trace.

>>> err = ConfigError("LINEAGE_KAFKA__BOOTSTRAP_SERVERS is empty", hint="set it to host:port")
>>> err.retryable, str(err)
(False, 'LINEAGE_KAFKA__BOOTSTRAP_SERVERS is empty (hint: set it to host:port)')
"""

from __future__ import annotations


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


class FatalError(LineageError):
    """Retrying will not help; the user has to change something."""


class ConfigError(FatalError):
    """A setting is invalid or missing."""


class StackError(FatalError):
    """The local stack cannot be started, checked or stopped."""


class NotFound(FatalError):
    """A dataset, job, column or version the user named is not in the lineage graph."""
