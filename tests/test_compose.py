"""docker-compose: the compose files' structure and their generated Envoy configurations (always),
the scratch Envoy image's root filesystem (always), and, where a Docker engine runs, the images
scripts/images builds FROM scratch (once per session; unchanged ones are kept) and the whole project
brought up with them and driven by the official clients. Needs no container registry. Skipped, at
once and saying so, only on a machine with no Docker CLI or engine; with an engine, anything else
missing (Compose, a built filter, a file an image needs) fails."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys

import httpx
import openai
import pytest
import yaml

from conftest import ROOT, WASM, compose_cmd, free_port, poll
from weir_clients import DEMO_KEY, anthropic_client, ollama_client, openai_client

import images  # noqa: E402  (tests/docker/images.py, on the path by conftest)

COMPOSE = os.path.join(ROOT, "docker-compose.yaml")
COMPOSE_REAL = os.path.join(ROOT, "docker-compose.real.yaml")


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
    assert envoy["image"] == "${WEIR_ENVOY_IMAGE:-weir-envoy:local}"
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

def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def test_local_images_run(local_images):
    """The scratch images alone run: Python imports what the mock and the rate limit service use and
    verifies TLS with the image's CA bundle; it reaches Redis by its container name."""
    net = f"weir-test-images-{os.getpid()}"
    redis_name = f"{net}-redis"
    probe = f"""
import grpc, httpx, pydantic, redis, ssl, time, yaml
assert ssl.create_default_context().cert_store_stats()["x509_ca"] > 0
client = redis.Redis(host="{redis_name}", socket_timeout=5)
deadline = time.monotonic() + 20
while True:  # Redis may still be starting
    try:
        print(client.ping())
        break
    except redis.ConnectionError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
"""
    r = _docker("network", "create", net)
    assert r.returncode == 0, r.stderr
    try:
        r = _docker("run", "-d", "--rm", "--name", redis_name, "--network", net, local_images["redis"].tag)
        assert r.returncode == 0, r.stderr
        r = _docker("run", "--rm", "--network", net, local_images["python"].tag, "python", "-c", probe)
        assert (r.returncode, r.stdout.strip()) == (0, "True"), r.stdout + r.stderr
    finally:
        _docker("rm", "-f", redis_name)
        _docker("network", "rm", net)


@pytest.fixture
def compose_project(local_images):
    compose = compose_cmd()
    if not os.path.exists(WASM):
        pytest.fail("dist/weir.wasm is missing: run scripts/build first")
    port, admin, mock_port = free_port(), free_port(), free_port()
    env = dict(os.environ, WEIR_ENVOY_IMAGE=local_images["envoy"].tag,
               WEIR_MOCK_IMAGE=local_images["mockllm"].tag, WEIR_PORT=str(port),
               WEIR_ADMIN_PORT=str(admin), WEIR_MOCK_PORT=str(mock_port))
    base = [*compose, "-p", f"weir-test-{os.getpid()}", "-f", COMPOSE]

    def run(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([*base, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{' '.join(args)}:\n{r.stdout}{r.stderr}"
        return r

    try:
        run("up", "-d", "--no-build")
        url = f"http://127.0.0.1:{port}"
        poll(lambda: httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=2).status_code == 200, "Envoy ready",
             timeout=90, interval=0.5, tolerate=(httpx.HTTPError,))
        poll(lambda: httpx.get(f"http://127.0.0.1:{mock_port}/_mock/health", timeout=2).status_code == 200,
             "mock ready", timeout=90, interval=0.5, tolerate=(httpx.HTTPError,))
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
    # 503 (or a refused connection) until Envoy has the mock's new address.
    assert poll(answers, "an answer after the mock restarted", timeout=60, interval=0.5,
                tolerate=(openai.APIError,)) == "echo: hello from compose"
