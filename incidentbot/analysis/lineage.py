"""Run lineage: which job ids are attempts of one run.

Real launchers give a restart a new job id: a ``-r2`` / ``_attempt3`` / ``-retry1`` / ``.2``
suffix, a SLURM requeue or a torchelastic restart with a new id (then the reporter says
``run_id``/``attempt``). The analysis counts "the same step after every restart" across the
attempts of a run, so it needs the run of every job. Pure and linear in the length of the id.
"""

from __future__ import annotations

import re

__all__ = ["run_key", "attempt_number"]

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
