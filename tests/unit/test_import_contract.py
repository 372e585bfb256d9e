"""Who may import whom (README.md, "How it works"; issue 12, item 1).

The rule, checked on every module's import statements (read with ``ast``,
so nothing is imported to check it):

- An app (an installed app whose package lives in this repository, other
  than ``jobs``; today ``purchases``) imports ``jobs`` itself (its
  ``__all__``: ``job``, ``submit``, ``JobContext``, ...) and
  ``jobs.api.public`` (what its DRF views need), nothing else of ``jobs``.
  Every other ``jobs`` module is the engine's and may change under it.
- ``jobs`` imports no app: it names no app's kinds, codes or modules.
- ``project/`` is the project, not an app: it wires the engine in (settings,
  URLconf, the ASGI handler) and is not held to the app rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps

import jobs

ROOT = Path(__file__).resolve().parents[2]
ENGINE = "jobs"
# The jobs modules an app may import; from ``jobs`` itself, only its ``__all__``.
PUBLIC_MODULES = {"jobs", "jobs.api.public"}


def local_apps() -> list[str]:
    """The installed apps whose packages are in this repository, besides the engine."""
    names = []
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.parent == ROOT and config.name != ENGINE:
            names.append(config.name)
    return sorted(names)


def modules_of(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def imported_names(source: str, module: str) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of everything ``source`` (the module ``module``) imports.

    ``from a.b import c`` yields ``a.b.c``: ``c`` may be a submodule, and the
    checks below decide whether ``a.b.c`` is allowed.
    """
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # Relative: resolve against the importing module's package.
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def app_violations(source: str, module: str) -> list[str]:
    """Imports of ``jobs`` internals in an app module."""
    found = []
    for line, name in imported_names(source, module):
        if name != ENGINE and not name.startswith(ENGINE + "."):
            continue
        if name in PUBLIC_MODULES or name.rsplit(".", 1)[0] == "jobs.api.public":
            continue
        parent, _, attribute = name.rpartition(".")
        if parent == ENGINE and attribute in jobs.__all__:
            continue
        found.append(f"{module}:{line} imports {name}")
    return found


def engine_violations(source: str, module: str, app_names: list[str]) -> list[str]:
    """Imports of an app in an engine module."""
    return [
        f"{module}:{line} imports {name}"
        for line, name in imported_names(source, module)
        if any(name == app or name.startswith(app + ".") for app in app_names)
    ]


def test_there_is_an_app_to_check():
    assert "purchases" in local_apps()


@pytest.mark.parametrize("app", local_apps())
def test_apps_import_only_the_public_jobs_api(app):
    violations = [
        violation
        for path in modules_of(app)
        for violation in app_violations(path.read_text(), module_name(path))
    ]
    assert not violations, (
        "Apps may import `jobs` (its __all__) and `jobs.api.public` only:\n" + "\n".join(violations)
    )


def test_the_engine_imports_no_app():
    app_names = local_apps()
    violations = [
        violation
        for path in modules_of(ENGINE)
        for violation in engine_violations(path.read_text(), module_name(path), app_names)
    ]
    assert not violations, "jobs/ must not import an app:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("from jobs import job, submit, JobError", True),
        ("import jobs", True),
        ("from jobs.api.public import job_capable_schema", True),
        ("from jobs.api import public as docs", True),
        ("from jobs import queue", False),
        ("from jobs.api import schema as docs", False),
        ("from jobs.api.schema import document_kind", False),
        ("import jobs.services", False),
        ("from ..jobs_like import x", True),
        ("from rest_framework import serializers", True),
    ],
)
def test_the_app_rule_itself(source, allowed):
    # The checker must catch what it is for, or the tests above prove nothing.
    assert (not app_violations(source, "purchases.api.views")) is allowed


def test_the_engine_rule_itself():
    assert engine_violations("from purchases.models import Order", "jobs.x", ["purchases"])
    assert engine_violations("import purchases", "jobs.x", ["purchases"])
    assert not engine_violations("from jobs.models import Job", "jobs.x", ["purchases"])
