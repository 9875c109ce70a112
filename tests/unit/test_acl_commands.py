"""The ACL user docs/deploy.md prints may run every command a script calls by name, so a script never fails
with NOPERM in production while the ACL test (which runs only the common paths) passes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_a_script_calls_is_in_the_documented_acl() -> None:
    (line,) = [x for x in (ROOT / "docs" / "deploy.md").read_text().splitlines() if x.startswith("ACL SETUSER ")]
    allowed = {word[1:].lower() for word in line.split() if word.startswith("+")}
    called = {
        name.lower()
        for script in (ROOT / "lua").rglob("*.lua")
        for name in re.findall(r"redis\.p?call\(\s*'([A-Za-z]+)'", script.read_text())
    }
    assert called, "no script calls found: the pattern is wrong"
    assert "zadd" in called and "zadd" in allowed  # the positive control: a command both sides name
    assert called - allowed == set(), f"add these to the ACL line in docs/deploy.md: {sorted(called - allowed)}"
