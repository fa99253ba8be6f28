"""The app deploys from a lock file: requirements.lock (runtime) and requirements-dev.lock (tests)
pin every dependency of pyproject.toml exactly, with hashes, within its declared range; the
Dockerfile and `make` install from them."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT

_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\],]+)==([^\s;\\]+)")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def locked(path) -> dict[str, tuple[str, int]]:
    """name → (version, number of hashes)."""
    out: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        m = _PIN.match(line)
        if m:
            current = _name(m.group(1).split("[")[0])
            out[current] = (m.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            v, n = out[current]
            out[current] = (v, n + 1)
    return out


def declared(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    if extra:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


@pytest.mark.parametrize("lock,extra", [("requirements.lock", None), ("requirements-dev.lock", "dev")])
def test_lock_pins_every_declared_dependency_with_hashes(lock, extra):
    pins = locked(ROOT / lock)
    assert pins, f"{lock} pins nothing"
    for name, (version, hashes) in pins.items():
        assert hashes >= 1, f"{lock}: {name}=={version} has no hash"
    for req in declared(extra):
        if req.marker is not None and not req.marker.evaluate({"extra": extra or ""}):
            continue
        name = _name(req.name)
        assert name in pins, f"{lock} does not pin {req.name}: run `make lock`"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"{lock} pins {name}=={pins[name][0]}, outside pyproject's {req.specifier}: run `make lock`"
        )


def test_runtime_lock_is_the_dev_lock_minus_dev_tools():
    runtime, dev = locked(ROOT / "requirements.lock"), locked(ROOT / "requirements-dev.lock")
    differ = {n: (v, dev[n][0]) for n, (v, _) in runtime.items() if n in dev and dev[n][0] != v}
    assert not differ, f"the two locks disagree (run `make lock`): {differ}"


def test_dockerfile_and_make_install_from_the_locks():
    docker = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "--require-hashes" in docker and "-r requirements.lock" in docker
    assert "--no-deps" in docker  # the package itself adds nothing unlocked
    make = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in make and "--no-deps -e ." in make
    assert "lock:" in make
