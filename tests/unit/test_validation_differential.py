"""Differential test of ``schemas.validation`` against the official OpenLineage schema.

The oracle is jsonschema's ``Draft202012Validator`` over the official 2-0-2 schema files in
``../shared/openlineage/spec``: a ``referencing.Registry`` holds every file by its ``$id``, and the
draft's ``FORMAT_CHECKER`` checks uuid, date-time and uri. For every input the two must agree:

- facets: a standard facet (a key defined by a facet file, at a place where the facet's base type
  puts it) is kept exactly when ``{key: facet}`` validates against its facet file;
- core: the event is accepted exactly when the oracle accepts it once the standard facets that
  failed are removed; an accepted event is exactly that pruned event, of the kind (RunEvent,
  DatasetEvent, JobEvent) that the oracle's ``oneOf`` picked.

Inputs: every file of ``../shared/openlineage/events`` (templates and partial matchers included:
they are just inputs) and hypothesis mutations of them. A disagreement fails the test unless it
is in ``DIVERGENCES`` below, the test's copy of the deliberate divergences of docs/validation.md.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from schemas.validation import ValidationResult, validate
from schemas.validation.spec import SPEC_DIR
from tests.conftest import SHARED_OPENLINEAGE as SHARED

if not (SHARED / "spec" / "OpenLineage.json").is_file():
    pytest.skip(
        f"the OpenLineage reference data (oracle schema and corpus) is not at {SHARED}",
        allow_module_level=True,
    )

pytestmark = pytest.mark.unit

# The fixed profile: deterministic, so CI sees the same examples every run, and no deadline, as
# the oracle is slow on the corpus's large events.
DIFFERENTIAL = settings(
    max_examples=600,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PLACE_OF_BASE = {
    "RunFacet": "run",
    "JobFacet": "job",
    "DatasetFacet": "dataset",
    "InputDatasetFacet": "input",
    "OutputDatasetFacet": "output",
}


# --------------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------------


def _facet_maps(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(pointer, place, facets) for every facet map where any event kind may hold facets."""
    for name in ("run", "job", "dataset"):
        holder = event.get(name)
        if isinstance(holder, dict) and isinstance(holder.get("facets"), dict):
            yield f"/{name}/facets", name, holder["facets"]
    for side, extra, place in (
        ("inputs", "inputFacets", "input"),
        ("outputs", "outputFacets", "output"),
    ):
        datasets = event.get(side)
        for index, dataset in enumerate(datasets if isinstance(datasets, list) else ()):
            if not isinstance(dataset, dict):
                continue
            for name, facet_place in (("facets", "dataset"), (extra, place)):
                if isinstance(dataset.get(name), dict):
                    yield f"/{side}/{index}/{name}", facet_place, dataset[name]


