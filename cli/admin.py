"""Administration commands: stored threads, API keys, escalations of CLI conversations."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Annotated, Any

import typer

from cli.common import CLI_PARTNER, UserOpt, err, graph_deps, load_settings, run_async

threads_app = typer.Typer(help="Conversations stored for the CLI partner.", no_args_is_help=True)
keys_app = typer.Typer(help="Partner API keys.", no_args_is_help=True)
escalations_app = typer.Typer(help="Questions handed to an agronomist.", no_args_is_help=True)


@threads_app.command("list")
def threads_list(user: UserOpt) -> None:
    """The user's threads, newest first."""
    from alim.threads import Owner
    from engine import Engine

    async def main() -> None:
        async with Engine.open(load_settings()) as engine:
            for t in await engine.threads.list(Owner(CLI_PARTNER, user)):
                print(f"{t.thread_id}\t{t.updated_at}\t{t.message_count}\t{t.title}")

    run_async(main())


@threads_app.command("show")
def threads_show(thread_id: str, user: UserOpt) -> None:
    """A thread's messages."""
    from alim.threads import Owner
    from engine import Engine

    async def main() -> None:
        async with Engine.open(load_settings()) as engine:
            _, messages = await engine.history(Owner(CLI_PARTNER, user), thread_id)
            for m in messages:
                print(f"[{m['role']}] {m['content']}\n")

    run_async(main())


@threads_app.command("delete")
def threads_delete(thread_id: str, user: UserOpt) -> None:
    """Delete a thread and its checkpoints."""
    from alim.threads import Owner
    from engine import Engine

    async def main() -> None:
        async with Engine.open(load_settings()) as engine:
            await engine.delete_thread(Owner(CLI_PARTNER, user), thread_id)
            err.print(f"deleted {thread_id}")

    run_async(main())


async def _with_keys(action: Any) -> Any:
    from alim.keys import KeyStore
    from alim.persistence import open_persistence

    settings = load_settings()
    async with open_persistence(settings) as persistence:
        return await action(KeyStore(persistence.db, settings))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Partner name (threads belong to it).")],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="chat | agent | admin | public; repeat it or join with + (chat+agent)",
        ),
    ] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            help="With --scope public: a website origin the key may be used from (repeatable).",
        ),
    ] = None,
    rate_limit: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    max_streams: Annotated[int | None, typer.Option(help="Concurrent streams.")] = None,
) -> None:
    """Create a key; it is printed once, alone on the last line. A publishable key (`--scope
    public`, for the website widget) needs `--origin`s and also gets an identity secret for
    `user_hash`, printed once too (keep it on your server, never in a page)."""

    scopes = [part for value in scope or ["chat"] for part in re.split(r"[+,\s]+", value) if part]
    limits = {"rate_limit_per_minute": rate_limit, "max_streams": max_streams}
    if "public" not in scopes and origin:
        err.print("[red]invalid_request[/red]: --origin is only for --scope public")
        raise typer.Exit(code=2)

    async def action(store: Any) -> tuple[str, str | None, dict[str, Any]]:
        if "public" in scopes:
            from alim.keys import parse_scopes

            parse_scopes(scopes)  # refuses 'public' with other scopes
            return await store.create_public(name, origin or [], **limits)
        key, record = await store.create(name, scopes, **limits)
        return key, None, record

    key, identity_secret, record = run_async(_with_keys(action))
    print(f"partner {record['partner']} · id {record['id']} · scopes {record['scopes']}")
    if identity_secret is not None:
        print(f"origins {record['origins']}")
        print("Identity secret for user_hash (server side only; it cannot be shown again):")
        print(identity_secret)
    print("Store this key now; it cannot be shown again:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """Keys (id, partner, prefix, scopes, created, revoked); never the keys themselves."""

    async def action(store: Any) -> list[dict[str, Any]]:
        return await store.list()

    for r in run_async(_with_keys(action)):
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        print(
            f"{r['id']}\t{r['partner']}\t{r['prefix']}…\t{r['scopes']}\t{r['created_at']}\t{state}"
            + (f"\t{r['origins']}" if r["origins"] else "")
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""

    async def action(store: Any) -> bool:
        return await store.revoke(key_id)

    if not run_async(_with_keys(action)):
        err.print(f"[red]not_found[/red]: no active key {key_id}")
        raise typer.Exit(code=1)
    err.print(f"revoked {key_id}")


@escalations_app.command("list")
def escalations_list(
    status: Annotated[str | None, typer.Option(help="open | resolved")] = "open",
) -> None:
    """Escalations of CLI conversations (id, thread, reason, question)."""
    from engine import Engine

    async def main() -> None:
        async with Engine.open(load_settings()) as engine:
            for e in await engine.escalations.list(CLI_PARTNER, status):  # type: ignore[arg-type]
                print(f"{e.id}\t{e.status}\t{e.thread_id}\t{e.reason}\t{e.question}")

    run_async(main())


@escalations_app.command("reply")
def escalations_reply(
    escalation_id: str,
    answer: Annotated[str, typer.Argument(help="The agronomist's answer.")],
    agent: Annotated[str, typer.Option("--agent", help="Agent id.")] = "cli-agronomist",
) -> None:
    """Answer an escalation; the conversation resumes with the expert's answer."""
    from engine import Engine

    deps = graph_deps(show_progress=False)

    async def main() -> None:
        async with Engine.open(deps.settings, deps) as engine:
            resolved = await engine.resume(CLI_PARTNER, escalation_id, answer, agent)
            err.print(f"resolved {resolved.id} (thread {resolved.thread_id})")

    run_async(main())


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
        async with open_persistence(load_settings()) as persistence:
            return await prune(persistence, idle_days=idle_days, keep_latest=keep_latest)

    report = run_async(main())
    print(json.dumps(asdict(report)))
