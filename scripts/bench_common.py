"""Machine facts and process memory for the benchmark scripts (bench_peers, bench_text_peers, bench_classify)."""

import platform


def cpu_model():
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    return platform.processor()


def peak_rss_mb(pid='self'):
    """A process's VmHWM in MB (0.0 once it has gone). VmHWM is the process's own high-water mark;
    ru_maxrss would carry a parent's peak across exec."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
