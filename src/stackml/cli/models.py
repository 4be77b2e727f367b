"""``stackml models``: list registered models; promote a version or roll back, recorded with who and why."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from stackml.cli._pipeline import JsonOption

models_app = typer.Typer(
    help="Registered models: list them (no subcommand), promote a version, roll back the champion.",
    invoke_without_command=True,
)

NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="Registered model name (see `stackml models`).")
]
AliasOption = Annotated[str, typer.Option("--alias", help="The alias to move.")]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why; recorded with your OS user name on the model version.")
]


@models_app.callback()
def models(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List registered models with their versions, aliases and metrics."""
    if ctx.invoked_subcommand is not None:
        return
    from stackml.cli.output import frame_to_records, print_frame, print_json
    from stackml.tracking import list_models

    df = list_models()
    print_json(frame_to_records(df)) if as_json else print_frame(df, title="Registered models")


@models_app.command("promote")
def promote(
    name: NameArgument,
    version: Annotated[int, typer.Argument(metavar="VERSION", help="The version to point the alias at.")],
    reason: ReasonOption,
    alias: AliasOption = "champion",
    metric: Annotated[
        Optional[str],
        typer.Option(
            "--metric",
            help="The metric that must be a finite number (default: the one the version was compared on).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Point an alias (champion by default) at a version, whatever the current one scores.

    Refuses a version that does not exist, is not ready, or whose primary metric is NaN or infinite.
    """
    from stackml.tracking import move_alias

    move = move_alias(name, version, reason=reason, alias=alias, metric=metric)
    if not move.moved:
        _print(move, as_json, f"v{move.version} already holds '{alias}' of '{name}'; nothing changed.")
        return
    before = f"v{move.previous}" if move.previous is not None else "no version"
    _print(move, as_json, f"Moved '{alias}' of '{name}' from {before} to v{move.version} (by {move.by}).")


@models_app.command("rollback")
def rollback(
    name: NameArgument, reason: ReasonOption, alias: AliasOption = "champion", as_json: JsonOption = False
) -> None:
    """Move an alias (champion by default) back to the version that held it before; again, further back."""
    from stackml.tracking import rollback as roll_back

    move = roll_back(name, reason=reason, alias=alias)
    text = f"Rolled '{alias}' of '{name}' back from v{move.previous} to v{move.version} (by {move.by})."
    _print(move, as_json, text)


@models_app.command("history")
def history(name: NameArgument, alias: AliasOption = "champion", as_json: JsonOption = False) -> None:
    """Every recorded move of an alias: when, which version, from which, by whom and why."""
    import pandas as pd

    from stackml.cli.output import print_frame, print_json
    from stackml.tracking import alias_history

    rows = [_record(move) for move in alias_history(name, alias)]
    if as_json:
        print_json(rows)
        return
    columns = ["at", "action", "version", "previous", "by", "reason"]
    print_frame(pd.DataFrame(rows, columns=columns), title=f"Moves of '{alias}' of '{name}'")


def _record(move: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(move)


def _print(move: Any, as_json: bool, text: str) -> None:
    if as_json:
        from stackml.cli.output import print_json

        print_json(_record(move))
    else:
        typer.echo(text)
