"""The reason table is complete: every reason raised in the code is in
gateway.domain.reasons with the error class it is raised with, and the README
copy is the generated one."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from gateway.domain import errors
from gateway.domain.reasons import REASONS
from gateway.rpc import reason_table
from gateway.rpc.errors import STATUS_CODES
from gateway.security import tokens

ROOT = Path(__file__).resolve().parents[2]
ERROR_CLASSES = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, errors.GatewayError)
}


def _sources() -> Iterator[Path]:
    for folder in ("gateway", "adapters"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "proto" not in path.relative_to(ROOT).parts:
                yield path


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _helpers(tree: ast.Module) -> dict[str, str]:
    """Functions of a module that build an error from a ``reason`` (their first
    parameter): name → the class they return."""
    return {
        node.name: node.returns.id
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and isinstance(node.returns, ast.Name)
        and node.returns.id in ERROR_CLASSES
        and [a.arg for a in node.args.args[:1]] == ["reason"]
    }


def raised_reasons() -> Iterator[tuple[str, str, str]]:
    """(reason, error class name, where) of every error built with a literal reason."""
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        builders = {name: name for name in ERROR_CLASSES} | _helpers(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _callee(node) not in builders:
                continue
            first = node.args[:1] + [k.value for k in node.keywords if k.arg == "reason"]
            for arg in first:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    yield arg.value, builders[_callee(node)], where


def test_the_scan_finds_reasons_raised_directly_and_through_helpers() -> None:
    found = {(reason, cls) for reason, cls, _ in raised_reasons()}
    assert ("MID_REUSED", "Conflict") in found  # Conflict(...)
    assert ("DIGEST_MISMATCH", "InvalidMessage") in found  # jws._refuse(...)
    assert ("BROKER_TIMEOUT", "Unavailable") in found  # Unavailable(reason=...)


def test_every_reason_raised_in_code_is_in_the_table_with_its_class() -> None:
    missing = [f"{r} ({where})" for r, _, where in raised_reasons() if r not in REASONS]
    assert not missing, f"add these to gateway/domain/reasons.py: {missing}"
    other_class = [
        f"{r} is {cls} at {where}, {REASONS[r].error.__name__} in the table"
        for r, cls, where in raised_reasons()
        if ERROR_CLASSES[cls] is not REASONS[r].error
    ]
    assert not other_class


def test_token_library_reasons_are_in_the_table_as_unauthenticated() -> None:
    for reason in tokens._PYJWT_REASONS.values():
        assert REASONS[reason].error is errors.Unauthenticated


def test_every_reason_in_the_table_is_raised_somewhere() -> None:
    raised = {reason for reason, _, _ in raised_reasons()} | set(tokens._PYJWT_REASONS.values())
    assert set(REASONS) - raised == set()


def test_every_reason_has_a_status_a_meaning_and_retry_advice() -> None:
    for name, reason in REASONS.items():
        assert reason.error in STATUS_CODES, name
        assert reason.meaning and reason.retry, name


def test_the_readme_table_is_the_generated_one() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert reason_table.updated(text) == text, (
        "README.md's reason table is stale: run python -m gateway.rpc.reason_table"
    )
    for name in REASONS:
        assert f"| `{name}` |" in text
