import Foundation

/// Writes small safetensors files for tests: either well-formed ones from tensors (offsets computed,
/// header padded like scripts/assets.py does) or raw header text + data to provoke each error.
enum SafeTensorsFixture {
    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: [UInt8]
    }

    /// A fresh directory under the system temporary directory; the caller removes it.
    static func makeDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("weights-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func withDirectory<R>(_ body: (URL) throws -> R) throws -> R {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        return try body(directory)
    }

    static func header(_ tensors: [Tensor], metadata: [String: String]? = nil) -> String {
        var entries: [String] = []
        if let metadata {
            let pairs = metadata.keys.sorted().map { "\"\($0)\":\"\(metadata[$0]!)\"" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for tensor in tensors {
            entries.append("\"\(tensor.name)\":{\"dtype\":\"\(tensor.dtype)\",\"shape\":\(tensor.shape),"
                + "\"data_offsets\":[\(offset),\(offset + tensor.bytes.count)]}")
            offset += tensor.bytes.count
        }
        return "{" + entries.joined(separator: ",") + "}"
    }

    /// Well-formed file; `padTo` pads the header so that (8 + header length) % padTo == remainder.
    @discardableResult
    static func write(_ tensors: [Tensor], metadata: [String: String]? = nil, to url: URL,
                      padTo: Int = 8, remainder: Int = 0) throws -> URL {
        try writeRaw(header: header(tensors, metadata: metadata), data: tensors.flatMap(\.bytes), to: url,
                     padTo: padTo, remainder: remainder)
    }

    /// Any header text and data; `declaredLength` overrides the 8-byte length field.
    @discardableResult
    static func writeRaw(header: String, headerBytes: [UInt8]? = nil, data: [UInt8], to url: URL,
                         declaredLength: UInt64? = nil, padTo: Int = 8, remainder: Int = 0) throws -> URL {
        var text = headerBytes ?? Array(header.utf8)
        while (8 + text.count) % padTo != remainder { text.append(0x20) }
        var file: [UInt8] = []
        withUnsafeBytes(of: (declaredLength ?? UInt64(text.count)).littleEndian) { file.append(contentsOf: $0) }
        file += text + data
        try Data(file).write(to: url)
        return url
    }

    static func bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    }

    static func bytes(_ values: [Int64]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    static func bytes(_ values: [UInt16]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }
}
