#!/usr/bin/env python3
"""Many large uploads at once against `headtune serve` on loopback, beside good clients.

    scripts/measure_body_budget.py [--uploads 200] [--body-bytes 20000000] [--rate 1000000] [--serve-args "..."]

Starts the release server (its defaults unless --serve-args; `--body-memory 100g` is the server without
a body budget) and, after a warm-up, opens --uploads connections at once, each posting a body of
--body-bytes (zeros declared `image/jpeg`: read in full, then refused 422 without a decode, so what is
measured is the bodies' memory) at a steady --rate bytes per second in 64 KiB writes (time the server holds off reading is not made up). Each upload stops sending
as soon as the server answers (a 503 comes before the body is read). Meanwhile --good-clients post
samples/ images to /v1/classify on kept-alive connections. Reports the uploads' answers, the good
requests' answers and p50/p99, the server's RSS at rest and its peak (VmHWM from /proc/PID/status, and
VmRSS sampled every 20 ms), its open descriptors, and its exit status after SIGTERM. Prints JSON on
stdout. Standard library only.
"""
import argparse
import http.client
import json
import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import (Sampler, add_good_and_server_arguments, error_code, good_loop, latency_summary,  # noqa: E402
                           raw_connection, start_warm_server, status_of)
from measure_bombs import rss_kib  # noqa: E402

CHUNK = 64 * 1024


def upload(port, body_bytes, rate, give_up, results, start_gate):
    """One large upload paced at `rate` bytes/s; appends (status, code, seconds, bytes sent)."""
    head = (f"POST /v1/classify HTTP/1.1\r\nHost: upload\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {body_bytes}\r\n\r\n").encode()
    chunk = b"\0" * CHUNK
    start_gate.wait()
    try:
        s = raw_connection(port, timeout=give_up)
    except OSError as error:
        results.append((f"connect:{type(error).__name__}", None, 0.0, 0))
        return
    start = time.monotonic()
    sent, answer = 0, b""
    try:
        s.sendall(head)
        s.setblocking(False)
        next_send = start
        while time.monotonic() - start < give_up:
            now = time.monotonic()
            # Send when it is time and the socket takes it (the server pushes back while it does not read).
            if sent < body_bytes and now >= next_send:
                wanted, wait = [s], 0.5
            else:
                wanted, wait = [], 0.5 if sent >= body_bytes else next_send - now
            readable, writable, _ = select.select([s], wanted, [], wait)
            if readable:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    data = None
                except OSError:
                    break
                if data == b"":
                    break
                if data:
                    answer += data
                    if b"\r\n\r\n" in answer:
                        head_part, _, rest = answer.partition(b"\r\n\r\n")
                        length = next((int(line.split(b":", 1)[1]) for line in head_part.split(b"\r\n")
                                       if line.lower().startswith(b"content-length:")), 0)
                        if len(rest) >= length:
                            break
            if writable:
                try:
                    n = s.send(chunk[:min(CHUNK, body_bytes - sent)], socket.MSG_NOSIGNAL)
                    sent += n
                    # A steady pace: time the server held off reading is not made up with a burst.
                    next_send = max(next_send, time.monotonic() - n / rate) + n / rate
                except BlockingIOError:
                    pass
                except OSError:
                    pass  # the server closed: its answer, if any, is still to be read
        results.append((status_of(answer), error_code(answer), time.monotonic() - start, sent))
    finally:
        s.close()


def budget_metrics(port):
    """The `headtune_memory_budget_*` series of /metrics."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    return [line for line in text.splitlines() if line.startswith("headtune_memory_budget")]


def count(values):
    counts = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--body-bytes", type=int, default=20_000_000)
    parser.add_argument("--rate", type=float, default=1_000_000, help="bytes per second per upload")
    parser.add_argument("--give-up", type=float, default=180)
    add_good_and_server_arguments(parser)
    args = parser.parse_args()

    server, images = start_warm_server(args)
    try:
        rest_rss_mb = round(rss_kib(server.pid) / 1024, 1)
        sampler = Sampler(server.pid, interval=0.02)
        sampler.start()

        uploads, gate = [], threading.Event()
        threads = [threading.Thread(target=upload, args=(server.port, args.body_bytes, args.rate, args.give_up, uploads, gate))
                   for _ in range(args.uploads)]
        for t in threads:
            t.start()
        stop, good = threading.Event(), []
        good_threads = [threading.Thread(target=good_loop, args=(server.port, stop, good, images, args.good_pause))
                        for _ in range(args.good_clients)]
        print(f"{args.uploads} uploads of {args.body_bytes} bytes at {args.rate:g} B/s, "
              f"{args.good_clients} good clients; {server.describe()}", file=sys.stderr)
        started = time.monotonic()
        gate.set()
        for t in good_threads:
            t.start()
        for t in threads:
            t.join()
        attack_seconds = time.monotonic() - started
        stop.set()
        for t in good_threads:
            t.join()
        sampler.stop()
        hwm_mb = round(rss_kib(server.pid, "VmHWM") / 1024, 1)
        metrics = budget_metrics(server.port)
        exit_status = server.terminate()
        summary = {
            "server": server.describe(),
            "uploads": {"count": args.uploads, "body_bytes": args.body_bytes, "rate_bytes_per_s": args.rate,
                        "answers": count(f"{status} {code}" for status, code, _, _ in uploads),
                        "seconds": {"min": round(min(s for _, _, s, _ in uploads), 1), "max": round(max(s for _, _, s, _ in uploads), 1)},
                        "body_bytes_sent_total": sum(sent for _, _, _, sent in uploads)},
            "good": {**latency_summary(good), "answers": count(status for status, _ in good), "clients": args.good_clients},
            "attack_seconds": round(attack_seconds, 1),
            "rss_at_rest_mb": rest_rss_mb,
            "peak_rss_mb": {"VmHWM": hwm_mb, "VmRSS_sampled": round(sampler.peak_rss_kib / 1024, 1)},
            "open_fds_peak": sampler.peak_fds,
            "budget_metrics": metrics,
            "exit_status_after_sigterm": exit_status,
        }
        print(json.dumps(summary, indent=2))
    finally:
        server.kill()


if __name__ == "__main__":
    main()
