"""tests/rls, the rate limit service the global-limit tests rely on, checked on its own: its
reading of envoyproxy/ratelimit's configuration format, and exact counting under concurrent gRPC
calls against a real Redis (so a pass in test_global_limits.py means Envoy and weir did it)."""

from __future__ import annotations

import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import die_with_parent, free_port, stop
from rls.server import ConfigError, Code, find_limit, load_config, rls_pb2, rls_pb2_grpc, serve
from weir_rls_protos import ratelimit_pb2  # compiled by rls.server at import

CONFIG = """
domain: test
descriptors:
- key: generic_key
  value: requests
  descriptors:
  - key: weir_key
    value: vip
    rate_limit: {unlimited: true}
  - key: weir_key
    rate_limit: {unit: hour, requests_per_unit: 5}
    descriptors:
    - key: weir_model
      value: big
      rate_limit: {unit: hour, requests_per_unit: 2}
- key: generic_key
  value: tokens
  descriptors:
  - key: weir_key
    rate_limit: {unit: hour, requests_per_unit: 100}
"""


def write(tmp_path, text: str) -> str:
    path = tmp_path / "limits.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_lookup_takes_the_most_specific_configured_path(tmp_path):
    tree = load_config([write(tmp_path, CONFIG)])["test"]
    req = ("generic_key", "requests")
    assert find_limit(tree, [req, ("weir_key", "anyone")])[0].requests_per_unit == 5
    assert find_limit(tree, [req, ("weir_key", "anyone"), ("weir_model", "big")])[0].requests_per_unit == 2
    assert find_limit(tree, [req, ("weir_key", "anyone"), ("weir_model", "small")]) == (None, False)
    assert find_limit(tree, [req, ("weir_key", "vip")]) == (None, True)
    assert find_limit(tree, [req]) == (None, False)  # a path that stops early has no limit
    assert find_limit(tree, [("generic_key", "other"), ("weir_key", "x")]) == (None, False)


@pytest.mark.parametrize("text, error", [
    ("domain: d\ndescriptors: [{key: k, rate_limit: {unit: fortnight, requests_per_unit: 1}}]", "unit"),
    ("domain: d\ndescriptors: [{key: k, rate_limit: {unit: hour, requests_per_unit: -1}}]", "requests_per_unit"),
    ("domain: d\ndescriptors: [{key: k, ratelimit: {unit: hour}}]", "unknown field"),
    ("descriptors: []", "domain"),
    ("domain: d\ndescriptors: [{key: k, value: v}, {key: k, value: v}]", "duplicate"),
])
def test_invalid_configurations_are_refused_naming_the_field(tmp_path, text, error):
    with pytest.raises(ConfigError, match=error):
        load_config([write(tmp_path, text)])


CLOCK: list[float | None] = [None]  # set by a test to pin the service's clock; None: the wall clock


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rls")
    port = free_port()
    with open(tmp / "redis.log", "w") as out:
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=out, stderr=subprocess.STDOUT,
                                 preexec_fn=die_with_parent)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and redis.poll() is None, "redis-server did not start"
                time.sleep(0.1)
        config = tmp / "limits.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        server, rls_port = serve(0, load_config([str(config)]), f"redis://127.0.0.1:{port}/0",
                                 clock=lambda: time.time() if CLOCK[0] is None else CLOCK[0])
        channel = grpc.insecure_channel(f"127.0.0.1:{rls_port}")
        yield rls_pb2_grpc.RateLimitServiceStub(channel)
        channel.close()
        server.stop(grace=1)
    finally:
        stop(redis)


def call(stub, *descriptors, hits_addend: int = 0) -> rls_pb2.RateLimitResponse:
    msgs = []
    for entries, hits in descriptors:
        d = ratelimit_pb2.RateLimitDescriptor(
            entries=[ratelimit_pb2.RateLimitDescriptor.Entry(key=k, value=v) for k, v in entries])
        if hits is not None:
            d.hits_addend.value = hits
        msgs.append(d)
    return stub.ShouldRateLimit(rls_pb2.RateLimitRequest(domain="test", descriptors=msgs,
                                                         hits_addend=hits_addend), timeout=10)


def test_concurrent_calls_are_counted_exactly(service):
    key = [("generic_key", "requests"), ("weir_key", "burst")]
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(lambda _: call(service, (key, None)).overall_code, range(60)))
    assert codes.count(Code.OK) == 5 and codes.count(Code.OVER_LIMIT) == 55


def test_hits_addend_per_descriptor_and_a_zero_is_a_check(service):
    tokens = [("generic_key", "tokens"), ("weir_key", "t")]
    r = call(service, (tokens, 60))
    assert r.overall_code == Code.OK and r.statuses[0].limit_remaining == 40
    assert r.statuses[0].current_limit.requests_per_unit == 100
    assert 0 < r.statuses[0].duration_until_reset.seconds <= 3600
    assert call(service, (tokens, 0)).statuses[0].limit_remaining == 40  # adds nothing
    assert call(service, (tokens, None), hits_addend=30).statuses[0].limit_remaining == 10
    assert call(service, (tokens, 11)).overall_code == Code.OVER_LIMIT   # 40 + 30 + 11 > 100
    assert call(service, (tokens, 10)).overall_code == Code.OVER_LIMIT   # the refused 11 counted


def test_a_refusal_does_not_spend_the_other_descriptors(service):
    """A request over one limit is refused whole, and the limits that would have admitted it
    keep their room."""
    key = [("generic_key", "requests"), ("weir_key", "pair")]
    model = [*key, ("weir_model", "big")]
    assert [call(service, (key, None), (model, None)).overall_code for _ in range(3)] == [
        Code.OK, Code.OK, Code.OVER_LIMIT]
    # The key (5/hour) was charged twice, not three times: three more fit on another model.
    assert [call(service, (key, None)).overall_code for _ in range(4)] == [Code.OK] * 3 + [Code.OVER_LIMIT]


def test_a_descriptor_limit_override_replaces_the_configured_limit(service):
    d = ratelimit_pb2.RateLimitDescriptor(
        entries=[ratelimit_pb2.RateLimitDescriptor.Entry(key="anything", value="x")],
        limit=ratelimit_pb2.RateLimitDescriptor.RateLimitOverride(requests_per_unit=1, unit=3))  # 1/hour
    codes = [service.ShouldRateLimit(rls_pb2.RateLimitRequest(domain="test", descriptors=[d]), timeout=10).overall_code
             for _ in range(2)]
    assert codes == [Code.OK, Code.OVER_LIMIT]


def test_windows_follow_the_services_clock(service):
    """The clock decides the window (what `--clock-offset` shifts for the global-limit tests):
    10 s into an hour, the reset is 3590 s away; an hour later the count starts again."""
    tokens = [("generic_key", "tokens"), ("weir_key", "clock")]
    start = 1_900_000_800  # an hour's start (a multiple of 3600)
    try:
        CLOCK[0] = start + 10
        r = call(service, (tokens, 100))
        assert r.overall_code == Code.OK and r.statuses[0].duration_until_reset.seconds == 3590
        assert call(service, (tokens, 1)).overall_code == Code.OVER_LIMIT
        CLOCK[0] = start + 3599
        assert call(service, (tokens, 1)).statuses[0].duration_until_reset.seconds == 1
        CLOCK[0] = start + 3600
        r = call(service, (tokens, 1))
        assert r.overall_code == Code.OK and r.statuses[0].limit_remaining == 99
    finally:
        CLOCK[0] = None
