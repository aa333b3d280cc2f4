"""The Istio manifests (istio/) and the OCI packaging (scripts/package-oci), checked without a
cluster: every Istio resource against Istio's own CRD schemas, the Kubernetes resources for their
shape, the embedded weir configuration against istio/weir-config.json, the EnvoyFilter patches by
rebuilding the Envoy configuration they produce and running it in a real Envoy (weir must
configure, route by cluster name without endpoint metadata, and call the provider), and the OCI
image layout's index -> manifest -> layer chain."""

from __future__ import annotations

import copy
import glob
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jsonschema
import pytest
import yaml

from conftest import ROOT, WASM, envoy_binary, free_port, start_envoy, stop, tail

ISTIO = os.path.join(ROOT, "istio")
CONFIG_JSON = os.path.join(ISTIO, "weir-config.json")
# Istio's generated CRDs, kept outside the repo (see ../shared/istio/README.md).
CRDS = os.path.normpath(os.path.join(ROOT, "..", "shared", "istio", "customresourcedefinitions.gen.yaml"))
MODES = ["lb", "sidecar"]
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
# A client key of istio/weir-config.json (auth.keys "search-team" holds its sha256).
CLIENT_KEY = "sk-weir-example-search-team-CHANGE-ME"
# Fake provider keys given to the test Envoy's environment (the Secret's role in a cluster).
PROVIDER_ENV = {"OPENAI_API_KEY": "sk-istio-test-openai", "OPENAI_API_KEY_2": "sk-istio-test-openai-2",
                "ANTHROPIC_API_KEY": "sk-ant-istio-test", "VLLM_API_KEY": "vllm-istio-test-key"}

