"""The shape rules of issue 8, checked with radon on every run: no function in src/ with a
cyclomatic complexity over 15, no module over 400 lines, no function in commands/ longer than
30 lines (commands parse arguments, call one function and print)."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Class, Function

SRC = Path(__file__).resolve().parents[1] / "src" / "cityedge"
MAX_COMPLEXITY = 15
MAX_MODULE_LINES = 400
MAX_COMMAND_LINES = 30


def _functions(source: str) -> list[Function]:
    """Every function and method (nested closures are part of their function's score)."""
    found: dict[tuple[str, int], Function] = {}
    for block in cc_visit(source):
        for f in block.methods if isinstance(block, Class) else [block]:
            found[(f.fullname, f.lineno)] = f
    return list(found.values())


def _modules() -> list[Path]:
    paths = sorted(SRC.rglob("*.py"))
    assert len(paths) > 100, f"found only {len(paths)} modules under {SRC}"
    return paths


def _violations() -> list[tuple[str, str, str, int]]:
    found = []
    for path in _modules():
        name = path.relative_to(SRC).as_posix()
        source = path.read_text()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append((name, "", "lines", lines))
        for f in _functions(source):
            if f.complexity > MAX_COMPLEXITY:
                found.append((name, f.name, "complexity", f.complexity))
            length = f.endline - f.lineno + 1
            if name.startswith("commands/") and length > MAX_COMMAND_LINES:
                found.append((name, f.name, "length", length))
    return found


def test_no_module_function_or_command_outgrows_the_shape_rules() -> None:
    found = _violations()
    assert found == [], "over the shape limits (module, function, what, value): " + repr(found)


def test_the_check_sees_a_violation_when_there_is_one() -> None:
    branches = "\n".join(f"    if x == {k}:\n        return {k}" for k in range(MAX_COMPLEXITY + 1))
    (f,) = _functions(f"def f(x):\n{branches}\n    return -1\n")
    assert f.complexity == MAX_COMPLEXITY + 2
    assert f.endline - f.lineno + 1 == 2 * (MAX_COMPLEXITY + 1) + 2
