"""Report failures from a training script to incidentbot; never raise into the training loop.

    from incidentbot.reporter import Reporter

    reporter = Reporter()               # INCIDENTBOT_URL, INCIDENTBOT_TOKEN from the environment
    try:
        train()
    except Exception as exc:
        reporter.report_exception(exc, step=step)
        raise

    with reporter.guard(step=lambda: step):   # reports and re-raises
        train()

Job, rank, host and GPU are filled from the usual torchrun and SLURM variables (TORCHELASTIC_RUN_ID,
SLURM_JOB_ID, RANK, SLURM_PROCID, LOCAL_RANK, HOSTNAME, SLURMD_NODENAME, CUDA_VISIBLE_DEVICES).
Run lineage (``run``, ``attempt``: which run a job belongs to and which restart it is) comes from
``Reporter(run=..., attempt=...)``, else INCIDENTBOT_RUN / INCIDENTBOT_ATTEMPT, else torchelastic's
TORCHELASTIC_RUN_ID / TORCHELASTIC_RESTART_COUNT, else SLURM's SLURM_JOB_ID / SLURM_RESTART_COUNT
(a requeued SLURM job keeps its id and counts restarts). SLURM_JOB_NAME goes as
``attributes.job_name``: a resubmission gets a new id and keeps the name, which ties it to its run.
Delivery uses httpx with a timeout and a few retries; an event gets an id up front, so a retry
that reached the service twice is counted once. Anything that goes wrong is logged, not raised.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

__all__ = ["Reporter", "environment_context", "run_lineage"]

log = logging.getLogger("incidentbot.reporter")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def environment_context(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """job_id/rank/host/gpu/cluster as torchrun and SLURM describe this process."""
    env = os.environ if env is None else env
    job = (
        env.get("INCIDENTBOT_JOB_ID")
        or env.get("TORCHELASTIC_RUN_ID")
        or env.get("SLURM_JOB_ID")
        or env.get("JOB_ID")
        or "unknown-job"
    )
    rank = _int(env.get("RANK")) if env.get("RANK") is not None else _int(env.get("SLURM_PROCID"))
    host = env.get("SLURMD_NODENAME") or env.get("HOSTNAME") or socket.gethostname()
    local_rank = _int(env.get("LOCAL_RANK")) if env.get("LOCAL_RANK") is not None else _int(env.get("SLURM_LOCALID"))
    gpu = None
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if local_rank is not None:
        devices = [d.strip() for d in visible.split(",")] if visible else []
        gpu = devices[local_rank] if local_rank < len(devices) else str(local_rank)
    ctx = {
        "job_id": job,
        "rank": rank,
        "host": host,
        "gpu": gpu,
        "cluster": env.get("INCIDENTBOT_CLUSTER") or env.get("SLURM_CLUSTER_NAME"),
    }
    return {k: v for k, v in ctx.items() if v is not None}


def run_lineage(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``run`` and ``attempt`` as the launcher describes this process (either may be absent)."""
    env = os.environ if env is None else env
    out: dict[str, Any] = {}
    # Each launcher's pair is read together, so a torchelastic run inside a SLURM job takes the
    # torchelastic restart count, not SLURM's.
    for run_var, attempt_var in (
        ("INCIDENTBOT_RUN", "INCIDENTBOT_ATTEMPT"),
        ("TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT"),
        ("SLURM_JOB_ID", "SLURM_RESTART_COUNT"),
    ):
        run, attempt = env.get(run_var), _int(env.get(attempt_var))
        if run and "run" not in out:
            out["run"] = run[:256]
        if attempt is not None and attempt >= 0 and "attempt" not in out:
            out["attempt"] = attempt
        if out:
            break
    return out


