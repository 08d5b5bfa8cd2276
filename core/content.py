"""Content addresses: equal content, equal text, equal id, in every stage.

The processor keys its state and the sink keys job versions with these, so both must agree
byte for byte: one definition, here.

>>> canonical_json({"b": 1, "a": [True, None]})
'{"a":[true,null],"b":1}'
>>> len(content_id({"a": 1}))
32
>>> job_version_id("etl", "daily", [("pg", "b"), ("pg", "a"), ("pg", "a")], [], {}) == \\
...     job_version_id("etl", "daily", [("pg", "a"), ("pg", "b")], [], {})
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal content, equal text."""
    return _encoder.encode(value).decode()


def canonical_bytes(value: Any) -> bytes:
    """:func:`canonical_json` as UTF-8 bytes."""
    return _encoder.encode(value)


def content_id(value: Any) -> str:
    """A 128-bit content address (hex) of ``value``'s canonical JSON."""
    return hashlib.sha256(_encoder.encode(value)).hexdigest()[:32]


def job_version_id(namespace: str, name: str, inputs: Iterable[tuple[str, str]],
                   outputs: Iterable[tuple[str, str]], definition: Mapping[str, Any]) -> str:
    """The content address of a job version: what one run did (DESIGN.md, Versions).

    ``inputs`` and ``outputs`` are (namespace, name) pairs, the union over the run's events;
    ``definition`` maps the behaviour-defining job facets (``sql``, ``sourceCode``,
    ``sourceCodeLocation``, ``jobType``) to their content without ``_producer``/``_schemaURL``.
    """
    # Pairs, not "ns/name" strings, so ("s3://b/x", "y") and ("s3://b", "x/y") differ; a set,
    # so a dataset listed twice is the same content as listed once.
    return content_id({"namespace": namespace, "name": name,
                       "inputs": sorted({(ns, n) for ns, n in inputs}),
                       "outputs": sorted({(ns, n) for ns, n in outputs}),
                       "definition": definition})
