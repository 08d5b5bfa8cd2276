"""A compiler from the JSON Schema subset of the OpenLineage spec files to checker functions.

Nothing runs jsonschema per event: each schema becomes one Python function, ``value -> list of
Err | None``, compiled once (:mod:`schemas.validation.spec` compiles the shipped spec at
import). It knows the keywords the spec files use and refuses any other, so a newer spec cannot
be half-enforced silently.

>>> compiler = SchemaCompiler({"urn:x": {
...     "$id": "urn:x", "type": "object", "required": ["a"],
...     "properties": {"a": {"type": "string", "format": "uri"}}}})
>>> check = compiler.compile([(compiler.resolve("urn:x#"), "urn:x")], "example")
>>> check({"a": "https://example.com"}) is None
True
>>> [(error.code, error.pointer("/facet")) for error in check({"a": "no uri"}) or ()]
[('bad_uri', '/facet/a')]
>>> reasons_at(check({}) or (), "/facet")[0].message
"required field 'a' is missing"
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from schemas.validation.formats import FORMATS, Format, format_message
from schemas.validation.results import Reason, ReasonCode, describe, pointer_token

MISSING: Final[Any] = object()
"""What ``dict.get`` answers for an absent field (``None`` is a JSON value)."""


class Err:
    """A failure inside a compiled check, with its path collected on the way back up.

    Paths are only built for failures, so a valid facet costs no pointer arithmetic at all.
    """

    __slots__ = ("code", "message", "tokens")

    def __init__(self, code: ReasonCode, message: str, token: str | None = None) -> None:
        self.code = code
        self.message = message
        self.tokens: list[str | int] = [] if token is None else [token]

    def pointer(self, prefix: str) -> str:
        """The JSON pointer of the failure, ``prefix`` being that of the checked value."""
        return prefix + "".join(pointer_token(token) for token in reversed(self.tokens))


Errors = list[Err] | None
Check = Callable[[Any], Errors]


def reasons_at(errors: Iterable[Err], prefix: str) -> list[Reason]:
    """The reasons of a checker's failures, for a value at the JSON pointer ``prefix``."""
    return [Reason(error.code, error.pointer(prefix), error.message) for error in errors]


# Each schema becomes the Python source of one function, `value -> list of Err | None`, in
# which nested objects and arrays are checked inline: a function call per nested value, as
# closures would need, costs more than the check itself, and large facets (column lineage,
# schemas of wide tables) hold hundreds of values. Only recursive definitions and the branches
# of anyOf / oneOf are functions of their own.

_ANNOTATIONS: Final = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "example", "examples"}
    | {"default", "deprecated", "documentation"}
)
_KEYWORDS: Final = frozenset(
    {"type", "properties", "required", "additionalProperties", "dependentRequired", "items"}
    | {"$ref", "allOf", "anyOf", "oneOf", "enum", "const", "format", "minimum"}
)
_TYPE_NAMES: Final = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}
_TYPE_TESTS: Final = {  # Python expressions, ``{}`` standing for the value
    "object": "isinstance({}, dict)",
    "array": "isinstance({}, list)",
    "string": "isinstance({}, str)",
    "boolean": "isinstance({}, bool)",
    "integer": "_is_integer({})",
    "number": "_is_number({})",
    "null": "{} is None",
}