class Reporter:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        job_id: str | None = None,
        code_version: str | None = None,
        versions: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        run: str | None = None,
        attempt: int | None = None,
    ):
        env = os.environ if env is None else env
        self.url = (url or env.get("INCIDENTBOT_URL") or "http://127.0.0.1:8000").rstrip("/")
        self.token = token or env.get("INCIDENTBOT_TOKEN")
        self.context = environment_context(env)
        if job_id:
            self.context["job_id"] = job_id
        self.context.update(run_lineage(env))
        # SLURM keeps a job's name when it is resubmitted under a new id: the run's attempts share it
        if env.get("SLURM_JOB_NAME"):
            self.context["attributes"] = {"job_name": env["SLURM_JOB_NAME"][:256]}
        if run:
            self.context["run"] = str(run)[:256]
        if isinstance(attempt, int) and attempt >= 0:
            self.context["attempt"] = attempt
        self.code_version = code_version or env.get("INCIDENTBOT_CODE_VERSION") or env.get("GIT_COMMIT")
        self.versions = dict(versions or {}) or _framework_versions()
        self.retries = retries
        self._client = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {self.token}"} if self.token else {},
        )

    def close(self) -> None:
        self._client.close()

    def report(self, message: str, *, step: int | None = None, kind: str | None = None, **fields: Any) -> bool:
        """Send one failure text. Returns whether the service stored it; never raises."""
        try:
            event = {
                **self.context,
                "event_id": f"rep-{uuid.uuid4().hex}",
                "message": str(message)[:65536],
                "time": datetime.now(UTC).isoformat(),
                **({"step": step} if step is not None else {}),
                **({"kind": kind} if kind else {}),
                **({"code_version": self.code_version} if self.code_version else {}),
                **({"versions": self.versions} if self.versions else {}),
            }
            extra = {k: v for k, v in fields.items() if v is not None}
            if isinstance(extra.get("attributes"), Mapping) and "attributes" in self.context:
                extra["attributes"] = {**self.context["attributes"], **extra["attributes"]}
            event.update(extra)
            return self._send(event)
        except Exception:  # noqa: BLE001 - a reporter must never take the training job down
            log.warning("incidentbot: could not build the report", exc_info=True)
            return False

    def report_progress(self, step: int, **fields: Any) -> bool:
        """Say that the job reached ``step`` on this host with these versions, without failing.
        Not a failure: incidentbot keeps it as exposure, so "never seen on v1.3 in 140,000 steps"
        means something. Every few hundred steps is plenty; never raises."""
        return self.report(f"progress: step {step}", step=step, kind="progress", **fields)

    def report_exception(
        self, exc: BaseException, *, step: int | None = None, kind: str = "crash", **fields: Any
    ) -> bool:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return self.report(text, step=step, kind=kind, **fields)

    @contextlib.contextmanager
    def guard(self, *, step: int | Callable[[], int | None] | None = None, kind: str = "crash") -> Iterator[None]:
        """Report any exception that escapes the block, then re-raise it."""
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
                current = step() if callable(step) else step
                self.report_exception(exc, step=current, kind=kind)
            raise

    def _send(self, event: dict) -> bool:
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                r = self._client.post(f"{self.url}/v1/events", json={"events": [event]})
                if r.status_code == 202:
                    return True
                if r.status_code < 500 and r.status_code != 429:
                    log.warning("incidentbot refused the report: HTTP %s %s", r.status_code, r.text[:300])
                    return False
            except httpx.HTTPError as exc:
                log.info("incidentbot unreachable (attempt %d): %s", attempt + 1, exc)
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        log.warning("incidentbot: report not delivered after %d attempts", self.retries + 1)
        return False


def _framework_versions() -> dict[str, str]:
    """torch/CUDA/NCCL versions when torch is already imported (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    out = {"torch": str(getattr(torch, "__version__", ""))}
    try:
        if torch.version.cuda:
            out["cuda"] = str(torch.version.cuda)
        nccl = torch.cuda.nccl.version()
        out["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl)
    except Exception:  # noqa: BLE001 - CPU builds have no NCCL
        pass
    return {k: v for k, v in out.items() if v}
