"""The HTTP/1.1 server: routes each request to its provider, runs the pipeline (leak check, auth,
validation, faults, answer), records it, streams chunked replies; plus the /_mock control API:
GET/DELETE /_mock/requests (GET filters: `provider`; `test_id` or `key_sha12` read that tag's own
bounded record), GET/POST/DELETE /_mock/faults, GET /_mock/health and /_mock/health_checks."""

from __future__ import annotations

import http
import json
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .anthropic_messages import Anthropic
from .bedrock import Bedrock
from .common import Provider, Reply, Request, decide, sha12
from .gemini import Gemini
from .ollama_api import Ollama
from .openai_like import Azure, Failing, Mistral, OpenAI, Vllm
from .openai_responses import Responses
from .state import LEAK_MARK, Faults, Recorder, redact_headers

OPENAI, AZURE, MISTRAL, VLLM, FAILING = OpenAI(), Azure(), Mistral(), Vllm(), Failing()
ANTHROPIC, GEMINI, BEDROCK, OLLAMA = Anthropic(), Gemini(), Bedrock(), Ollama()
RESPONSES = Responses()

# (pattern, provider or None for "by Host", kind); kind "op" is decided from the path's operation.
ROUTES = [
    (re.compile(r"^/openai/deployments/(?P<model>[^/]+)/chat/completions$"), AZURE, "chat"),
    (re.compile(r"^/openai/deployments/(?P<model>[^/]+)/embeddings$"), AZURE, "embed"),
    (re.compile(r"^/v1/messages$"), ANTHROPIC, "chat"),
    (re.compile(r"^/v1/messages/count_tokens$"), ANTHROPIC, "count"),
    (re.compile(r"^/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<op>generateContent|streamGenerateContent|"
                r"embedContent|batchEmbedContents)$"), GEMINI, "op"),
    (re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream)$"), BEDROCK, "op"),
    (re.compile(r"^/api/chat$"), OLLAMA, "chat"),
    (re.compile(r"^/api/generate$"), OLLAMA, "generate"),
    (re.compile(r"^/api/embed$"), OLLAMA, "embed"),
    (re.compile(r"^/v1/responses$"), RESPONSES, "chat"),
    (re.compile(r"^/v1/chat/completions$"), None, "chat"),
    (re.compile(r"^/v1/embeddings$"), None, "embed"),
]


# The Responses API's operations on stored responses (GET, DELETE; GET input_items).
STORED = re.compile(r"^/v1/responses/(?P<rid>[A-Za-z0-9_-]+)(?:/(?P<op>input_items))?$")

# Cheap liveness endpoints real servers offer, for Envoy's active health checks: Ollama's
# GET /api/version and vLLM's GET /health. Counted, not recorded (checks run all the time).
HEALTH_PATHS = {"/api/version": (200, {"version": "0.6.0"}), "/health": (200, None)}


def by_host(host: str) -> Provider:
    for prefix, provider in (("mistral", MISTRAL), ("vllm", VLLM), ("failing", FAILING)):
        if host.startswith(prefix):
            return provider
    return OPENAI


