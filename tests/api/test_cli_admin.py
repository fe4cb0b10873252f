"""The operator's CLI (`alim keys`, `alim serve`) in processes of their own."""

from __future__ import annotations

import json
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


def test_cli_creates_a_publishable_key_with_origins_and_an_identity_secret(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    env.pop("VIRTUAL_ENV", None)
    made = (
        cli(
            env,
            "keys",
            "create",
            "shop",
            "--scope",
            "public",
            "--origin",
            "https://Shop.example/",
            "--origin",
            "http://127.0.0.1:8123",
        )
        .stdout.strip()
        .splitlines()
    )
    assert made[0].endswith("scopes public")
    assert made[1] == "origins http://127.0.0.1:8123 https://shop.example"
    assert made[3].startswith("alim_ids_") and made[-1].startswith("alim_pk_")
    (row,) = [line.split("\t") for line in cli(env, "keys", "list").stdout.strip().splitlines()]
    assert row[3] == "public" and row[-1] == "http://127.0.0.1:8123 https://shop.example"
    assert made[3] not in cli(env, "keys", "list").stdout
    no_origin = cli(env, "keys", "create", "x", "--scope", "public", ok=False)
    assert no_origin.returncode != 0 and "invalid_origin" in no_origin.stderr
    mixed = cli(
        env, "keys", "create", "x", "--scope", "public+chat", "--origin", "https://a.b", ok=False
    )
    assert mixed.returncode != 0


def test_cli_datasets_and_documents(tmp_path: Path) -> None:
    """`alim datasets create`, `alim documents add FILE --dataset D` (with its progress bar),
    `alim datasets list`, then the same file again: not stored twice."""
    env = server_env(tmp_path, ALIM_EMBEDDER="hashing")
    env.pop("VIRTUAL_ENV", None)
    dataset = cli(env, "datasets", "create", "Pambıq", "--partner", "bank").stdout.strip()
    assert dataset.startswith("ds-")
    article = tmp_path / "qorvaxin.md"
    article.write_text(
        "# Qorvaxin\n\nQorvaxin preparatını pambıq sahəsinə iyun ayında, səhər tezdən "
        "çiləyin. Qorvaxin hər hektara iki litr suda həll edilir.\n",
        encoding="utf-8",
    )
    added = cli(env, "documents", "add", str(article), "--dataset", dataset, "--partner", "bank")
    assert added.stdout.strip().startswith("kb-") and "added" in added.stderr
    again = cli(env, "documents", "add", str(article), "--dataset", dataset, "--partner", "bank")
    assert again.stdout == added.stdout and "already there" in again.stderr
    (row,) = cli(env, "datasets", "list", "--partner", "bank").stdout.strip().splitlines()
    assert row.split("\t")[:2] == [dataset, "1"]
    assert cli(env, "datasets", "list", "--partner", "other").stdout.strip() == ""
    refused = cli(env, "documents", "add", str(article), "--dataset", dataset, ok=False)
    assert refused.returncode == 1 and "dataset_not_found" in refused.stderr


def test_cli_assistant_settings_choose_the_datasets_of_cli_turns(tmp_path: Path) -> None:
    """`alim assistant set --dataset D --no-bundled`: `alim run` (the CLI partner's turns)
    searches D only; `--all-datasets --bundled` restores the defaults and changes nothing else;
    another partner's dataset is refused."""
    env = server_env(tmp_path, ALIM_EMBEDDER="hashing")
    env.pop("VIRTUAL_ENV", None)
    dataset = cli(env, "datasets", "create", "Pambıq").stdout.strip()
    article = tmp_path / "qorvaxin.md"
    article.write_text(
        "# Qorvaxin\n\nQorvaxin preparatını pambıq sahəsinə iyun ayında, səhər tezdən "
        "çiləyin. Qorvaxin hər hektara iki litr suda həll edilir.\n",
        encoding="utf-8",
    )
    document = cli(env, "documents", "add", str(article), "--dataset", dataset).stdout.strip()

    saved = json.loads(cli(env, "assistant", "set", "--dataset", dataset, "--no-bundled").stdout)

    assert (saved["dataset_ids"], saved["include_bundled"]) == ([dataset], False)
    assert json.loads(cli(env, "assistant", "show").stdout) == saved
    turn = json.loads(cli(env, "run", "Quraqlıqda pomidoru necə suvarım?", "--json").stdout)
    assert {s["dataset_id"] for s in turn["sources"]} <= {dataset}
    turn = json.loads(cli(env, "run", "Qorvaxin preparatını nə vaxt çiləyim?", "--json").stdout)
    assert turn["sources"][0]["id"] == document

    restored = json.loads(cli(env, "assistant", "set", "--all-datasets", "--bundled").stdout)
    when = restored["updated_at"]
    assert restored == {**saved, "dataset_ids": None, "include_bundled": True, "updated_at": when}
    theirs = cli(env, "datasets", "create", "Xurma", "--partner", "bank").stdout.strip()
    refused = cli(env, "assistant", "set", "--dataset", theirs, ok=False)
    assert refused.returncode == 1 and "dataset_not_found" in refused.stderr
