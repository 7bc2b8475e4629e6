"""The comparison agent's LLM calls made by a bare HTTP client and nothing else: 5 sequential calls,
then 16 concurrent ones (a thread each), to the same mock server. Its run time is the baseline the
frameworks' critical-path excess is measured against. Prints `run_seconds=…` on stderr.
Usage: python3 bare_client.py BASE_URL"""

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlparse

BRANCHES = 16
STEPS = 5


def ask(host: str, port: int, path: str, prompt: str) -> str:
    connection = http.client.HTTPConnection(host, port)
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": prompt}]})
    connection.request("POST", path, body, {"content-type": "application/json"})
    answer = json.loads(connection.getresponse().read())
    connection.close()
    return answer["choices"][0]["message"]["content"]


def main():
    url = urlparse(sys.argv[1])
    path = url.path.rstrip("/") + "/chat/completions"
    started = time.perf_counter()
    text = "tea"
    for n in range(1, STEPS + 1):
        text = ask(url.hostname, url.port, path, f"step {n}: {text}")
    results = [None] * BRANCHES

    def branch(i):
        results[i] = ask(url.hostname, url.port, path, f"branch {i}: {text}")

    threads = [threading.Thread(target=branch, args=(i,)) for i in range(BRANCHES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"run_seconds={time.perf_counter() - started:.6f}", file=sys.stderr)
    if not all(results):
        sys.exit("a branch got no answer")


if __name__ == "__main__":
    main()
