"""One catalogue of problem codes: code raises only codes it lists, and it lists only codes that
code raises; docs/errors.md is made from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tenantry.lib.errors import ErrorCode, catalogue_markdown

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "platform" / "tenantry"


def _documentation_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `problems(...)` calls: they document codes, they raise none."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "problems":
            inside.update(id(child) for child in ast.walk(node))
    return inside


def _referenced_members() -> set[str]:
    """Every `ErrorCode.NAME` the application raises or maps (not only documents)."""
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        if path == SOURCE / "lib" / "openapi.py":  # documents the codes, raises none
            continue
        tree = ast.parse(path.read_text(), str(path))
        documentation = _documentation_only(tree)
        for node in ast.walk(tree):
            if (
                id(node) not in documentation
                and isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ErrorCode"
                and node.attr.isupper()
            ):
                names.add(node.attr)
    return names


def test_every_code_raised_is_in_the_catalogue_and_every_listed_code_is_raised() -> None:
    referenced = _referenced_members()
    listed = {member.name for member in ErrorCode}
    assert referenced - listed == set(), "codes used but not in the catalogue"
    assert listed - referenced == set(), "catalogue entries nothing raises"


def test_no_code_is_spelled_as_a_bare_string() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in SOURCE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bcode\s*=\s*f?[\"']", line)
    ]
    assert offenders == []


def test_codes_are_unique_and_statuses_are_errors() -> None:
    codes = [member.code for member in ErrorCode]
    assert len(codes) == len(set(codes))
    assert all(400 <= member.status < 600 for member in ErrorCode)
    assert all(member.title and member.meaning.endswith(".") for member in ErrorCode)


def test_docs_page_is_made_from_the_catalogue() -> None:
    page = (ROOT / "docs" / "errors.md").read_text()
    assert page == catalogue_markdown(), (
        "docs/errors.md is stale: uv run python -m tenantry.lib.errors > docs/errors.md"
    )
