"""The operations guide documents every setting, and the README's commands exist."""

from pathlib import Path

from alim.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_operations_guide() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [
        f"ALIM_{name.upper()}"
        for name in Settings.model_fields
        if f"`ALIM_{name.upper()}`" not in guide
    ]
    assert missing == []


def test_readme_commands_are_make_targets() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("serve", "test"):
        assert f"make {target}" in readme
        assert f"\n{target}:" in makefile
