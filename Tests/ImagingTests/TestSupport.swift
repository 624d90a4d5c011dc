import Foundation
import Testing
@testable import Imaging

/// Paths of the committed test resources and of the downloaded sample photos.
enum TestFiles {
    /// Tests/ImagingTests/Resources as copied into the test bundle.
    static let resources: URL = {
        guard let url = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            fatalError("ImagingTests resources missing from the bundle")
        }
        return url
    }()

    static func fixture(_ name: String) -> String {
        resources.appendingPathComponent("fixtures").appendingPathComponent(name).path
    }

    /// The repository root, found from this file's location (Tests/ImagingTests/TestSupport.swift).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The reference outputs shared by all test targets (copied from shared/reference/effnet),
    /// e.g. `chelsea_input_u8_hwc.npy`.
    static func golden(_ name: String) throws -> String {
        let path = repositoryRoot.appendingPathComponent("Tests/Golden/efficientnet-lite0")
            .appendingPathComponent(name).path
        try #require(FileManager.default.fileExists(atPath: path), "\(path) is missing from the checkout")
        return path
    }

    /// `<repo>/samples/<name>`, which `make samples` downloads (gitignored). Fails the calling
    /// test with instructions when missing, rather than skipping it.
    static func sample(_ name: String) throws -> String {
        let path = repositoryRoot.appendingPathComponent("samples").appendingPathComponent(name).path
        try #require(FileManager.default.fileExists(atPath: path),
                     "\(path) is missing: run `make samples` to download the sample photos")
        return path
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// A fresh empty directory for files a test creates.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("imaging-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The manifest written by scripts/make_imaging_fixtures.py.
struct FixtureManifest: Decodable {
    struct Image: Decodable, CustomTestStringConvertible, Sendable {
        let file: String
        let width: Int
        let height: Int
        let tolerance: Int
        let colorType: Int?
        let bitDepth: Int?
        let interlaced: Bool?
        let orientation: Int?
        let scaleDenominator: Int?
        let inks: [[Int]]?
        let sourceColours: [Int]?
        /// WebP/TIFF: the expectation is the written pixels (compared exactly).
        let lossless: Bool?
        let animated: Bool?
        /// Decode with `DecodeOptions(minimumSide:)` to get the expected (scaled) pixels.
        let minimumSide: Int?
        var testDescription: String { file }

        /// The expected decoded pixels (Pillow's, or computed by the generator).
        func expected() throws -> RGBImage {
            let pixels = try TestFiles.bytes(TestFiles.fixture(file + ".rgb"))
            try #require(pixels.count == width * height * 3, "\(file).rgb has \(pixels.count) bytes")
            return RGBImage(width: width, height: height, pixels: pixels)
        }

        /// Decodes the fixture and expects the stored pixels, each within `tolerance` levels.
        @discardableResult
        func decodeAndCompare(format: ImageFormat, options: DecodeOptions = .init(),
                              sourceLocation: SourceLocation = #_sourceLocation) throws -> DecodedImage {
            let decoded = try ImageDecoder.decodeDetailed(fileAt: TestFiles.fixture(file), options: options)
            let expected = try expected()
            #expect(decoded.format == format, sourceLocation: sourceLocation)
            try #require(decoded.image.width == expected.width && decoded.image.height == expected.height,
                         "\(file): decoded \(decoded.image.width)x\(decoded.image.height)", sourceLocation: sourceLocation)
            let difference = PixelDifference(decoded.image.pixels, expected.pixels)
            #expect(difference.maxAbs <= tolerance, "\(file): \(difference)", sourceLocation: sourceLocation)
            return decoded
        }
    }

    struct ResizeCase: Decodable, CustomTestStringConvertible, Sendable {
        let source: String
        let sourceWidth: Int
        let sourceHeight: Int
        let width: Int
        let height: Int
        let box: [Float]
        let expected: String
        var testDescription: String { "\(source) box \(box) -> \(width)x\(height)" }
    }

    let png: [Image]
    let jpeg: [Image]
    let webp: [Image]
    let tiff: [Image]
    let heif: [Image]
    let errors: [String]
    let resize: [ResizeCase]

    static let shared: FixtureManifest = {
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture("fixtures.json")))
            return try JSONDecoder().decode(FixtureManifest.self, from: data)
        } catch {
            fatalError("cannot load fixtures.json: \(error)")
        }
    }()

    func jpeg(_ file: String) throws -> Image {
        try #require(jpeg.first { $0.file == file }, "\(file) not in fixtures.json")
    }
}

