"""The official OpenLineage 2-0-2 JSON Schema as a checker of generated events.

The core schema (``OpenLineage.json``) checks the event; each standard facet (a key that a file
of ``facets/`` defines) is checked against its own file, as ``{key: facet}``, since the core
schema only knows the facets' base types. Formats (uuid, date-time, uri) are checked.

>>> from tests.conftest import SHARED_OPENLINEAGE
>>> from tests.oracle.histories import rollback_history
>>> if (SHARED_OPENLINEAGE / "spec").is_dir():
...     assert OfficialSchema(SHARED_OPENLINEAGE / "spec").errors(rollback_history()[0]) == []
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource


class OfficialSchema:
    """Checks events against the schema files in ``spec`` (see ../shared/openlineage)."""

    def __init__(self, spec: Path) -> None:
        core, *facets = (json.loads(p.read_text()) for p in
                         [spec / "OpenLineage.json", *sorted((spec / "facets").glob("*.json"))])
        registry: Registry[Any] = Registry().with_resources(
            (doc["$id"], Resource.from_contents(doc)) for doc in [core, *facets])
        checker = Draft202012Validator.FORMAT_CHECKER
        self._core = Draft202012Validator(core, registry=registry, format_checker=checker)
        self._kinds = {kind: Draft202012Validator(
            {"$ref": f"{core['$id']}#/$defs/{kind}"}, registry=registry, format_checker=checker)
            for kind in ("RunEvent", "DatasetEvent", "JobEvent")}
        self._facets = {key: Draft202012Validator(doc, registry=registry, format_checker=checker)
                        for doc in facets for key in doc["properties"]}

    def errors(self, event: Mapping[str, Any]) -> list[str]:
        """Every violation of the event, each as ``pointer: message`` (empty: valid)."""
        found = []
        if not self._core.is_valid(event):
            # The core's oneOf says only "not valid under any": the event's kind says where.
            kind = ("RunEvent" if "run" in event else
                    "DatasetEvent" if "dataset" in event and "job" not in event else "JobEvent")
            found = [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
                     for e in self._kinds[kind].iter_errors(event)] or [
                f"/: not exactly one of RunEvent, DatasetEvent, JobEvent (as a {kind}, valid)"]
        for pointer, facets in _facet_maps(event):
            for key, value in facets.items():
                if key in self._facets:
                    found += [f"{pointer}/{key}: {e.message}"
                              for e in self._facets[key].iter_errors({key: value})]
        return found


def _facet_maps(event: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(pointer, facets) of every facet map of the event."""
    for holder in ("run", "job", "dataset"):
        if isinstance(event.get(holder), Mapping):
            yield f"/{holder}/facets", event[holder].get("facets") or {}
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for index, entry in enumerate(event.get(side) or ()):
            for key in ("facets", extra):
                yield f"/{side}/{index}/{key}", entry.get(key) or {}
