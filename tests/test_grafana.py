"""The Grafana dashboard (envoy/grafana/weir-dashboard.json) only asks Prometheus for series weir
or Envoy actually exports, grouped and filtered by labels those series carry. Static: no Envoy,
no Grafana, no network. weir's metric names and tags are read from filter/core/src/metrics.rs."""

from __future__ import annotations

import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARD = os.path.join(ROOT, "envoy", "grafana", "weir-dashboard.json")
METRICS_RS = os.path.join(ROOT, "filter", "core", "src", "metrics.rs")
DEMO_YAML = os.path.join(ROOT, "envoy", "demo.yaml")

# Each weir series and its Prometheus labels (histograms without their suffixes).
LABELS: dict[str, set[str]] = {
    "weir_requests_total": {"model", "provider", "key", "outcome"},
    "weir_tokens_total": {"model", "provider", "key", "token_type"},
    "weir_cost_micro_usd_total": {"model", "provider", "key"},
    "weir_co2e_mg_total": {"model", "provider", "key"},
    "weir_failovers_total": {"model", "provider"},
    "weir_breaker_events_total": {"model", "provider", "event"},
    "weir_ratelimit_refusals_total": {"model", "key"},
    "weir_pii_detections_total": {"detector"},
    "weir_cache_requests_total": {"model", "cache"},
    "weir_request_duration_ms": {"model", "provider"},
    "gen_ai_server_time_to_first_token_ms": {"model", "provider"},
    "gen_ai_client_token_usage": {"model", "provider", "token_type"},
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# The dashboard's own filters: a weir series with one of these labels is filtered by it.
FILTER_VARS = ("model", "provider", "key")

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                   "or", "unless", "offset", "inf", "nan"}
IDENT = re.compile(r"(?<![\w.$:])([A-Za-z_:][\w:]*)")


# ---- weir's metrics, from the source

def _metrics_source() -> str:
    with open(METRICS_RS) as f:
        src = f.read()
    return src.split("#[cfg(test)]", 1)[0]