def _token(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


@dataclass
class Decision:
    ok: bool
    kind: str | None
    event: dict[str, Any] | None
    facets: dict[str, bool]  # pointer of each standard facet -> kept


class Oracle:
    def __init__(self, spec: Path) -> None:
        paths = [spec / "OpenLineage.json", *sorted((spec / "facets").glob("*.json"))]
        documents = [json.loads(path.read_text()) for path in paths]
        registry: Registry[Any] = Registry().with_resources(
            (document["$id"], Resource.from_contents(document)) for document in documents
        )
        core = documents[0]
        self.core_id = core["$id"]

        def validator(schema: dict[str, Any]) -> Draft202012Validator:
            return Draft202012Validator(
                schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
            )

        self.core = validator(core)
        self.kinds = {
            kind: validator({"$ref": f"{self.core_id}#/$defs/{name}"})
            for kind, name in (
                ("run", "RunEvent"),
                ("dataset", "DatasetEvent"),
                ("job", "JobEvent"),
            )
        }
        self.facets: dict[tuple[str, str], Draft202012Validator] = {}
        self.facet_schemas: dict[tuple[str, str], tuple[dict[str, Any], Any]] = {}
        for document in documents[1:]:
            resolver = registry.resolver(document["$id"])
            for key, schema in document["properties"].items():
                for base in self._bases(schema, resolver):
                    place = PLACE_OF_BASE[base]
                    assert (place, key) not in self.facets, f"two standard {place} facets {key}"
                    self.facets[place, key] = validator(document)
                    self.facet_schemas[place, key] = (schema, resolver)

    def _bases(self, schema: dict[str, Any], resolver: Any) -> set[str]:
        """The core facet types a facet extends, following $ref and combinators only."""
        found: set[str] = set()
        if "$ref" in schema:
            resolved = resolver.lookup(schema["$ref"])
            if schema["$ref"].startswith(self.core_id):
                found.add(schema["$ref"].rsplit("/", 1)[1])
            else:
                found |= self._bases(resolved.contents, resolved.resolver)
        for keyword in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(keyword, ()):
                found |= self._bases(sub, resolver)
        return found & PLACE_OF_BASE.keys()

    def decide(self, event: Any) -> Decision:
        if not isinstance(event, dict):
            return Decision(False, None, None, {})
        event = copy.deepcopy(event)
        facets: dict[str, bool] = {}
        for pointer, place, facet_map in _facet_maps(event):
            for key in list(facet_map):
                facet_validator = self.facets.get((place, key))
                if facet_validator is None:
                    continue
                keep = facet_validator.is_valid({key: facet_map[key]})
                facets[pointer + _token(key)] = keep
                if not keep:
                    del facet_map[key]
        if not self.core.is_valid(event):
            return Decision(False, None, None, facets)
        (kind,) = (kind for kind, check in self.kinds.items() if check.is_valid(event))
        return Decision(True, kind, event, facets)


ORACLE = Oracle(SHARED / "spec")


# --------------------------------------------------------------------------------------------
# Deliberate divergences (docs/validation.md, "Divergences from the official schema")
# --------------------------------------------------------------------------------------------


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _json_strings(item)


def _has_non_finite_numbers(raw: bytes) -> bool:
    found = []

    def constant(name: str) -> float:
        found.append(name)
        return 0.0

    def number(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            found.append(text)
        return value

    json.loads(raw, parse_constant=constant, parse_float=number)
    return bool(found)


def _has_lone_surrogates(raw: bytes) -> bool:
    return any(
        "\ud800" <= char <= "\udfff" for text in _json_strings(json.loads(raw)) for char in text
    )


def _is_not_plain_utf8(raw: bytes) -> bool:
    return raw.startswith(b"\xef\xbb\xbf") or json.detect_encoding(raw) != "utf-8"


@dataclass(frozen=True)
class Divergence:
    name: str
    reason: str
    applies: Callable[[bytes], bool]


DIVERGENCES = (
    Divergence(
        "non-finite numbers are not JSON",
        "NaN, Infinity and numbers beyond the double range: RFC 8259 has no such numbers and "
        "they cannot be re-encoded; json.loads accepts them, the validator answers not_json",
        _has_non_finite_numbers,
    ),
    Divergence(
        "lone surrogates are not text",
        "a \\ud800 escape without its pair is not a Unicode character and cannot be encoded as "
        "UTF-8 downstream; json.loads accepts it, the validator answers not_json",
        _has_lone_surrogates,
    ),
    Divergence(
        "only UTF-8 without a byte order mark",
        "RFC 8259 requires UTF-8 between systems and forbids adding a BOM; json.loads also "
        "sniffs UTF-16/32 and skips a BOM, the validator answers not_json",
        _is_not_plain_utf8,
    ),
)


#: Divergence 4 of docs/validation.md: schema-valid events the graph cannot store.
GRAPH_LIMITS = frozenset({"name_too_long", "time_out_of_range"})


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


@dataclass
class Tally:
    inputs: int = 0
    core_agree: int = 0
    accepted: int = 0
    facets: int = 0
    facets_agree: int = 0
    dropped: int = 0
    allowlisted: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)

    def summary(self, label: str) -> str:
        text = f"{label}: core {self.core_agree}/{self.inputs} agree ({self.accepted} accepted)"
        if self.facets:
            text += f", facets {self.facets_agree}/{self.facets} agree ({self.dropped} dropped)"
        if self.allowlisted:
            allowed = ", ".join(f"{name}: {count}" for name, count in self.allowlisted.items())
            text += f"; the other {self.inputs - self.core_agree} differ as allowlisted ({allowed})"
        return text


def compare(raw: bytes, tally: Tally, label: str = "") -> list[str]:
    """Validate ``raw`` both ways, count into ``tally``; return the unexplained disagreements."""
    tally.inputs += 1
    ours = validate(raw)
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        parsed_ok = False
    else:
        parsed_ok = True
    codes = {reason.code for reason in ours.reasons}
    ours_parsed = not codes & {"not_json", "too_deep"}
    if not (parsed_ok and ours_parsed):
        if parsed_ok == ours_parsed:
            tally.core_agree += 1
            return []
        allowed = [d.name for d in DIVERGENCES if parsed_ok and d.applies(raw)]
        if allowed:
            tally.allowlisted[allowed[0]] += 1
            return []
        problem = f"{label}: parse decision differs: ours {codes}, json.loads ok={parsed_ok}"
        tally.disagreements.append(problem)
        return [problem]

    oracle = ORACLE.decide(parsed)
    if oracle.ok and not ours.ok and codes <= GRAPH_LIMITS:
        tally.allowlisted["graph limits"] += 1
        return []
    problems = _core_problems(ours, oracle)
    tally.core_agree += not problems
    tally.accepted += oracle.ok
    dropped = {facet.pointer for facet in ours.dropped_facets}
    for pointer, keep in oracle.facets.items():
        tally.facets += 1
        tally.dropped += not keep
        if keep == (pointer not in dropped):
            tally.facets_agree += 1
        else:
            problems.append(f"facet {pointer}: oracle keep={keep}, ours keep={not keep}")
    problems.extend(
        f"facet {pointer}: dropped, but the oracle has no standard facet there"
        for pointer in dropped - oracle.facets.keys()
    )
    if problems:
        reasons = [reason.as_dict() for reason in ours.reasons]
        problems = [f"{label}: {problem} (our reasons: {reasons})" for problem in problems]
    tally.disagreements.extend(problems)
    return problems


def _core_problems(ours: ValidationResult, oracle: Decision) -> list[str]:
    if ours.ok != oracle.ok:
        return [f"core: oracle ok={oracle.ok}, ours ok={ours.ok}"]
    if ours.kind != oracle.kind:
        return [f"kind: oracle {oracle.kind}, ours {ours.kind}"]
    if ours.event != oracle.event:
        return ["the accepted event differs from the oracle's pruned event"]
    return []


def _encode(event: Any) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


def _corpus_paths() -> list[Path]:
    with (SHARED / "events" / "INDEX.tsv").open(newline="") as index:
        return [SHARED / "events" / row["path"] for row in csv.DictReader(index, delimiter="\t")]


CORPUS = _corpus_paths()


def test_every_corpus_file_gets_the_oracles_decisions() -> None:
    tally = Tally()
    for path in CORPUS:
        compare(path.read_bytes(), tally, str(path.relative_to(SHARED / "events")))
    print("\n" + tally.summary(f"corpus ({len(CORPUS)} files)"))
    assert not tally.disagreements, "\n".join(tally.disagreements)
    assert tally.inputs == len(CORPUS) > 400
    assert tally.accepted > 0 and tally.dropped > 0, "the corpus should exercise both decisions"


def test_the_shipped_spec_is_the_reference_spec() -> None:
    shipped = SPEC_DIR
    reference = sorted(path.relative_to(SHARED / "spec") for path in SHARED.glob("spec/**/*.json"))
    assert sorted(path.relative_to(shipped) for path in shipped.glob("**/*.json")) == reference
    for path in reference:
        assert (shipped / path).read_bytes() == (SHARED / "spec" / path).read_bytes(), path


# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------


def _pools() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every corpus event, and the valid ones: as they are, or as repair mode makes them."""
    every: list[dict[str, Any]] = []
    valid: list[dict[str, Any]] = []
    for path in CORPUS:
        raw = path.read_bytes()
        every.append(json.loads(raw))
        repaired = validate(raw, repair=True)
        if repaired.ok:
            assert repaired.event is not None
            valid.append(repaired.event)
    return every, valid


POOL, VALID_POOL = _pools()


def _corpus_facets() -> dict[tuple[str, str], list[Any]]:
    examples: dict[tuple[str, str], list[Any]] = {}
    for event in POOL:
        for _, place, facet_map in _facet_maps(event):
            for key, value in facet_map.items():
                if (place, key) in ORACLE.facets:
                    examples.setdefault((place, key), []).append(value)
    return examples


CORPUS_FACETS = _corpus_facets()


UUID = "3f1d3a8e-9b2c-4c1e-8a7b-1234567890ab"
TRICKY_UUIDS = [
    UUID,
    UUID.upper(),
    "{" + UUID + "}",
    "urn:uuid:" + UUID,
    UUID.replace("-", ""),
    UUID + "\n",
    UUID[:-1],
    UUID + "0",
    UUID[:-1] + "g",
    UUID[:30] + "-" + UUID[30:],  # a surplus hyphen: uuid.UUID ignores it
    " " + UUID[1:],  # int() ignores the space
    "+" + UUID[1:],
    UUID[:34] + "_" + UUID[35:],  # int() takes underscores between digits
    UUID[:35] + "\u0663",  # int() takes any Unicode decimal digit
    UUID[:8] + "-" + UUID[8:12] + "-uuid:" + UUID[14:],
    "fake_run_id",
    "",
]
TRICKY_TIMES = [
    "2021-01-01T00:00:00Z",
    "2021-01-01T00:00:00z",
    "2021-01-01t00:00:00+01:00",
    "2021-01-01T00:00:00",
    "2021-01-01T00:00:00.123456789-05:30",
    "2021-01-01T00:00:00.Z",
    "2021-01-01T00:00:00Z\n",
    "2021-01-01T00:00:00\n",
    "2021-01-01T00:00:00Z\n\n",
    "2021-01-01 00:00:00Z",
    "2020-02-29T00:00:00Z",
    "2021-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2021-13-01T00:00:00Z",
    "2021-04-31T00:00:00Z",
    "2021-01-32T00:00:00Z",
    "2021-01-01T24:00:00Z",
    "2021-01-01T23:60:00Z",
    "2021-12-31T23:59:60Z",
    "2021-01-01T00:00:00+24:00",
    "2021-01-01T00:00:00+0530",
    "\u0662021-01-01T00:00:00Z",
    "2021-01-01",
    "",
]
TRICKY_URIS = [
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    "https://github.com/OpenLineage/OpenLineage/tree/1.9.0/integration/spark",
    "https://x/y z",
    "no-scheme",
    "/relative/path",
    "urn:x",
    "a:",
    "1http://x",
    "mailto:someone@example.com",
    "http://[::1]:8080/p",
    "http://[::ffff:001.2.3.4]/",
    "http://[v1.x]/",
    "http://[V1.x]/",
    "http://[::1/",
    "http://a%zz",
    "http://a%20b",
    "https://x#a#b",
    "https://x?q=1?2#f/?",
    "http://\u00fc.com",
    "http://user:pw@host:80/p",
    "http://host:port",
    "https://x\n",
    "https://x\n\n",
    "s3://bucket/key",
    "",
]
URI_ALPHABET = "azAZ09:/?#[]@!$&'()*+,;=-._~% \n\u00fc"

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=6,
)
uuids = st.one_of(
    st.uuids().map(str),
    st.sampled_from(TRICKY_UUIDS),
    st.text("0123456789abcdefABCDEF-{}urnid: _+\n", min_size=30, max_size=42),
)
times = st.one_of(
    st.datetimes(timezones=st.timezones() | st.just(UTC)).map(datetime.isoformat),
    st.sampled_from(TRICKY_TIMES),
    st.builds(
        "{}-{}-{}{}{}:{}:{}{}{}".format,
        st.sampled_from(["0000", "0001", "1900", "2000", "2021", "2024", "9999", "202"]),
        st.sampled_from(["00", "01", "02", "06", "12", "13"]),
        st.sampled_from(["00", "01", "28", "29", "30", "31", "32"]),
        st.sampled_from(["T", "t", " "]),
        st.sampled_from(["00", "09", "23", "24"]),
        st.sampled_from(["00", "59", "60"]),
        st.sampled_from(["00", "59", "60", "5"]),
        st.sampled_from(["", ".0", ".123456789", "."]),
        st.sampled_from(["Z", "z", "+01:00", "-23:59", "+24:00", "+0100", "", "\n", "Z\n"]),
    ),
)
uris = st.one_of(
    st.sampled_from(TRICKY_URIS),
    st.builds(
        str.__add__,
        st.sampled_from(["https://", "http://", "urn:", "s3:", "x-y+z.1:", "", "1a:", "a//"]),
        st.text(URI_ALPHABET, max_size=20),
    ),
)
VALID_FORMATS = {
    "uuid": st.uuids().map(str),
    "date-time": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    "uri": st.sampled_from([*TRICKY_URIS[:2], "urn:x", "s3://bucket/key", "http://[::1]:8080/p"]),
}
TRICKY_FORMATS = {"uuid": uuids, "date-time": times, "uri": uris}
event_types = st.sampled_from(
    ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]
) | st.one_of(st.sampled_from(["start", "", "UNKNOWN", " START"]), scalars)

Mutation = Callable[[st.DrawFn, dict[str, Any]], None]
MUTATIONS: list[Mutation] = []


def mutation(function: Mutation) -> Mutation:
    MUTATIONS.append(function)
    return function


def _slots(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) in a JSON tree, depth first."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        yield value, key
        yield from _slots(item)


def _facets_slots(event: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [(facet_map, key) for _, _, facet_map in _facet_maps(event) for key in facet_map]


def _delete_or_replace(draw: st.DrawFn, slots: list[tuple[Any, Any]]) -> None:
    if not slots:
        return
    container, key = draw(st.sampled_from(slots))
    if isinstance(container, dict) and draw(st.booleans()):
        container.pop(key, None)
    else:
        container[key] = draw(json_values)


@mutation
def delete_or_replace_anything(draw: st.DrawFn, event: dict[str, Any]) -> None:
    _delete_or_replace(draw, list(_slots(event)))


@mutation
def damage_a_core_field(draw: st.DrawFn, event: dict[str, Any]) -> None:
    core = [
        (event, key) for key in ("eventTime", "producer", "schemaURL", "eventType", "run", "job")
    ]
    core += [(event, key) for key in ("inputs", "outputs", "dataset") if key in event]
    for name, fields in (("run", ("runId", "facets")), ("job", ("namespace", "name", "facets"))):
        if isinstance(event.get(name), dict):
            core += [(event[name], key) for key in fields]
    _delete_or_replace(draw, core)


@mutation
def set_a_tricky_run_id(draw: st.DrawFn, event: dict[str, Any]) -> None:
    run = event.get("run")
    if isinstance(run, dict):
        parent = (
            run.get("facets", {}).get("parent") if isinstance(run.get("facets"), dict) else None
        )
        target = run
        if isinstance(parent, dict) and isinstance(parent.get("run"), dict) and draw(st.booleans()):
            target = parent["run"]
        target["runId"] = draw(uuids)


@mutation
def set_a_tricky_time(draw: st.DrawFn, event: dict[str, Any]) -> None:
    event["eventTime"] = draw(times)


@mutation
def set_a_tricky_uri(draw: st.DrawFn, event: dict[str, Any]) -> None:
    facets = [
        value
        for facet_map, key in _facets_slots(event)
        if isinstance(value := facet_map[key], dict)
    ]
    holder, key = draw(
        st.sampled_from(
            [(event, "producer"), (event, "schemaURL")]
            + [(f, k) for f in facets for k in ("_producer", "_schemaURL")]
        )
    )
    holder[key] = draw(uris)


@mutation
def set_an_event_type(draw: st.DrawFn, event: dict[str, Any]) -> None:
    event["eventType"] = draw(event_types)


@mutation
def change_the_kind(draw: st.DrawFn, event: dict[str, Any]) -> None:
    choices = ["drop run", "drop job", "add dataset", "add run", "add job", "a job and a dataset"]
    choice = draw(st.sampled_from(choices))
    if choice.startswith("drop"):
        event.pop(choice.split()[1], None)
    elif choice == "a job and a dataset":
        event.pop("run", None)
        event["dataset"] = {"namespace": "ns", "name": "table"}
    elif choice == "add dataset":
        event["dataset"] = draw(
            st.sampled_from([{"namespace": "ns", "name": "table"}, {"namespace": "ns"}, []])
        )
    elif choice == "add run":
        event["run"] = {"runId": draw(uuids)}
    else:
        event["job"] = draw(st.sampled_from([{"namespace": "ns", "name": "job"}, {"name": "job"}]))


def _facet_holders(event: dict[str, Any]) -> list[tuple[dict[str, Any], str, str]]:
    """(holder, facets field, place) for every place a facet map can be added to."""
    holders = [
        (event[name], "facets", name)
        for name in ("run", "job", "dataset")
        if isinstance(event.get(name), dict)
    ]
    for side, extra, place in (
        ("inputs", "inputFacets", "input"),
        ("outputs", "outputFacets", "output"),
    ):
        datasets = event.get(side)
        for dataset in datasets if isinstance(datasets, list) else ():
            if isinstance(dataset, dict):
                holders += [(dataset, "facets", "dataset"), (dataset, extra, place)]
    return holders


def _put_facet(
    draw: st.DrawFn, event: dict[str, Any], key: str, value: Any, place: str | None
) -> None:
    holders = [holder for holder in _facet_holders(event) if place in (None, holder[2])]
    if holders:
        holder, name, _ = draw(st.sampled_from(holders))
        if not isinstance(holder.get(name), dict):
            holder[name] = {}
        holder[name][key] = value


@mutation
def add_a_custom_facet(draw: st.DrawFn, event: dict[str, Any]) -> None:
    value: Any = {"_producer": draw(uris), "_schemaURL": draw(uris), "anything": draw(json_values)}
    variant = draw(st.sampled_from(["valid", "no producer", "deleted", "not an object"]))
    if variant == "no producer":
        del value["_producer"]
    elif variant == "deleted":
        value["_deleted"] = draw(scalars)  # JobFacet and DatasetFacet want a boolean
    elif variant == "not an object":
        value = draw(scalars)
    # Standard keys at the wrong place are custom facets too.
    key = draw(
        st.sampled_from(["my_facet", "spark.logicalPlan", "a/b~c", "parent", "schema", "sql"])
    )
    _put_facet(draw, event, key, value, None)


INSTANCE_KEYWORDS = frozenset({"type", "const", "enum", "format", "items", "additionalProperties"})


def _draw_instance(draw: st.DrawFn, schema: dict[str, Any], resolver: Any, depth: int = 0) -> Any:
    """A value shaped by a JSON Schema, with an occasional slip: it only feeds the oracle.

    Several standard facets (lineage, subset, jobDependencies, executionParameters, ...) have no
    example in the corpus; this is how their oneOf, const, dependentRequired, minimum and closed
    objects get exercised. Each node slips with a small probability (a required field left out,
    an unexpected field, two oneOf alternatives at once, a boolean for a number, ...), so that
    most instances are valid or nearly so.
    """

    def slip() -> bool:
        return draw(st.integers(0, 15)) == 0

    merged: dict[str, Any] = {}
    properties: dict[str, tuple[dict[str, Any], Any]] = {}
    required: set[str] = set()
    pending = [(schema, resolver)]
    while pending:
        node, node_resolver = pending.pop()
        if "$ref" in node:
            resolved = node_resolver.lookup(node["$ref"])
            pending.append((resolved.contents, resolved.resolver))
        pending.extend((sub, node_resolver) for sub in node.get("allOf", ()))
        for keyword in ("anyOf", "oneOf"):
            if keyword in node:
                # Deep down, the first alternative ends recursive definitions.
                alternatives = node[keyword] if depth <= 3 else node[keyword][:1]
                chosen = [draw(st.sampled_from(alternatives))]
                if slip():
                    chosen.append(draw(st.sampled_from(alternatives)))
                pending.extend((choice, node_resolver) for choice in chosen)
        for name, sub in node.get("properties", {}).items():
            properties.setdefault(name, (sub, node_resolver))
        required |= set(node.get("required", ()))
        for name, needs in node.get("dependentRequired", {}).items():
            if draw(st.booleans()):  # both or (most likely) neither; a slip may leave one out
                required |= {name, *needs}
        merged.update({k: (v, node_resolver) for k, v in node.items() if k in INSTANCE_KEYWORDS})

    def sub_instance(sub: tuple[dict[str, Any], Any]) -> Any:
        return _draw_instance(draw, sub[0], sub[1], depth + 1)

    kind = merged.get("type", ("object" if properties else None, None))[0]
    if "const" in merged or "enum" in merged:
        allowed = [merged["const"][0]] if "const" in merged else merged["enum"][0]
        value = draw(st.sampled_from(allowed))
        return value.swapcase() if slip() else value
    if "format" in merged:
        formats = TRICKY_FORMATS if slip() else VALID_FORMATS
        return draw(formats[merged["format"][0]])
    if kind == "object":
        names = [
            name
            for name in properties
            if (name in required and not slip()) or (depth <= 3 and draw(st.booleans()))
        ]
        value = {name: sub_instance(properties[name]) for name in names}
        extra = merged.get("additionalProperties", (True, None))
        if isinstance(extra[0], dict) and depth <= 3:
            for name in draw(st.lists(text, max_size=2)):
                value[name] = sub_instance(extra)
        if slip():
            value[draw(st.sampled_from(["unexpected", "_deleted", "type"]))] = draw(json_values)
        return value
    if kind == "array":
        size = 0 if depth > 3 or "items" not in merged else draw(st.integers(0, 3))
        return [sub_instance(merged["items"]) for _ in range(size)]
    if slip():
        return draw(st.booleans() | st.just(0.5) | text)
    strategies = {
        "string": text,
        "integer": st.integers(-3, 10**6) | st.integers(-3, 3).map(float),
        "number": st.integers(-3, 100) | st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(),
        "null": st.none(),
    }
    return draw(strategies.get(kind, json_values))


@mutation
def add_a_standard_facet(draw: st.DrawFn, event: dict[str, Any]) -> None:
    place, key = draw(st.sampled_from(sorted(ORACLE.facets)))
    examples = CORPUS_FACETS.get((place, key))
    if examples and draw(st.booleans()):
        value = copy.deepcopy(draw(st.sampled_from(examples)))
    else:
        value = _draw_instance(draw, *ORACLE.facet_schemas[place, key])
    if draw(st.booleans()):
        _damage(draw, value)
    _put_facet(draw, event, key, value, place)


@mutation
def twist_a_number(draw: st.DrawFn, event: dict[str, Any]) -> None:
    """JSON Schema's integer takes 2.0 and refuses true; make sure both sides agree."""
    numbers = [
        (container, key)
        for container, key in _slots(event)
        if isinstance(container[key], int | float)
    ]
    if numbers:
        container, key = draw(st.sampled_from(numbers))
        value = container[key]
        twists = [float(value), int(value) if float(value).is_integer() else value, True, -1, 0]
        container[key] = draw(st.sampled_from(twists))


@mutation
def damage_inside_a_facet(draw: st.DrawFn, event: dict[str, Any]) -> None:
    facets = [facet_map[key] for facet_map, key in _facets_slots(event)]
    if facets:
        _damage(draw, draw(st.sampled_from(facets)))


def _damage(draw: st.DrawFn, value: Any) -> None:
    """One small, schema-relevant change somewhere inside ``value`` (a facet)."""
    slots = list(_slots(value))
    objects = [value, *(c[k] for c, k in slots if isinstance(c[k], dict))]
    strings = [(c, k) for c, k in slots if isinstance(c[k], str)]
    how = draw(st.sampled_from(["slot", "new field", "number", "case", "format"]))
    if how == "new field" and isinstance(value, dict):
        target = draw(st.sampled_from(objects))
        target[draw(st.sampled_from(["extra", "type", "_deleted"]))] = draw(json_values)
    elif how == "number":
        twist_a_number(draw, value if isinstance(value, dict) else {"value": value})
    elif how == "case" and strings:
        container, key = draw(st.sampled_from(strings))
        container[key] = container[key].swapcase()
    elif how == "format" and strings:
        container, key = draw(st.sampled_from(strings))
        container[key] = draw(uuids | times | uris)
    else:
        _delete_or_replace(draw, slots)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    # Most corpus files are templates that the oracle refuses; lean on the valid events so that
    # mutations probe both sides of every decision.
    event: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(VALID_POOL) | st.sampled_from(POOL)))
    for _ in range(draw(st.integers(1, 3))):
        draw(st.sampled_from(MUTATIONS))(draw, event)
    return event