ISTIO_GROUPS = {"networking.istio.io", "security.istio.io", "extensions.istio.io", "telemetry.istio.io"}
CORE_KINDS = {  # kind -> apiVersion the manifests must use
    "Namespace": "v1", "Secret": "v1", "Service": "v1", "ServiceAccount": "v1",
    "Deployment": "apps/v1", "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}


# --- loading -------------------------------------------------------------------------------------

def manifest_files() -> list[str]:
    return sorted(glob.glob(os.path.join(ISTIO, "**", "*.yaml"), recursive=True))


def docs(mode: str | None = None) -> list[tuple[str, dict]]:
    """(file relative to istio/, resource) for every resource, optionally of one mode's folder."""
    out = []
    for path in manifest_files():
        rel = os.path.relpath(path, ISTIO)
        if mode and not rel.startswith(mode + os.sep):
            continue
        with open(path, encoding="utf-8") as f:
            out.extend((rel, d) for d in yaml.safe_load_all(f) if d is not None)
    return out


def of_kind(mode: str, kind: str) -> list[dict]:
    return [d for _, d in docs(mode) if d.get("kind") == kind]


def weir_config() -> dict:
    with open(CONFIG_JSON, encoding="utf-8") as f:
        return json.load(f)


def envoy_filter(mode: str) -> dict:
    (ef,) = of_kind(mode, "EnvoyFilter")
    return ef


def patches(mode: str, apply_to: str) -> list[dict]:
    return [p for p in envoy_filter(mode)["spec"]["configPatches"] if p["applyTo"] == apply_to]


def extension_configs(mode: str) -> dict[str, dict]:
    """ECDS resources of the mode's EnvoyFilter by root_id: {"name", "typed_config"}."""
    out = {}
    for p in patches(mode, "EXTENSION_CONFIG"):
        value = p["patch"]["value"]
        assert value["typed_config"]["@type"] == WASM_TYPE
        out[value["typed_config"]["config"]["root_id"]] = value
    return out


def target_clusters() -> set[str]:
    return {t["cluster"] for m in weir_config()["models"] for t in m["targets"]}


def parse_cluster(name: str) -> tuple[int, str]:
    direction, port, subset, host = name.split("|")
    assert direction == "outbound" and subset == "", name
    return int(port), host


# --- the files -----------------------------------------------------------------------------------

def test_both_modes_are_shipped():
    for mode in MODES:
        kinds = {d["kind"] for _, d in docs(mode)}
        assert {"EnvoyFilter", "ServiceEntry", "DestinationRule", "VirtualService", "Secret"} <= kinds, mode
    assert {"Deployment", "Service", "PodDisruptionBudget", "Gateway", "PeerAuthentication",
            "NetworkPolicy"} <= {d["kind"] for _, d in docs("lb")}


def test_every_file_starts_with_a_comment():
    for path in manifest_files():
        with open(path, encoding="utf-8") as f:
            assert f.readline().startswith("# "), f"{path}: start with a comment saying what it is"


def test_no_wasmplugin_is_shipped():
    """WasmPlugin/TrafficExtension cannot set allow_on_headers_stop_iteration: with them weir
    would hang every request (the body never reaches a filter paused on headers)."""
    for rel, d in docs():
        assert d["kind"] not in ("WasmPlugin", "TrafficExtension"), rel


# --- Istio CRD schemas ---------------------------------------------------------------------------

def strict(schema):
    """A Kubernetes structural schema as plain JSON Schema: drops x-kubernetes-* keywords (CEL
    rules are not evaluated here), keeps `x-kubernetes-preserve-unknown-fields` objects open and
    closes every other object with properties, as the API server's strict field validation does."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if "properties" in out and "additionalProperties" not in out \
            and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def crd_schemas() -> dict[tuple[str, str, str], dict]:
    if not os.path.exists(CRDS):
        pytest.skip(f"Istio's CRD file is absent ({CRDS}); see ../shared/istio/README.md")
    out = {}
    with open(CRDS, encoding="utf-8") as f:
        for crd in yaml.safe_load_all(f):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                if v.get("served"):
                    spec = v["schema"]["openAPIV3Schema"]["properties"]["spec"]
                    out[(group, v["name"], kind)] = strict(spec)
    return out


ISTIO_DOCS = [(rel, d) for rel, d in docs() if d["apiVersion"].split("/")[0] in ISTIO_GROUPS]


@pytest.mark.parametrize("rel,doc", ISTIO_DOCS,
                         ids=[f"{rel}:{d['kind']}/{d['metadata']['name']}" for rel, d in ISTIO_DOCS])
def test_istio_resources_match_istios_crd_schema(rel, doc, crd_schemas):
    group, version = doc["apiVersion"].split("/")
    schema = crd_schemas.get((group, version, doc["kind"]))
    assert schema is not None, f"{rel}: no served CRD version {doc['apiVersion']} {doc['kind']}"
    assert doc["metadata"].get("name") and doc["metadata"].get("namespace"), rel
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc["spec"]), key=lambda e: list(e.path))
    assert not errors, f"{rel} {doc['kind']}/{doc['metadata']['name']}:\n" + "\n".join(
        f"  spec.{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_schema_check_catches_mistakes(crd_schemas):
    """The strict conversion must reject a misspelt field and accept open (preserve) objects."""
    de = crd_schemas[("networking.istio.io", "v1", "DestinationRule")]
    assert list(jsonschema.Draft7Validator(de).iter_errors({"host": "x", "trafficPolicy": {"tls": {"mode": "SIMPLE"}}})) == []
    assert list(jsonschema.Draft7Validator(de).iter_errors({"host": "x", "trafficPolicy": {"tsl": {}}}))
    ef = crd_schemas[("networking.istio.io", "v1alpha3", "EnvoyFilter")]
    assert list(jsonschema.Draft7Validator(ef).iter_errors(
        {"configPatches": [{"applyTo": "CLUSTER", "patch": {"operation": "MERGE", "value": {"anything": 1}}}]})) == []


def test_wasmplugin_cannot_express_allow_on_headers_stop_iteration(crd_schemas):
    """Why weir is installed with an EnvoyFilter (revisit if Istio adds the field)."""
    for kind in ("WasmPlugin", "TrafficExtension"):
        text = json.dumps(crd_schemas[("extensions.istio.io", "v1alpha1", kind)]).lower()
        assert "stop_iteration" not in text and "stopiteration" not in text, kind


# --- core Kubernetes resources -------------------------------------------------------------------

CORE_DOCS = [(rel, d) for rel, d in docs() if d["apiVersion"].split("/")[0] not in ISTIO_GROUPS]


@pytest.mark.parametrize("rel,doc", CORE_DOCS, ids=[f"{rel}:{d['kind']}/{d['metadata']['name']}" for rel, d in CORE_DOCS])
def test_core_resources_have_the_expected_api_version(rel, doc):
    assert doc["kind"] in CORE_KINDS, f"{rel}: unexpected kind {doc['kind']}"
    assert doc["apiVersion"] == CORE_KINDS[doc["kind"]], rel
    assert doc["metadata"].get("name"), rel
    if doc["kind"] != "Namespace":
        assert doc["metadata"].get("namespace"), rel


def test_lb_gateway_deployment_service_and_pdb_fit_together():
    (dep,) = of_kind("lb", "Deployment")
    (svc,) = of_kind("lb", "Service")
    (pdb,) = of_kind("lb", "PodDisruptionBudget")
    (gw,) = of_kind("lb", "Gateway")
    (np,) = of_kind("lb", "NetworkPolicy")
    (ef,) = of_kind("lb", "EnvoyFilter")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["metadata"]["annotations"]["inject.istio.io/templates"] == "gateway"
    for selector in (dep["spec"]["selector"]["matchLabels"], svc["spec"]["selector"],
                     pdb["spec"]["selector"]["matchLabels"], gw["spec"]["selector"],
                     np["spec"]["podSelector"]["matchLabels"], ef["spec"]["workloadSelector"]["labels"]):
        assert selector.items() <= pod_labels.items(), selector
    assert pdb["spec"]["minAvailable"] < dep["spec"]["replicas"]
    target = svc["spec"]["ports"][0]["targetPort"]
    proxy = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "istio-proxy")
    assert target in {p["containerPort"] for p in proxy["ports"]}
    assert {"port": target, "protocol": "TCP"} in [p for r in np["spec"]["ingress"] for p in r["ports"]]
    (server,) = gw["spec"]["servers"]
    assert server["tls"]["mode"] == "ISTIO_MUTUAL" and server["port"]["number"] == svc["spec"]["ports"][0]["port"]
    (pa,) = of_kind("lb", "PeerAuthentication")
    assert pa["spec"]["mtls"]["mode"] == "STRICT"


@pytest.mark.parametrize("mode", MODES)
def test_provider_keys_reach_the_wasm_vm(mode):
    """Every {"env": NAME} of weir's configuration is in host_env_keys and in the istio-proxy
    container's environment, from the provider-keys Secret, which has that key."""
    names = set()

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"env"}:
                names.add(node["env"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(weir_config()["providers"])
    assert names
    for root_id, ext in extension_configs(mode).items():
        keys = set(ext["typed_config"]["config"]["vm_config"]["environment_variables"]["host_env_keys"])
        assert names <= keys, (mode, root_id, names - keys)
    secret = next(s for s in of_kind(mode, "Secret") if s["metadata"]["name"] == "weir-provider-keys")
    (dep,) = [d for d in of_kind(mode, "Deployment")]
    proxy = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "istio-proxy")
    assert proxy["image"] == "auto"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in proxy["env"]}
    for name in names:
        assert env[name]["name"] == "weir-provider-keys", name
        assert env[name]["key"] in secret["stringData"], name


