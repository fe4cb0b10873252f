"""`alim assistant show|set`: a partner's assistant settings, the ones `GET/PUT /api/v1/assistant`
reads and writes, in the same store (a server picks a change up within a few seconds)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alim.errors import AlimError
from cli.common import CLI_PARTNER, err, fail, graph_deps, load_settings, run_async
from cli.knowledge import PartnerOpt

if TYPE_CHECKING:
    from engine import Engine

assistant_app = typer.Typer(help="A partner's assistant settings.", no_args_is_help=True)


def _run(action: Any) -> Any:
    """`action(engine)` on an engine over the configured store; AlimError → exit 1."""
    from engine import Engine

    async def main() -> Any:
        async with Engine.open(load_settings(), graph_deps(False)) as engine:
            assert engine.knowledge is not None
            return await action(engine)

    try:
        return run_async(main())
    except AlimError as exc:
        raise fail(exc) from None


@assistant_app.command("show")
def assistant_show(partner: PartnerOpt = CLI_PARTNER) -> None:
    """The settings, as JSON (the defaults until first saved)."""

    async def action(engine: Engine) -> None:
        found = await engine.assistants.get(partner)
        print(json.dumps(found.as_dict(), ensure_ascii=False, indent=2))

    _run(action)


@assistant_app.command("set")
def assistant_set(
    partner: PartnerOpt = CLI_PARTNER,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            "-d",
            help="A dataset a chat that names none searches (repeatable); replaces the list.",
        ),
    ] = None,
    all_datasets: Annotated[
        bool, typer.Option("--all-datasets", help="Search all of the partner's datasets again.")
    ] = False,
    no_datasets: Annotated[
        bool, typer.Option("--no-datasets", help="Search none of the partner's datasets.")
    ] = False,
    bundled: Annotated[
        bool | None,
        typer.Option(
            "--bundled/--no-bundled", help="Whether such a chat searches the bundled base."
        ),
    ] = None,
) -> None:
    """Change which datasets a chat searches when its request names none; the other settings
    stay as they are. Prints the settings."""
    from alim.assistants import save

    chosen = [bool(dataset), all_datasets, no_datasets]
    if sum(chosen) > 1:
        err.print("[red]invalid_request[/red]: --dataset, --all-datasets, --no-datasets: one")
        raise typer.Exit(code=2)

    async def action(engine: Engine) -> None:
        assert engine.knowledge is not None
        wanted = await engine.assistants.get(partner)
        if any(chosen):
            wanted = replace(wanted, dataset_ids=None if all_datasets else tuple(dataset or ()))
        if bundled is not None:
            wanted = replace(wanted, include_bundled=bundled)
        saved = await save(engine.assistants, engine.settings, engine.knowledge, partner, wanted)
        print(json.dumps(saved.as_dict(), ensure_ascii=False, indent=2))

    _run(action)