def test_mutated_corpus_events_get_the_oracles_decisions() -> None:
    tally = Tally()

    @DIFFERENTIAL
    @given(mutated_events())
    def agree(event: dict[str, Any]) -> None:
        problems = compare(_encode(event), tally)
        assert not problems, "\n".join(problems)

    agree()
    print("\n" + tally.summary("mutations"))
    assert tally.accepted > 50 and tally.inputs - tally.accepted > 50
    assert tally.dropped > 20


@pytest.mark.parametrize(
    ("field_path", "values"),
    [
        (("eventTime",), times),
        (("run", "runId"), uuids),
        (("producer",), uris),
        (("schemaURL",), uris),
    ],
    ids=["eventTime", "runId", "producer", "schemaURL"],
)
def test_formats_of_core_fields_get_the_oracles_decisions(
    field_path: tuple[str, ...], values: st.SearchStrategy[str]
) -> None:
    tally = Tally()
    template = {
        "eventType": "START",
        "eventTime": "2024-05-01T12:00:00Z",
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": UUID},
        "job": {"namespace": "ns", "name": "job"},
    }

    @settings(DIFFERENTIAL, max_examples=300)
    @given(values)
    def agree(value: str) -> None:
        event = copy.deepcopy(template)
        holder: Any = event
        for name in field_path[:-1]:
            holder = holder[name]
        holder[field_path[-1]] = value
        problems = compare(_encode(event), tally)
        assert not problems, "\n".join(problems)

    agree()
    print("\n" + tally.summary("/" + "/".join(field_path)))
    assert tally.accepted > 0 and tally.inputs > tally.accepted


