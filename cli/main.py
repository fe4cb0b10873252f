"""`alim`: the command line. It runs turns through the same engine as the HTTP API.

CLI runs are checkpointed in the same store `alim serve` uses (SQLite under the data directory by
default), as the local partner `cli`, so `alim run --thread T` and `alim chat` continue a
conversation across invocations.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alim.errors import AlimError

if TYPE_CHECKING:
    from engine import Engine

from cli.admin import escalations_app, keys_app, threads_app
from cli.assistant import assistant_app
from cli.common import (
    CLI_PARTNER,
    IndexProgress,
    ThreadOpt,
    UserOpt,
    err,
    fail,
    graph_deps,
    load_settings,
    run_async,
)
from cli.knowledge import datasets_app, documents_app

app = typer.Typer(help="ALİM: an agronomy assistant for Azerbaijani farmers.", no_args_is_help=True)
index_app = typer.Typer(help="Build and query the knowledge index.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(threads_app, name="threads")
app.add_typer(keys_app, name="keys")
app.add_typer(datasets_app, name="datasets")
app.add_typer(documents_app, name="documents")
app.add_typer(assistant_app, name="assistant")
app.add_typer(escalations_app, name="escalations")


@dataclass
class StreamedTurn:
    thread_id: str | None
    failed: bool = False


async def _stream_turn(engine: Engine, message: str, user: str, thread: str | None) -> StreamedTurn:
    """Print one turn: tokens to stdout, progress and errors to stderr."""
    from alim.events import MetadataEvent, NodeEvent, SourcesEvent, TokenEvent
    from alim.threads import Owner
    from engine import TurnRequest

    turn = StreamedTurn(thread)
    try:
        async for event in engine.stream(TurnRequest(message, Owner(CLI_PARTNER, user), thread)):
            if isinstance(event, MetadataEvent):
                turn.thread_id = event.thread_id
                err.print(f"[dim]thread {event.thread_id}[/dim]")
            elif isinstance(event, NodeEvent):
                err.print(f"[dim]→ {event.name}[/dim]")
            elif isinstance(event, TokenEvent):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, SourcesEvent):
                sys.stdout.write("\n")
                conf = "–" if event.confidence is None else f"{event.confidence:.2f}"
                line = f"[dim]route {event.route} · model {event.model} · confidence {conf}"
                if event.escalated:
                    line += f" · escalated ({event.escalation_reason})"
                err.print(line + "[/dim]")
    except AlimError as exc:
        turn.failed = True
        err.print(f"[red]{exc.code}[/red]: {exc.message}")
    return turn


@app.command()
def run(
    message: Annotated[str, typer.Argument(help="The farmer's message.")],
    user: UserOpt = "cli-user",
    thread: ThreadOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the invoke response as JSON.")
    ] = False,
) -> None:
    """Answer one message (streams the answer; --json prints the whole result)."""
    from alim.threads import Owner
    from engine import Engine, TurnRequest

    deps = graph_deps()

    async def main() -> None:
        async with Engine.open(deps.settings, deps) as engine:
            if as_json:
                result = await engine.invoke(TurnRequest(message, Owner(CLI_PARTNER, user), thread))
                print(json.dumps(asdict(result), ensure_ascii=False, indent=2))
            elif (await _stream_turn(engine, message, user, thread)).failed:
                raise typer.Exit(code=1)

    run_async(main())


@app.command()
def chat(user: UserOpt = "cli-user", thread: ThreadOpt = None) -> None:
    """A conversation in the terminal (one thread across turns; empty line or Ctrl-D ends)."""
    from engine import Engine

    deps = graph_deps()

    async def main() -> None:
        current = thread
        async with Engine.open(deps.settings, deps) as engine:
            while True:
                try:
                    line = await asyncio.to_thread(input, "siz › ")
                except EOFError:
                    break
                if not line.strip():
                    break
                # A failed turn is reported and the conversation goes on.
                current = (await _stream_turn(engine, line, user, current)).thread_id

    run_async(main())


@index_app.command("build")
def index_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if up to date.")] = False,
) -> None:
    """Build (or check) the persisted knowledge index."""
    from alim.embeddings import make_embeddings
    from alim.knowledge.service import ensure_index

    settings = load_settings()
    try:
        with IndexProgress(True) as progress:
            index = ensure_index(
                settings, make_embeddings(settings), rebuild=force, progress=progress
            )
    except AlimError as exc:
        raise fail(exc) from None
    m = index.manifest()
    err.print(
        f"index at {settings.resolved_index_dir}: {m['articles']} articles, {m['chunks']} "
        f"chunks, {m['embedder']} ({m['dimension']} dims)"
    )


@index_app.command("add")
def index_add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".md, .txt or .pdf")],
    title: Annotated[str | None, typer.Option(help="Title (default: from the file).")] = None,
    language: Annotated[str | None, typer.Option(help="az | en | ru (default: detected).")] = None,
    tags: Annotated[str | None, typer.Option(help="Comma-separated tags.")] = None,
) -> None:
    """Add a document to the knowledge base (incremental: only its chunks are embedded)."""
    from alim.knowledge.uploads import parse_upload

    deps = graph_deps()
    try:
        doc = parse_upload(
            file.name,
            file.read_bytes(),
            title=title,
            language=language,
            tags=[t.strip() for t in (tags or "").split(",") if t.strip()],
        )
        with IndexProgress(True, "Embedding the new article") as progress:
            article = deps.knowledge().ingest(
                title=doc.title,
                content=doc.content,
                language=doc.language,
                tags=list(doc.tags),
                topic=doc.topic,
                progress=progress,
            )
    except AlimError as exc:
        raise fail(exc) from None
    err.print(f"added {article.id} ({len(deps.index().chunks)} chunks in the index)")
    print(article.id)


@index_app.command("search")
def index_search(
    query: str,
    k: int = 4,
    search_type: Annotated[str, typer.Option("--type")] = "hybrid",
) -> None:
    """Search the knowledge index and print the hits."""
    from alim.knowledge.index import SearchOptions

    deps = graph_deps()
    hits = deps.index().search(query, SearchOptions(search_type=search_type, k=k))  # type: ignore[arg-type]
    for h in hits:
        print(f"{h.score:.3f}  {h.chunk.id:40s} {h.chunk.title}")


@app.command()
def graph(
    png: Annotated[Path | None, typer.Option(help="Also draw the graph to a PNG file.")] = None,
) -> None:
    """Print the graph as Mermaid (and draw it as PNG with --png)."""
    from engine import GraphDeps, build_graph

    compiled = build_graph(GraphDeps(load_settings()))
    print(compiled.get_graph().draw_mermaid())
    if png is not None:
        from alim.drawing import draw_graph_png

        draw_graph_png(compiled.get_graph(), png)
        err.print(f"wrote {png}")


@app.command("eval")
def evaluate_cmd(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)] = Path(
        "eval/questions.jsonl"
    ),
    split: Annotated[
        str, typer.Option("--split", help="dev | test | all (each split, then all).")
    ] = "all",
    show_misses: Annotated[
        bool, typer.Option("--misses", help="List every row that failed a check, and why.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (the default output).")
    ] = False,
    table: Annotated[
        bool, typer.Option("--table", help="Print a compact table (to stderr with --json).")
    ] = False,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="Run through this configured model (groq, openai:gpt-4o-mini…); default offline.",
        ),
    ] = "",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the first N rows (of the split).")
    ] = None,
) -> None:
    """Key facts, answer language, routes and escalation on a labelled question set."""
    from cli.evaluate import evaluate, format_table, parse_split

    try:
        chosen = parse_split(split)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--split") from exc
    deps = graph_deps()
    report = run_async(evaluate(path, deps.settings, deps, split=chosen, model=model, limit=limit))
    if table:
        text = format_table(report)
        if show_misses and not as_json:
            misses = report.misses
            text += f"\n\nmisses ({len(misses)}):\n" + "\n".join(
                json.dumps(m, ensure_ascii=False) for m in misses
            )
        print(text, file=sys.stderr if as_json else sys.stdout)
        if not as_json:
            return
    data = report.as_dict()
    if not show_misses:
        data.pop("misses")
    print(json.dumps(data, ensure_ascii=False, indent=2))


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
) -> None:
    """Serve the HTTP API (uvicorn)."""
    import uvicorn

    from alim.logs import configure_logging
    from alim.settings import get_settings
    from api.connections import protocol_class

    settings = get_settings()
    if workers > 1 and (settings.checkpointer != "postgres" or not settings.redis_url):
        # Thread locks and rate-limit counters live in one process with SQLite and without
        # Redis: several workers would run two turns on one thread and multiply the limits.
        err.print(
            "[red]config_error[/red]: --workers > 1 needs ALIM_CHECKPOINTER=postgres and "
            "ALIM_REDIS_URL (shared thread locks and rate limits); with SQLite, run one worker "
            "per machine",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    graph_deps()  # build the index before accepting traffic, with a progress bar
    configure_logging(settings.log_level)
    uvicorn.run(
        "api.app:served_app",
        # uvicorn's protocol plus a deadline for request headers and a per-address cap.
        http=protocol_class(),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # keep ALİM's JSON logging
        # A little longer than the streams' own grace period, so they end with error + done.
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 2,
    )


if __name__ == "__main__":  # pragma: no cover
    app()