# --- weir's configuration: one source ------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_embedded_config_equals_weir_config_json(mode):
    exts = extension_configs(mode)
    assert set(exts) == {"weir-gateway", "weir-provider"}
    for root_id, ext in exts.items():
        config = ext["typed_config"]["config"]
        embedded = json.loads(config["configuration"]["value"])
        assert embedded == weir_config(), (
            f"istio/{mode}: the {root_id} configuration differs from istio/weir-config.json; "
            "run scripts/istio-sync-config")
        assert config["name"] == root_id
        assert config["allow_on_headers_stop_iteration"] is True, "without it weir hangs every request"
        assert config["fail_open"] is False
        assert config["vm_config"]["vm_id"] == "weir" and config["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    vms = [e["typed_config"]["config"]["vm_config"] for e in exts.values()]
    assert vms[0] == vms[1], "both roles must share one VM (same vm_id, code and environment)"


def test_sync_script_agrees():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "istio-sync-config"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("mode", MODES)
def test_every_target_cluster_is_an_istio_cluster_with_weir_provider(mode):
    """Each target's "cluster" is the name Istio gives a ServiceEntry port (outbound|P||host); that
    port is HTTP with TLS origination, and a CLUSTER patch puts weir-provider on it."""
    entries = of_kind(mode, "ServiceEntry")
    rules = {r["spec"]["host"]: r for r in of_kind(mode, "DestinationRule")}
    cluster_patches = {(p["match"]["cluster"]["service"], p["match"]["cluster"]["portNumber"]): p
                       for p in patches(mode, "CLUSTER")}
    providers = weir_config()["providers"]
    for model in weir_config()["models"]:
        for t in model["targets"]:
            port, host = parse_cluster(t["cluster"])
            assert providers[t["provider"]]["host"] == host, t
            (se,) = [e for e in entries if host in e["spec"]["hosts"]]
            (sp,) = [p for p in se["spec"]["ports"] if p["number"] == port]
            assert sp["protocol"] == "HTTP", "upstream filters need an HTTP cluster"
            (pls,) = [s for s in rules[host]["spec"]["trafficPolicy"]["portLevelSettings"] if s["port"]["number"] == port]
            assert pls["tls"]["mode"] == "SIMPLE" and pls["tls"]["sni"] == host
            outlier = rules[host]["spec"]["trafficPolicy"]["outlierDetection"]
            assert outlier["consecutive5xxErrors"] > 0
            assert "http" in rules[host]["spec"]["trafficPolicy"]["connectionPool"]
            patch = cluster_patches[(host, port)]
            assert patch["patch"]["operation"] == "MERGE"
            filters = patch["patch"]["value"]["typed_extension_protocol_options"][PROTOCOL_OPTIONS]["http_filters"]
            assert filters[0]["name"] == extension_configs(mode)["weir-provider"]["name"]
            assert filters[-1]["name"] == "envoy.filters.http.upstream_codec"
    # The fallback needs one target per cluster in each model.
    for model in weir_config()["models"]:
        clusters = [t["cluster"] for t in model["targets"]]
        assert len(clusters) == len(set(clusters)), f"{model['name']}: two targets share a cluster"


@pytest.mark.parametrize("mode", MODES)
def test_gateway_filter_and_route_patches(mode):
    (hf,) = patches(mode, "HTTP_FILTER")
    assert hf["patch"]["operation"] == "INSERT_BEFORE"
    assert hf["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == "envoy.filters.http.router"
    assert hf["patch"]["value"]["name"] == extension_configs(mode)["weir-gateway"]["name"]
    if mode == "sidecar":  # only weir's own outbound port, never the app's other traffic
        (se,) = [e for e in of_kind(mode, "ServiceEntry") if e["spec"]["hosts"] == ["llm.weir.internal"]]
        assert hf["match"]["listener"]["portNumber"] == se["spec"]["ports"][0]["number"]
    (rp,) = patches(mode, "HTTP_ROUTE")
    (vs,) = of_kind(mode, "VirtualService")
    assert rp["match"]["routeConfiguration"]["vhost"]["route"]["name"] == vs["spec"]["http"][0]["name"]
    assert "directResponse" in vs["spec"]["http"][0], "unpatched, the route must fail closed"
    assert rp["patch"]["value"]["route"]["cluster_header"] == "x-weir-cluster"


# --- the Envoy configuration the patches produce -------------------------------------------------

def merge(dst: dict, src: dict) -> dict:
    """EnvoyFilter MERGE, for the shapes used here: messages merge, lists append, map entries
    (typed_extension_protocol_options) are replaced whole."""
    for k, v in src.items():
        if k == "typed_extension_protocol_options":
            dst.setdefault(k, {}).update(copy.deepcopy(v))
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        elif isinstance(v, list) and isinstance(dst.get(k), list):
            dst[k] = dst[k] + copy.deepcopy(v)
        else:
            dst[k] = copy.deepcopy(v)
    return dst


def as_fetched_by_istio_agent(ext: dict) -> dict:
    """The ECDS resource as Envoy gets it from istio-agent: the remote module becomes a local file."""
    ext = copy.deepcopy(ext)
    vm = ext["typed_config"]["config"]["vm_config"]
    assert vm["code"]["remote"]["http_uri"]["uri"].startswith(("oci://", "https://"))
    vm["code"] = {"local": {"filename": WASM}}
    return ext


def ecds_file(tmp_path, ext: dict) -> str:
    path = str(tmp_path / (ext["name"].replace("/", "_") + ".json"))
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"resources": [dict(ext, **{"@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"})]}, f)
    return path


