"""A local OTLP/HTTP collector: it takes every export, and keeps each request's path, headers
and body (protobuf, decoded on demand), or only counts them (`keep=False`, for benchmarks)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Receiver:
    def __init__(self, *, keep: bool = True) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.posts = 0
        self.size = 0
        lock = threading.Lock()
        taken = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with lock:
                    taken.posts += 1
                    taken.size += len(body)
                    if keep:
                        taken.requests.append((self.path, headers, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self, path: str = "/v1/traces") -> list[Any]:
        """Every span sent to `path`, decoded, in the order they came."""
        return [
            span
            for got_path, _, body in list(self.requests)
            if got_path == path
            for resource in ExportTraceServiceRequest.FromString(body).resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def scopes(self, path: str = "/v1/traces") -> dict[str, str]:
        """Each span's instrumentation scope, by the span's id (hex)."""
        return {
            span.span_id.hex(): scope.scope.name
            for got_path, _, body in list(self.requests)
            if got_path == path
            for resource in ExportTraceServiceRequest.FromString(body).resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def attributes(span: Any) -> dict[str, Any]:
    """A decoded span's attributes as plain values."""
    out = {}
    for pair in span.attributes:
        value = pair.value
        out[pair.key] = getattr(value, value.WhichOneof("value"))
    return out