FACET_HOST = {
    "eventType": "COMPLETE",
    "eventTime": "2024-05-01T12:00:00.5+02:00",
    "producer": "https://example.com/producer",
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    "run": {"runId": UUID, "facets": {}},
    "job": {"namespace": "ns", "name": "job", "facets": {}},
    "inputs": [{"namespace": "ns", "name": "in", "facets": {}, "inputFacets": {}}],
    "outputs": [{"namespace": "ns", "name": "out", "facets": {}, "outputFacets": {}}],
}
FACET_MAP_OF_PLACE: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "run": lambda event: event["run"]["facets"],
    "job": lambda event: event["job"]["facets"],
    "dataset": lambda event: event["outputs"][0]["facets"],
    "input": lambda event: event["inputs"][0]["inputFacets"],
    "output": lambda event: event["outputs"][0]["outputFacets"],
}


@st.composite
def facet_instances(draw: st.DrawFn, place: str, key: str) -> Any:
    value = _draw_instance(draw, *ORACLE.facet_schemas[place, key])
    if draw(st.booleans()):
        _damage(draw, value)
    return value


def _compare_facet_instances(place: str, key: str, tally: Tally) -> None:
    @settings(DIFFERENTIAL, max_examples=40)
    @given(facet_instances(place, key))
    def agree(value: Any) -> None:
        event = copy.deepcopy(FACET_HOST)
        FACET_MAP_OF_PLACE[place](event)[key] = value
        problems = compare(_encode(event), tally, f"{place} facet {key}")
        assert not problems, "\n".join(problems)

    agree()