def _arg_after(src: str, i: int) -> str:
    """The text of one call argument starting at src[i], up to the next top-level `,` or `)`."""
    depth, j = 0, i
    while j < len(src):
        c = src[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif c == "," and depth == 0:
            break
        j += 1
    return src[i:j].strip()


def _split_top(s: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += c
    if cur.strip():
        out.append(cur.strip())
    return out


def source_metrics() -> dict[str, tuple[str, set[str] | None]]:
    """name -> (kind, tags) for each `Sample::counter("name", tags, ..)` / `histogram("name", ..)`
    call, tags given as `base` or an array of `base[i]` and `("tag", value)` items; tags is None
    where the tags expression is not one of those shapes."""
    src = _metrics_source()
    base_m = re.search(r"let\s+base\s*=\s*\[(.*?)\];", src, re.S)
    base = re.findall(r'\(\s*"(\w+)"\s*,', base_m[1]) if base_m else None
    out: dict[str, tuple[str, set[str] | None]] = {}
    for m in re.finditer(r'\b(counter|histogram)\(\s*"([A-Za-z_:][\w:]*)"\s*,', src):
        tags_expr = _arg_after(src, m.end()).removeprefix("&")
        tags: set[str] | None = set()
        if tags_expr == "base" and base:
            tags = set(base)
        elif tags_expr.startswith("[") and tags_expr.endswith("]"):
            for item in _split_top(tags_expr[1:-1]):
                idx = re.fullmatch(r"base\[(\d+)\]", item)
                lit = re.match(r'\(\s*"(\w+)"\s*,', item)
                if idx and base and int(idx[1]) < len(base):
                    tags.add(base[int(idx[1])])
                elif lit:
                    tags.add(lit[1])
                else:
                    tags = None
                    break
        else:
            tags = None
        out[m[2]] = (m[1], tags)
    return out


SOURCE = source_metrics()


def series_labels() -> dict[str, set[str]]:
    """Every Prometheus series name weir exports -> its labels (from LABELS)."""
    out: dict[str, set[str]] = {}
    for name, (kind, _) in SOURCE.items():
        labels = LABELS.get(name, set())
        if kind == "histogram":
            out[name + "_bucket"] = labels | {"le"}
            out[name + "_sum"] = out[name + "_count"] = set(labels)
        else:
            out[name] = set(labels)
    return out


SERIES = series_labels()


# ---- PromQL, just enough of it

def _blank_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def _group_end(s: str, i: int) -> int:
    """s[i] is `(`: the index just past its matching `)`."""
    depth = 0
    for j in range(i, len(s)):
        depth += {"(": 1, ")": -1}.get(s[j], 0)
        if depth == 0:
            return j + 1
    raise ValueError(f"unbalanced parentheses: {s!r}")


def _group_start(s: str, j: int) -> int:
    """s[j] is `)`: the index of its matching `(`."""
    depth = 0
    for i in range(j, -1, -1):
        depth += {")": 1, "(": -1}.get(s[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses: {s!r}")


def selectors(expr: str) -> list[tuple[str, list[str]]]:
    """(metric name, label names matched in its braces) for each series selector in expr."""
    s = _blank_strings(expr)
    s = re.sub(r"\[[^\]]*\]", "", s)  # range selectors, subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    out = []
    for m in re.finditer(r"\{[^}]*\}|" + IDENT.pattern, s):
        if m[0].startswith("{"):
            continue  # label matchers, read with their metric below
        name, rest = m[1], s[m.end():]
        if name in PROMQL_KEYWORDS or re.match(r"\s*\(", rest):
            continue  # a keyword, or a function / aggregation
        braces = re.match(r"\s*\{([^}]*)\}", rest)
        labels = re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", braces[1]) if braces else []
        out.append((name, labels))
    return out


def grouping_clauses(expr: str) -> list[tuple[list[str], str]]:
    """(labels, aggregated expression) for each `by (...)` / `without (...)`, prefix or postfix."""
    s = _blank_strings(expr)
    out = []
    for m in re.finditer(r"\b(?:by|without)\s*\(([^)]*)\)", s):
        labels = [x.strip() for x in m[1].split(",") if x.strip()]
        after = re.match(r"\s*\(", s[m.end():])
        if after:  # sum by (x) (expr)
            start = m.end() + after.end() - 1
            body = s[start:_group_end(s, start)]
        else:  # sum (expr) by (x)
            before = s[:m.start()].rstrip()
            assert before.endswith(")"), f"cannot find what `{m[0]}` groups in {expr!r}"
            body = before[_group_start(before, len(before) - 1):]
        out.append((labels, body))
    return out


def problems(expr: str) -> list[str]:
    """What is wrong with one expression's metric names and labels."""
    errs = []
    found = selectors(expr)
    if not found:
        errs.append("references no metric")
    for name, labels in found:
        if name in SERIES:
            bad = set(labels) - SERIES[name]
            if bad:
                errs.append(f"{name} has no label(s) {sorted(bad)} (has {sorted(SERIES[name])})")
        elif not name.startswith("envoy_"):
            errs.append(f"{name} is neither a series weir exports nor an Envoy one")
    for labels, body in grouping_clauses(expr):
        for name, _ in selectors(body):
            if name in SERIES:
                bad = set(labels) - SERIES[name]
                if bad:
                    errs.append(f"grouping {name} by {sorted(bad)}, which it does not carry")
    for rng in re.findall(r"\[([^\]]*)\]", _blank_strings(expr)):
        if rng not in ("$__rate_interval", "$__range"):
            errs.append(f"range [{rng}]: use [$__rate_interval] (or [$__range] for totals)")
    return errs


# ---- the dashboard

@pytest.fixture(scope="module")
def dashboard() -> dict:
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(dashboard) -> list[dict]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    return out


def data_panels(dashboard) -> list[dict]:
    return [p for p in all_panels(dashboard) if p.get("type") != "row"]


def exprs(dashboard) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in data_panels(dashboard) for t in p.get("targets", [])]


def variables(dashboard) -> dict[str, dict]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def test_source_parses_into_the_known_metrics():
    missing = set(LABELS) - set(SOURCE)
    assert not missing, f"metrics.rs does not emit {sorted(missing)}"
    unknown = set(SOURCE) - set(LABELS)
    assert not unknown, f"metrics.rs emits {sorted(unknown)}: add them (and their labels) to LABELS"
    histograms = {n for n, (kind, _) in SOURCE.items() if kind == "histogram"}
    assert histograms == {"weir_request_duration_ms", "gen_ai_server_time_to_first_token_ms",
                          "gen_ai_client_token_usage"}


def test_label_map_matches_the_tags_metrics_rs_passes():
    # metrics.rs is ours: a tags expression this parser cannot read is a failure, not a skip,
    # or a change of shape there would silently leave every label unchecked.
    unparsed = sorted(n for n, (_, tags) in SOURCE.items() if tags is None)
    assert not unparsed, f"tags expression not understood for {unparsed}: teach source_metrics()"
    for name, (_, tags) in SOURCE.items():
        assert tags == LABELS[name], f"{name}: metrics.rs tags {sorted(tags)}, LABELS {sorted(LABELS[name])}"


def test_every_label_is_extracted_by_envoy_stats_tags():
    with open(DEMO_YAML) as f:
        extracted = set(re.findall(r"tag_name:\s*(\w+)", f.read()))
    src = _metrics_source()
    declared = set(re.findall(r'"(\w+)"', src[src.index("pub const TAGS"):]))
    used = set().union(*LABELS.values())
    assert used <= extracted, f"demo.yaml stats_tags do not extract {sorted(used - extracted)}"
    assert used <= declared, f"metrics::TAGS does not list {sorted(used - declared)}"


def test_the_checker_catches_what_it_should():
    assert problems('sum by (model) (rate(weir_requests_total{key=~"$key"}[$__rate_interval]))') == []
    assert problems("sum by (detector) (rate(weir_requests_total[$__rate_interval]))")
    assert problems("sum(rate(weir_requests_total[5m]))")
    assert problems("sum(rate(weir_request_duration_ms[$__rate_interval]))")  # no bare histogram
    assert problems("sum(rate(weir_request_duration_ms_count{key=\"a\"}[$__rate_interval]))")
    assert problems("sum(rate(weir_tokens_total[$__rate_interval])) by (detector)")
    assert problems("rate(nginx_requests_total[$__rate_interval])")
    assert problems("histogram_quantile(0.9, sum by (le) (rate(weir_requests_total_bucket[$__rate_interval])))")
    assert not problems('max by (envoy_cluster_name) (envoy_cluster_circuit_breakers_default_rq_open)')
    assert not problems("histogram_quantile(0.9, sum by (model, le) "
                        "(rate(weir_request_duration_ms_bucket[$__rate_interval]))) * 3600 / 1e6")


def test_dashboard_is_a_grafana_dashboard(dashboard):
    assert dashboard["title"] and dashboard["uid"]
    assert dashboard["description"], "the description says what this dashboard is"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert data_panels(dashboard)
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"


def test_panels_fit_the_grid_without_overlapping(dashboard):
    cells: dict[tuple[int, int], str] = {}
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def test_every_panel_has_the_datasource_variable_and_targets(dashboard):
    for p in data_panels(dashboard):
        assert p.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p.get("targets"), f"{p['title']} has no targets"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"{p['title']}: duplicate refIds"
        for t in p["targets"]:
            assert t.get("expr", "").strip(), f"{p['title']} {t['refId']} has no expr"
            assert t.get("datasource", p["datasource"]) == p["datasource"], p["title"]


def test_every_expr_uses_real_series_and_labels(dashboard):
    errs = [f"{title}: {e}: {expr}" for title, expr in exprs(dashboard) for e in problems(expr)]
    assert not errs, "\n".join(errs)


def test_weir_series_follow_the_dashboard_filters(dashboard):
    """A weir series with a model/provider/key label is filtered by the matching variable."""
    errs = []
    for title, expr in exprs(dashboard):
        for name, _ in selectors(expr):
            for var in FILTER_VARS:
                if var in SERIES.get(name, ()):
                    want = f'{var}=~"${var}"'
                    sel = re.search(re.escape(name) + r"\{([^}]*)\}", expr)
                    if not sel or want not in sel[1].replace(" ", ""):
                        errs.append(f"{title}: {name} is not filtered by {want}")
    assert not errs, "\n".join(sorted(set(errs)))


def test_weir_metrics_the_brief_asks_for_are_all_on_the_dashboard(dashboard):
    used = {name for _, expr in exprs(dashboard) for name, _ in selectors(expr)}
    for want in ["weir_requests_total", "weir_tokens_total", "weir_cost_micro_usd_total",
                 "weir_co2e_mg_total", "weir_failovers_total", "weir_ratelimit_refusals_total",
                 "weir_pii_detections_total", "weir_request_duration_ms_bucket",
                 "gen_ai_server_time_to_first_token_ms_bucket",
                 "envoy_cluster_upstream_rq_xx", "envoy_cluster_outlier_detection_ejections_active",
                 "envoy_cluster_circuit_breakers_default_rq_open"]:
        assert want in used, f"no panel shows {want}"


def test_template_variables_reference_existing_metrics(dashboard):
    vs = variables(dashboard)
    ds = vs.get("datasource")
    assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus"
    assert {"model", "key", "provider"} <= set(vs)
    for name, v in vs.items():
        if v["type"] != "query":
            continue
        assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)\s*", q)
        assert m, f"variable {name}: expected label_values(metric, label), got {q!r}"
        metric, label = m[1], m[2]
        if metric in SERIES:
            assert label in SERIES[metric], f"variable {name}: {metric} has no label {label}"
        else:
            assert metric.startswith("envoy_"), f"variable {name}: unknown metric {metric}"
    for name in ("model", "key", "provider"):
        assert re.search(rf"weir_requests_total\s*,\s*{name}\b", json.dumps(vs[name]["query"]))


def test_every_variable_an_expr_uses_is_defined(dashboard):
    defined = set(variables(dashboard)) | {"__rate_interval", "__range", "__interval"}
    for title, expr in exprs(dashboard):
        for var in re.findall(r"\$\{?(\w+)", expr):
            assert var in defined, f"{title}: ${var} is not a dashboard variable"
