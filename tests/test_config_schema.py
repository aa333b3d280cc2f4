"""The plugin configuration's JSON Schema (filter/schema/weir-config.schema.json, for editors)
against every configuration the project ships, and a real Envoy refusing a bad configuration
with a log line that names the offending field."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import jsonschema
import pytest
import yaml

from conftest import ROOT, WASM, envoy_binary, free_port

SCHEMA = json.load(open(os.path.join(ROOT, "filter", "schema", "weir-config.schema.json"), encoding="utf-8"))


def plugin_configs(node):
    """Every weir plugin configuration JSON string inside a loaded Envoy or Istio YAML."""
    if isinstance(node, dict):
        config = node.get("configuration")
        if isinstance(config, dict) and isinstance(config.get("value"), str) and node.get("root_id", "").startswith("weir-"):
            yield config["value"]
        for v in node.values():
            yield from plugin_configs(v)
    elif isinstance(node, list):
        for v in node:
            yield from plugin_configs(v)


def shipped() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "envoy", "*.yaml")) + glob.glob(os.path.join(ROOT, "istio", "*", "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                for text in plugin_configs(doc):
                    found.append((os.path.relpath(path, ROOT), json.loads(text)))
    for path in [os.path.join(ROOT, "istio", "weir-config.json"), os.path.join(ROOT, "tests", "bench", "weir-config.json")]:
        if os.path.exists(path):
            found.append((os.path.relpath(path, ROOT), json.load(open(path, encoding="utf-8"))))
    # scripts/bench's translation-only scenario derives its configuration from the bench's.
    bench = os.path.join(ROOT, "tests", "bench")
    if os.path.exists(os.path.join(bench, "weir-config.json")):
        sys.path.insert(0, bench)
        try:
            from bench import translation_only
        finally:
            sys.path.remove(bench)
        found.append(("tests/bench/bench.py translation_only",
                      translation_only(json.load(open(os.path.join(bench, "weir-config.json"), encoding="utf-8")))))
    return found


def test_the_schema_is_valid_and_every_shipped_configuration_matches_it():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    configs = shipped()
    names = {name for name, _ in configs}
    assert {"envoy/demo.yaml", "envoy/minimal.yaml", "istio/weir-config.json"} <= names, names
    for name, config in configs:
        errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config), key=str)
        assert not errors, f"{name}: {errors[0].message} at {list(errors[0].absolute_path)}"


@pytest.mark.parametrize("bad", [
    {"providers": {"p": {"type": "openai", "hots": "x"}}},
    {"providers": {"p": {"type": "claude"}}},
    {"models": [{"name": "m", "targets": [{"provider": "p", "wieght": 2}]}]},
    {"auth": {"keys": [{"id": "a", "sha256": "not-hex"}]}},
    {"pii": {"default_action": "scramble"}},
    {"debug": True},
    {"cache": {"scope": "everyone"}},
    {"cache": {"routes": {"m": {"ttl": 5}}}},
])
def test_the_schema_rejects_what_the_filter_rejects(bad):
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(bad)), bad


def test_envoy_refuses_an_invalid_configuration_naming_the_field(tmp_path):
    if not os.path.exists(WASM):
        pytest.skip("dist/weir.wasm is missing: run scripts/build")
    bad = json.dumps({"providers": {"oa": {"type": "openai", "hots": "api.openai.com"}}})
    config = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": free_port()}}},
        "static_resources": {"listeners": [{
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": free_port()}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "t",
                    "route_config": {"virtual_hosts": [{"name": "a", "domains": ["*"],
                                                        "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
                    "http_filters": [
                        {"name": "envoy.filters.http.wasm", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                            "config": {"root_id": "weir-gateway", "allow_on_headers_stop_iteration": True,
                                       "vm_config": {"vm_id": "weir", "runtime": "envoy.wasm.runtime.v8",
                                                     "code": {"local": {"filename": WASM}}},
                                       "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": bad}}}},
                        {"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]},
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([envoy_binary(), "-c", str(path), "--concurrency", "1", "-l", "info"],
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, "Envoy must not start with an invalid weir configuration"
    assert "weir: invalid configuration: providers.oa.hots" in out, out[-2000:]
