"""What the soak test and the slow-client measurement share: a release `headtune serve` on a free
loopback port, samplers of its RSS and open descriptors, timed requests, and hostile clients built on
raw sockets (a head sent a byte at a time, a body trickled, connections that send nothing).
Standard library only.
"""
import http.client
import json
import os
import select
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure_bombs import free_port, percentile, rss_kib  # noqa: E402  (one copy of each)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BINARY = os.environ.get("HEADTUNE", os.path.join(ROOT, ".build/release/headtune"))


class Server:
    """`headtune serve` on 127.0.0.1 and a free port, stderr to a log file."""

    def __init__(self, binary=DEFAULT_BINARY, extra_args=(), log_path=None):
        self.port = free_port()
        self.command = [binary, "serve", "--port", str(self.port), "--log-level", "warning", *extra_args]
        self.log = open(log_path or os.devnull, "wb")
        self.process = subprocess.Popen(self.command, cwd=ROOT, stderr=self.log, stdout=subprocess.DEVNULL)

    @property
    def pid(self):
        return self.process.pid

    def wait_ready(self, seconds=180):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with status {self.process.returncode} before it was ready")
            status, _, _, _ = request(self.port, "GET", "/readyz", timeout=2)
            if status == 200:
                return
            time.sleep(0.2)
        raise SystemExit("the server did not become ready")

    def terminate(self, seconds=60):
        """SIGTERM, then the exit status (None if it had to be killed after `seconds`)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def describe(self):
        return " ".join(shlex.quote(c) for c in self.command[1:])


def open_descriptors(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Sampler(threading.Thread):
    """Peak RSS (VmRSS polled, and the kernel's VmHWM) and peak open descriptors of a process."""

    def __init__(self, pid, interval=0.05):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss_kib = self.peak_fds = self.hwm_kib = 0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            try:
                self.peak_rss_kib = max(self.peak_rss_kib, rss_kib(self.pid))
                self.hwm_kib = max(self.hwm_kib, rss_kib(self.pid, "VmHWM"))
            except OSError:
                return
            self.peak_fds = max(self.peak_fds, open_descriptors(self.pid))
            time.sleep(self.interval)

    def stop(self):
        self.stopped.set()
        self.join()


def request(port, method, path, body=None, headers=None, timeout=60):
    """(status or 'error:Name', Retry-After, seconds, JSON error code or None) of one request on its own connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    start = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, response.getheader("Retry-After"), time.monotonic() - start, error_code(data)
    except OSError as error:
        return f"error:{type(error).__name__}", None, time.monotonic() - start, None
    finally:
        connection.close()


def error_code(data):
    """The `code` of a JSON error document (a body, or a whole raw response), or None."""
    if data.startswith(b"HTTP/1."):
        data = data.partition(b"\r\n\r\n")[2]
    try:
        document = json.loads(data)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def raw_connection(port, timeout=30):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_until_closed(s, limit=1 << 20):
    """What the server sends until it closes ('' if nothing), or None on a reset or timeout."""
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    except OSError:
        return data or None
    return data


def status_of(raw):
    """The status code of a raw HTTP response, or None."""
    if not raw or not raw.startswith(b"HTTP/1."):
        return None
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def trickle(port, prefix, drip, interval=1.0, give_up=120):
    """Sends `prefix`, then `drip` one byte every `interval` seconds until the server closes.
    Returns (status of its answer or None, error code, seconds from the connection to the server's
    close, bytes of `drip` sent)."""
    s = raw_connection(port, timeout=give_up)
    start = time.monotonic()
    sent = 0
    answer = b""
    try:
        if prefix:
            s.sendall(prefix)
        next_send = time.monotonic()
        while time.monotonic() - start < give_up:
            if sent < len(drip) and time.monotonic() >= next_send:
                try:
                    s.send(drip[sent:sent + 1], socket.MSG_NOSIGNAL)
                    sent += 1
                except OSError:
                    pass  # cut: what the server answered is still to be read
                next_send += interval
            readable, _, _ = select.select([s], [], [], max(0.0, next_send - time.monotonic()))
            if readable:
                try:
                    chunk = s.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                answer += chunk
        return status_of(answer), error_code(answer), time.monotonic() - start, sent
    finally:
        s.close()


def hold_idle(port, count, give_up=120):
    """Opens `count` connections that send nothing; returns, per connection, (seconds to its close by
    the server or None if still open at `give_up`, status of what it was sent or None)."""
    sockets, opened = [], []
    for _ in range(count):
        try:
            sockets.append(raw_connection(port, timeout=give_up))
            opened.append(time.monotonic())
        except OSError:
            sockets.append(None)
            opened.append(time.monotonic())
    results = [None] * count
    pending = {s.fileno(): i for i, s in enumerate(sockets) if s is not None}
    for i, s in enumerate(sockets):
        if s is None:
            results[i] = (0.0, "connect-refused")
    selector = selectors.DefaultSelector()
    buffers = {}
    for i, s in enumerate(sockets):
        if s is not None:
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ, i)
            buffers[i] = b""
    deadline = time.monotonic() + give_up
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            i = key.data
            s = sockets[i]
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if chunk:
                buffers[i] += chunk
                continue
            results[i] = (time.monotonic() - opened[i], status_of(buffers[i]))
            selector.unregister(s)
            pending.pop(s.fileno(), None)
            s.close()
    for i, s in enumerate(sockets):
        if s is not None and results[i] is None:
            results[i] = (None, status_of(buffers.get(i)))
            s.close()
    return results


def good_loop(port, stop, results, images, pause=0.0):
    """Posts the good images to /v1/classify in turn until `stop`, on kept-alive connections,
    appending (status, seconds)."""
    index = 0
    connection = None
    while not stop.is_set():
        name, body, content_type = images[index % len(images)]
        index += 1
        start = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("POST", "/v1/classify", body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            response.read()
            results.append((response.status, time.monotonic() - start))
        except OSError as error:
            results.append((f"error:{type(error).__name__}", time.monotonic() - start))
            connection.close()
            connection = None
        if pause:
            stop.wait(pause)
    if connection is not None:
        connection.close()


def sample_images(names=("chelsea.png", "rocket.jpg", "coffee.png", "astronaut.png")):
    images = []
    for name in names:
        path = os.path.join(ROOT, "samples", name)
        images.append((name, open(path, "rb").read(), "image/png" if name.endswith(".png") else "image/jpeg"))
    return images


def add_good_and_server_arguments(parser, good_clients=4, good_pause=0.1):
    """--good-clients, --good-pause, --serve-args and --binary, as the measurements share them."""
    parser.add_argument("--good-clients", type=int, default=good_clients)
    parser.add_argument("--good-pause", type=float, default=good_pause)
    parser.add_argument("--serve-args", default="")
    parser.add_argument("--binary", default=DEFAULT_BINARY)


def start_warm_server(args):
    """(server, sample images): --binary serving with --serve-args, ready, each sample classified once.
    The caller kills the server (`kill()` in a `finally`)."""
    server = Server(args.binary, shlex.split(args.serve_args))
    try:
        server.wait_ready()
        images = sample_images()
        for name, body, content_type in images:  # warm-up
            request(server.port, "POST", "/v1/classify", body, {"Content-Type": content_type})
    except BaseException:
        server.kill()
        raise
    return server, images


def latency_summary(results):
    latencies = [seconds * 1000 for status, seconds in results if status == 200]
    return {"requests": len(results), "ok": len(latencies),
            "p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
            "max_ms": round(max(latencies), 1) if latencies else None}
