"""docker-compose: the compose files' structure and their generated Envoy configurations (always),
the scratch Envoy image's root filesystem (always), and the whole project brought up with locally
built images and driven by the official clients (only where a Docker engine runs; skipped, at once,
elsewhere). Needs no container registry: the images are built from .venv and local base images."""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import time

import httpx
import openai
import pytest
import yaml

from conftest import ROOT, WASM, free_port
from weir_clients import DEMO_KEY, anthropic_client, ollama_client, openai_client

sys.path.insert(0, os.path.join(ROOT, "tests", "docker"))
import images  # noqa: E402  (tests/docker/images.py)

COMPOSE = os.path.join(ROOT, "docker-compose.yaml")
COMPOSE_REAL = os.path.join(ROOT, "docker-compose.real.yaml")
ENVOY_IMAGE = "weir-envoy:compose-test"
MOCK_IMAGE = "weir-mockllm:compose-test"


def _load_script(name: str):
    path = os.path.join(ROOT, "scripts", name)
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


compose_config = _load_script("compose-config")


# --- always: files ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_REAL], ids=os.path.basename)
def test_compose_file_structure(path):
    text = open(path, encoding="utf-8").read()
    assert text.startswith("# "), "each compose file starts with a comment saying what it is"
    doc = yaml.safe_load(text)
    envoy = doc["services"]["envoy"]
    assert envoy["image"] == "${WEIR_ENVOY_IMAGE:-envoyproxy/envoy:v1.40-latest}"
    assert envoy["ports"] == ["127.0.0.1:${WEIR_PORT:-10000}:10000", "127.0.0.1:${WEIR_ADMIN_PORT:-9901}:9901"]
    config = envoy["command"][envoy["command"].index("-c") + 1]
    assert envoy["working_dir"] == "/weir"
    volumes = {v.split(":")[1]: v.split(":")[0] for v in envoy["volumes"]}
    assert volumes["/weir/dist/weir.wasm"] == "./dist/weir.wasm"
    assert volumes[config] == "." + config[len("/weir"):]
    assert os.path.exists(os.path.join(ROOT, volumes[config]))
    if path == COMPOSE:
        mock = doc["services"]["mock"]
        assert envoy["depends_on"] == ["mock"]
        assert mock["image"] == "${WEIR_MOCK_IMAGE:-weir-mockllm:local}"
        assert os.path.exists(os.path.join(ROOT, mock["build"]["context"], mock["build"]["dockerfile"]))
        assert mock["ports"] == ["127.0.0.1:${WEIR_MOCK_PORT:-18000}:18000"]
        assert mock["command"][-4:] == ["--host", "0.0.0.0", "--port", "18000"]
    else:
        assert envoy["environment"] == {"OPENAI_API_KEY": "${OPENAI_API_KEY:-}",
                                        "ANTHROPIC_API_KEY": "${ANTHROPIC_API_KEY:-}"}


def test_generated_envoy_configs_are_up_to_date():
    """envoy/compose.yaml and envoy/compose-real.yaml are exactly what scripts/compose-config makes."""
    for rel, text in compose_config.outputs().items():
        assert open(os.path.join(ROOT, rel), encoding="utf-8").read() == text, \
            f"{rel} is stale: run scripts/compose-config"


def test_compose_config_points_at_the_mock_service():
    doc = yaml.safe_load(open(os.path.join(ROOT, "envoy", "compose.yaml"), encoding="utf-8"))
    assert doc["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] == "0.0.0.0"
    for cluster in doc["static_resources"]["clusters"]:
        assert cluster["type"] == "STRICT_DNS"
        for group in cluster["load_assignment"]["endpoints"]:
            for ep in group["lb_endpoints"]:
                assert ep["endpoint"]["address"]["socket_address"] == {"address": "mock", "port_value": 18000}
    other = compose_config.compose_text(open(os.path.join(ROOT, "envoy", "demo.yaml")).read(), "llm-mock")
    assert "address: llm-mock, port_value: 18000" in other and "address: mock," not in other


def test_compose_real_config_has_both_providers():
    doc = yaml.safe_load(open(os.path.join(ROOT, "envoy", "compose-real.yaml"), encoding="utf-8"))
    clusters = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    assert set(clusters) == {"openai", "anthropic"}
    ep = clusters["anthropic"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert ep["endpoint"]["address"]["socket_address"] == {"address": "api.anthropic.com", "port_value": 443}
    assert clusters["anthropic"]["transport_socket"]["typed_config"]["sni"] == "api.anthropic.com"
    wasm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]
    vm = wasm["typed_config"]["config"]["vm_config"]
    assert vm["environment_variables"]["host_env_keys"] == ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]


