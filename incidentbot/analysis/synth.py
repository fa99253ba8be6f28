"""Hand-built event sets for tests and examples: a tiny fleet where you place each event.

    f = Fleet()
    f.job("j1", hosts=["h1", "h2"], steps=10_000, versions={"torch": "2.3.0"})
    f.event(SIG, "j1", step=1234, host="h2", rank=9)
    analyze(f.events, f.signatures)

Each job logs a progress line per host every ``every`` steps, which is the exposure the
analysis reads (which job ran which versions on which hosts for how many steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import EventRecord, SignatureInfo

PROGRESS = 1  # signature id of the progress lines


@dataclass
class _Job:
    id: str
    hosts: list[str]
    steps: int
    code: str
    versions: tuple[tuple[str, str], ...]
    start: float
    step_s: float


@dataclass
class Fleet:
    t0: float = 1_790_000_000.0
    events: list[EventRecord] = field(default_factory=list)
    signatures: dict[int, SignatureInfo] = field(default_factory=dict)
    jobs: dict[str, _Job] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sig(PROGRESS, "progress line", "progress", "unknown")

    def sig(self, sid: int, title: str, category: str = "unknown", cause_class: str = "unknown") -> int:
        self.signatures[sid] = SignatureInfo(sid, title, category, cause_class)
        return sid

    def job(
        self,
        job_id: str,
        hosts: list[str],
        steps: int,
        *,
        code: str = "v1",
        versions: dict[str, str] | None = None,
        start: float = 0.0,
        step_s: float = 2.0,
        every: int = 500,
        first_step: int = 0,
    ) -> None:
        vs = tuple(sorted((versions or {"torch": "2.2.2"}).items()))
        j = _Job(job_id, list(hosts), steps, code, vs, self.t0 + start, step_s)
        self.jobs[job_id] = j
        for hi, h in enumerate(hosts):
            for s in range(first_step + 1 + (hi * 37) % every, first_step + steps, every):
                self.event(PROGRESS, job_id, s, h, rank=hi * 8)

    def event(
        self,
        sid: int,
        job_id: str,
        step: int | None,
        host: str | None,
        *,
        rank: int | None = None,
        gpu: str | None = None,
        dt: float = 0.0,
        at: float | None = None,
    ) -> EventRecord:
        j = self.jobs[job_id]
        t = at if at is not None else j.start + (step or 0) * j.step_s + dt
        e = EventRecord(
            id=len(self.events) + 1,
            signature_id=sid,
            job_id=job_id,
            time=t,
            host=host,
            gpu=gpu,
            rank=rank,
            step=step,
            cluster="c1",
            code_version=j.code,
            versions=j.versions,
        )
        self.events.append(e)
        return e

    def ids(self, sid: int) -> set[int]:
        return {e.id for e in self.events if e.signature_id == sid}
