#!/usr/bin/env python3
"""Slow and idle clients against `headtune serve` on loopback, beside good clients.

    scripts/measure_slow_clients.py [--idle 1000] [--good-clients 4] [--seconds 20] [--serve-args "..."]

Starts the release server (its defaults unless --serve-args) and measures, first with the good
clients alone for --seconds (baseline), then with, at once: --idle connections that send nothing, one
client sending a request head a byte a second, one sending a body a byte a second. The good clients
post samples/ images to /v1/classify, half on kept-alive connections and half on a new connection per
request (so new connections are shown to get in while the idle ones are held). Reports when each
hostile client was cut and with what answer, the good requests' p50/p99 in both phases, the server's
peak and settled open descriptors (/proc/PID/fd) and peak RSS, and its exit status after SIGTERM.
Prints JSON on stdout. Standard library only.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import (Sampler, add_good_and_server_arguments, good_loop, hold_idle, latency_summary,  # noqa: E402
                           open_descriptors, request, start_warm_server, trickle)


def fresh_connection_loop(port, stop, results, images, pause):
    index = 0
    while not stop.is_set():
        name, body, content_type = images[index % len(images)]
        index += 1
        status, _, seconds, _ = request(port, "POST", "/v1/classify", body, {"Content-Type": content_type})
        results.append((status, seconds))
        stop.wait(pause)


def run_good(port, images, clients, pause, seconds, during=None):
    """Good clients for `seconds` (or while `during` runs); their results, kept-alive and fresh together."""
    stop = threading.Event()
    results = []
    threads = [threading.Thread(target=good_loop if i % 2 == 0 else fresh_connection_loop,
                                args=(port, stop, results, images, pause)) for i in range(clients)]
    for t in threads:
        t.start()
    if during is None:
        time.sleep(seconds)
    else:
        during()
    stop.set()
    for t in threads:
        t.join()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    add_good_and_server_arguments(parser)
    args = parser.parse_args()

    server, images = start_warm_server(args)
    try:
        settled_fds = open_descriptors(server.pid)
        print(f"baseline: {args.seconds:g} s of good clients alone", file=sys.stderr)
        baseline = run_good(server.port, images, args.good_clients, args.good_pause, args.seconds)

        sampler = Sampler(server.pid, interval=0.02)
        sampler.start()
        hostile = {}

        def attack():
            def idle():
                results = hold_idle(server.port, args.idle, give_up=60)
                closed = [s for s, _ in results if s is not None]
                statuses = {}
                for _, status in results:
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                hostile["idle"] = {"connections": args.idle, "closed": len(closed),
                                   "closed_after_s": {"min": round(min(closed), 2), "max": round(max(closed), 2)} if closed else None,
                                   "answers": statuses}

            def slow_head():
                status, code, seconds, sent = trickle(server.port, b"",
                                                      b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 200)
                hostile["head_byte_per_second"] = {"answer": status, "code": code, "cut_after_s": round(seconds, 2),
                                                   "bytes_sent": sent}

            def slow_body():
                head = (b"POST /v1/classify HTTP/1.1\r\nHost: slow\r\nContent-Type: image/png\r\n"
                        b"Content-Length: 100000\r\n\r\n")
                status, code, seconds, sent = trickle(server.port, head, b"\0" * 1000)
                hostile["body_byte_per_second"] = {"answer": status, "code": code, "cut_after_s": round(seconds, 2),
                                                   "body_bytes_sent": sent}

            threads = [threading.Thread(target=f) for f in (idle, slow_head, slow_body)]
            for t in threads:
                t.start()
            # The good clients run at least --seconds, and until every hostile client is done.
            time.sleep(args.seconds)
            for t in threads:
                t.join()

        print(f"attack: {args.idle} idle connections, a head and a body at a byte a second", file=sys.stderr)
        started = time.monotonic()
        during = run_good(server.port, images, args.good_clients, args.good_pause, args.seconds, during=attack)
        attack_seconds = time.monotonic() - started
        time.sleep(3)  # lingering cut connections close
        sampler.stop()
        after_fds = open_descriptors(server.pid)
        exit_status = server.terminate()
        summary = {
            "server": server.describe(),
            "good_clients": args.good_clients,
            "baseline": {**latency_summary(baseline), "seconds": args.seconds},
            "during_attack": {**latency_summary(during), "seconds": round(attack_seconds, 1),
                              "not_200": sorted({str(s) for s, _ in during if s != 200})},
            "hostile": hostile,
            "open_fds": {"settled_before": settled_fds, "peak_during": sampler.peak_fds, "after": after_fds},
            "peak_rss_mb": round(sampler.peak_rss_kib / 1024, 1),
            "exit_status_after_sigterm": exit_status,
        }
        print(json.dumps(summary, indent=2))
    finally:
        server.kill()


if __name__ == "__main__":
    main()
