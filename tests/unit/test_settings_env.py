"""Environment variables: each declared once, documented in the README, parsed to its type.

The declarations are ``project/env.py`` (the project's) and ``jobs/conf.py``
(the engine's ``JOBS_*``). These tests fail when code in project/, jobs/ or
purchases/ reads a variable that is not declared, when README.md's
"Configuration" table is not the one the declarations render, and when a
value does not parse the way settings.py relies on.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from jobs import conf as jobs_conf
from jobs.conf import from_environment, jobs_settings, parse_env
from project.env import VARIABLES, env, readme_table

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("project", "jobs", "purchases")
# The modules that read variables generically, by their declared names.
GENERIC_READERS = {"project/env.py", "jobs/conf.py"}
# Read in project/ or jobs/ but not configuration: the project sets them itself.
NOT_CONFIGURATION = {
    "DJANGO_SETTINGS_MODULE": "Django's own; project/asgi.py and wsgi.py name the settings module",
    "JOBS_WSGI_PROCESS": "project/wsgi.py marks its own process (jobs/api/streams.py asks)",
}


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)


def _environment_reads(tree: ast.Module) -> tuple[set[str], list[str]]:
    """Names of the environment variables a module reads, and reads whose name is not a constant."""
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    names: set[str] = set()
    unresolved: list[str] = []

    def note(key: ast.AST) -> None:
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
        elif isinstance(key, ast.Name) and key.id in constants:
            names.add(constants[key.id])
        else:
            unresolved.append(f"line {key.lineno}: {ast.unparse(key)}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            # os.environ.get(X), os.environ.setdefault(X, ...), os.getenv(X), env(X)
            if isinstance(func, ast.Attribute) and func.attr in {"get", "setdefault", "pop"} and _is_os_environ(func.value):
                note(node.args[0])
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                note(node.args[0])
            elif isinstance(func, ast.Name) and func.id == "env":
                note(node.args[0])
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value) and isinstance(node.ctx, ast.Load):
            note(node.slice)
        elif isinstance(node, ast.Compare) and any(_is_os_environ(c) for c in node.comparators):
            note(node.left)  # "X" in os.environ
    return names, unresolved


def _scan() -> dict[str, set[str]]:
    """Every environment variable read under SCANNED, with the files that read it."""
    found: dict[str, set[str]] = {}
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            names, unresolved = _environment_reads(ast.parse(path.read_text(), relative))
            if relative not in GENERIC_READERS:
                assert not unresolved, f"{relative} reads environment variables by computed names: {unresolved}"
            for name in names:
                found.setdefault(name, set()).add(relative)
    return found


def _readme_configuration_table() -> str:
    """The table under README.md's "## Configuration" heading, up to the first blank line after it."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("## Configuration")
    table: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    return "\n".join(table) + "\n"


def test_every_variable_read_is_declared() -> None:
    found = _scan()
    undeclared = {
        name: sorted(files) for name, files in found.items() if name not in VARIABLES and name not in NOT_CONFIGURATION
    }
    assert not undeclared, (
        f"Declare these in project/env.py (or, for JOBS_*, as a setting in jobs/conf.py), then "
        f"regenerate README.md's table with `python -m project.env`: {undeclared}"
    )
    # The scan does see the project's reads (a scan finding nothing would pass vacuously).
    assert {"DATABASE_URL", "Q_WORKERS", "BIND", "WEB_SYNC_THREADS"} <= found.keys()


def test_every_declared_project_variable_is_read_somewhere() -> None:
    found = _scan()
    jobs_env_names = {setting.env_name for setting in jobs_conf.SETTINGS if setting.env}
    unused = sorted(set(VARIABLES) - set(found) - jobs_env_names)
    assert not unused, f"Declared in project/env.py but read nowhere: {unused}"


def test_readme_configuration_table_is_rendered_from_the_declarations() -> None:
    assert _readme_configuration_table() == readme_table(), (
        "README.md's Configuration table differs from the declarations: paste the output of "
        "`python -m project.env` over it."
    )


def test_every_jobs_setting_read_from_the_environment_is_declared_as_a_variable() -> None:
    for setting in jobs_conf.SETTINGS:
        assert (setting.env_name in VARIABLES) == setting.env, setting.name


def test_declared_defaults_have_their_declared_types() -> None:
    for setting in jobs_conf.SETTINGS:
        assert isinstance(setting.default, setting.type), setting.name
    for var in VARIABLES.values():
        # None: settings.py computes the default from other settings.
        assert var.default is None or isinstance(var.default, var.type), var.name


