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
    ],
    targets: [
        // System libraries (Debian: libjpeg-dev, libpng-dev, libopenblas-dev).
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        // OpenBLAS is opened with dlopen after OPENBLAS_CORETYPE is chosen for this CPU: the library
        // picks its kernels once, in its load-time constructor, before any Swift code could run.
        .target(name: "COpenBLAS", linkerSettings: [.linkedLibrary("dl")]),

        // Vectorized loops, optimized even in debug builds so the golden tests stay quick.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-Wno-psabi"])]),
        .target(name: "Kernels", dependencies: ["COpenBLAS", "CKernels"]),
        // setjmp/longjmp error handling of libjpeg and libpng must live in C.
        .target(name: "CImageCodecs", dependencies: ["CJPEG", "CPNG"]),
        .target(name: "Imaging", dependencies: ["CImageCodecs"]),
        .target(name: "Weights"),
        .target(name: "Models", dependencies: ["Kernels", "Weights"]),
        // Heads, losses, optimizers, metrics, datasets and the feature cache.
        .target(name: "Training", dependencies: ["Kernels", "Models", "Weights",
                                                 .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "HeadTune", dependencies: ["Kernels", "Imaging", "Weights", "Models", "Training",
                                                 .product(name: "GRDB", package: "GRDB.swift")],
                resources: [.copy("Resources/imagenet_classes.txt")]),
        .executableTarget(name: "HeadTuneCLI", dependencies: [
            "HeadTune",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Golden-file paths and a .npy reader shared by the test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], resources: [.copy("Resources")]),
        .testTarget(name: "WeightsTests", dependencies: ["Weights"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Weights", "Kernels", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Weights", "TestSupport",
                                                   .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "HeadTuneTests", dependencies: ["HeadTune", "Imaging", "Training", "TestSupport"]),
    ]
)