def test_every_standard_facet_gets_the_oracles_decisions_kept_and_dropped() -> None:
    tally = Tally()
    for place, key in sorted(ORACLE.facets):
        seen, dropped = tally.facets, tally.dropped
        _compare_facet_instances(place, key, tally)
        seen, dropped = tally.facets - seen, tally.dropped - dropped
        assert 0 < dropped < seen, f"{place} facet {key}: {dropped} of {seen} dropped"
    print("\n" + tally.summary(f"standard facets ({len(ORACLE.facets)} place/key pairs)"))


PARTS = {
    "run": {"runId": UUID},
    "job": {"namespace": "ns", "name": "job"},
    "dataset": {"namespace": "ns", "name": "table"},
    "eventType": "START",
}
BROKEN_PARTS = {
    "run": {"runId": "not-a-uuid"},
    "job": {"name": "job"},
    "dataset": {"namespace": "ns"},
    "eventType": "BEGIN",
}


def test_every_combination_of_run_job_dataset_and_event_type_gets_the_oracles_decision() -> None:
    """The spec's oneOf: which parts make a RunEvent, a JobEvent, a DatasetEvent, or nothing."""
    tally = Tally()
    for states in itertools.product(("absent", "valid", "broken"), repeat=len(PARTS)):
        event: dict[str, Any] = {
            "eventTime": "2024-05-01T12:00:00Z",
            "producer": "https://example.com/producer",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
        }
        for (name, part), state in zip(PARTS.items(), states, strict=True):
            if state != "absent":
                event[name] = part if state == "valid" else BROKEN_PARTS[name]
        compare(_encode(event), tally, str(dict(zip(PARTS, states, strict=True))))
    print("\n" + tally.summary("run/job/dataset/eventType combinations"))
    assert not tally.disagreements, "\n".join(tally.disagreements)
    assert tally.inputs == 81 and tally.accepted > 0