/// Minimal reader for NumPy .npy files holding uint8 arrays (format versions 1-3).
enum NumpyFile {
    struct Array {
        let shape: [Int]
        let values: [UInt8]
    }

    enum Failure: Error, CustomStringConvertible {
        case malformed(String, String)
        var description: String {
            switch self { case .malformed(let path, let why): "\(path): not a uint8 .npy file (\(why))" }
        }
    }

    static func loadUInt8(_ path: String) throws -> Array {
        let bytes = try TestFiles.bytes(path)
        guard bytes.count >= 10, bytes.starts(with: [0x93] + Swift.Array("NUMPY".utf8)) else {
            throw Failure.malformed(path, "bad magic")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw Failure.malformed(path, "short header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard headerStart + headerLength <= bytes.count else { throw Failure.malformed(path, "short header") }
        let header = String(decoding: bytes[headerStart..<headerStart + headerLength], as: UTF8.self)
        guard header.contains("'descr': '|u1'") || header.contains("'descr': '<u1'") else {
            throw Failure.malformed(path, "dtype is not uint8: \(header)")
        }
        guard header.contains("'fortran_order': False") else { throw Failure.malformed(path, "Fortran order") }
        guard let open = header.range(of: "'shape': ("),
              let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw Failure.malformed(path, "no shape")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let count = shape.reduce(1, *)
        let dataStart = headerStart + headerLength
        guard bytes.count - dataStart == count else {
            throw Failure.malformed(path, "\(bytes.count - dataStart) data bytes for shape \(shape)")
        }
        return Array(shape: shape, values: Swift.Array(bytes[dataStart...]))
    }
}

/// Decodes a fixture stored `width` x `height` with orientation 6 (rotate clockwise), with and
/// without applying it: the rotated image is `height` x `width` and has the stored top-left pixel
/// at its top-right.
func expectRotatedClockwise(_ file: String, storedWidth width: Int, storedHeight height: Int,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
    let path = TestFiles.fixture(file)
    let decoded = try ImageDecoder.decodeDetailed(fileAt: path)
    #expect(decoded.orientation == 6 && decoded.orientationApplied, sourceLocation: sourceLocation)
    #expect(decoded.image.width == height && decoded.image.height == width, sourceLocation: sourceLocation)
    let raw = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(applyExifOrientation: false))
    #expect(raw.image.width == width && raw.image.height == height && !raw.orientationApplied, sourceLocation: sourceLocation)
    #expect(decoded.image.pixel(x: height - 1, y: 0) == raw.image.pixel(x: 0, y: 0), sourceLocation: sourceLocation)
}

/// Per-value comparison of two equally sized images.
struct PixelDifference: CustomStringConvertible {
    let maxAbs: Int
    let differing: Int
    let meanAbs: Double
    let count: Int

    init(_ a: [UInt8], _ b: [UInt8]) {
        precondition(a.count == b.count, "comparing \(a.count) with \(b.count) values")
        var maxAbs = 0, differing = 0, total = 0
        for i in a.indices {
            let d = abs(Int(a[i]) - Int(b[i]))
            maxAbs = max(maxAbs, d)
            if d != 0 { differing += 1 }
            total += d
        }
        self.maxAbs = maxAbs
        self.differing = differing
        self.meanAbs = a.isEmpty ? 0 : Double(total) / Double(a.count)
        self.count = a.count
    }

    var description: String {
        "max |diff| \(maxAbs), \(differing) of \(count) values differ, mean |diff| \(String(format: "%.4f", meanAbs))"
    }
}

/// Expects `body` to throw exactly `expected`.
func expectError(_ expected: ImagingError, sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) {
    #expect(thrownError(sourceLocation: sourceLocation, body) == expected, sourceLocation: sourceLocation)
}

/// Runs `body`, which must throw, and returns the error.
/// (Closures are not inferred as typed-throws, hence the cast.)
func thrownError(sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) -> ImagingError? {
    do {
        try body()
        Issue.record("expected an ImagingError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ImagingError {
        return error
    } catch {
        Issue.record("expected an ImagingError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension PreprocessingSpec {
    /// TensorFlow's EfficientNet eval preprocessing (the 0.875 crop, (x - 127) / 128), the spec
    /// EfficientNet-Lite0 declares; the golden preprocessing files were made with it.
    static func tensorFlowEval(size: Int = 224) -> PreprocessingSpec {
        PreprocessingSpec(inputSize: size, centerCrop: .fraction(margin: 32), normalization: .scaleOffset(offset: 127, scale: 128),
                          defaultPolicy: .centerCrop)
    }
}