def _is_integer(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _wrong_type(expected: str, value: Any) -> list[Err]:
    return [Err("wrong_type", f"expected {_TYPE_NAMES[expected]}, found {describe(value)}")]


def _missing(name: str) -> list[Err]:
    return [Err("missing_field", f"required field '{name}' is missing", name)]


def _missing_with(name: str, need: str) -> list[Err]:
    return [Err("missing_field", f"field '{need}' is required with '{name}'", need)]


def _unexpected(name: str, allowed: str) -> list[Err]:
    return [
        Err("unexpected_field", f"field '{name}' is not allowed here (allowed: {allowed})", name)
    ]


def _bad_format(fmt: Format, value: str) -> list[Err]:
    return [Err(fmt.code, format_message(fmt, value))]


def _bad_enum(expected: str, value: Any) -> list[Err]:
    return [Err("bad_enum", f"expected {expected}, found {describe(value)}")]


def _below(minimum: float, value: Any) -> list[Err]:
    return [Err("out_of_range", f"expected a number >= {minimum}, found {describe(value)}")]


def _add(errors: Errors, more: list[Err], path: tuple[str | int, ...]) -> list[Err]:
    """``errors`` plus ``more``, whose values sit at ``path`` below the checked value."""
    for error in more:
        error.tokens.extend(reversed(path))
    return more if errors is None else errors + more


Located = tuple[Mapping[str, Any], str]
"""A schema and the id of the document it sits in (the base of its local ``$ref``s)."""


class _Merged:
    """The keywords of a schema merged with those its ``allOf`` and ``$ref`` pull in.

    Merging turns a facet's chain (facet -> RunFacet -> BaseFacet) into one object check. It is
    exact for the keywords merged here: ``allOf`` means every part applies, and object parts that
    leave undeclared fields free simply pool their properties. A part that constrains undeclared
    fields (``additionalProperties`` other than true) is kept apart, since its notion of
    "undeclared" is its own.
    """

    def __init__(self) -> None:
        self.types: set[str] = set()
        self.properties: dict[str, list[Located]] = {}
        self.required: dict[str, None] = {}  # an ordered set: reasons follow the schema's order
        self.dependent: dict[str, list[str]] = {}
        self.closed: list[Located] = []
        self.items: list[Located] = []
        self.alternatives: list[tuple[bool, list[Located]]] = []  # (oneOf?, alternatives)
        self.formats: list[str] = []
        self.enums: list[list[Any]] = []
        self.minimums: list[float] = []
        self.recursive_refs: list[str] = []


class _Source:
    """Lines of Python being written, with indentation and fresh local names.

    ``with source.block(header):`` indents the lines written inside; a block that gets none is
    closed with ``pass``.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names = 0
        self._starts: list[int] = []

    def line(self, text: str) -> None:
        self.lines.append("    " * (len(self._starts) + 1) + text)

    def block(self, header: str) -> _Source:
        self.line(header)
        return self

    def __enter__(self) -> None:
        self._starts.append(len(self.lines))

    def __exit__(self, *exc: object) -> None:
        if len(self.lines) == self._starts[-1]:
            self.line("pass")
        self._starts.pop()

    def local(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"


class SchemaCompiler:
    """Compiles schemas of the spec files into ``value -> errors | None`` functions."""

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self._documents = documents
        self._recursive: dict[str, bool] = {}
        self._functions: dict[str, str] = {}  # $ref URI -> name of its function
        self._unrolled: set[str] = set()  # recursive definitions being written inline
        # The globals of the generated functions: the helpers, then constants and functions.
        helpers = [_is_integer, _is_number, _wrong_type, _missing, _missing_with, _unexpected]
        helpers += [_bad_format, _bad_enum, _below, _add, format_message]
        self._namespace: dict[str, Any] = {helper.__name__: helper for helper in helpers}
        self._namespace["MISSING"] = MISSING

    def resolve(self, uri: str) -> Mapping[str, Any]:
        """The schema at ``uri`` (a document id, ``#``, and a JSON pointer into it)."""
        document_id, _, fragment = uri.partition("#")
        node: Any = self._documents[document_id]
        for part in fragment.split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node  # type: ignore[no-any-return]

    def compile(self, located: Iterable[Located], label: str) -> Check:
        """One checker for all of ``located`` (schemas that all apply to the same value)."""
        name = self._define(self._merged(located), label)
        return self._namespace[name]  # type: ignore[no-any-return]

    def ref(self, uri: str) -> str:
        """The name of the function for the definition at ``uri``, defined on first use."""
        name = self._functions.get(uri)
        if name is None:
            # Named before it is written, so that a recursive definition can call itself.
            name = self._functions[uri] = self._name()
            self._define(self._merged([(self.resolve(uri), uri.partition("#")[0])]), uri, name)
        return name

    def _name(self) -> str:
        return f"_check_{len(self._namespace)}"

    def _constant(self, value: Any) -> str:
        name = f"_constant_{len(self._namespace)}"
        self._namespace[name] = value
        return name

    def _define(self, merged: _Merged, label: str, name: str | None = None) -> str:
        name = name or self._name()
        self._namespace.setdefault(name, None)  # reserve the name
        source = _Source()
        source.line("errors = None")
        self._check(merged, "value", (), source)
        source.line("return errors")
        code = "\n".join([f"def {name}(value):", *source.lines])
        exec(compile(code, f"<checker of {label}>", "exec"), self._namespace)  # noqa: S102
        return name

    def _merged(self, located: Iterable[Located]) -> _Merged:
        merged = _Merged()
        for schema, base in located:
            self._merge(schema, base, merged)
        return merged

    def _is_recursive(self, uri: str) -> bool:
        """Whether the definition at ``uri`` refers back to itself, directly or not."""
        if uri not in self._recursive:
            seen: set[str] = set()
            todo = [uri]
            while todo:
                current = todo.pop()
                document_id = current.partition("#")[0]
                for ref in refs_in(self.resolve(current)):
                    target = absolute(ref, document_id)
                    if target not in seen:
                        seen.add(target)
                        todo.append(target)
            self._recursive[uri] = uri in seen
        return self._recursive[uri]

    def reaches_recursion(self, schema: Mapping[str, Any], base: str) -> bool:
        """Whether checking ``schema`` can recurse (it reaches a recursive definition), so that
        how deep its checker goes depends on how deeply the value nests."""
        seen: set[str] = set()
        todo = [absolute(ref, base) for ref in refs_in(schema)]
        while todo:
            uri = todo.pop()
            if uri in seen:
                continue
            seen.add(uri)
            if self._is_recursive(uri):
                return True
            document_id = uri.partition("#")[0]
            todo += [absolute(ref, document_id) for ref in refs_in(self.resolve(uri))]
        return False

    def _merge(self, schema: Mapping[str, Any], base: str, into: _Merged) -> None:
        unknown = schema.keys() - _KEYWORDS - _ANNOTATIONS
        if unknown:
            raise ValueError(f"unsupported JSON Schema keywords {sorted(unknown)} in {base}")
        if "type" in schema:
            if schema["type"] not in _TYPE_NAMES:
                raise ValueError(f"unsupported JSON Schema type {schema['type']!r} in {base}")
            into.types.add(schema["type"])
        if "$ref" in schema:
            uri = absolute(schema["$ref"], base)
            # Inlining a recursive definition would never end: those get a function.
            if self._is_recursive(uri):
                into.recursive_refs.append(uri)
            else:
                self._merge(self.resolve(uri), uri.partition("#")[0], into)
        for sub in schema.get("allOf", ()):
            self._merge(sub, base, into)
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                alternatives = [(sub, base) for sub in schema[keyword]]
                into.alternatives.append((keyword == "oneOf", alternatives))
        if schema.get("additionalProperties", True) is not True:
            into.closed.append((schema, base))
        else:
            for name, sub in schema.get("properties", {}).items():
                into.properties.setdefault(name, []).append((sub, base))
            into.required.update(dict.fromkeys(schema.get("required", ())))
            for name, needs in schema.get("dependentRequired", {}).items():
                into.dependent.setdefault(name, []).extend(needs)
        if "items" in schema:
            into.items.append((schema["items"], base))
        if "format" in schema:
            if schema["format"] not in FORMATS:
                raise ValueError(f"unsupported JSON Schema format {schema['format']!r} in {base}")
            into.formats.append(schema["format"])
        if "enum" in schema or "const" in schema:
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            if not all(isinstance(value, str) for value in values):
                raise ValueError(f"unsupported non-string enum {values!r} in {base}")
            into.enums.append(values)
        if "minimum" in schema:
            into.minimums.append(schema["minimum"])

    # Writing the checks. ``value`` is the name of a local holding the value, ``path`` the
    # Python expressions of the tokens that lead to it from the function's argument.

    def _check(self, merged: _Merged, value: str, path: tuple[str, ...], source: _Source) -> None:
        if len(merged.types) > 1:
            raise ValueError(f"unsupported conflicting JSON Schema types {sorted(merged.types)}")
        expected = next(iter(merged.types), None)
        if expected is None:
            self._check_content(merged, value, path, source, known=None)
            return
        at = _tuple(path)
        with source.block(f"if not {_TYPE_TESTS[expected].format(value)}:"):
            source.line(f"errors = _add(errors, _wrong_type({expected!r}, {value}), {at})")
        with source.block("else:"):
            self._check_content(merged, value, path, source, known=expected)

    def _check_content(
        self, merged: _Merged, value: str, path: tuple[str, ...], source: _Source, known: str | None
    ) -> None:
        """Everything but the type; ``known`` is the type already checked, if any."""
        at = _tuple(path)
        for uri in merged.recursive_refs:
            if uri in self._unrolled:
                self._call(self.ref(uri), value, path, source)
                continue
            # One level of a recursive definition is written inline, so that the common case
            # (schema fields without nested fields) needs no call per element.
            self._unrolled.add(uri)
            definition = self._merged([(self.resolve(uri), uri.partition("#")[0])])
            self._check(definition, value, path, source)
            self._unrolled.discard(uri)
        for exactly_one, alternatives in merged.alternatives:
            self._call(
                self._constant(self._alternatives(alternatives, exactly_one)), value, path, source
            )
        for schema, base in merged.closed:
            properties = {name: [(sub, base)] for name, sub in schema.get("properties", {}).items()}
            self._object(
                properties,
                schema.get("required", ()),
                schema.get("dependentRequired", {}),
                value,
                path,
                source,
                known,
            )
            additional = schema["additionalProperties"]
            with self._only_if("object", known, value, source):
                key, item = source.local("key"), source.local("item")
                with source.block(f"for {key}, {item} in {value}.items():"):
                    source.line(f"if {key} in {self._constant(frozenset(properties))}:")
                    source.line("    continue")
                    if additional is False:
                        allowed = self._constant(", ".join(properties))
                        source.line(f"errors = _add(errors, _unexpected({key}, {allowed}), {at})")
                    else:
                        self._check(self._merged([(additional, base)]), item, (*path, key), source)
        if merged.properties or merged.required or merged.dependent:
            self._object(
                merged.properties, merged.required, merged.dependent, value, path, source, known
            )
        if merged.items:
            with self._only_if("array", known, value, source):
                index, item = source.local("index"), source.local("item")
                with source.block(f"for {index}, {item} in enumerate({value}):"):
                    self._check(self._merged(merged.items), item, (*path, index), source)
        for name in merged.formats:
            fmt = self._constant(FORMATS[name])
            with (
                self._only_if("string", known, value, source),
                source.block(f"if not {fmt}.test({value}):"),
            ):
                source.line(f"errors = _add(errors, _bad_format({fmt}, {value}), {at})")
        for values in merged.enums:
            allowed = self._constant(frozenset(values))
            expected = self._constant(" or ".join(json.dumps(value) for value in values))
            with source.block(f"if not (isinstance({value}, str) and {value} in {allowed}):"):
                source.line(f"errors = _add(errors, _bad_enum({expected}, {value}), {at})")
        for minimum in merged.minimums:
            with source.block(f"if _is_number({value}) and {value} < {minimum!r}:"):
                source.line(f"errors = _add(errors, _below({minimum!r}, {value}), {at})")

    def _object(
        self,
        properties: Mapping[str, list[Located]],
        required: Iterable[str],
        dependent: Mapping[str, list[str]],
        value: str,
        path: tuple[str, ...],
        source: _Source,
        known: str | None,
    ) -> None:
        at = _tuple(path)
        required = tuple(required)
        with self._only_if("object", known, value, source):
            for name, located in properties.items():
                item = source.local("item")
                source.line(f"{item} = {value}.get({name!r}, MISSING)")
                if name in required:
                    with source.block(f"if {item} is MISSING:"):
                        source.line(f"errors = _add(errors, _missing({name!r}), {at})")
                    guard = "else:"
                else:
                    guard = f"if {item} is not MISSING:"
                with source.block(guard):
                    self._check(self._merged(located), item, (*path, repr(name)), source)
            for name in required:
                if name not in properties:
                    with source.block(f"if {name!r} not in {value}:"):
                        source.line(f"errors = _add(errors, _missing({name!r}), {at})")
            for name, needs in dependent.items():
                for need in needs:
                    with source.block(f"if {name!r} in {value} and {need!r} not in {value}:"):
                        source.line(
                            f"errors = _add(errors, _missing_with({name!r}, {need!r}), {at})"
                        )

    def _only_if(
        self, kind: str, known: str | None, value: str, source: _Source
    ) -> contextlib.AbstractContextManager[None]:
        """A block for checks that apply to one JSON type only (not needed if it is known)."""
        if known == kind:
            return contextlib.nullcontext()
        if known is not None:
            return source.block("if False:")  # another type: the checks never apply
        return source.block(f"if {_TYPE_TESTS[kind].format(value)}:")

    def _call(self, function: str, value: str, path: tuple[str, ...], source: _Source) -> None:
        found = source.local("found")
        with source.block(f"if {found} := {function}({value}):"):
            source.line(f"errors = _add(errors, {found}, {_tuple(path)})")

    def _alternatives(self, subs: list[Located], exactly_one: bool) -> Check:
        named = [
            (
                sub["$ref"].rpartition("/")[2] if "$ref" in sub else f"#{i + 1}",
                self.compile([(sub, base)], f"{base} alternative {i + 1}"),
            )
            for i, (sub, base) in enumerate(subs)
        ]

        def check(value: Any) -> Errors:
            matched: list[str] = []
            failed: list[tuple[str, list[Err]]] = []
            for name, alternative in named:
                errors = alternative(value)
                if errors:
                    failed.append((name, errors))
                elif not exactly_one:
                    return None
                else:
                    matched.append(name)
            if len(matched) == 1:
                return None
            if matched:
                return [
                    Err(
                        "ambiguous_match",
                        f"matches {len(matched)} alternatives ({', '.join(matched)}); "
                        "exactly one is allowed",
                    )
                ]
            return _no_match(failed)

        return check


def _tuple(path: tuple[str, ...]) -> str:
    return f"({', '.join(path)},)" if path else "()"


def refs_in(node: Any) -> Iterable[str]:
    """Every ``$ref`` in ``node``, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def _no_match(failed: list[tuple[str, list[Err]]]) -> list[Err]:
    """Explain why a value matches none of the alternatives.

    Problems that every alternative reports (a facet without ``_producer``) are the precise
    answer; otherwise each alternative's first problem is summarised.
    """

    def key(error: Err) -> tuple[str, str, str]:
        return (error.code, error.pointer(""), error.message)

    shared = set.intersection(*({key(error) for error in errors} for _, errors in failed))
    if shared:
        return [error for error in failed[0][1] if key(error) in shared]
    summaries = "; ".join(
        f"{name}: {errors[0].pointer('') or '/'} {errors[0].message}" for name, errors in failed
    )
    return [Err("no_match", f"matches none of the alternatives ({summaries})")]


def absolute(ref: str, base: str) -> str:
    """``ref`` made absolute against the id ``base`` of its document."""
    return base + ref if ref.startswith("#") else ref