def route(path: str, host: str):
    """-> (provider, kind, model from the path, stream from the path or None)."""
    for pattern, provider, kind in ROUTES:
        m = pattern.match(path)
        if not m:
            continue
        model = urllib.parse.unquote(m.groupdict().get("model") or "")
        op = m.groupdict().get("op")
        stream = None
        if kind == "op":
            kind = "embed" if op in ("embedContent", "batchEmbedContents") else "chat"
            stream = op in ("streamGenerateContent", "converse-stream")
        return provider or by_host(host), kind, model, stream
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "weir-mockllm/1"
    timeout = 120  # idle keep-alive connections give their thread back after this
    server: "MockServer"

    # --- plumbing ---------------------------------------------------------------------------
    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("mockllm: " + fmt % args + "\n")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def _abort(self) -> None:
        """Reset the connection (RST), as a dying upstream would."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def _send(self, reply: Reply, fault: dict | None = None) -> None:
        fault = fault or {}
        if fault.get("delay_ms"):
            time.sleep(fault["delay_ms"] / 1000.0)
        cut = fault.get("truncate_stream_after")
        # A provider's own mid-stream failure: after n chunks, these bytes, then a clean end.
        fail_at, failure = fault.get("stream_error_after"), fault.get("stream_error_body", "")
        self.send_response(reply.status)
        extra = fault.get("headers") or {}
        if not any(k.lower() == "content-type" for k in extra):  # a fault's Content-Type wins
            self.send_header("Content-Type", reply.content_type)
        for k, v in {**reply.headers, **extra}.items():
            self.send_header(k, str(v))
        try:
            if reply.chunks is None:
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if cut is not None:
                    self.wfile.write(reply.body[:cut])
                    self.wfile.flush()
                    return self._abort()
                self.wfile.write(reply.body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            # A slow provider: streams stay open long enough for a test to break them midway.
            pause = (fault.get("chunk_delay_ms") or 0) / 1000.0
            for n, chunk in enumerate(reply.chunks):
                if pause and n:
                    time.sleep(pause)
                if cut is not None and n >= cut:
                    self.wfile.flush()
                    return self._abort()
                if fail_at is not None and n >= fail_at:
                    chunk = failure.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                if fail_at is not None and n >= fail_at:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _json(self, status: int, obj) -> None:
        self._send(Reply.json(status, obj))

    # --- entry points -----------------------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def _dispatch(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        raw = self._read_body()
        if url.path.startswith("/_mock/"):
            return self._control(url, raw)
        if self.command == "GET" and url.path in HEALTH_PATHS:
            self.server.count_health_check(url.path)
            status, body = HEALTH_PATHS[url.path]
            return self._send(Reply.json(status, body) if body is not None else Reply(status, b"", "text/plain"))
        headers = self._headers()
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        entry = {"provider": None, "method": self.command, "path": url.path, "query": query,
                 "headers": redact_headers(headers), "body": None, "valid": False, "errors": [],
                 "status": None, "key_sha12": None, "model": None, "stream": False, "kind": None, "fault": None}
        try:
            entry["body"] = json.loads(raw) if raw else None
        except ValueError:
            entry["body"] = raw.decode("utf-8", "replace")
        stored = STORED.match(url.path)
        if stored and self.command in ("GET", "DELETE"):
            return self._stored(stored, query, headers, raw, entry)
        found = route(url.path, headers.get("host", "").split(":")[0].lower())
        if found is None or self.command != "POST":
            entry["errors"] = [f"no mock route for {self.command} {url.path}"]
            entry["status"] = 404
            self.server.recorder.add(entry)
            return self._json(404, {"error": {"message": f"no mock route for {self.command} {url.path}",
                                              "type": "invalid_request_error"}})
        provider, kind, path_model, path_stream = found
        req = Request(self.command, url.path, query, url.query, headers, raw, entry["body"], kind)
        reply, fault = self._process(provider, req, path_model, path_stream, entry)
        entry["status"] = reply.status
        self.server.recorder.add(entry)
        self._send(reply, fault)

    def _process(self, provider: Provider, req: Request, path_model: str, path_stream, entry: dict):
        body = req.body if isinstance(req.body, dict) else {}
        req.model = path_model or str(body.get("model") or "")
        if path_stream is not None:
            req.stream = path_stream
        elif provider is OLLAMA:
            req.stream = req.kind != "embed" and body.get("stream", True) is not False
        else:
            req.stream = body.get("stream") is True
        entry.update(provider=provider.name, model=req.model, stream=req.stream, kind=req.kind)

        leaks = [n for n, v in req.headers.items() if LEAK_MARK in v or n.startswith("x-weir-")]
        if leaks:
            msg = f"client credential leaked upstream (headers: {', '.join(sorted(leaks))})"
            entry["errors"] = [msg]
            return provider.error(400, msg), None

        refused = provider.authenticate(req)
        entry["key_sha12"] = sha12(req.key) if req.key else None
        if refused is not None:
            entry["errors"] = [f"auth: {refused.body.decode(errors='replace')}"]
            return refused, None

        if not isinstance(req.body, dict):
            entry["errors"] = ["<body>: must be a JSON object"]
            return provider.error(400, "request body must be a JSON object"), None
        if provider is GEMINI and req.stream and req.query.get("alt") != "sse":
            entry["errors"] = ["query: streamGenerateContent is served with alt=sse only"]
            return provider.error(400, entry["errors"][0]), None
        try:
            errors = provider.validate(req)
        except Exception as exc:  # a validator crash is a mock bug: say so loudly
            errors = [f"mock validator crashed: {exc!r}"]
        entry["errors"] = errors
        entry["valid"] = not errors
        if errors:
            return provider.error(400, "; ".join(errors)), None

        fault = self.server.faults.match(provider.name, req.host, entry["key_sha12"])
        if fault is not None:
            entry["fault"] = fault
            # A 200 rule with a "body" replaces a good answer with that body (garbage upstream).
            if fault["status"] != 200 or "body" in fault:
                return self._fault_reply(provider, fault), fault
        if req.kind == "embed":
            return provider.embed(req), fault
        if req.kind == "count":
            return provider.count(req), fault
        return provider.respond(req, decide(provider.conversation(req))), fault

    def _stored(self, m, query: dict, headers: dict, raw: bytes, entry: dict) -> None:
        """A Responses API call on a stored response: authenticated, recorded, answered."""
        req = Request(self.command, m.group(0), query, "", headers, raw, None, "stored")
        entry.update(provider=RESPONSES.name, kind="stored")
        leaks = [n for n, v in headers.items() if LEAK_MARK in v or n.startswith("x-weir-")]
        reply = RESPONSES.authenticate(req)
        entry["key_sha12"] = sha12(req.key) if req.key else None
        if leaks:
            entry["errors"] = [f"client credential leaked upstream (headers: {', '.join(sorted(leaks))})"]
            reply = RESPONSES.error(400, entry["errors"][0])
        elif raw:
            entry["errors"] = ["<body>: this operation takes no body"]
            reply = RESPONSES.error(400, entry["errors"][0])
        elif reply is None:
            entry["valid"] = True
            fault = self.server.faults.match(RESPONSES.name, req.host, entry["key_sha12"])
            if fault is not None:
                entry["fault"] = fault
                reply = self._fault_reply(RESPONSES, fault)
            else:
                reply = RESPONSES.stored_call(self.command, m.group("rid"), m.group("op"), query)
        entry["status"] = reply.status
        self.server.recorder.add(entry)
        self._send(reply)

    @staticmethod
    def _fault_reply(provider: Provider, fault: dict) -> Reply:
        status = fault["status"]
        if "body" not in fault:
            phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else "Error"
            return provider.error(status, f"{phrase} (injected by the weir mock)")
        body = fault["body"]
        if isinstance(body, str):
            return Reply(status, body.encode(), "text/plain; charset=utf-8")
        return Reply.json(status, body)

    def _control(self, url, raw: bytes) -> None:
        path, cmd = url.path, self.command
        if path == "/_mock/health" and cmd == "GET":
            return self._json(200, {"ok": True})
        if path == "/_mock/health_checks" and cmd == "GET":
            return self._json(200, self.server.health_checks())
        if path == "/_mock/requests":
            if cmd == "GET":
                query = dict(urllib.parse.parse_qsl(url.query))
                tag = query.get("test_id") or (f"key:{query['key_sha12']}" if query.get("key_sha12") else None)
                items = self.server.recorder.tagged(tag) if tag else self.server.recorder.all()
                want = query.get("provider")
                return self._json(200, [e for e in items if not want or e["provider"] == want])
            if cmd == "DELETE":
                self.server.recorder.clear()
                return self._json(200, {"ok": True})
        if path == "/_mock/faults":
            if cmd == "GET":
                return self._json(200, self.server.faults.list())
            if cmd == "DELETE":
                self.server.faults.clear()
                return self._json(200, {"ok": True})
            if cmd == "POST":
                try:
                    self.server.faults.set(json.loads(raw or b"null"))
                except ValueError as exc:
                    return self._json(400, {"error": str(exc)})
                return self._json(200, {"ok": True, "rules": len(self.server.faults.list())})
        return self._json(404, {"error": f"no control endpoint {cmd} {path}"})


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # load tests open ~64 connections at once

    def __init__(self, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        super().__init__((host, port), Handler)
        self.verbose = verbose
        self.recorder = Recorder()
        self.faults = Faults()
        self._checks: dict[str, int] = {}
        self._checks_lock = threading.Lock()

    def count_health_check(self, path: str) -> None:
        with self._checks_lock:
            self._checks[path] = self._checks.get(path, 0) + 1

    def health_checks(self) -> dict[str, int]:
        """Health-check requests served so far, by path."""
        with self._checks_lock:
            return dict(self._checks)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}"


def start(host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> MockServer:
    """Start a mock in a daemon thread (port 0: any free port). Stop it with .shutdown()."""
    server = MockServer(host, port, verbose)
    threading.Thread(target=server.serve_forever, name="mockllm", daemon=True).start()
    return server
