"""An OpenAI-compatible chat-completions server with a fixed latency, for benchmarks.

Every answer waits LATENCY_MS, then echoes the last message, so that the same agent gives the
same final state whichever framework runs it. Run: python3 mock_llm.py PORT LATENCY_MS
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    latency = 0.05
    # Headers and body are written separately: without this, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every answer, for both frameworks alike.
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        time.sleep(self.latency)
        messages = request.get("messages", [])
        last = messages[-1]["content"] if messages else ""
        body = json.dumps(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": 0,
                "model": request.get("model", "bench"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"re: {last}"[:200]},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": len(last.split()), "completion_tokens": 5, "total_tokens": len(last.split()) + 5},
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    # The listen backlog is read when the socket listens, inside the constructor: set on the class,
    # not on the instance afterwards (which left the default of 5, so a burst of 16 connections
    # waited on SYN retransmits for about a second).
    request_queue_size = 1024
    daemon_threads = True


def main():
    port, latency_ms = int(sys.argv[1]), float(sys.argv[2])
    Handler.latency = latency_ms / 1000.0
    server = Server(("127.0.0.1", port), Handler)
    print(f"mock LLM on 127.0.0.1:{port}, {latency_ms} ms per answer", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
