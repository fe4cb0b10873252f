"""What every `alim` command shares: settings, graph services, errors, the progress bar."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from alim.errors import AlimError

if TYPE_CHECKING:
    from alim.settings import Settings
    from engine import GraphDeps

CLI_PARTNER = "cli"
err = Console(stderr=True)
T = TypeVar("T")

UserOpt = Annotated[str, typer.Option("--user", "-u", help="End-user id owning the thread.")]
ThreadOpt = Annotated[str | None, typer.Option("--thread", "-t", help="Thread id to continue.")]


def load_settings() -> Settings:
    from alim.settings import get_settings

    return get_settings()


def graph_deps(show_progress: bool = True) -> GraphDeps:
    """Graph services with the index ready (built with a progress bar if needed)."""
    from engine import GraphDeps

    deps = GraphDeps(load_settings())
    with IndexProgress(show_progress) as bar:
        deps.knowledge().load(progress=bar)
    return deps


class IndexProgress:
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


def fail(exc: AlimError) -> typer.Exit:
    err.print(f"[red]{exc.code}[/red]: {exc.message}")
    return typer.Exit(code=1)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except AlimError as exc:
        raise fail(exc) from None
