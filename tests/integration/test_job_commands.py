"""manage.py jobs_list, jobs_show, cancel_jobs, qinfo; confirmation of the destructive commands; manage.py's key."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from jobs.management.commands import jobs_show
from jobs.models import Job, JobEvent, JobEventType, JobStatus
from tests.support import handlers  # noqa: F401 - registers the tests.* kinds
from tests.support.factories import make_job

pytestmark = pytest.mark.django_db
S = JobStatus


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def from_command_line(capsys, *argv: str) -> tuple[int, str, str]:
    """Run a command as manage.py does; return its exit status, stdout and stderr."""
    command = load_command_class("jobs", argv[0])
    code = 0
    try:
        command.run_from_argv(["manage.py", *argv])
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def keep_the_test_connection(monkeypatch):
    """run_from_argv closes every connection when it ends: not the one holding the test's transaction."""
    monkeypatch.setattr(connections, "close_all", lambda: None)


class Terminal(io.StringIO):
    """Standard input typed on a terminal."""

    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="x-pass-123")


@pytest.fixture
def jobs(alice):
    now = timezone.now()
    return {
        "old_failed": make_job(alice, status=S.FAILED, kind="tests.fail", created_at=now - timedelta(days=3),
                               finished_at=now - timedelta(days=3), error={"code": "boom", "message": "It broke."}),
        "recent_pending": make_job(alice, created_at=now - timedelta(minutes=5)),
        "system_done": make_job(status=S.COMPLETED, kind="tests.echo", created_at=now - timedelta(hours=2),
                                finished_at=now - timedelta(hours=2), result={"ok": True}),
    }


# --- jobs_list ---------------------------------------------------------------------


def test_jobs_list_prints_a_table_newest_first(jobs):
    lines = run("jobs_list").splitlines()
    assert lines[0].split() == ["ID", "STATUS", "KIND", "OWNER", "TRIES", "PROGRESS", "CREATED"]
    ids = [line.split()[0] for line in lines[1:]]
    assert ids == [str(jobs[name].pk)[:8] for name in ("recent_pending", "system_done", "old_failed")]
    assert lines[1].split()[1:4] == ["pending", "tests.noop", "alice"]
    assert lines[2].split()[3] == "-"  # a system job has no owner


def test_jobs_list_json_lines(jobs):
    documents = [json.loads(line) for line in run("jobs_list", "--json").splitlines()]
    assert [doc["id"] for doc in documents] == [str(jobs[n].pk) for n in ("recent_pending", "system_done", "old_failed")]
    failed = documents[2]
    assert failed["status"] == "failed" and failed["owner"] == "alice" and failed["kind"] == "tests.fail"
    assert failed["error"] == {"code": "boom", "message": "It broke."}
    assert set(failed) >= {"attempts", "max_attempts", "progress", "created_at", "finished_at"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--status", "failed"], ["old_failed"]),
        (["--status", "failed", "--status", "completed"], ["system_done", "old_failed"]),
        (["--kind", "tests.echo"], ["system_done"]),
        (["--owner", "alice"], ["recent_pending", "old_failed"]),
        (["--older-than", "1h"], ["system_done", "old_failed"]),
        (["--newer-than", "1h"], ["recent_pending"]),
        (["--older-than", "1h", "--newer-than", "1d"], ["system_done"]),
        (["--owner", "alice", "--status", "completed"], []),
    ],
)
def test_jobs_list_filters(jobs, args, expected):
    shown = [json.loads(line)["id"] for line in run("jobs_list", "--json", *args).splitlines()]
    assert shown == [str(jobs[name].pk) for name in expected]


def test_jobs_list_says_when_nothing_matches_and_when_it_is_cut(jobs):
    assert run("jobs_list", "--status", "cancelled") == "No jobs match.\n"
    output = run("jobs_list", "--limit", "2")
    assert len(output.splitlines()) == 4
    assert output.endswith("Showing 2 of 3 jobs; use --limit for more.\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "tests.nosuchkind"], "is not a job kind"),
        (["--status", "done"], "argument --status"),
        (["--older-than", "7x"], "argument --older-than"),
        (["--limit", "0"], "argument --limit"),
        (["--owner", "nobody"], "No user is called 'nobody'"),
    ],
)
def test_jobs_list_bad_arguments_exit_2(capsys, jobs, args, message):
    code, out, err = from_command_line(capsys, "jobs_list", *args)
    assert code == 2
    assert message in err
    assert out == ""


def test_a_kind_only_old_jobs_have_is_still_a_kind(capsys):
    old = make_job(kind="gone.kind", status=S.COMPLETED, finished_at=timezone.now())
    assert json.loads(run("jobs_list", "--json", "--kind", "gone.kind"))["id"] == str(old.pk)


# --- jobs_show ---------------------------------------------------------------------


