"""``lineage dlq``: list, show and replay dead letters (stream_processor/dlq.py)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from core.errors import LineageError
from core.settings import CommonSettings
from lineage.cli.common import friendly_errors

app = typer.Typer(help="Dead letters: list, show and replay refused events.",
                  no_args_is_help=True)


def _dead_letters(kind: str | None, reason: str | None) -> list[Any]:
    from stream_processor.dlq import read_dead_letters

    return [d for d in read_dead_letters(CommonSettings())
            if (kind is None or d.kind == kind) and (reason is None or reason in d.codes)]


@app.command("list")
@friendly_errors
def dlq_list(
    kind: Annotated[str | None, typer.Option(help="event or facet")] = None,
    reason: Annotated[str | None, typer.Option(help="only this reason code")] = None,
) -> None:
    """One line per dead letter: where it is, its kind, its reasons."""
    letters = _dead_letters(kind, reason)
    for d in letters:
        first = (d.envelope.get("reasons") or [{}])[0]
        typer.echo(f"{d.ref:<10} {d.kind:<6} {','.join(d.codes):<28} "
                   f"{first.get('pointer', '')} {first.get('message', '')}"[:160])
    typer.echo(f"{len(letters)} dead letters")


@app.command("show")
@friendly_errors
def dlq_show(ref: Annotated[str, typer.Argument(help="partition:offset, from `dlq list`")]) -> None:
    """The envelope (reasons, source) and the original message of one dead letter."""
    for d in _dead_letters(None, None):
        if d.ref == ref:
            typer.echo(json.dumps(d.envelope, indent=2))
            typer.echo(f"key: {d.key!r}")
            typer.echo("original message:")
            typer.echo(d.value.decode("utf-8", errors="replace"))
            return
    raise LineageError(f"no dead letter at {ref}", hint="see `lineage dlq list`")


@app.command("replay")
@friendly_errors
def dlq_replay(
    refs: Annotated[list[str] | None, typer.Argument(help="partition:offset ...")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every event dead letter")] = False,
    reason: Annotated[str | None, typer.Option(help="only this reason code")] = None,
    repair: Annotated[bool, typer.Option(help="apply repair mode before publishing")] = False,
) -> None:
    """Publish dead letters back to the raw topic for the processor to try again."""
    from stream_processor.dlq import replay

    if not refs and not all_:
        raise LineageError("name the dead letters to replay", hint="give partition:offset or --all")
    letters = [d for d in _dead_letters("event", reason) if all_ or d.ref in set(refs or ())]
    result = replay(CommonSettings(), letters, repair=repair)
    for ref, codes in result.still_invalid:
        typer.echo(f"{ref}: truncated to fit the DLQ, not replayed (the whole message is on its "
                   "source topic: see `lineage dlq show`)" if codes == ["truncated"] else
                   f"{ref}: still invalid ({','.join(codes)}), not replayed")
    typer.echo(f"replayed {len(result.published)} of {len(letters)} dead letters")