def from_file(discovery: dict, path: str) -> dict:
    """A filter's config_discovery with ADS swapped for a file (no istiod here)."""
    d = copy.deepcopy(discovery)
    assert "ads" in d["config_source"]
    d["config_source"] = {"path_config_source": {"path": path}, "initial_fetch_timeout": "0s"}
    return d


def istio_like_cluster(name: str, address: str, port: int, tls: bool) -> dict:
    """Roughly what Istio builds for a DNS ServiceEntry port with the DestinationRule applied."""
    _, host = parse_cluster(name)
    cluster = {
        "name": name, "type": "STRICT_DNS", "connect_timeout": "10s", "dns_lookup_family": "V4_ONLY",
        "circuit_breakers": {"thresholds": [{"max_connections": 1024, "max_pending_requests": 1024,
                                             "max_requests": 1024, "max_retries": 64}]},
        "outlier_detection": {"consecutive_5xx": 5, "consecutive_gateway_failure": 5, "interval": "10s",
                              "base_ejection_time": "30s", "max_ejection_percent": 50},
        "typed_extension_protocol_options": {PROTOCOL_OPTIONS: {
            "@type": "type.googleapis.com/" + PROTOCOL_OPTIONS,
            "common_http_protocol_options": {"idle_timeout": "3600s"},
            "use_downstream_protocol_config": {"http_protocol_options": {}}}},
        # Istio's own endpoint metadata, not weir's: weir must fall back to the cluster name.
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{
            "endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}},
            "metadata": {"filter_metadata": {"istio": {"workload": "weir-test"}}}}]}]},
    }
    if tls:
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": host, "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": "/etc/ssl/certs/ca-certificates.crt"},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": host}}]}}}}
    return cluster


