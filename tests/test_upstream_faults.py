"""Upstream faults through real Envoy, seen by the official SDKs: a provider that answers garbage,
breaks off or garbles a stream, storms 429s, fails every attempt, refuses connections or is slow
to answer must give each client an error in its own protocol's shape (never a silently complete
answer), within a bound derived from the configured timeouts, and Envoy keeps serving after it
(the next normal request succeeds; no panic or wasm trap in any Envoy's log, checked by conftest).
A stream that ends in garbage ends with the client protocol's own error event (or, before the
first byte, the 502 in its shape), never with a reset or a client-side timeout.

The faults run on their own Envoy (`fault_envoy`): the demo configuration with every route's
idle timeout cut to IDLE_TIMEOUT_S, so that a case weir left hanging would meet a timer inside
the bound and fail instead of passing as "some error". Connection refused also needs a dead
endpoint: `dead_envoy` is the same configuration with mock_vllm's only endpoint on a port nothing
listens on. Faults come from the mock's /_mock/faults and are cleared after each test."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest
import yaml

from conftest import Envoy, assert_no_trap, free_port, start_envoy, stop
from weir_clients import DEMO_KEY, PROTOCOLS, chat

PROTO_STREAM = [(p, s) for p in PROTOCOLS for s in (False, True)]
IDLE_TIMEOUT_S = 2       # every route's idle timeout on the fault Envoys
MAX_BACKOFF_S = 0.25     # Envoy's default retry back-off ceiling (10 x the 25 ms base)
SLACK_S = 3.0            # process start-up of an SDK call and a loaded 2-core machine


def fault_config(envoy, tmp, *, dead_vllm: bool) -> tuple[dict, int, int]:
    """The demo configuration with every route's idle timeout IDLE_TIMEOUT_S and fresh ports;
    with `dead_vllm`, mock_vllm's only endpoint is a port nothing listens on."""
    with open(envoy.config, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    port, admin = free_port(), free_port()
    cfg["admin"]["address"]["socket_address"]["port_value"] = admin
    listener = cfg["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    for vh in hcm["route_config"]["virtual_hosts"]:
        for r in vh["routes"]:
            r["route"]["idle_timeout"] = f"{IDLE_TIMEOUT_S}s"
    for access_log in hcm.get("access_log", []):
        access_log["typed_config"]["path"] = str(tmp / "access.log")
    if dead_vllm:
        dead = free_port()  # bound and released: nothing listens there
        vllm = next(c for c in cfg["static_resources"]["clusters"] if c["name"] == "mock_vllm")
        for group in vllm["load_assignment"]["endpoints"]:
            for ep in group["lb_endpoints"]:
                ep["endpoint"]["address"]["socket_address"]["port_value"] = dead
    return cfg, port, admin


def bound_s(cfg: dict) -> float:
    """How long any fault case may take on `cfg`: every attempt (the first and each retry) may
    wait out the route's idle timeout, plus Envoy's back-off between them, plus SLACK_S. A case
    weir leaves hanging meets the idle timeout inside this bound; a client-side timeout just
    past it turns a hang that nothing ends into a failure too, never into an 'error'."""
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = [r["route"] for vh in hcm["route_config"]["virtual_hosts"] for r in vh["routes"] if "route" in r]
    idle = max(float(str(r["idle_timeout"]).rstrip("s")) for r in routes)
    retries = max(int((r.get("retry_policy") or {}).get("num_retries", 1)) for r in routes)
    return (retries + 1) * idle + retries * MAX_BACKOFF_S + SLACK_S


def run_envoy(tmp, cfg: dict, port: int, admin: int):
    config = str(tmp / "envoy.yaml")
    with open(config, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f)
    log = str(tmp / "envoy.log")
    proc = start_envoy(config, str(tmp), log, port=port, admin_url=f"http://127.0.0.1:{admin}",
                       concurrency=2, log_args=("--log-level", "info", "--file-flush-interval-msec", "250"))
    server = Envoy(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", config, log, str(tmp / "access.log"),
                   proc)
    server.bound = bound_s(cfg)  # type: ignore[attr-defined]
    return server


def serve_faults(envoy, tmp_path_factory, *, dead_vllm: bool):
    """Runs a fault Envoy (fault_config) for a fixture's lifetime. Two fixtures rather than one
    parametrised: test_every_envoy_is_alive_after_all_faults needs both Envoys at once."""
    tmp = tmp_path_factory.mktemp("dead-envoy" if dead_vllm else "fault-envoy")
    server = run_envoy(tmp, *fault_config(envoy, tmp, dead_vllm=dead_vllm))
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture(scope="module")
def fault_envoy(envoy, mock_server, tmp_path_factory):
    yield from serve_faults(envoy, tmp_path_factory, dead_vllm=False)


@pytest.fixture(scope="module")
def dead_envoy(envoy, mock_server, tmp_path_factory):
    yield from serve_faults(envoy, tmp_path_factory, dead_vllm=True)


@pytest.fixture
def faults(mock):
    """Sets mock fault rules for one test; clears them afterwards."""
    def set_rules(*rules):
        httpx.post(mock.url + "/_mock/faults", json=list(rules), timeout=10).raise_for_status()
    yield set_rules
    httpx.delete(mock.url + "/_mock/faults", timeout=10).raise_for_status()


def assert_envoy_healthy(envoy, mock, protocol: str, model: str) -> None:
    """With the faults cleared, a normal request succeeds (and conftest checks every log)."""
    httpx.delete(mock.url + "/_mock/faults", timeout=10).raise_for_status()
    text = f"after fault {uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + 5  # a 429 cooldown (Retry-After: 1) may still be running
    while True:
        try:
            assert chat(envoy.url, protocol, model, text, stream=False) == f"echo: {text}"
            break
        except (openai.RateLimitError, anthropic.RateLimitError, ollama.ResponseError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    assert_no_trap("during this fault")


@dataclass
class Outcome:
    """What the SDK made of one call. kind: "ok" (a complete answer: text), "error" (an HTTP error
    before the stream: status, headers, body), "event" (the protocol's own error event inside a
    200 stream: detail), "cut" (the stream ended with neither an answer nor an error event: a
    reset or an incomplete body), "hung" (the client gave up waiting)."""
    kind: str
    took: float
    text: str | None = None
    status: int | None = None
    headers: dict = field(default_factory=dict)
    body: object = None
    detail: object = None


def send(envoy, protocol: str, model: str, stream: bool) -> Outcome:
    """One chat via the SDK, with a client timeout just past the Envoy's bound."""
    text = f"fault probe {uuid.uuid4().hex[:8]}"
    msgs = [{"role": "user", "content": text}]
    timeout = envoy.bound + 1
    seen: dict = {}
    started = time.monotonic()

    def took() -> float:
        return time.monotonic() - started

    def keep(resp: httpx.Response) -> None:
        seen["headers"] = resp.headers

    try:
        if protocol == "openai":
            c = openai.OpenAI(base_url=envoy.url + "/v1", api_key=DEMO_KEY, max_retries=0, timeout=timeout)
            if not stream:
                out = c.chat.completions.create(model=model, messages=msgs).choices[0].message.content
            else:
                chunks = c.chat.completions.create(model=model, messages=msgs, stream=True)
                out = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        elif protocol == "anthropic":
            c = anthropic.Anthropic(base_url=envoy.url, api_key=DEMO_KEY, max_retries=0, timeout=timeout)
            if not stream:
                m = c.messages.create(model=model, max_tokens=64, messages=msgs)
                out = "".join(b.text for b in m.content if b.type == "text")
            else:
                with c.messages.stream(model=model, max_tokens=64, messages=msgs) as s:
                    out = "".join(s.text_stream)
        elif protocol == "responses":
            c = openai.OpenAI(base_url=envoy.url + "/v1", api_key=DEMO_KEY, max_retries=0, timeout=timeout)
            if not stream:
                out = c.responses.create(model=model, input=text).output_text
            else:
                with c.responses.stream(model=model, input=text) as s:
                    for ev in s:
                        if ev.type in ("response.failed", "error"):  # the answer failed mid-stream
                            return Outcome("event", took(), detail=ev)
                    out = s.get_final_response().output_text
        else:
            c = ollama.Client(host=envoy.url, headers={"Authorization": f"Bearer {DEMO_KEY}"}, timeout=timeout,
                              event_hooks={"response": [keep]})
            if not stream:
                out = c.chat(model=model, messages=msgs, stream=False).message.content
            else:
                out = "".join(p.message.content or "" for p in c.chat(model=model, messages=msgs, stream=True))
        return Outcome("ok", took(), text=out)
    except (openai.APITimeoutError, anthropic.APITimeoutError, httpx.TimeoutException, httpx2.TimeoutException) as e:
        return Outcome("hung", took(), detail=e)
    except (openai.APIStatusError, anthropic.APIStatusError) as e:
        if e.status_code == 200:  # Anthropic's SDK: an `error` event inside a 200 stream
            return Outcome("event", took(), detail=e)
        try:
            body = e.response.json()
        except ValueError:  # a body that is not JSON fails the shape check
            body = None
        return Outcome("error", took(), status=e.status_code, headers=dict(e.response.headers), body=body)
    except ollama.ResponseError as e:
        if e.status_code == -1:  # an error line inside a 200 NDJSON stream
            return Outcome("event", took(), detail=e)
        return Outcome("error", took(), status=e.status_code, headers=dict(seen.get("headers", {})),
                       body={"error": e.error})
    except (openai.APIConnectionError, anthropic.APIConnectionError, httpx.TransportError,
            httpx2.TransportError) as e:
        # The upstream connection was reset mid-stream: Envoy resets the client's stream too, so
        # the SDK sees an incomplete chunked body (no room for an error event, but never "done").
        return Outcome("cut", took(), detail=e)
    except openai.APIError as e:  # the OpenAI SDK: an `error` object inside a 200 stream
        return Outcome("event", took(), detail=e)
    except RuntimeError as e:  # the Responses stream helper: it ended without `response.completed`
        return Outcome("cut", took(), detail=e)


def assert_bounded(envoy, got: Outcome) -> None:
    assert got.kind != "hung", f"the client gave up after {got.took:.1f} s: {got.detail!r}"
    assert got.took < envoy.bound, f"took {got.took:.1f} s, over the {envoy.bound:.1f} s bound: {got!r}"


def assert_error_event(protocol: str, got: Outcome) -> str:
    """The stream ended with the client protocol's own error event; returns its message."""
    assert got.kind == "event", f"expected the {protocol} error event, got {got!r}"
    d = got.detail
    if protocol == "openai":  # data: {"error": {"message", "type", ...}}
        assert type(d) is openai.APIError and isinstance(d.body, dict), d
        assert d.body.get("message") and d.body.get("type"), d.body
        return d.body["message"]
    if protocol == "anthropic":  # event: error / data: {"type": "error", "error": {"type", "message"}}
        assert isinstance(d, anthropic.APIStatusError) and isinstance(d.body, dict), d
        assert d.body["type"] == "error" and d.body["error"]["type"] and d.body["error"]["message"], d.body
        return d.body["error"]["message"]
    if protocol == "ollama":  # {"error": "..."} as the last NDJSON line
        assert isinstance(d, ollama.ResponseError) and d.error, d
        return d.error
    if d.type == "response.failed":  # Responses: response.failed with the response's error
        assert d.response.status == "failed" and d.response.error and d.response.error.message, d
        return d.response.error.message
    assert d.message, d
    return d.message


def assert_client_shaped(protocol: str, body) -> str:
    """The error body is the client protocol's own error shape; returns its message."""
    assert isinstance(body, dict), body
    if protocol in ("openai", "responses"):  # the Responses API's errors are OpenAI's
        assert isinstance(body["error"]["message"], str) and body["error"].get("type"), body
        return body["error"]["message"]
    if protocol == "anthropic":
        assert body["type"] == "error" and body["error"]["type"], body
        return body["error"]["message"]
    assert isinstance(body["error"], str), body
    return body["error"]


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_invalid_json_with_200_is_a_502_or_the_error_event(fault_envoy, faults, mock, protocol, stream):
    # Gemini-format provider; non-streamed body is not JSON, streamed body is not SSE JSON.
    faults({"provider": "gemini", "status": 200, "body": "<html>definitely not json",
            "headers": {"Content-Type": "text/event-stream" if stream else "application/json"}})
    got = send(fault_envoy, protocol, "mock-gemini", stream)
    assert_bounded(fault_envoy, got)
    if got.kind == "error":  # nothing was sent yet: the 502 in the client's shape
        assert got.status == 502, got
        assert_client_shaped(protocol, got.body)
    else:
        assert stream, f"a plain answer must be the 502, got {got!r}"
        assert_error_event(protocol, got)
    assert_envoy_healthy(fault_envoy, mock, protocol, "mock-gemini")


# Each client protocol against a provider format other than its own.
@pytest.mark.parametrize("protocol,model,provider", [("openai", "mock-anthropic", "anthropic"),
                                                     ("anthropic", "mock-ollama", "ollama"),
                                                     ("ollama", "mock-openai", "openai"),
                                                     ("responses", "mock-gemini", "gemini"),
                                                     ("openai", "mock-responses", "openai-responses")])
def test_truncated_stream_never_looks_complete(fault_envoy, faults, mock, protocol, model, provider):
    # Two chunks of a good stream, then a TCP reset: never a silently complete answer. Envoy
    # resets the client's stream in turn, so a cut is a legitimate end; an error event too.
    faults({"provider": provider, "status": 200, "truncate_stream_after": 2})
    got = send(fault_envoy, protocol, model, stream=True)
    assert_bounded(fault_envoy, got)
    assert got.kind in ("error", "event", "cut"), f"a truncated stream looked complete: {got!r}"
    if got.kind == "error":
        assert got.status >= 500, got
        assert_client_shaped(protocol, got.body)
    elif got.kind == "event":
        assert_error_event(protocol, got)
    assert_envoy_healthy(fault_envoy, mock, protocol, model)


@pytest.mark.parametrize("protocol,model,provider,garbage", [
    ("ollama", "mock-anthropic", "anthropic", "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"ind"),
    ("anthropic", "mock-openai", "openai", "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {]]\n\n"),
    ("openai", "mock-ollama", "ollama", "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"h\"},\"done\":false}\n{nope\n"),
    ("anthropic", "mock-responses", "openai-responses",
     "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"r\"}}\n\n"
     "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.del"),
    ("responses", "mock-openai", "openai", "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":0,"
     "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n"
     "data: {]]\n\n"),
], ids=["anthropic-sse-cut-mid-json", "openai-sse-bad-json", "ollama-ndjson-bad-line", "responses-sse-cut-mid-json",
        "openai-sse-bad-json-to-responses"])
def test_a_stream_ending_in_garbage_ends_with_the_clients_error_event(fault_envoy, faults, mock, protocol, model,
                                                                      provider, garbage):
    # A 200 stream whose frames are cut mid-JSON or are not JSON, then a clean end: weir has
    # started the client's stream by then and must end it with its protocol's own error event,
    # never a reset, a silent end or a hang.
    ctype = "application/x-ndjson" if provider == "ollama" else "text/event-stream"
    faults({"provider": provider, "status": 200, "body": garbage, "headers": {"Content-Type": ctype}})
    got = send(fault_envoy, protocol, model, stream=True)
    assert_bounded(fault_envoy, got)
    assert_error_event(protocol, got)
    assert_envoy_healthy(fault_envoy, mock, protocol, model)


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_429_storm_on_a_one_key_provider_is_429_with_retry_after(fault_envoy, faults, mock, protocol, stream):
    # mock-mistral has one key; Envoy retries 429 twice (retriable_status_codes), all answered 429.
    # Retry-After: 1 keeps weir's key cooldown short for the tests that follow.
    faults({"provider": "mistral", "status": 429, "headers": {"Retry-After": "1"}})
    got = send(fault_envoy, protocol, "mock-mistral", stream)
    assert_bounded(fault_envoy, got)
    assert got.kind == "error" and got.status == 429, got
    assert_client_shaped(protocol, got.body)
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert int(headers["retry-after"]) >= 1, headers
    assert_envoy_healthy(fault_envoy, mock, protocol, "mock-mistral")


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_5xx_on_every_attempt_is_5xx_in_the_clients_shape(fault_envoy, faults, mock, protocol, stream):
    # times: 3 = the first try and Envoy's two retries; fewer than outlier detection's
    # consecutive_5xx (5), and the check request after it resets the count.
    faults({"provider": "openai-compatible", "status": 503, "times": 3})
    got = send(fault_envoy, protocol, "mock-vllm", stream)
    assert_bounded(fault_envoy, got)
    assert got.kind == "error" and got.status == 503, got
    assert_client_shaped(protocol, got.body)
    attempts = [r for r in mock.requests("openai-compatible") if r.get("fault")]
    assert len(attempts) == 3, f"expected 3 attempts (1 + 2 retries), mock saw {len(attempts)}"
    assert_envoy_healthy(fault_envoy, mock, protocol, "mock-vllm")


def outcomes(envoy, model: str, outcome: str, at_least: int = 0) -> int:
    """weir_requests_total for this model and outcome, from Envoy's Prometheus output. Counters
    are recorded in the log phase, just after the client has its answer: polls up to 2 s for
    `at_least`."""
    want = (f'model="{model}"', f'outcome="{outcome}"')
    deadline = time.monotonic() + 2
    while True:
        text = httpx.get(envoy.admin_url + "/stats/prometheus", timeout=10).text
        total = sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                    if line.startswith("weir_requests_total{") and all(w in line for w in want))
        if total >= at_least or time.monotonic() > deadline:
            return total
        time.sleep(0.1)


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_slow_first_byte_beyond_the_idle_timeout_is_504_in_the_clients_shape(fault_envoy, faults, mock,
                                                                             protocol, stream):
    faults({"provider": "openai", "host": "openai.mock", "status": 200, "delay_ms": (IDLE_TIMEOUT_S + 3) * 1000,
            "times": 1})
    before = outcomes(fault_envoy, "mock-openai", "timeout")
    got = send(fault_envoy, protocol, "mock-openai", stream)
    assert got.kind == "error" and got.status == 504, got
    assert "timeout" in assert_client_shaped(protocol, got.body).lower(), got
    # The idle timeout is not retried: one wait of IDLE_TIMEOUT_S, not the whole bound.
    assert got.took < IDLE_TIMEOUT_S + SLACK_S, f"the client waited {got.took:.1f} s for a {IDLE_TIMEOUT_S} s timeout"
    assert outcomes(fault_envoy, "mock-openai", "timeout", at_least=before + 1) == before + 1
    assert_envoy_healthy(fault_envoy, mock, protocol, "mock-openai")


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_connection_refused_is_503_in_the_clients_shape(dead_envoy, mock, protocol, stream):
    before = outcomes(dead_envoy, "mock-vllm", "unavailable")
    got = send(dead_envoy, protocol, "mock-vllm", stream)
    assert_bounded(dead_envoy, got)
    assert got.kind == "error" and got.status == 503, got
    message = assert_client_shaped(protocol, got.body)
    assert "connect" in message.lower(), message
    assert outcomes(dead_envoy, "mock-vllm", "unavailable", at_least=before + 1) == before + 1
    assert_envoy_healthy(dead_envoy, mock, protocol, "mock-openai")


def test_every_envoy_is_alive_after_all_faults(envoy, fault_envoy, dead_envoy):
    # Their logs are checked for traps after every test (conftest); here: no Envoy died.
    assert all(e.proc.poll() is None for e in (envoy, fault_envoy, dead_envoy))
