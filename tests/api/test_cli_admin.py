"""The operator's CLI (`alim keys`, `alim serve`) in processes of their own."""

from __future__ import annotations

from pathlib import Path

from tests.api.helpers import cli
from tests.support.alim_serve import server_env


def test_cli_keys_take_scopes_joined_with_plus_or_repeated(tmp_path: Path) -> None:
    """`alim keys create NAME --scope chat+agent`, as the docs write scopes, and repeated
    `--scope` options both work; an unknown scope is refused."""
    env = server_env(tmp_path)
    env.pop("VIRTUAL_ENV", None)
    assert "scopes agent,chat" in cli(env, "keys", "create", "coop", "--scope", "chat+agent").stdout
    repeated = cli(env, "keys", "create", "bank", "--scope", "chat", "--scope", "admin")
    assert "scopes admin,chat" in repeated.stdout
    rows = [line.split("\t") for line in cli(env, "keys", "list").stdout.strip().splitlines()]
    assert {(r[1], r[3]) for r in rows} == {("coop", "agent,chat"), ("bank", "admin,chat")}
    assert cli(env, "keys", "create", "x", "--scope", "chat+root", ok=False).returncode != 0


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    """Thread locks and rate limits live in one process with SQLite: two workers would run two
    turns on one thread. `alim serve --workers 2` says so and exits before serving."""
    env = server_env(tmp_path)
    env.pop("VIRTUAL_ENV", None)
    done = cli(env, "serve", "--workers", "2", "--port", "9", ok=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "config_error" in done.stderr and "ALIM_CHECKPOINTER=postgres" in done.stderr