def test_jobs_show_by_short_or_full_id_with_the_timeline(jobs):
    job = jobs["old_failed"]
    JobEvent.objects.create(job=job, type=JobEventType.CREATED, actor="api:alice", at=job.created_at)
    JobEvent.objects.create(job=job, type=JobEventType.FAILED, attempt=1, actor="worker:host:1", message="It broke.",
                            at=job.created_at + timedelta(seconds=2))
    short = run("jobs_show", str(job.pk)[:8])
    assert short == run("jobs_show", str(job.pk)) == run("jobs_show", str(job.pk).upper())
    assert f"Job:       {job.pk}" in short
    assert "Status:    failed" in short
    assert "Owner:     alice" in short
    assert "Error:     boom: It broke." in short
    timeline = short.split("Timeline:\n")[1].splitlines()
    assert timeline[0].endswith("created  by api:alice")
    assert timeline[1].endswith("failed  attempt 1  by worker:host:1: It broke.")


def test_jobs_show_json(jobs):
    document = json.loads(run("jobs_show", str(jobs["system_done"].pk), "--json"))
    assert document["result"] == {"ok": True}
    assert document["timeline"] == []


@pytest.mark.parametrize(
    ("reference", "code", "message"),
    [("not-an-id", 2, "is not a job id"), ("0000000", 2, "is not a job id"), ("ffffffff", 1, "No job has the id")],
)
def test_jobs_show_bad_or_unknown_id(capsys, jobs, reference, code, message):
    assert from_command_line(capsys, "jobs_show", reference)[0] == code
    with pytest.raises(CommandError, match=message):
        run("jobs_show", reference)


def test_jobs_show_ambiguous_short_id(capsys):
    first = make_job(id="abcdef01-0000-4000-8000-000000000001")
    make_job(id="abcdef01-0000-4000-8000-000000000002")
    code, _, err = from_command_line(capsys, "jobs_show", "abcdef01")
    assert code == 1 and "matches more than one job" in err
    assert str(first.pk) in run("jobs_show", str(first.pk))


def test_jobs_show_follow_prints_each_change_until_the_job_ends(monkeypatch, jobs):
    job = jobs["recent_pending"]
    steps = [
        lambda: Job.objects.filter(pk=job.pk).update(status=S.PROCESSING, attempts=1),
        lambda: JobEvent.objects.create(job=job, type=JobEventType.CLAIMED, attempt=1, actor="worker:w1"),
        lambda: Job.objects.filter(pk=job.pk).update(progress_percentage=50, progress_message="Half way"),
        lambda: None,  # nothing changed: nothing printed
        lambda: Job.objects.filter(pk=job.pk).update(status=S.COMPLETED, progress_percentage=100,
                                                     finished_at=timezone.now()),
    ]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        steps[len(slept) - 1]()

    monkeypatch.setattr(jobs_show.time, "sleep", sleep)
    followed = run("jobs_show", str(job.pk)[:8], "--follow", "--interval", "2").split("Timeline:\n")[1]
    lines = followed.splitlines()
    assert lines[0] == "  (no events)"
    assert lines[1].endswith("processing  0%")
    assert lines[2].endswith("claimed  attempt 1  by worker:w1")
    assert lines[3].endswith("processing  50%  Half way")
    assert lines[4].endswith("completed  100%  Half way")
    assert lines[5] == "Job completed."
    assert len(lines) == 6
    assert slept == [2] * 5


def test_jobs_show_follow_of_a_finished_job_returns_at_once(monkeypatch, jobs):
    monkeypatch.setattr(jobs_show.time, "sleep", lambda seconds: pytest.fail("slept"))
    assert run("jobs_show", str(jobs["system_done"].pk), "--follow").endswith("Job completed.\n")


# --- cancel_jobs -------------------------------------------------------------------


def test_cancel_jobs_by_id_and_filters(jobs, alice):
    running = make_job(alice, status=S.PROCESSING, started_at=timezone.now(), attempts=1)
    other = make_job(kind="tests.echo")
    output = run("cancel_jobs", "--owner", "alice")
    assert output.startswith("Cancelled 2 jobs")
    assert Job.objects.get(pk=jobs["recent_pending"].pk).status == S.CANCELLED
    running.refresh_from_db()
    assert running.status == S.PROCESSING and running.cancel_requested
    assert Job.objects.get(pk=other.pk).status == S.PENDING
    assert run("cancel_jobs", str(other.pk)[:8]).startswith("Cancelled 1 jobs")
    assert Job.objects.get(pk=other.pk).status == S.CANCELLED


def test_cancel_jobs_dry_run_changes_nothing(jobs):
    output = run("cancel_jobs", "--all", "--dry-run")
    assert "1  pending    tests.noop" in output
    assert output.endswith("Dry run: 1 jobs would be cancelled. Nothing was changed.\n")
    assert Job.objects.get(pk=jobs["recent_pending"].pk).status == S.PENDING


def test_cancel_jobs_needs_ids_a_filter_or_all(capsys, jobs):
    code, _, err = from_command_line(capsys, "cancel_jobs", "--yes")
    assert code == 2 and "--all" in err
    assert Job.objects.get(pk=jobs["recent_pending"].pk).status == S.PENDING


# --- confirmation (purge_jobs, retry_jobs, cancel_jobs) ----------------------------

