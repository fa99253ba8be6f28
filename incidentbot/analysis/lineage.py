"""Run lineage: which job ids are attempts of one run.

Real launchers give a restart a new job id: a ``-r2`` / ``_attempt3`` / ``-retry1`` / ``.2``
suffix, a SLURM requeue or a torchelastic restart with a new id (then the reporter says
``run_id``/``attempt``). The analysis counts "the same step after every restart" across the
attempts of a run, so it needs the run of every job. Pure and linear in the length of the id.
"""

from __future__ import annotations

import re

__all__ = ["run_key", "attempt_number", "sequential_runs", "launcher_job_name"]

# a restart suffix at the end of a job id: -r2, _r3, -attempt2, _attempt-3, -retry1, -restart4,
# -try2, -requeue1, and a bare .N (SLURM's job.step style used for attempts)
_SUFFIX = re.compile(
    r"(?:[-_.](?:r|re|retry|attempt|att|restart|try|requeue|rq)[-_]?(\d{1,4})|\.(\d{1,4}))$", re.IGNORECASE
)


def run_key(job_id: str, run: str | None = None) -> str:
    """The run a job belongs to: the reporter's ``run`` when given, else the job id without a
    restart suffix (``llama-7b-r3`` -> ``llama-7b``)."""
    if run:
        return run
    m = _SUFFIX.search(job_id)
    if m and m.start() > 0:
        return job_id[: m.start()]
    return job_id


def attempt_number(job_id: str, attempt: int | None = None) -> int | None:
    """The attempt a job id is, when the reporter says or its suffix does (``-r3`` -> 3)."""
    if attempt is not None:
        return attempt
    m = _SUFFIX.search(job_id)
    if m and m.start() > 0:
        return int(m.group(1) or m.group(2))
    return None


# a generated name's random tail: ``moe8x22b-pt73-82637b`` (a Kubernetes pod or job created per
# attempt, a launcher's hash); hex only, so ``run005`` or ``llama`` are no tails
_HASH_TAIL = re.compile(r"[-_]([0-9a-f]{5,12})$")


# where launchers put the name a user gave the job (SLURM's ``--job-name``, a Kubernetes job's
# name): a resubmission of a run gets a new numeric id and keeps the name
JOB_NAME_ATTRIBUTES = ("job_name", "slurm_job_name", "jobname")


def launcher_job_name(attributes: object) -> str | None:
    """The job name an event's attributes carry (the first of ``JOB_NAME_ATTRIBUTES`` that holds a
    non-blank string, at most 256 characters), else None."""
    if not isinstance(attributes, dict):
        return None
    for key in JOB_NAME_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:256]
    return None


def sequential_runs(
    spans: dict[str, tuple[float, float]],
    *,
    names: dict[str, str] | None = None,
    overlap_s: float = 60.0,
    overlap_frac: float = 0.25,
) -> dict[str, str]:
    """Jobs of one name that ran one after another (each starting after the one before it ended,
    within ``overlap_s`` or ``overlap_frac`` of the shorter) -> that name: the attempts of one run.
    A job's name is the launcher's job name when ``names`` gives one (a SLURM resubmission: a new
    numeric id, the same ``--job-name``), else its id without a random hex tail. Jobs sharing a
    name that ran at the same time are parallel jobs and stay apart."""
    names = names or {}
    groups: dict[str, list[tuple[float, float, str]]] = {}
    for j, (t0, t1) in spans.items():
        name = names.get(j)
        if name is not None and name != j:
            groups.setdefault(name, []).append((t0, t1, j))
            continue
        m = _HASH_TAIL.search(j)
        if m and m.start() > 0 and any(c.isdigit() for c in m.group(1)):
            groups.setdefault(j[: m.start()], []).append((t0, t1, j))
    out: dict[str, str] = {}
    for base, js in groups.items():
        if len(js) < 2:
            continue
        js.sort()
        # a late line of one attempt (a health check after the failure) may overlap the next
        # attempt's start; parallel jobs overlap for most of their length
        if all(
            b[0] >= a[1] - max(overlap_s, overlap_frac * min(a[1] - a[0], b[1] - b[0]))
            for a, b in zip(js, js[1:], strict=False)
        ):
            for _t0, _t1, j in js:
                out[j] = base
    return out