def test_scratch_envoy_rootfs_is_complete(tmp_path):
    """The FROM scratch image's files alone run Envoy: its loader, only the copied libraries."""
    rootfs = images.envoy_rootfs(str(tmp_path / "rootfs"))
    libs = images.shared_libraries(images.envoy_real_binary())
    loader = [lib for lib in libs if "ld-linux" in lib or "ld-musl" in lib]
    if not loader:  # a static binary needs nothing else
        cmd = [os.path.join(rootfs, "usr/local/bin/envoy"), "--version"]
    else:
        dirs = sorted({os.path.join(rootfs, os.path.dirname(lib).lstrip("/")) for lib in libs})
        cmd = [os.path.join(rootfs, loader[0].lstrip("/")), "--library-path", ":".join(dirs),
               os.path.join(rootfs, "usr/local/bin/envoy"), "--version"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "1.40" in r.stdout, r.stdout + r.stderr


# --- with a Docker engine: the whole project --------------------------------------------------

@functools.lru_cache(maxsize=None)
def _compose_cmd() -> list[str]:
    """`docker compose` (plugin) or `docker-compose`; skips when there is no engine or no compose."""
    if not shutil.which("docker"):
        pytest.skip("no docker CLI on this machine: compose test skipped")
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("no Docker engine on this machine: compose test skipped")
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("no docker compose (plugin or docker-compose) on this machine: compose test skipped")


def _wait(what: str, ok, timeout: float = 90):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = ok()
            if result:
                return result
        except Exception as e:  # noqa: BLE001  (not up yet)
            last = e
        time.sleep(0.5)
    pytest.fail(f"{what} not reached in {timeout:.0f} s (last error: {last!r})")


@pytest.fixture
def compose_project():
    compose = _compose_cmd()
    if not os.path.exists(WASM):
        pytest.fail("dist/weir.wasm is missing: run scripts/build first")
    if not images.image_exists(images.MOCK_BASE):
        pytest.skip(f"base image {images.MOCK_BASE} for the mock image is missing locally (no registry "
                    f"to pull it from): compose test skipped")
    images.build_envoy(ENVOY_IMAGE)
    images.build_mock(MOCK_IMAGE, images.MOCK_BASE)
    port, admin, mock_port = free_port(), free_port(), free_port()
    env = dict(os.environ, WEIR_ENVOY_IMAGE=ENVOY_IMAGE, WEIR_MOCK_IMAGE=MOCK_IMAGE, WEIR_PORT=str(port),
               WEIR_ADMIN_PORT=str(admin), WEIR_MOCK_PORT=str(mock_port))
    base = [*compose, "-p", f"weir-test-{os.getpid()}", "-f", COMPOSE]

    def run(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([*base, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{' '.join(args)}:\n{r.stdout}{r.stderr}"
        return r

    try:
        run("up", "-d", "--no-build")
        url = f"http://127.0.0.1:{port}"
        _wait("Envoy ready", lambda: httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=2).status_code == 200)
        _wait("mock ready", lambda: httpx.get(f"http://127.0.0.1:{mock_port}/_mock/health", timeout=2).status_code == 200)
        yield url, run
    except BaseException:
        logs = subprocess.run([*base, "logs", "--no-color", "--tail", "60"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        print(logs.stdout + logs.stderr)
        raise
    finally:
        subprocess.run([*base, "down", "--volumes", "--remove-orphans", "--timeout", "5"], cwd=ROOT, env=env,
                       capture_output=True, timeout=300)


def test_compose_up_smoke_and_mock_outage(compose_project):
    url, run = compose_project
    say = [{"role": "user", "content": "hello from compose"}]
    for model in ("mock-openai", "mock-anthropic"):
        answer = openai_client(url).chat.completions.create(model=model, messages=say)
        assert answer.choices[0].message.content == "echo: hello from compose", model
    msg = anthropic_client(url).messages.create(model="mock-gemini", max_tokens=50, messages=say)
    assert msg.content[0].text == "echo: hello from compose"
    chat = ollama_client(url).chat(model="mock-bedrock", messages=say)
    assert chat.message.content == "echo: hello from compose"

    # The provider goes away: weir answers 503 in the client's own shape, with Retry-After.
    run("stop", "mock")
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(url).chat.completions.create(model="mock-openai", messages=say)
    assert exc.value.status_code == 503
    assert int(exc.value.response.headers["retry-after"]) >= 1
    assert exc.value.response.json()["error"]["type"] == "server_error"

    # And answers again once it is back (Envoy re-resolves the service name every few seconds).
    run("start", "mock")

    def answers():
        return openai_client(url).chat.completions.create(model="mock-openai", messages=say).choices[0].message.content
    assert _wait("an answer after the mock restarted", answers, timeout=60) == "echo: hello from compose"
