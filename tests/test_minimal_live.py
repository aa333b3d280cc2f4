"""envoy/minimal.yaml, live: the README's real-provider configuration run as shipped, except that its
`openai` cluster points at the mock over plaintext (TLS dropped in the rendered copy only; the
provider's host api.openai.com is kept, and the mock answers it as OpenAI). Driven by the official
openai client with the README's key and model; the provider key comes from Envoy's environment."""

from __future__ import annotations

import json
import os

import pytest
import yaml

import render_envoy
from conftest import ROOT, WASM, free_port, start_envoy, stop
from weir_clients import DEMO_KEY, openai_client, sha12

MINIMAL = os.path.join(ROOT, "envoy", "minimal.yaml")
DUMMY_OPENAI_KEY = "sk-dummy-minimal-live-0123456789"


def render_minimal(out: str, port: int, admin: int, mock_port: int) -> dict:
    text = render_envoy.render_text(open(MINIMAL, encoding="utf-8").read(), port=port, admin_port=admin, wasm=WASM)
    doc = yaml.safe_load(text)
    (cluster,) = [c for c in doc["static_resources"]["clusters"] if c["name"] == "openai"]
    assert "transport_socket" in cluster, "minimal.yaml's openai cluster is expected to use TLS"
    del cluster["transport_socket"]
    cluster["type"] = "STATIC"
    cluster.pop("dns_lookup_family", None)
    (ep,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ep["endpoint"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": mock_port}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)  # JSON is YAML; the anchors become plain copies
    return doc


@pytest.fixture(scope="module")
def minimal_envoy(mock_server, tmp_path_factory):
    if not os.path.exists(WASM):
        pytest.fail("dist/weir.wasm is missing: run scripts/build first")
    tmp = tmp_path_factory.mktemp("minimal")
    port, admin = free_port(), free_port()
    config = str(tmp / "minimal.yaml")
    doc = render_minimal(config, port, admin, int(mock_server.url.rsplit(":", 1)[1]))
    weir = json.loads(doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
                      ["http_filters"][0]["typed_config"]["config"]["configuration"]["value"])
    assert weir["providers"]["openai"]["host"] == "api.openai.com"  # kept: the mock dispatches on it
    log = str(tmp / "envoy.log")
    env = dict(os.environ, OPENAI_API_KEY=DUMMY_OPENAI_KEY)
    proc = start_envoy(config, str(tmp), log, port=port, admin_url=f"http://127.0.0.1:{admin}",
                       env=env, timeout=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def test_minimal_yaml_serves_the_readme_example(minimal_envoy, mock):
    answer = openai_client(minimal_envoy, DEMO_KEY).chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "hello minimal"}])
    assert answer.choices[0].message.content == "echo: hello minimal"

    (seen,) = mock.requests()
    assert seen["provider"] == "openai" and seen["status"] == 200 and not seen["errors"], seen
    assert seen["headers"]["host"] == "api.openai.com"
    assert seen["model"] == "gpt-4o-mini"
    # The provider key from Envoy's environment, in the authorization slot (the mock records sha12).
    assert seen["key_sha12"] == sha12(DUMMY_OPENAI_KEY)
    assert seen["headers"]["authorization"] == sha12(DUMMY_OPENAI_KEY)
    # The client's key went nowhere upstream.
    assert "sk-weir-" not in json.dumps(seen) and sha12(DEMO_KEY) not in json.dumps(seen)
