"""Hostile runbook files (issue 17): a billion-laughs front matter, an oversized file and a
symlink from outside the folder are each refused as ``file:line`` while the other runbooks keep
loading, in ``runbooks check`` (a real subprocess under a memory limit) and in the service."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from incidentbot.runbooks import load_with_errors
from incidentbot.runbooks.loader import MAX_RUNBOOK_BYTES

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "runbooks" / "cuda-oom.md"

LAUGHS = ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
LAUGHS += [
    f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [" + ",".join([f"*{chr(ord('a') + i - 1)}"] * 9) + "]"
    for i in range(1, 9)
]
BILLION_LAUGHS = "\n".join(LAUGHS + ["id: lol", "title: laughs", "---", "", "## Symptoms", "x", ""])

ALIAS_CASES = [
    ("billion laughs", BILLION_LAUGHS, 3),
    ("one alias", "---\nid: x\ntags: &t [a]\nother: *t\n---\n", 4),
    ("a merge key", "---\nbase: &b {severity: high}\nid: y\n<<: *b\n---\n", 4),
]


def _folder(tmp_path: Path, bad: dict[str, str]) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    shutil.copy(GOOD, folder / GOOD.name)
    for name, text in bad.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("name,text,line", ALIAS_CASES)
def test_aliases_are_refused_as_file_line_and_the_others_load(tmp_path, name, text, line):
    folder = _folder(tmp_path, {"bad.md": text})
    runbooks, errors = load_with_errors(folder)
    assert [rb.path.name for rb in runbooks] == [GOOD.name]
    bad = [e for e in errors if e.path.endswith("bad.md")]
    assert bad and bad[0].line == line and "aliases" in bad[0].message, [str(e) for e in errors]
    assert str(bad[0]).startswith(f"{folder / 'bad.md'}:{line}: ")


def _limit_memory():
    limit = 1024 * 1024 * 1024  # 1 GiB: the bomb took 2.3 GB before MemoryError
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_runbooks_check_survives_a_billion_laughs(tmp_path):
    folder = _folder(tmp_path, {"bomb.md": BILLION_LAUGHS})
    proc = subprocess.run(
        [sys.executable, "-m", "incidentbot", "runbooks", "check", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"{folder / 'bomb.md'}:3: YAML error: aliases (*a) are not allowed" in proc.stderr
    assert "MemoryError" not in proc.stderr and "Traceback" not in proc.stderr


def test_an_oversized_runbook_is_refused_before_it_is_read(tmp_path):
    huge = "---\nid: huge\ntitle: " + "x" * (MAX_RUNBOOK_BYTES + 10) + "\n---\n"
    folder = _folder(tmp_path, {"huge.md": huge})
    runbooks, errors = load_with_errors(folder)
    assert [rb.path.name for rb in runbooks] == [GOOD.name]
    assert any(e.path.endswith("huge.md") and e.line == 1 and "at most 256 KiB" in e.message for e in errors)


def test_a_runbook_linked_from_outside_the_folder_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(GOOD, outside / "stolen.md")
    folder = _folder(tmp_path, {})
    (folder / "stolen.md").symlink_to(outside / "stolen.md")
    (folder / "zz-inside.md").symlink_to(folder / GOOD.name)  # inside the folder: fine (a duplicate id)
    runbooks, errors = load_with_errors(folder)
    assert sorted(rb.path.name for rb in runbooks) == [GOOD.name]
    stolen = [e for e in errors if e.path.endswith("stolen.md")]
    assert stolen and stolen[0].line == 1 and "outside the runbooks folder" in stolen[0].message
    assert any(e.path.endswith("zz-inside.md") and "duplicate id" in e.message for e in errors)


def test_the_service_keeps_serving_the_other_runbooks(client, runtime, tmp_path):
    from incidentbot.services.runbooks import RunbookService

    folder = _folder(tmp_path, {"bomb.md": BILLION_LAUGHS})
    service = RunbookService(runtime.db, folder)
    assert list(service.runbooks) == ["cuda-oom"]
    runtime.runbooks = service  # what `serve` builds from INCIDENTBOT_RUNBOOKS_DIR
    listed = client.get("/v1/runbooks").json()["runbooks"]
    assert [r["id"] for r in listed] == ["cuda-oom"]
