"""The gRPC servicer and the limit lookup; `python -m rls` runs it (see __main__.py).

Protocol messages are compiled from the trimmed copies of Envoy's protos in protos/ when this
module is imported (grpcio-tools' runtime import), so there is no generated code to go stale
against the installed protobuf runtime.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import redis
import yaml

_PROTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "protos")
if _PROTOS not in sys.path:
    sys.path.append(_PROTOS)
rls_pb2, rls_pb2_grpc = grpc.protos_and_services("weir_rls_protos/rls.proto")

Code = rls_pb2.RateLimitResponse.Code
Unit = rls_pb2.RateLimitResponse.RateLimit.Unit

# Window lengths as envoyproxy/ratelimit uses them (a month is 30 days, a year 365).
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400,
                "month": 30 * 86400, "year": 365 * 86400}
UNIT_ENUM = {"second": Unit.SECOND, "minute": Unit.MINUTE, "hour": Unit.HOUR, "day": Unit.DAY,
             "month": Unit.MONTH, "year": Unit.YEAR}
ENUM_UNIT = {int(v): k for k, v in UNIT_ENUM.items()}


class ConfigError(ValueError):
    pass


@dataclass
class Limit:
    requests_per_unit: int
    unit: str
    name: str = ""
    shadow: bool = False


@dataclass
class Node:
    limit: Limit | None = None
    unlimited: bool = False
    children: dict[str, "Node"] = field(default_factory=dict)  # "key" or "key_value"


def _check_keys(obj: dict, allowed: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(obj) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")


def _parse_descriptors(items, where: str) -> dict[str, Node]:
    out: dict[str, Node] = {}
    for i, d in enumerate(items or []):
        at = f"{where}[{i}]"
        _check_keys(d, {"key", "value", "rate_limit", "descriptors", "shadow_mode", "detailed_metric"}, at)
        if not d.get("key"):
            raise ConfigError(f"{at}.key: required")
        node = Node(children=_parse_descriptors(d.get("descriptors"), f"{at}.descriptors"))
        rl = d.get("rate_limit")
        if rl is not None:
            _check_keys(rl, {"unit", "requests_per_unit", "unlimited", "name"}, f"{at}.rate_limit")
            if rl.get("unlimited"):
                node.unlimited = True
            else:
                unit = str(rl.get("unit", "")).lower()
                if unit not in UNIT_SECONDS:
                    raise ConfigError(f"{at}.rate_limit.unit: one of {sorted(UNIT_SECONDS)}")
                n = rl.get("requests_per_unit")
                if not isinstance(n, int) or n < 0:
                    raise ConfigError(f"{at}.rate_limit.requests_per_unit: a whole number >= 0")
                node.limit = Limit(n, unit, str(rl.get("name", "")), bool(d.get("shadow_mode")))
        name = d["key"] + ("_" + str(d["value"]) if d.get("value") not in (None, "") else "")
        if name in out:
            raise ConfigError(f"{at}: duplicate descriptor {name!r}")
        out[name] = node
    return out


def load_config(paths: list[str]) -> dict[str, dict[str, Node]]:
    """Domains to descriptor trees, from envoyproxy/ratelimit-format YAML files."""
    domains: dict[str, dict[str, Node]] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        _check_keys(doc, {"domain", "descriptors"}, path)
        domain = doc.get("domain")
        if not domain:
            raise ConfigError(f"{path}: domain: required")
        if domain in domains:
            raise ConfigError(f"{path}: domain {domain!r} defined twice")
        domains[domain] = _parse_descriptors(doc.get("descriptors"), f"{path}: descriptors")
    return domains


def find_limit(tree: dict[str, Node], entries: list[tuple[str, str]]) -> tuple[Limit | None, bool]:
    """(limit, unlimited) for a descriptor: the node reached by matching every entry in order,
    an exact `key_value` before a value-less `key`; nothing when the path runs out early."""
    level = tree
    for i, (key, value) in enumerate(entries):
        node = level.get(f"{key}_{value}") or level.get(key)
        if node is None:
            return None, False
        if i == len(entries) - 1:
            return node.limit, node.unlimited
        level = node.children
    return None, False


# KEYS: counter keys. ARGV: per key, hits, limit, ttl. Returns the counts after the call.
# Checks every key first: if any would pass its limit, only those are incremented.
LUA = """
local n = #KEYS
local cur, over, any = {}, {}, false
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0')
  cur[i] = c
  if c + tonumber(ARGV[3*i-2]) > tonumber(ARGV[3*i-1]) then over[i] = true; any = true end
