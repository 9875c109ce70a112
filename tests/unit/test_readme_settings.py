"""The README's configuration table names every setting's variable, so the docs cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

from zsched.settings import FIELDS, env_name

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_variable_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [env_name(name) for name in FIELDS if f"`{env_name(name)}`" not in text]
    assert not missing, f"README.md's Configuration section lacks {missing}"
