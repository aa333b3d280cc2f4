"""Every shipped Envoy configuration passes `envoy --mode validate` with the built filter, and
after the whole session Envoy's logs hold no client or provider key."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import time

import openai
import pytest
import yaml

import render_envoy
from conftest import ROOT, WASM, envoy_binary
from weir_clients import CLIENT_KEYS, DEMO_KEY, PROVIDER_KEYS, openai_client

CONFIGS = sorted(glob.glob(os.path.join(ROOT, "envoy", "*.yaml")))


def test_there_are_configs():
    assert {"demo.yaml", "minimal.yaml", "central-lb.yaml", "central-lb-front.yaml"} <= {
        os.path.basename(c) for c in CONFIGS}


def seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(c) for c in CONFIGS])
def test_client_connections_are_bounded(path):
    """Idle or trickling clients cannot hold connections forever, nor take them all."""
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    monitors = doc.get("overload_manager", {}).get("resource_monitors", [])
    caps = [m["typed_config"].get("max_active_downstream_connections") for m in monitors
            if m.get("name") == "envoy.resource_monitors.global_downstream_max_connections"]
    assert caps and 0 < caps[0] <= 50_000, path
    for listener in doc["static_resources"]["listeners"]:
        assert listener.get("per_connection_buffer_limit_bytes", 0) > 0, (path, listener["name"])
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                if f["name"] != "envoy.filters.network.http_connection_manager":
                    continue
                hcm = f["typed_config"]
                assert 0 < seconds(hcm.get("request_headers_timeout", "0s")) <= 30, path
                assert 0 < seconds(hcm.get("request_timeout", "0s")) <= 300, path
                idle = hcm.get("common_http_protocol_options", {}).get("idle_timeout", "0s")
                assert 0 < seconds(idle) <= 3600, path


def test_a_client_trickling_its_headers_is_cut_off(envoy):
    """Slowloris: one header line every 2 s never completes the request; Envoy closes the
    connection at request_headers_timeout (10 s in demo.yaml), not when the client stops."""
    host, port = envoy.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: weir\r\n")
        closed_after = None
        for i in range(15):  # 30 s of trickling at most
            try:
                sock.sendall(f"x-slow-{i}: {i}\r\n".encode())
                sock.settimeout(2)
                data = sock.recv(4096)
                if not data or data.startswith(b"HTTP/1.1 408"):
                    closed_after = time.monotonic() - started
                    break
            except socket.timeout:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "Envoy kept a trickling connection open for 30 s"
    assert 8 <= closed_after <= 15, closed_after


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(c) for c in CONFIGS])
def test_validates(path, tmp_path):
    if not os.path.exists(WASM):
        pytest.fail("dist/weir.wasm is missing: run scripts/build first")
    rendered = render_envoy.render(path, str(tmp_path / os.path.basename(path)), wasm=WASM)
    r = subprocess.run([envoy_binary(), "--mode", "validate", "-c", rendered, "--log-level", "warn"],
                       capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout + r.stderr
    assert "Deprecated field" not in r.stdout + r.stderr


def test_committed_configs_run_from_the_repo_root():
    """`envoy -c envoy/demo.yaml` from the repo root must work as committed: relative wasm path
    (in every config that loads weir; central-lb-front.yaml is a plain balancer), default ports."""
    for path in CONFIGS:
        text = open(path, encoding="utf-8").read()
        assert "port_value: 10000" in text, path
        if not path.endswith("central-lb-front.yaml"):
            assert "filename: dist/weir.wasm" in text, path


@pytest.mark.late(2)
def test_no_key_in_envoy_logs(envoy):
    # Traffic with every client key first, so this never passes on an empty log.
    openai_client(envoy.url, DEMO_KEY).chat.completions.create(
        model="mock-openai", messages=[{"role": "user", "content": "log check"}])
    for key in (*[k for k in CLIENT_KEYS if k != DEMO_KEY], "sk-weir-wrong"):
        try:
            openai_client(envoy.url, key).chat.completions.create(
                model="mock-openai", messages=[{"role": "user", "content": "log check"}])
        except openai.APIStatusError:
            pass  # 429 after the limit tests, 403 for a key not allowed mock-openai, 401 for the wrong key
    time.sleep(1)  # access logs are flushed every 250 ms (--file-flush-interval-msec)
    envoy.stop()   # and on exit
    logs = {p: open(p, encoding="utf-8", errors="replace").read() for p in (envoy.log, envoy.access_log)}
    assert "log check" not in logs[envoy.log]  # weir does not log prompts at debug level either
    assert logs[envoy.access_log].count("\n") >= 3, "the access log saw no traffic"
    for path, text in logs.items():
        for secret in (*CLIENT_KEYS, "sk-weir-wrong", *PROVIDER_KEYS):
            assert secret not in text, f"{secret!r} appears in {path}"