@pytest.mark.parametrize(
    ("raw", "type_", "expected"),
    [
        ("42", int, 42),
        (" 7 ", int, 7),
        ("0.25", float, 0.25),
        ("3", float, 3.0),
        ("1", bool, True),
        ("Yes", bool, True),
        ("on", bool, True),
        ("0", bool, False),
        ("false", bool, False),
        ("OFF", bool, False),
        ("a.b, c ,,", list, ["a.b", "c"]),
        ("", list, []),
        ("redis://x", str, "redis://x"),
    ],
)
def test_parse_env_converts_to_the_declared_type(raw: str, type_: type, expected: object) -> None:
    assert parse_env("X", raw, type_) == expected
    assert type(parse_env("X", raw, type_)) is type(expected)


@pytest.mark.parametrize(
    ("raw", "type_", "message"),
    [
        ("abc", int, "JOBS_LEASE_GRACE must be a whole number, not 'abc'."),
        ("1.5", int, "JOBS_LEASE_GRACE must be a whole number, not '1.5'."),
        ("fast", float, "JOBS_LEASE_GRACE must be a number, not 'fast'."),
        ("maybe", bool, "JOBS_LEASE_GRACE must be one of 1, true, yes, on, 0, false, no, off, not 'maybe'."),
    ],
)
def test_parse_env_names_the_variable_when_a_value_does_not_parse(raw: str, type_: type, message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_env("JOBS_LEASE_GRACE", raw, type_)
    assert str(raised.value) == message


def test_from_environment_reads_the_jobs_variables_that_are_set() -> None:
    overrides = from_environment(
        {
            "JOBS_LEASE_GRACE": "2",
            "JOBS_WATCH_INTERVAL": "0.5",
            "JOBS_HANDLER_MODULES": "tests.faults.fault_handlers",
            "JOBS_STREAM_HEARTBEAT": "",  # empty: the default
            "JOBS_RETRY_AFTER": "9",  # not read from the environment
            "LEASE_GRACE": "5",  # no prefix
        }
    )
    assert overrides == {
        "LEASE_GRACE": 2,
        "WATCH_INTERVAL": 0.5,
        "HANDLER_MODULES": ["tests.faults.fault_handlers"],
    }


def test_from_environment_refuses_a_bad_value() -> None:
    with pytest.raises(ImproperlyConfigured, match="JOBS_LEASE_GRACE must be a whole number, not 'abc'"):
        from_environment({"JOBS_LEASE_GRACE": "abc"})


def test_jobs_settings_reads_overrides_at_access_time_and_falls_back_to_defaults() -> None:
    with override_settings(JOBS={"LEASE_GRACE": 3}):
        assert jobs_settings.LEASE_GRACE == 3
        assert jobs_settings.KILL_MARGIN == jobs_conf.DEFAULTS["KILL_MARGIN"] == 10
    with override_settings(JOBS={}):
        assert jobs_settings.WATCH_INTERVAL == 0.2
    with pytest.raises(AttributeError, match="Unknown jobs setting"):
        jobs_settings.NO_SUCH_SETTING  # noqa: B018


def test_env_parses_declared_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("Q_WORKERS", "5")
    monkeypatch.setenv("API_TOKEN_CACHE_SECONDS", "0.5")
    monkeypatch.setenv("DJANGO_DEBUG", "true")
    monkeypatch.setenv("ALLOWED_HOSTS", "a.example, b.example")
    assert env("Q_WORKERS") == 5
    assert env("API_TOKEN_CACHE_SECONDS") == 0.5
    assert env("DJANGO_DEBUG") is True
    assert env("ALLOWED_HOSTS") == ["a.example", "b.example"]


def test_env_gives_the_default_when_unset_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("Q_RECYCLE", raising=False)
    monkeypatch.setenv("Q_TIMEOUT", "")
    monkeypatch.delenv("Q_BULK", raising=False)
    assert env("Q_RECYCLE") == 1000
    assert env("Q_TIMEOUT") == 300
    assert env("Q_BULK", default=8) == 8
    monkeypatch.setenv("Q_BULK", "3")
    assert env("Q_BULK", default=8) == 3


def test_env_gives_a_fresh_copy_of_a_list_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    env("ALLOWED_HOSTS").append("changed")
    assert env("ALLOWED_HOSTS") == ["localhost", "127.0.0.1", "[::1]"]


def test_env_refuses_a_value_outside_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_BROKER", "rabbitmq")
    with pytest.raises(ImproperlyConfigured, match="JOBS_BROKER must be one of database, redis, orm, not 'rabbitmq'"):
        env("JOBS_BROKER")


def test_env_refuses_an_undeclared_name() -> None:
    with pytest.raises(KeyError):
        env("NOT_DECLARED_ANYWHERE")


def test_a_bad_value_stops_start_up_with_a_message_naming_the_variable() -> None:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "JOBS_LEASE_GRACE": "abc"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "ImproperlyConfigured: JOBS_LEASE_GRACE must be a whole number, not 'abc'." in done.stderr
