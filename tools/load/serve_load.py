#!/usr/bin/env python3
"""Load test of `folio serve`, loopback only and bounded: it starts the server itself, runs the
scenarios below one after another, samples the server's RSS from /proc, and prints a JSON report.

    tools/load/serve_load.py --folio target/release/folio --model tests/fixtures/tiny-paddleocr-vl \
        --image tests/fixtures/pages/sample-two-columns.png [--scenarios throughput,burst,disconnect]

Scenarios:
- throughput: 1, 8 and 64 concurrent clients, each sending non-streamed requests back to back
  (max(16, 2 x clients) requests per level): requests/s, completion tokens/s, mean latency;
- burst: 500 streaming requests at once against --max-concurrent-requests (default 256): how many
  were served and how many got 429, whether the server stays up, peak RSS, and whether every KV
  block is back in the pool afterwards (from /metrics);
- disconnect: 100 streaming clients that go away after their first content chunk (each asked for
  min_tokens, so it would otherwise decode for long): every block must come back.

Only the Python standard library is used. The server listens on 127.0.0.1 only.
"""
import argparse
import base64
import http.client
import json
import socket
import subprocess
import sys
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, args):
        self.port = free_port()
        cmd = [args.folio, "serve", "--port", str(self.port), "--served-model-name", "m",
               "--max-concurrent-requests", str(args.max_concurrent), "--kv-cache-memory", args.kv_cache_memory]
        if args.model:
            cmd += ["--model", args.model]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("the server did not become ready")

    def conn(self, timeout=600):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path):
        c = self.conn(10)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body

    def metric(self, name):
        _, text = self.get("/metrics")
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def stop(self):
        self.proc.terminate()
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "killed"
        return code


def body(image_url, stream, max_tokens, min_tokens=0):
    b = {"model": "m", "stream": stream, "max_tokens": max_tokens,
         "messages": [{"role": "user", "content": [
             {"type": "image_url", "image_url": {"url": image_url}}, {"type": "text", "text": "OCR:"}]}]}
    if min_tokens:
        b["min_tokens"] = min_tokens
    if stream:
        b["stream_options"] = {"include_usage": True}
    return json.dumps(b)


def post(server, payload, stream=False, leave_after_first=False):
    """(status, completion tokens, seconds)."""
    started = time.time()
    c = server.conn()
    c.request("POST", "/v1/chat/completions", payload, {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        r.read()
        c.close()
        return r.status, 0, time.time() - started
    tokens = 0
    if not stream:
        tokens = json.loads(r.read())["usage"]["completion_tokens"]
    else:
        while True:
            line = r.readline()
            if not line:
                break
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if leave_after_first and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                c.sock.shutdown(socket.SHUT_RDWR)
                break
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    c.close()
    return 200, tokens, time.time() - started


def run_clients(n_clients, jobs):
    """Runs callables `jobs` on `n_clients` threads; returns their results."""
    results, lock, queue = [], threading.Lock(), list(jobs)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                job = queue.pop()
            out = job()
            with lock:
                results.append(out)

    threads = [threading.Thread(target=worker) for _ in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def wait_blocks_free(server, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        used, running = server.metric("folio_kv_blocks_used"), server.metric("folio_running_sequences")
        if used == 0 and running == 0:
            return True
        time.sleep(0.1)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folio", default="target/release/folio")
    ap.add_argument("--model", help="checkpoint (default: the embedded model)")
    ap.add_argument("--image", required=True)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--kv-cache-memory", default="1GiB")
    ap.add_argument("--max-concurrent", type=int, default=256)
    ap.add_argument("--scenarios", default="throughput,burst,disconnect")
    args = ap.parse_args()
    with open(args.image, "rb") as f:
        url = "data:image/png;base64," + base64.b64encode(f.read()).decode()
    server = Server(args)
    report = {"model": args.model or "embedded", "image": args.image, "max_tokens": args.max_tokens,
              "kv_cache_memory": args.kv_cache_memory, "rss_ready_kib": rss_kib(server.proc.pid)}
    scenarios = args.scenarios.split(",")
    if "throughput" in scenarios:
        levels = []
        for clients in (1, 8, 64):
            n = max(16, 2 * clients)
            payload = body(url, False, args.max_tokens)
            started = time.time()
            out = run_clients(clients, [lambda: post(server, payload)] * n)
            secs = time.time() - started
            ok = [o for o in out if o[0] == 200]
            levels.append({"clients": clients, "requests": n, "ok": len(ok), "seconds": round(secs, 2),
                           "requests_per_s": round(len(ok) / secs, 2),
                           "completion_tokens_per_s": round(sum(o[1] for o in ok) / secs, 1),
                           "mean_latency_s": round(sum(o[2] for o in ok) / max(1, len(ok)), 3)})
            print(json.dumps(levels[-1]), file=sys.stderr)
        report["throughput"] = levels
    if "burst" in scenarios:
        payload = body(url, True, args.max_tokens)
        barrier = threading.Barrier(500)

        def one():
            barrier.wait()
            try:
                return post(server, payload, stream=True)
            except OSError as e:
                return (str(e), 0, 0)

        started = time.time()
        out = run_clients(500, [one] * 500)
        statuses = {}
        for o in out:
            statuses[str(o[0])] = statuses.get(str(o[0]), 0) + 1
        report["burst"] = {"requests": 500, "statuses": statuses, "seconds": round(time.time() - started, 2),
                           "alive": server.get("/health")[0] == 200, "blocks_back": wait_blocks_free(server),
                           "rss_kib": rss_kib(server.proc.pid), "peak_rss_kib": rss_kib(server.proc.pid, "VmHWM")}
        print(json.dumps(report["burst"]), file=sys.stderr)
    if "disconnect" in scenarios:
        payload = body(url, True, 4096, min_tokens=4096)
        out = run_clients(100, [lambda: post(server, payload, stream=True, leave_after_first=True)] * 100)
        report["disconnect"] = {"clients": 100, "left_after_first_chunk": sum(1 for o in out if o[0] == 200),
                                "blocks_back": wait_blocks_free(server),
                                "kv_blocks_used": server.metric("folio_kv_blocks_used"),
                                "alive": server.get("/health")[0] == 200}
        print(json.dumps(report["disconnect"]), file=sys.stderr)
    report["peak_rss_kib"] = rss_kib(server.proc.pid, "VmHWM")
    report["exit_code_after_sigterm"] = server.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
