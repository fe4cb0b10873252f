"""`alim datasets …` and `alim documents add FILE --dataset D`: a partner's knowledge, written
to the same store the servers follow (they pick a change up within the sync interval)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alim.errors import AlimError
from cli.common import CLI_PARTNER, IndexProgress, err, fail, graph_deps, load_settings, run_async

if TYPE_CHECKING:
    from alim.knowledge.datasets import PartnerKnowledge

datasets_app = typer.Typer(help="A partner's knowledge datasets.", no_args_is_help=True)
documents_app = typer.Typer(help="Documents in a partner's datasets.", no_args_is_help=True)
PartnerOpt = Annotated[
    str, typer.Option("--partner", "-p", help="The partner (its keys' name) the data belongs to.")
]


def _run(action: Any, *, progress: bool = False) -> Any:
    """`action(knowledge)` on an engine over the configured store; AlimError → exit 1."""
    from engine import Engine

    async def main() -> Any:
        async with Engine.open(load_settings(), graph_deps(progress)) as engine:
            assert engine.knowledge is not None
            return await action(engine.knowledge)

    try:
        return run_async(main())
    except AlimError as exc:
        raise fail(exc) from None


@datasets_app.command("list")
def datasets_list(partner: PartnerOpt = CLI_PARTNER) -> None:
    """The partner's datasets: id, documents, name."""

    async def action(k: PartnerKnowledge) -> None:
        for d in await k.store.datasets(partner):
            default = " (default)" if d.is_default else ""
            print(f"{d.id}\t{d.documents}\t{d.name}{default}")

    _run(action)


@datasets_app.command("create")
def datasets_create(
    name: str,
    partner: PartnerOpt = CLI_PARTNER,
    description: Annotated[str, typer.Option(help="What it holds.")] = "",
    language: Annotated[str | None, typer.Option(help="az | en | ru")] = None,
) -> None:
    """Create a dataset; prints its id."""

    async def action(k: PartnerKnowledge) -> None:
        created = await k.create_dataset(partner, name, description, language)
        print(created.id)

    _run(action)


@datasets_app.command("delete")
def datasets_delete(dataset_id: str, partner: PartnerOpt = CLI_PARTNER) -> None:
    """Delete a dataset and its documents."""

    async def action(k: PartnerKnowledge) -> None:
        await k.delete_dataset(partner, dataset_id)
        err.print(f"deleted {dataset_id}")

    _run(action)


@documents_app.command("add")
def documents_add(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help=".md, .txt, .pdf, .docx, .html")
    ],
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset id (default: the default one).")
    ] = None,
    partner: PartnerOpt = CLI_PARTNER,
    external_id: Annotated[
        str | None, typer.Option(help="Your id: adding it again replaces.")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title (default: from the file).")] = None,
    language: Annotated[str | None, typer.Option(help="az | en | ru (default: detected).")] = None,
) -> None:
    """Add a file to a dataset, with a progress bar while it is embedded; prints its id."""
    from alim.knowledge.datasets import Upload
    from alim.knowledge.uploads import parse_upload

    try:
        doc = parse_upload(file.name, file.read_bytes(), title=title, language=language)
    except AlimError as exc:
        raise fail(exc) from None

    async def action(k: PartnerKnowledge) -> None:
        with IndexProgress(True, f"Embedding {file.name}") as progress:
            stored, created = await k.add(
                partner,
                dataset,
                title=doc.title[:200],
                content=doc.content,
                language=doc.language,
                tags=list(doc.tags),
                topic=doc.topic,
                external_id=external_id,
                upload=Upload(filename=file.name, file_type=doc.file_type, pages=doc.pages),
                progress=progress,
            )
        state = "added" if created else "already there"
        err.print(f"{state}: {stored.id} ({stored.chunk_count} chunks) in {stored.dataset_id}")
        print(stored.id)

    _run(action)


@documents_app.command("delete")
def documents_delete(document_id: str, partner: PartnerOpt = CLI_PARTNER) -> None:
    """Delete a document; it leaves retrieval at once."""

    async def action(k: PartnerKnowledge) -> None:
        await k.delete(partner, document_id)
        err.print(f"deleted {document_id}")

    _run(action)
