#!/usr/bin/env python3
"""Decompression bombs against `headtune serve` on loopback, beside good requests.

    scripts/measure_bombs.py [--bomb FILE ...] [--concurrent 32] [--good samples/chelsea.png]
                             [--good-clients 2] [--serve-args "--decode-memory 256m"]

Starts the release server on a free loopback port, then for each bomb file sends `--concurrent`
copies at once to POST /v1/classify while `--good-clients` threads post the good image in a loop;
samples the server's RSS every 20 ms (/proc/PID/status) and reports, per bomb kind: peak RSS,
answer codes of the bombs (and whether each 503 had Retry-After), the good requests' codes and
p50/p99. Ends with SIGTERM and the server's exit status. Prints a Markdown table for BENCHMARKS.md.
Make the bombs with scripts/make_bombs.py.
"""
import argparse
import http.client
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def post(port, body, content_type, timeout=120):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    start = time.monotonic()
    try:
        connection.request("POST", "/v1/classify", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After"), time.monotonic() - start
    except OSError as error:
        return f"error:{type(error).__name__}", None, time.monotonic() - start
    finally:
        connection.close()


def content_type(path):
    return "image/png" if path.endswith(".png") else "image/jpeg"


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bomb", action="append", default=[])
    parser.add_argument("--concurrent", type=int, default=32)
    parser.add_argument("--good", default=os.path.join(ROOT, "samples/chelsea.png"))
    parser.add_argument("--good-clients", type=int, default=2)
    parser.add_argument("--serve-args", default="")
    parser.add_argument("--binary", default=os.environ.get("HEADTUNE", os.path.join(ROOT, ".build/release/headtune")))
    args = parser.parse_args()
    bombs = args.bomb or ["/tmp/bombs/bomb_9999x9999.png", "/tmp/bombs/bomb_9999x9999.jpg"]

    port = free_port()
    command = [args.binary, "serve", "--port", str(port), "--no-text-encoder", "--log-level", "warning"]
    command += shlex.split(args.serve_args)
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            sys.exit("the server did not become ready")
        good_body = open(args.good, "rb").read()
        # Warm up: the first request pays for lazy allocations.
        for _ in range(3):
            post(port, good_body, content_type(args.good))
        idle_rss = rss_kib(server.pid)
        rows = []
        for bomb in bombs:
            body = open(bomb, "rb").read()
            peak = [rss_kib(server.pid)]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kib(server.pid))
                    time.sleep(0.02)

            good_results = []

            def good_client():
                while not stop.is_set():
                    good_results.append(post(port, good_body, content_type(args.good)))

            sampler = threading.Thread(target=sample)
            sampler.start()
            goods = [threading.Thread(target=good_client) for _ in range(args.good_clients)]
            for t in goods:
                t.start()
            bomb_results = [None] * args.concurrent

            def bomb_client(i):
                bomb_results[i] = post(port, body, content_type(bomb))

            start = time.monotonic()
            clients = [threading.Thread(target=bomb_client, args=(i,)) for i in range(args.concurrent)]
            for t in clients:
                t.start()
            for t in clients:
                t.join()
            elapsed = time.monotonic() - start
            stop.set()
            for t in goods + [sampler]:
                t.join()
            codes = {}
            for status, retry_after, _ in bomb_results:
                key = f"{status}" + ("+Retry-After" if status == 503 and retry_after else "")
                codes[key] = codes.get(key, 0) + 1
            good_codes = {}
            for status, _, _ in good_results:
                good_codes[status] = good_codes.get(status, 0) + 1
            latencies = [seconds * 1000 for status, _, seconds in good_results if status == 200]
            rows.append((os.path.basename(bomb), os.path.getsize(bomb), args.concurrent, elapsed, peak[0] / 1024,
                         codes, good_codes, percentile(latencies, 50), percentile(latencies, 99)))
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    print(f"server: {' '.join(shlex.quote(c) for c in command[1:])}; RSS after warm-up {idle_rss / 1024:.0f} MB; "
          f"high-water mark not sampled between rounds")
    print("| bomb | bytes | concurrent | seconds | peak RSS (MB) | bomb answers | good answers | good p50 (ms) | good p99 (ms) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, size, n, elapsed, peak_mb, codes, good_codes, p50, p99 in rows:
        fmt = lambda d: ", ".join(f"{k}: {v}" for k, v in sorted(d.items(), key=lambda kv: str(kv[0])))
        print(f"| {name} | {size} | {n} | {elapsed:.1f} | {peak_mb:.0f} | {fmt(codes)} | {fmt(good_codes)} | {p50:.0f} | {p99:.0f} |")
    print(f"exit status after SIGTERM: {status}")
    sys.exit(0 if status == 0 else 1)


if __name__ == "__main__":
    main()