end
local out = {}
for i = 1, n do
  if (not any) or over[i] then
    out[i] = redis.call('INCRBY', KEYS[i], ARGV[3*i-2])
    redis.call('EXPIRE', KEYS[i], ARGV[3*i])
  else
    out[i] = cur[i]
  end
end
return out
"""


class RateLimitService(rls_pb2_grpc.RateLimitServiceServicer):
    def __init__(self, domains: dict[str, dict[str, Node]], client: redis.Redis, log=None,
                 clock=time.time):
        self.domains = domains
        self.redis = client
        self.script = client.register_script(LUA)
        self.clock = clock
        self.log = log
        self.log_lock = threading.Lock()

    def ShouldRateLimit(self, request, context):  # noqa: N802 (gRPC method name)
        now = int(self.clock())
        tree = self.domains.get(request.domain, {})
        default_hits = max(1, request.hits_addend)
        statuses, checked = [], []  # checked: (status index, key, hits, limit, window)
        record = []
        for d in request.descriptors:
            entries = [(e.key, e.value) for e in d.entries]
            hits = d.hits_addend.value if d.HasField("hits_addend") else default_hits
            record.append({"entries": entries, "hits": hits})
            if d.HasField("limit"):  # the route's `limit` override, as envoyproxy/ratelimit honours it
                unit = ENUM_UNIT.get(d.limit.unit)  # RateLimitUnit has Unit's numbers
                limit, unlimited = (Limit(d.limit.requests_per_unit, unit), False) if unit else (None, False)
            else:
                limit, unlimited = find_limit(tree, entries)
            status = rls_pb2.RateLimitResponse.DescriptorStatus(code=Code.OK)
            if limit is not None and not unlimited:
                window = UNIT_SECONDS[limit.unit]
                start = now - now % window
                key = "_".join([request.domain, *(f"{k}_{v}" for k, v in entries), str(start)])
                checked.append((len(statuses), key, hits, limit, window, now % window))
            statuses.append(status)
        over_any = False
        if checked:
            args = []
            for _, _, hits, limit, window, _ in checked:
                args += [hits, limit.requests_per_unit, window]
            counts = self.script(keys=[c[1] for c in checked], args=args)
            for (i, _, hits, limit, window, into), after in zip(checked, counts):
                after = int(after)
                over = after > limit.requests_per_unit
                st = statuses[i]
                st.code = Code.OVER_LIMIT if over else Code.OK
                st.current_limit.requests_per_unit = limit.requests_per_unit
                st.current_limit.unit = UNIT_ENUM[limit.unit]
                st.current_limit.name = limit.name
                st.limit_remaining = max(0, limit.requests_per_unit - after)
                st.duration_until_reset.seconds = window - into
                if over and not limit.shadow:
                    over_any = True
        code = Code.OVER_LIMIT if over_any else Code.OK
        if self.log is not None:
            line = json.dumps({"domain": request.domain, "hits_addend": request.hits_addend,
                               "descriptors": record, "code": Code.Name(code)})
            with self.log_lock:
                self.log.write(line + "\n")
                self.log.flush()
        return rls_pb2.RateLimitResponse(overall_code=code, statuses=statuses)


def serve(port: int, domains, redis_url: str, log=None, host: str = "127.0.0.1", workers: int = 16,
          clock=time.time):
    client = redis.Redis.from_url(redis_url)
    client.ping()  # fail at start, not on the first request
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    rls_pb2_grpc.add_RateLimitServiceServicer_to_server(RateLimitService(domains, client, log, clock), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound
