"""`alim`: the command line. It runs turns through the same engine as the HTTP API.

CLI runs are checkpointed in the same store `alim serve` uses (SQLite under the data directory by
default), as the local partner `cli`, so `alim run --thread T` and `alim chat` continue a
conversation across invocations.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from alim.errors import AlimError

app = typer.Typer(help="ALİM: an agronomy assistant for Azerbaijani farmers.", no_args_is_help=True)
index_app = typer.Typer(help="Build and query the knowledge index.", no_args_is_help=True)
threads_app = typer.Typer(help="Conversations stored for the CLI partner.", no_args_is_help=True)
keys_app = typer.Typer(help="Partner API keys.", no_args_is_help=True)
escalations_app = typer.Typer(help="Questions handed to an agronomist.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(threads_app, name="threads")
app.add_typer(keys_app, name="keys")
app.add_typer(escalations_app, name="escalations")

CLI_PARTNER = "cli"
err = Console(stderr=True)

UserOpt = Annotated[str, typer.Option("--user", "-u", help="End-user id owning the thread.")]
ThreadOpt = Annotated[str | None, typer.Option("--thread", "-t", help="Thread id to continue.")]


def _settings() -> Any:
    from alim.settings import get_settings

    return get_settings()


def _deps(show_progress: bool = True) -> Any:
    """Graph services with the index ready (built with a progress bar if needed)."""
    from alim.knowledge.service import KnowledgeService, ensure_index
    from graphs.deps import GraphDeps

    deps = GraphDeps(_settings())
    service = KnowledgeService(deps.settings, deps.embeddings())
    with _progress(show_progress) as progress:
        service._index = ensure_index(deps.settings, deps.embeddings(), progress=progress)
    deps._knowledge = service
    return deps


class _progress:
    """A rich progress bar for index builds, on stderr; silent when nothing is built."""

    def __init__(self, enabled: bool, rebuild_label: str = "Embedding knowledge chunks"):
        self.enabled = enabled
        self.label = rebuild_label
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        return self if self.enabled else None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=total)
        self._bar.update(self._task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _fail(exc: AlimError) -> typer.Exit:
    err.print(f"[red]{exc.code}[/red]: {exc.message}")
    return typer.Exit(code=1)


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except AlimError as exc:
        raise _fail(exc) from None


async def _stream_turn(engine: Any, message: str, user: str, thread: str | None) -> str | None:
    """Print one turn: tokens to stdout, progress to stderr. Returns the thread id."""
    from alim.engine import TurnRequest
    from alim.events import ErrorEvent, MetadataEvent, NodeEvent, SourcesEvent, TokenEvent
    from alim.threads import Owner

    thread_id = thread
    failed = False
    async for event in engine.stream(TurnRequest(message, Owner(CLI_PARTNER, user), thread)):
        if isinstance(event, MetadataEvent):
            thread_id = event.thread_id
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
        elif isinstance(event, ErrorEvent):
            failed = True
            err.print(f"[red]{event.code}[/red]: {event.detail}")
    if failed:
        raise typer.Exit(code=1)
    return thread_id


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
    from alim.engine import Engine, TurnRequest
    from alim.threads import Owner

    deps = _deps()

    async def main() -> None:
        async with Engine.open(deps.settings, deps) as engine:
            if as_json:
                result = await engine.invoke(TurnRequest(message, Owner(CLI_PARTNER, user), thread))
                print(json.dumps(asdict(result), ensure_ascii=False, indent=2))
            else:
                await _stream_turn(engine, message, user, thread)

    _run(main())


@app.command()
def chat(user: UserOpt = "cli-user", thread: ThreadOpt = None) -> None:
    """A conversation in the terminal (one thread across turns; empty line or Ctrl-D ends)."""
    from alim.engine import Engine

    deps = _deps()

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
                try:
                    current = await _stream_turn(engine, line, user, current)
                except AlimError as exc:
                    err.print(f"[red]{exc.code}[/red]: {exc.message}")

    _run(main())


@index_app.command("build")
def index_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if up to date.")] = False,
) -> None:
    """Build (or check) the persisted knowledge index."""
    from alim.embeddings import make_embeddings
    from alim.knowledge.service import ensure_index

    settings = _settings()
    try:
        with _progress(True) as progress:
            index = ensure_index(
                settings, make_embeddings(settings), rebuild=force, progress=progress
            )
    except AlimError as exc:
        raise _fail(exc) from None
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

    deps = _deps()
    try:
        doc = parse_upload(
            file.name,
            file.read_bytes(),
            title=title,
            language=language,
            tags=[t.strip() for t in (tags or "").split(",") if t.strip()],
        )
        with _progress(True, "Embedding the new article") as progress:
            article = deps.knowledge().ingest(
                title=doc.title,
                content=doc.content,
                language=doc.language,
                tags=list(doc.tags),
                topic=doc.topic,
                progress=progress,
            )
    except AlimError as exc:
        raise _fail(exc) from None
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

    deps = _deps()
    hits = deps.index().search(query, SearchOptions(search_type=search_type, k=k))  # type: ignore[arg-type]
    for h in hits:
        print(f"{h.score:.3f}  {h.chunk.id:40s} {h.chunk.title}")


@app.command()
def graph(
    png: Annotated[Path | None, typer.Option(help="Also draw the graph to a PNG file.")] = None,
) -> None:
    """Print the graph as Mermaid (and draw it as PNG with --png)."""
    from alim.settings import get_settings
    from graphs.builder import build_graph
    from graphs.deps import GraphDeps

    compiled = build_graph(GraphDeps(get_settings()))
    print(compiled.get_graph().draw_mermaid())
    if png is not None:
        from alim.drawing import draw_graph_png

        draw_graph_png(compiled.get_graph(), png)
        err.print(f"wrote {png}")


@threads_app.command("list")
def threads_list(user: UserOpt) -> None:
    """The user's threads, newest first."""
    from alim.engine import Engine
    from alim.threads import Owner

    async def main() -> None:
        async with Engine.open(_settings()) as engine:
            for t in await engine.threads.list(Owner(CLI_PARTNER, user)):
                print(f"{t.thread_id}\t{t.updated_at}\t{t.message_count}\t{t.title}")

    _run(main())


@threads_app.command("show")
def threads_show(thread_id: str, user: UserOpt) -> None:
    """A thread's messages."""
    from alim.engine import Engine
    from alim.threads import Owner

    async def main() -> None:
        async with Engine.open(_settings()) as engine:
            _, messages = await engine.history(Owner(CLI_PARTNER, user), thread_id)
            for m in messages:
                print(f"[{m['role']}] {m['content']}\n")

    _run(main())


@threads_app.command("delete")
def threads_delete(thread_id: str, user: UserOpt) -> None:
    """Delete a thread and its checkpoints."""
    from alim.engine import Engine
    from alim.threads import Owner

    async def main() -> None:
        async with Engine.open(_settings()) as engine:
            await engine.delete_thread(Owner(CLI_PARTNER, user), thread_id)
            err.print(f"deleted {thread_id}")

    _run(main())


async def _with_keys(action: Any) -> Any:
    from alim.keys import KeyStore
    from alim.persistence import open_persistence

    settings = _settings()
    async with open_persistence(settings) as persistence:
        return await action(KeyStore(persistence.db, settings))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Partner name (threads belong to it).")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="chat | agent | admin")] = None,
    rate_limit: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    max_streams: Annotated[int | None, typer.Option(help="Concurrent streams.")] = None,
) -> None:
    """Create a key; it is printed once, alone on the last line."""

    async def action(store: Any) -> tuple[str, dict[str, Any]]:
        return await store.create(
            name, scope or ["chat"], rate_limit_per_minute=rate_limit, max_streams=max_streams
        )

    key, record = _run(_with_keys(action))
    print(f"partner {record['partner']} · id {record['id']} · scopes {record['scopes']}")
    print("Store this key now; it cannot be shown again:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """Keys (id, partner, prefix, scopes, created, revoked); never the keys themselves."""

    async def action(store: Any) -> list[dict[str, Any]]:
        return await store.list()

    for r in _run(_with_keys(action)):
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        print(
            f"{r['id']}\t{r['partner']}\t{r['prefix']}…\t{r['scopes']}\t{r['created_at']}\t{state}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""

    async def action(store: Any) -> bool:
        return await store.revoke(key_id)

    if not _run(_with_keys(action)):
        err.print(f"[red]not_found[/red]: no active key {key_id}")
        raise typer.Exit(code=1)
    err.print(f"revoked {key_id}")


@escalations_app.command("list")
def escalations_list(
    status: Annotated[str | None, typer.Option(help="open | resolved")] = "open",
) -> None:
    """Escalations of CLI conversations (id, thread, reason, question)."""
    from alim.engine import Engine

    async def main() -> None:
        async with Engine.open(_settings()) as engine:
            for e in await engine.escalations.list(CLI_PARTNER, status):  # type: ignore[arg-type]
                print(f"{e.id}\t{e.status}\t{e.thread_id}\t{e.reason}\t{e.question}")

    _run(main())


@escalations_app.command("reply")
def escalations_reply(
    escalation_id: str,
    answer: Annotated[str, typer.Argument(help="The agronomist's answer.")],
    agent: Annotated[str, typer.Option("--agent", help="Agent id.")] = "cli-agronomist",
) -> None:
    """Answer an escalation; the conversation resumes with the expert's answer."""
    from alim.engine import Engine

    deps = _deps(show_progress=False)

    async def main() -> None:
        async with Engine.open(deps.settings, deps) as engine:
            resolved = await engine.resume(CLI_PARTNER, escalation_id, answer, agent)
            err.print(f"resolved {resolved.id} (thread {resolved.thread_id})")

    _run(main())


@threads_app.command("prune")
def threads_prune(
    idle_days: Annotated[float | None, typer.Option(help="Delete threads idle this long.")] = None,
    keep_latest: Annotated[
        bool, typer.Option(help="Keep only each thread's latest checkpoint.")
    ] = True,
) -> None:
    """Retention: delete idle threads everywhere and prune old checkpoints (all partners)."""
    from alim.persistence import open_persistence
    from alim.retention import prune

    async def main() -> Any:
        async with open_persistence(_settings()) as persistence:
            return await prune(persistence, idle_days=idle_days, keep_latest=keep_latest)

    report = _run(main())
    print(json.dumps(asdict(report)))


@app.command("eval")
def evaluate_cmd(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)] = Path(
        "eval/questions.jsonl"
    ),
    show_misses: Annotated[bool, typer.Option("--misses")] = False,
) -> None:
    """Route accuracy, retrieval hit@3 and escalation rate on a labelled question set."""
    from alim.evaluate import evaluate

    deps = _deps()
    report = _run(evaluate(path, deps.settings, deps)).as_dict()
    if not show_misses:
        report.pop("misses")
    print(json.dumps(report, ensure_ascii=False, indent=2))


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

    settings = get_settings()
    _deps()  # build the index before accepting traffic, with a progress bar
    configure_logging(settings.log_level)
    uvicorn.run(
        "api.app:create_app",
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
