"""`python -m cli …` is the `alim` command."""

from cli.main import app

app()
