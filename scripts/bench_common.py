"""Machine facts, process memory and the text benchmark's sentences for the benchmark scripts (bench_peers,
bench_text_peers, bench_classify, bench_clip_peers, clip_export_onnx)."""

import platform

# The sentences every text benchmark feeds (kept equal to BenchText.benchmarkSentences in
# Sources/HeadTuneCLI/BenchText.swift): 8 short English ones, repeated with a " #i" suffix.
BENCHMARK_SENTENCES = ["A cat sits on the mat.", "A kitten is resting on a rug.", "The stock market fell sharply today.",
                       "How do I reset my password?", "Crème brûlée, naïve café — déjà vu!", "Two dogs play in the snow.",
                       "Swift is a general-purpose programming language.", "The weather will be sunny tomorrow."]


def benchmark_sentences(n):
    base = BENCHMARK_SENTENCES
    return [base[i % len(base)] + ('' if i < len(base) else f' #{i}') for i in range(n)]


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