def patched_clusters(mode: str, tmp_path, address: str, port: int, tls: bool, ecds: bool) -> list[dict]:
    """Every provider cluster after the mode's CLUSTER patches. `ecds`: keep config_discovery over
    ADS as patched (for --mode validate), else read weir-provider's config from a file."""
    provider_ext = as_fetched_by_istio_agent(extension_configs(mode)["weir-provider"])
    out = []
    for p in patches(mode, "CLUSTER"):
        m = p["match"]["cluster"]
        cluster = merge(istio_like_cluster(f"outbound|{m['portNumber']}||{m['service']}", address, port, tls),
                        p["patch"]["value"])
        if not ecds:
            for f in cluster["typed_extension_protocol_options"][PROTOCOL_OPTIONS]["http_filters"]:
                if "config_discovery" in f:
                    f["config_discovery"] = from_file(f["config_discovery"], ecds_file(tmp_path, provider_ext))
        out.append(cluster)
    assert {c["name"] for c in out} == target_clusters()
    return out


def ads_bootstrap() -> dict:
    """Node identity and an ADS source, as istio-agent's bootstrap has (no server needed to validate)."""
    return {
        "node": {"id": "router~10.0.0.1~weir-gateway-0.weir~weir.svc.cluster.local", "cluster": "weir-gateway.weir"},
        "dynamic_resources": {"ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                                             "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]}},
    }


