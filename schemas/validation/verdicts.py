"""Verdicts on standard facets, remembered per distinct facet content.

The same facets arrive again and again (a dataset's schema in every event that reads it, a job's
sql in every run), so each distinct facet is checked once: :data:`VERDICTS` (a
:class:`core.cache.BoundedCache`) holds verdicts by checker and facet JSON bytes. The key is
msgspec's encoding of the decoded value, which tells apart everything a check can tell apart
(key order, 1 and 1.0, true and 1). A verdict holds the problems with their pointers *below* the
facet, so a remembered verdict is reported at the facet's place in the new event.

>>> from schemas.validation.results import FacetJson
>>> from schemas.validation.spec import SPEC
>>> facet, encodings = {"_producer": "https://p", "_schemaURL": "https://s"}, FacetJson()
>>> facet_verdict(SPEC.standard["job"]["sql"], facet, encodings)
(('missing_field', '/query', "required field 'query' is missing"),)
>>> encodings(facet)
b'{"_producer":"https://p","_schemaURL":"https://s"}'
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

import msgspec

from core.cache import BoundedCache
from schemas.validation.compiler import Check
from schemas.validation.results import FacetJson, ReasonCode
from schemas.validation.spec import SPEC

Verdict = tuple[tuple[ReasonCode, str, str], ...]
"""What a standard facet's check found: (code, pointer below the facet, message) per problem;
empty when the facet is valid."""

MEMO_ENTRIES: Final = 65_536
MEMO_BYTES: Final = 64 << 20
MEMO_FACET_BYTES: Final = 256 << 10
"""Facets larger than this are checked every time, never remembered."""
MEMO_NESTING: Final = 100
"""A checker that can recurse (nested schema fields, subset conditions) hits Python's recursion
limit on a deep enough facet, at a depth that depends on the caller's stack; its verdicts are
only remembered for facets with at most this many objects and arrays, far too shallow to reach
the limit from any caller, so a remembered verdict is the one a fresh check would give anywhere."""

VERDICTS: Final[BoundedCache[tuple[Check, bytes], Verdict]] = BoundedCache(
    MEMO_ENTRIES, MEMO_BYTES, largest=MEMO_FACET_BYTES)
"""The verdicts remembered, sized by their key's JSON bytes."""

_facet_encoder: Final = msgspec.json.Encoder()


def facet_verdict(check: Check, facet: Any, encodings: FacetJson) -> Verdict:
    """The verdict of ``check`` on a standard facet, remembered per distinct facet content.

    The facet's JSON bytes, made for the key, are added to ``encodings``.
    """
    key: tuple[Check, bytes] | None = None
    with contextlib.suppress(TypeError, ValueError, OverflowError, RecursionError):
        key = (check, _facet_encoder.encode(facet))
    if key is not None:
        encodings.add(facet, key[1])
        found = VERDICTS.get(key)
        if found is not None:
            return found
    # Called here, as before the memo, so the checker runs at the same stack depth as before.
    try:
        errors = check(facet)
    except RecursionError:
        # Recursive facet schemas (nested schema fields, subset conditions) let a message nest
        # deeper than Python recurses; that facet cannot be vouched for, the event still can.
        return (("too_deep", "", "the facet is nested too deeply to be checked"),)
    verdict = tuple((e.code, e.pointer(""), e.message) for e in errors) if errors else ()
    if key is not None and (
        check not in SPEC.recursive or key[1].count(b"{") + key[1].count(b"[") <= MEMO_NESTING
    ):
        VERDICTS.put(key, verdict, len(key[1]))
    return verdict
