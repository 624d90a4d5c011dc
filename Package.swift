// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "headtune",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "headtune", targets: ["HeadTuneCLI"]),
        .library(name: "HeadTune", targets: ["HeadTune"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The HTTP service (Sources/Service).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // ONNX export (Sources/ONNX: message code generated once by scripts/generate-onnx-proto, committed).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // System libraries (Debian: libjpeg-dev, libpng-dev, libwebp-dev, libtiff-dev, libheif-dev, libopenblas-dev).
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CWebP", pkgConfig: "libwebpdemux", providers: [.apt(["libwebp-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CHEIF", pkgConfig: "libheif", providers: [.apt(["libheif-dev"])]),
        // OpenBLAS is opened with dlopen after OPENBLAS_CORETYPE is chosen for this CPU: the library
        // picks its kernels once, in its load-time constructor, before any Swift code could run.
        .target(name: "COpenBLAS", linkerSettings: [.linkedLibrary("dl")]),

        // Vectorized loops, optimized even in debug builds so the golden tests stay quick.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-Wno-psabi"])]),
        .target(name: "Kernels", dependencies: ["COpenBLAS", "CKernels"]),
        // setjmp/longjmp error handling of libjpeg and libpng (and libtiff's handlers) must live in C.
        .target(name: "CImageCodecs", dependencies: ["CJPEG", "CPNG", "CWebP", "CTIFF", "CHEIF"]),
        .target(name: "Imaging", dependencies: ["CImageCodecs"]),
        // SHA-256 with the x86 SHA extensions where the CPU has them (model ids hash whole checkpoints).
        .target(name: "CSHA256", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "Weights", dependencies: ["CSHA256"]),
        // ONNX's protobuf messages and a graph builder that knows operators, not models.
        .target(name: "ONNX", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "Models", dependencies: ["Kernels", "Imaging", "Weights", "ONNX"]),
        // Heads, losses, optimizers, metrics, datasets and the feature cache.
        .target(name: "Training", dependencies: ["Kernels", "Imaging", "Weights",
                                                 .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "HeadTune", dependencies: ["Kernels", "Imaging", "Weights", "Models", "Training", "ONNX",
                                                 .product(name: "GRDB", package: "GRDB.swift")],
                resources: [.copy("Resources/imagenet_classes.txt")]),
        // The HTTP inference service (thin: routes, batching worker, metrics over HeadTune; no model types).
        .target(name: "Service", dependencies: [
            "HeadTune", "Imaging", "Training", "Weights",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], resources: [.copy("Resources/openapi.json")]),
        .executableTarget(name: "HeadTuneCLI", dependencies: [
            "HeadTune", "Service",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Golden-file paths, a .npy reader and generated hostile images shared by the test targets.
        .target(name: "TestSupport", dependencies: ["Imaging"], path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TestSupport"], resources: [.copy("Resources")]),
        .testTarget(name: "WeightsTests", dependencies: ["Weights", "CSHA256"]),
        .testTarget(name: "ONNXTests", dependencies: ["ONNX", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Weights", "Kernels", "TestSupport"], resources: [.copy("Resources")]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Weights", "TestSupport",
                                                   .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "ServiceTests", dependencies: ["Service", "HeadTune", "Training", "Imaging", "TestSupport",
                                                  .product(name: "HummingbirdTesting", package: "hummingbird")]),
        .testTarget(name: "HeadTuneTests", dependencies: ["HeadTune", "Kernels", "Imaging", "Training", "TestSupport"]),
    ]
)
