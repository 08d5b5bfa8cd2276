"""The shipped OpenLineage spec, compiled: facet bases per place, and the standard facets' checkers.

The schema files are unmodified copies of the official ones, in ``schemas/openlineage_spec/``
(:data:`SPEC_DIR`). They are compiled once, at import, into :data:`SPEC`; the table of standard
facets is derived from them (each facet file's top-level ``properties``, placed by the core facet
type the facet extends), never typed in.

>>> sorted(STANDARD_FACETS["output"])
['outputStatistics', 'subset']
>>> SPEC.standard["job"]["sql"]({"_producer": "https://p", "_schemaURL": "https://s"})[0].code
'missing_field'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

from schemas.validation.compiler import Check, SchemaCompiler, absolute

SPEC_VERSION: Final = "2-0-2"
CORE_ID: Final = f"https://openlineage.io/spec/{SPEC_VERSION}/OpenLineage.json"
"""The ``$id`` of the core schema (RunEvent, DatasetEvent, JobEvent and the facet bases)."""

SPEC_DIR: Final = Path(__file__).resolve().parents[1] / "openlineage_spec"

Place = Literal["run", "job", "dataset", "input", "output"]
PLACE_OF_BASE: Final[dict[str, Place]] = {
    "RunFacet": "run",
    "JobFacet": "job",
    "DatasetFacet": "dataset",
    "InputDatasetFacet": "input",
    "OutputDatasetFacet": "output",
}


class Spec(NamedTuple):
    """The compiled spec."""

    bases: dict[Place, Check]
    """What every facet at a place must be (the core schema's RunFacet, JobFacet, ...)."""
    standard: dict[Place, dict[str, Check]]
    """Standard facet key -> checker of its own schema, per place."""
    recursive: frozenset[Check]
    """The standard facets' checkers that can recurse (nested schema fields, subset
    conditions), so that how deep they go depends on how deeply the facet nests."""
    schema_of: dict[Check, str]
    """The URI of the schema each standard facet's checker enforces, e.g.
    ``https://openlineage.io/spec/facets/1-1-1/SQLJobFacet.json#/properties/sql``."""


def documents(directory: Path) -> dict[str, Mapping[str, Any]]:
    """The schema files of ``directory`` (the core and ``facets/*.json``) by their ``$id``."""
    paths = [directory / "OpenLineage.json", *sorted((directory / "facets").glob("*.json"))]
    return {doc["$id"]: doc for doc in (json.loads(path.read_bytes()) for path in paths)}


def load_spec(directory: Path) -> Spec:
    """Compile the spec files of ``directory``; refuses a spec the compiler cannot enforce."""
    documents_by_id = documents(directory)
    if CORE_ID not in documents_by_id:
        raise ValueError(f"{directory} does not hold the OpenLineage {SPEC_VERSION} core schema")
    compiler = SchemaCompiler(documents_by_id)
    bases = {
        place: compiler.compile([(compiler.resolve(f"{CORE_ID}#/$defs/{name}"), CORE_ID)], name)
        for name, place in PLACE_OF_BASE.items()
    }
    standard: dict[Place, dict[str, Check]] = {place: {} for place in bases}
    recursive: set[Check] = set()
    schema_of: dict[Check, str] = {}
    for document_id, document in documents_by_id.items():
        if document_id == CORE_ID:
            continue
        for key, schema in document["properties"].items():
            places = {PLACE_OF_BASE[name] for name in _facet_bases(compiler, schema, document_id)}
            if not places:
                raise ValueError(f"facet {key!r} of {document_id} extends no OpenLineage facet")
            check = compiler.compile([(schema, document_id)], f"{document_id} {key}")
            schema_of[check] = f"{document_id}#/properties/{key}"
            if compiler.reaches_recursion(schema, document_id):
                recursive.add(check)
            for place in places:
                if key in standard[place]:
                    raise ValueError(f"two standard {place} facets are called {key!r}")
                standard[place][key] = check
    return Spec(bases, standard, frozenset(recursive), schema_of)


def _facet_bases(compiler: SchemaCompiler, schema: Mapping[str, Any], base: str) -> set[str]:
    """Which core facet types (RunFacet, JobFacet, ...) a facet schema extends.

    Only ``$ref`` and the combinators are followed: a facet that merely *mentions* another facet
    type in a property (the parent facet's ``job.facets``) does not extend it.
    """
    found: set[str] = set()
    if "$ref" in schema:
        uri = absolute(schema["$ref"], base)
        document_id, _, fragment = uri.partition("#")
        if document_id == CORE_ID:
            found.add(fragment.rpartition("/")[2])
        else:
            found |= _facet_bases(compiler, compiler.resolve(uri), document_id)
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(keyword, ()):
            found |= _facet_bases(compiler, sub, base)
    return found & PLACE_OF_BASE.keys()


SPEC: Final = load_spec(SPEC_DIR)
STANDARD_FACETS: Final[Mapping[str, frozenset[str]]] = {
    place: frozenset(table) for place, table in SPEC.standard.items()
}
"""The standard facet keys per place: ``run``, ``job``, ``dataset`` (``facets`` of any dataset),
``input`` (``inputFacets``) and ``output`` (``outputFacets``)."""