DESTRUCTIVE = [
    (["purge_jobs", "--status", "failed"], "Delete 1 finished jobs?", "old_failed", None),
    (["retry_jobs"], "Retry 1 failed jobs?", "old_failed", S.PENDING),
    (["cancel_jobs", "--all"], "Cancel 1 jobs?", "recent_pending", S.CANCELLED),
]


def status_after(job: Job) -> str | None:
    return Job.objects.filter(pk=job.pk).values_list("status", flat=True).first()


@pytest.mark.parametrize(("argv", "question", "target", "changed_to"), DESTRUCTIVE)
def test_a_terminal_answer_of_yes_goes_ahead(capsys, monkeypatch, fake_queue, jobs, argv, question, target, changed_to):
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, _ = from_command_line(capsys, *argv)
    assert code == 0
    assert out.startswith(f"{question} [y/N] ")
    assert status_after(jobs[target]) == changed_to


@pytest.mark.parametrize("answer", ["\n", "n\n", "nope\n", ""])
@pytest.mark.parametrize(("argv", "question", "target", "changed_to"), DESTRUCTIVE)
def test_any_other_answer_changes_nothing_and_exits_1(capsys, monkeypatch, jobs, answer, argv, question, target, changed_to):
    before = status_after(jobs[target])
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    code, out, err = from_command_line(capsys, *argv)
    assert code == 1
    assert "Not confirmed; nothing was changed." in err
    assert status_after(jobs[target]) == before


@pytest.mark.parametrize(("argv", "question", "target", "changed_to"), DESTRUCTIVE)
def test_without_a_terminal_the_commands_refuse_with_exit_2(capsys, monkeypatch, jobs, argv, question, target, changed_to):
    before = status_after(jobs[target])
    monkeypatch.setattr(sys, "stdin", Pipe("y\n"))
    code, out, err = from_command_line(capsys, *argv)
    assert code == 2
    assert question in err and "pass --yes" in err
    assert status_after(jobs[target]) == before


@pytest.mark.parametrize(("argv", "question", "target", "changed_to"), DESTRUCTIVE)
def test_yes_goes_ahead_without_asking(capsys, monkeypatch, fake_queue, jobs, argv, question, target, changed_to):
    monkeypatch.setattr(sys, "stdin", Pipe(""))
    code, out, _ = from_command_line(capsys, *argv, "--yes")
    assert code == 0 and "[y/N]" not in out
    assert status_after(jobs[target]) == changed_to


@pytest.mark.parametrize(("argv", "question", "target", "changed_to"), DESTRUCTIVE)
def test_dry_run_never_asks(capsys, monkeypatch, jobs, argv, question, target, changed_to):
    before = status_after(jobs[target])
    monkeypatch.setattr(sys, "stdin", Pipe(""))
    code, out, _ = from_command_line(capsys, *argv, "--dry-run")
    assert code == 0 and "Dry run: 1 " in out and "[y/N]" not in out
    assert status_after(jobs[target]) == before


def test_nothing_to_change_asks_nothing(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Pipe(""))
    assert from_command_line(capsys, "purge_jobs")[:2] == (0, "Deleted 0 expired jobs.\n")


@pytest.mark.parametrize("command", ["purge_jobs", "retry_jobs", "cancel_jobs"])
def test_an_unknown_kind_is_an_error_not_zero_matches(capsys, jobs, command):
    code, _, err = from_command_line(capsys, command, "--kind", "tests.nosuchkind", "--yes")
    assert code == 2
    assert "'tests.nosuchkind' is not a job kind. Registered kinds:" in err and "tests.noop" in err


# --- qinfo -------------------------------------------------------------------------


def test_qinfo_runs(capsys):
    call_command("qinfo")
    call_command("qinfo", "--config")
    assert "VERSION" in capsys.readouterr().out


# --- manage.py finds the development secret key --------------------------------------


def manage_py(tmp_path, *, key: str | None, **extra: str) -> subprocess.CompletedProcess:
    """Run a copy of manage.py (beside its own var/) with no secret key nor debug exported."""
    shutil.copy(settings.BASE_DIR / "manage.py", tmp_path / "manage.py")
    if key is not None:
        (tmp_path / "var").mkdir()
        (tmp_path / "var" / "secret_key").write_text(key + "\n")
    environ = {name: value for name, value in os.environ.items()
               if name not in {"DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE"}}
    environ |= {"PYTHONPATH": str(settings.BASE_DIR), **extra}
    script = "from django.conf import settings; print(settings.SECRET_KEY)"
    return subprocess.run(
        [sys.executable, str(tmp_path / "manage.py"), "shell", "--verbosity", "0", "-c", script],
        cwd=settings.BASE_DIR, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )


def test_manage_py_reads_var_secret_key_when_none_is_exported(tmp_path):
    result = manage_py(tmp_path, key="from-the-file-" + "k" * 40)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from-the-file-" + "k" * 40


def test_an_exported_secret_key_wins_over_the_file(tmp_path):
    result = manage_py(tmp_path, key="from-the-file", DJANGO_SECRET_KEY="exported-" + "e" * 40)
    assert result.stdout.strip() == "exported-" + "e" * 40


def test_without_the_file_manage_py_still_asks_for_a_key(tmp_path):
    result = manage_py(tmp_path, key=None)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