def xds_grpc_cluster() -> dict:
    return {"name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
            "typed_extension_protocol_options": {PROTOCOL_OPTIONS: {
                "@type": "type.googleapis.com/" + PROTOCOL_OPTIONS,
                "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 15010}}}}]}]}}


def need_wasm():
    if not os.path.exists(WASM):
        pytest.skip("dist/weir.wasm is missing: run scripts/build first")


@pytest.mark.parametrize("mode", MODES)
def test_cluster_patches_validate_in_envoy(mode, tmp_path):
    """The provider clusters as the CLUSTER patches leave them (TLS origination, breakers,
    outlier detection, weir-provider over ECDS/ADS, upstream codec) pass `envoy --mode validate`."""
    need_wasm()
    boot = ads_bootstrap()
    boot["static_resources"] = {"clusters": [xds_grpc_cluster()] + patched_clusters(
        mode, tmp_path, "api.example.invalid", 443, tls=True, ecds=True)}
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps(boot))
    r = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0 and "OK" in r.stdout + r.stderr, r.stdout + r.stderr
    assert "Deprecated field" not in r.stdout + r.stderr


class FakeVllm(BaseHTTPRequestHandler):
    """An OpenAI-compatible server standing in for every provider cluster; records requests."""
    seen: list[dict] = []

    def read_body(self) -> bytes:
        if "chunked" not in self.headers.get("transfer-encoding", "").lower():
            return self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            chunk = self.rfile.read(size + 2)[:size]  # data, then CRLF
            if not size:
                return body
            body += chunk

    def do_POST(self):  # noqa: N802
        body = self.read_body()
        FakeVllm.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                              "body": json.loads(body or b"{}")})
        answer = json.dumps({
            "id": "chatcmpl-istio", "object": "chat.completion", "created": 1700000000,
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello from vllm"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_provider():
    FakeVllm.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVllm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", MODES)
def test_envoy_runs_the_istio_configuration(mode, tmp_path, fake_provider):
    """A real Envoy with what the mode's EnvoyFilter produces: both ECDS resources (module made
    local as istio-agent does), weir-gateway where the HTTP_FILTER patch puts it, the patched
    route and provider clusters (no weir endpoint metadata, as under Istio). weir must accept
    istio/weir-config.json in both roles, and a request for the vLLM model must arrive at that
    cluster translated and carrying the key from the environment."""
    need_wasm()
    exts = {k: as_fetched_by_istio_agent(v) for k, v in extension_configs(mode).items()}
    (hf,) = patches(mode, "HTTP_FILTER")
    gateway_filter = {"name": hf["patch"]["value"]["name"],
                      "config_discovery": from_file(hf["patch"]["value"]["config_discovery"],
                                                    ecds_file(tmp_path, exts["weir-gateway"]))}
    (rp,) = patches(mode, "HTTP_ROUTE")
    route = merge({"name": "weir", "match": {"prefix": "/"}}, rp["patch"]["value"])
    port, admin = free_port(), free_port()
    boot = {
        "node": ads_bootstrap()["node"],  # file-based ECDS needs a node identity too
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{"name": "weir", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                           "filter_chains": [{"filters": [{
                               "name": "envoy.filters.network.http_connection_manager",
                               "typed_config": {
                                   "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                   "stat_prefix": "weir",
                                   "route_config": {"name": "weir", "virtual_hosts": [
                                       {"name": "weir", "domains": ["*"], "routes": [route]}]},
                                   "http_filters": [gateway_filter, {
                                       "name": "envoy.filters.http.router",
                                       "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                               }}]}]}],
            "clusters": patched_clusters(mode, tmp_path, "127.0.0.1", fake_provider, tls=False, ecds=False),
        },
    }
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(boot))
    log = str(tmp_path / "envoy.log")
    env = dict(os.environ, **PROVIDER_ENV)
    proc = start_envoy(str(config), str(tmp_path), log, port=port, admin_url=f"http://127.0.0.1:{admin}",
                       log_args=("--log-level", "info"), env=env, timeout=30)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        request = {"model": "llama-3.1-8b", "messages": [{"role": "user", "content": "hi"}]}
        # weir-gateway is on the listener: no client key, no service.
        assert httpx.post(url, json=request, timeout=10).status_code == 401
        r = httpx.post(url, json=request, headers={"authorization": f"Bearer {CLIENT_KEY}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "hello from vllm"
        (seen,) = FakeVllm.seen
        assert seen["path"] == "/v1/chat/completions"
        assert seen["headers"]["host"] == "vllm.gpu.example.internal"
        assert seen["headers"]["authorization"] == "Bearer " + PROVIDER_ENV["VLLM_API_KEY"]
        assert seen["body"]["model"] == "meta-llama/Llama-3.1-8B-Instruct"
        assert not any(h.startswith("x-weir-") for h in seen["headers"])
    finally:
        stop(proc)
    text = open(log, encoding="utf-8", errors="replace").read()
    assert "weir: weir-gateway configured" in text, tail(log)
    assert "weir: weir-provider configured" in text, tail(log)
    assert "invalid configuration" not in text, tail(log)
    for secret in (CLIENT_KEY, *PROVIDER_ENV.values()):
        assert secret not in text


# --- scripts/package-oci -------------------------------------------------------------------------

def blob(layout: str, digest: str) -> bytes:
    algo, hexdigest = digest.split(":")
    assert algo == "sha256"
    with open(os.path.join(layout, "blobs", "sha256", hexdigest), "rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == hexdigest, f"blob {digest} does not match its name"
    return data


def test_package_oci_layout(tmp_path):
    need_wasm()
    layout = str(tmp_path / "oci")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "package-oci"), "--out", layout,
                        "--tag", "v-test"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(WASM, "rb") as f:
        wasm = f.read()
    with open(os.path.join(layout, "oci-layout"), encoding="utf-8") as f:
        assert json.load(f) == {"imageLayoutVersion": "1.0.0"}
    with open(os.path.join(layout, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    assert index["schemaVersion"] == 2
    (desc,) = index["manifests"]
    assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "v-test"
    manifest_bytes = blob(layout, desc["digest"])
    assert len(manifest_bytes) == desc["size"]
    manifest = json.loads(manifest_bytes)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == desc["mediaType"]
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    config = manifest["config"]
    assert config["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config_bytes = blob(layout, config["digest"])
    assert len(config_bytes) == config["size"]
    (layer,) = manifest["layers"]  # compat variant: exactly one layer
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    layer_bytes = blob(layout, layer["digest"])
    assert len(layer_bytes) == layer["size"]
    tar_bytes = gzip.decompress(layer_bytes)
    assert json.loads(config_bytes)["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        (member,) = tar.getmembers()
        assert member.name == "plugin.wasm" and member.isfile()
        assert tar.extractfile(member).read() == wasm
    # No stray blobs; the printed digests are the ones to pin.
    assert sorted(os.listdir(os.path.join(layout, "blobs", "sha256"))) == sorted(
        d.split(":")[1] for d in (desc["digest"], config["digest"], layer["digest"]))
    assert desc["digest"] in r.stdout and hashlib.sha256(wasm).hexdigest() in r.stdout
    # Reproducible: the same module gives the same manifest digest.
    again = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "package-oci"), "--out",
                            str(tmp_path / "oci2"), "--tag", "v-test"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and desc["digest"] in again.stdout
