import Foundation

/// Reference outputs dumped from the Python reference, kept in Tests/Golden so tests stand on their own.
public enum Golden {
    /// The repository root, found from this file's location.
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static let efficientNetLite0 = repositoryRoot.appendingPathComponent("Tests/Golden/efficientnet-lite0")

    public struct Sample: Decodable, Sendable {
        public struct Top: Decodable, Sendable {
            public let index: Int
            public let prob: Double
            public let name: String
        }
        /// e.g. "chelsea"
        public let name: String
        /// e.g. "chelsea.png", as shipped in samples/
        public let file: String
        public let source_size_wh: [Int]
        public let crop_box_xyxy: [Int]
        public let top5: [Top]
    }

    public static let miniLM = repositoryRoot.appendingPathComponent("Tests/Golden/minilm")

    /// One sentence of `minilm/golden_minilm.json` (sentence-transformers all-MiniLM-L6-v2 reference).
    public struct Sentence: Decodable, Sendable {
        public let index: Int
        public let text: String
        public let input_ids: [Int32]
        /// Absent (null) for the long sentences.
        public let tokens: [String]?
        public let truncated: Bool
        /// e.g. "minilm/emb_0.npy": the 384-d normalized embedding.
        public let npy: String
    }

    public static func miniLMSentences() throws -> [Sentence] {
        struct File: Decodable { let sentences: [Sentence] }
        let data = try Data(contentsOf: miniLM.appendingPathComponent("golden_minilm.json"))
        return try JSONDecoder().decode(File.self, from: data).sentences
    }

    /// The reference embedding of `sentence`, [384].
    public static func miniLMEmbedding(_ sentence: Sentence) throws -> [Float] {
        try NumpyArray(contentsOf: miniLM.appendingPathComponent((sentence.npy as NSString).lastPathComponent)).floats()
    }

    public static func efficientNetSamples() throws -> [Sample] {
        struct File: Decodable { let samples: [Sample] }
        let data = try Data(contentsOf: efficientNetLite0.appendingPathComponent("golden.json"))
        return try JSONDecoder().decode(File.self, from: data).samples
    }

    /// A fetched asset (weights/..., samples/...) or an error telling how to fetch it.
    public static func asset(_ relativePath: String, fetchWith command: String) throws -> URL {
        let url = repositoryRoot.appendingPathComponent(relativePath)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw MissingAsset(path: relativePath, command: command)
        }
        return url
    }

    public struct MissingAsset: Error, CustomStringConvertible {
        public let path: String
        public let command: String
        public var description: String { "\(path) is missing: run `\(command)` first (make test does)" }
    }
}

/// Reads NumPy .npy files (version 1/2/3, little-endian, C order) of the dtypes the references use.
public struct NumpyArray {
    public let shape: [Int]
    public let descr: String
    public let payload: Data

    public init(contentsOf url: URL) throws {
        let data = try Data(contentsOf: url)
        guard data.count >= 10, data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else {
            throw NumpyError("\(url.lastPathComponent): not a .npy file")
        }
        let major = data[data.startIndex + 6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(data[data.startIndex + 8]) | Int(data[data.startIndex + 9]) << 8
            headerStart = 10
        } else {
            headerLength = (0..<4).reduce(0) { $0 | Int(data[data.startIndex + 8 + $1]) << (8 * $1) }
            headerStart = 12
        }
        let header = String(decoding: data[(data.startIndex + headerStart)..<(data.startIndex + headerStart + headerLength)], as: UTF8.self)
        guard header.contains("'fortran_order': False") else { throw NumpyError("\(url.lastPathComponent): Fortran order") }
        guard let d = header.range(of: "'descr': '")?.upperBound, let dEnd = header[d...].firstIndex(of: "'"),
              let s = header.range(of: "'shape': (")?.upperBound, let sEnd = header[s...].firstIndex(of: ")") else {
            throw NumpyError("\(url.lastPathComponent): unreadable header \(header)")
        }
        descr = String(header[d..<dEnd])
        shape = header[s..<sEnd].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        payload = data.subdata(in: (data.startIndex + headerStart + headerLength)..<data.endIndex)
    }

    public var count: Int { shape.reduce(1, *) }

    public func floats() throws -> [Float] {
        switch descr {
        case "<f4": return payload.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
        case "<f8": return payload.withUnsafeBytes { raw in (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) } }
        default: throw NumpyError("dtype \(descr) is not float")
        }
    }

    public func doubles() throws -> [Double] {
        switch descr {
        case "<f8": return payload.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) } }
        case "<f4": return try floats().map(Double.init)
        default: throw NumpyError("dtype \(descr) is not float")
        }
    }

    public func bytes() throws -> [UInt8] {
        guard descr == "|u1" else { throw NumpyError("dtype \(descr) is not uint8") }
        return Array(payload.prefix(count))
    }
}

public struct NumpyError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
