"""Shared Lua helpers live once under ``lua/lib/`` and reach Redis inlined: every include names a helper that
exists, none is left unexpanded, and every helper is used."""

from __future__ import annotations

from zsched.engine.scripts import INCLUDE, NAMES, lua_dir, sources


def test_every_include_is_expanded_and_every_helper_is_used() -> None:
    lib = lua_dir() / "lib"
    helpers = {path.name for path in lib.glob("*.lua")}
    used: set[str] = set()
    for name in NAMES:
        raw = (lua_dir() / f"{name}.lua").read_text()
        named = INCLUDE.findall(raw)
        assert set(named) <= helpers, f"{name}.lua includes a helper lua/lib/ does not have: {named}"
        assert len(named) == len(set(named)), f"{name}.lua includes a helper twice"
        used |= set(named)
        assert "-- include:" not in sources()[name], f"{name}.lua has an include the loader did not expand"
    assert used == helpers, f"helpers no script includes: {sorted(helpers - used)}"


def test_an_included_helper_is_defined_before_the_script_runs_it() -> None:
    """Each helper's functions are locals: a script must include it above its first use (a nil call otherwise)."""
    for name in NAMES:
        source = sources()[name]
        for helper in INCLUDE.findall((lua_dir() / f"{name}.lua").read_text()):
            for line in (lua_dir() / "lib" / helper).read_text().splitlines():
                if line.startswith("local function "):
                    function = line.split()[2].split("(")[0]
                    defined = source.index(f"local function {function}(") + len("local function ")
                    first = source.find(f"{function}(")
                    assert first == defined, f"{name}.lua uses {function} before {helper} defines it"