def test_repair_mode_only_accepts_events_the_oracle_accepts() -> None:
    counts: Counter[str] = Counter()

    @settings(DIFFERENTIAL, max_examples=300)
    @given(mutated_events())
    def repaired_is_valid(event: dict[str, Any]) -> None:
        raw = _encode(event)
        plain, repaired = validate(raw), validate(raw, repair=True)
        assert repaired.ok or not plain.ok, "repair mode refused what plain mode accepts"
        counts["repaired" if repaired.repairs else "untouched"] += 1
        if repaired.ok:
            counts["accepted"] += 1
            decision = ORACLE.decide(repaired.event)
            assert decision.ok and decision.kind == repaired.kind
            assert all(decision.facets.values()), "a standard facet left in is invalid"

    repaired_is_valid()
    print(f"\nrepair mode: {dict(counts)}")
    assert counts["repaired"] > 20


def test_parse_level_divergences_are_exactly_the_documented_ones() -> None:
    event = json.loads(
        (SHARED / "events" / "marquez" / "open_lineage__event_full.json").read_bytes()
    )
    assert ORACLE.decide(event).ok
    base = _encode(event)
    assert base.startswith(b"{")
    custom = b'{"custom": {"_producer": "urn:x", "_schemaURL": "urn:y", "v": %s}, '
    with_value = base.replace(b'"facets": {', b'"facets": ' + custom, 1)
    samples = {
        "NaN": with_value.replace(b"%s", b"NaN"),
        "Infinity": with_value.replace(b"%s", b"-Infinity"),
        "1e400": with_value.replace(b"%s", b"1e400"),
        "lone surrogate": with_value.replace(b"%s", b'"\\ud800"'),
        "UTF-8 BOM": b"\xef\xbb\xbf" + base,
        "UTF-16": base.decode().encode("utf-16-le"),
    }
    tally = Tally()
    for label, raw in samples.items():
        assert not compare(raw, tally, label)
        assert not validate(raw).ok
    print("\n" + tally.summary("parse level"))
    assert sum(tally.allowlisted.values()) == len(samples)
    valid_pair = with_value.replace(b"%s", b'"\\ud83d\\ude00"')
    assert not compare(valid_pair, tally, "surrogate pair")
    assert validate(valid_pair).ok
