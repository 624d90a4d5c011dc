import Foundation

/// A memory-mapped safetensors file whose header has been validated in full at open time.
///
/// Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes
/// of UTF-8 JSON `{"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
/// "__metadata__": {"k": "v"}}`, then the data section; offsets are relative to the data section.
///
/// Every declared tensor is checked once here (known dtype, non-negative shape, offsets inside the data
/// section, byte length == elements x dtype size, no two tensors overlapping), so the accessors can read
/// the mapping without further bounds questions. Immutable after init, hence `Sendable`.
public final class SafeTensors: @unchecked Sendable {
    // @unchecked: the mapping and the parsed header are never mutated after init.

    /// Headers larger than this are refused before parsing (real ones are kilobytes).
    public static let maxHeaderLength = 100 * 1024 * 1024

    /// The path the file was opened from; every error names it.
    public let path: String
    /// The `__metadata__` string map (empty when the header has none).
    public let metadata: [String: String]
    /// Tensor names, sorted.
    public let tensorNames: [String]

    private let file: MappedFile
    private let infos: [String: TensorInfo]
    private let dataStart: Int

    /// Maps and validates the file at `url`. Throws `WeightsError` naming the file and the offending key.
    public convenience init(contentsOf url: URL) throws {
        try self.init(file: MappedFile(path: url.path))
    }

    /// Validates a safetensors file held in memory (a copy is kept); errors name it `name`.
    public convenience init(copying bytes: UnsafeRawBufferPointer, name: String) throws {
        try self.init(file: MappedFile(copying: bytes, path: name))
    }

    init(file: MappedFile) throws {
        self.file = file
        self.path = file.path
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw WeightsError.truncated(file: file.path, size: bytes.count) }
        let length = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard length <= UInt64(Self.maxHeaderLength) else {
            throw WeightsError.headerTooLarge(file: file.path, length: length, limit: Self.maxHeaderLength)
        }
        guard length <= UInt64(bytes.count - 8) else {
            throw WeightsError.headerPastEOF(file: file.path, length: length, fileSize: bytes.count)
        }
        dataStart = 8 + Int(length)
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])
        let parsed = try Self.parseHeader(header, path: file.path, dataSize: bytes.count - dataStart)
        metadata = parsed.metadata
        infos = parsed.infos
        tensorNames = parsed.infos.keys.sorted()
    }

    /// The declaration of tensor `name`; throws `missingTensor` when the file has none.
    public func info(_ name: String) throws -> TensorInfo {
        guard let info = infos[name] else { throw WeightsError.missingTensor(file: path, key: name) }
        return info
    }

    /// The shape of tensor `name` (row-major, outermost first); throws `missingTensor`.
    public func shape(of name: String) throws -> [Int] { try info(name).shape }

    /// Calls `body` with the tensor's raw little-endian bytes, straight from the mapping.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let info = try info(name)
        let start = dataStart + info.byteRange.lowerBound
        return try body(UnsafeRawBufferPointer(rebasing: file.bytes[start..<start + info.byteRange.count]))
    }

    // MARK: - Header validation

    private struct Header {
        var metadata: [String: String] = [:]
        var infos: [String: TensorInfo] = [:]
    }

    private static func parseHeader(_ header: UnsafeRawBufferPointer, path: String, dataSize: Int) throws -> Header {
        guard String(validating: header, as: UTF8.self) != nil else { throw WeightsError.headerNotUTF8(file: path) }
        let json: StrictJSON
        do {
            json = try StrictJSON.parse(header)
        } catch let error as StrictJSON.ParseError {
            throw WeightsError.headerNotJSON(file: path, detail: error.description)
        }
        guard case let .object(members) = json else {
            throw WeightsError.headerNotJSON(file: path, detail: "top level is not an object")
        }
        var result = Header()
        for (key, value) in members {
            if key == "__metadata__" {
                result.metadata = try parseMetadata(value, path: path)
            } else {
                result.infos[key] = try parseEntry(key, value, path: path, dataSize: dataSize)
            }
        }
        // Overlap check: after sorting by start, each tensor must begin at or after the previous end.
        // Empty tensors occupy no bytes and cannot overlap anything.
        let spans = result.infos.values.filter { !$0.byteRange.isEmpty }
            .sorted { ($0.byteRange.lowerBound, $0.name) < ($1.byteRange.lowerBound, $1.name) }
        for (previous, next) in zip(spans, spans.dropFirst()) where next.byteRange.lowerBound < previous.byteRange.upperBound {
            throw WeightsError.overlappingTensors(file: path, first: previous.name, second: next.name)
        }
        return result
    }

    private static func parseMetadata(_ value: StrictJSON, path: String) throws -> [String: String] {
        guard case let .object(members) = value else {
            throw WeightsError.invalidMetadata(file: path, reason: "not an object")
        }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard case let .string(text) = value else {
                throw WeightsError.invalidMetadata(file: path, reason: "value of \(key) is not a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(_ key: String, _ value: StrictJSON, path: String, dataSize: Int) throws -> TensorInfo {
        guard case let .object(fields) = value else {
            throw WeightsError.invalidEntry(file: path, key: key, reason: "entry is not an object")
        }
        let byName = Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0.value) })
        if let unexpected = byName.keys.sorted().first(where: { !["dtype", "shape", "data_offsets"].contains($0) }) {
            throw WeightsError.invalidEntry(file: path, key: key, reason: "unexpected field \"\(unexpected)\"")
        }

        guard case let .string(dtypeName)? = byName["dtype"] else {
            throw WeightsError.invalidEntry(file: path, key: key, reason: "dtype missing or not a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw WeightsError.unknownDType(file: path, key: key, dtype: dtypeName)
        }

        guard case let .array(dims)? = byName["shape"] else {
            throw WeightsError.invalidShape(file: path, key: key, reason: "missing or not an array")
        }
        var shape: [Int] = []
        var elements = 1
        for dim in dims {
            guard let extent = dim.integer, extent >= 0 else {
                throw WeightsError.invalidShape(file: path, key: key, reason: "\(dims.map(Self.literal)) has a "
                    + "dimension that is not a non-negative integer")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow else {
                throw WeightsError.invalidShape(file: path, key: key, reason: "element count of \(dims.map(Self.literal)) overflows")
            }
            shape.append(extent)
            elements = product
        }
        let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else {
            throw WeightsError.invalidShape(file: path, key: key, reason: "byte size of \(shape) \(dtypeName) overflows")
        }

        guard case let .array(offsets)? = byName["data_offsets"], offsets.count == 2,
              let begin = offsets[0].integer, let end = offsets[1].integer else {
            throw WeightsError.invalidOffsets(file: path, key: key, reason: "expected [begin, end] as two integers")
        }
        guard begin >= 0, begin <= end else {
            throw WeightsError.invalidOffsets(file: path, key: key, reason: "[\(begin), \(end)] is not 0 <= begin <= end")
        }
        guard end <= dataSize else {
            throw WeightsError.offsetsOutOfRange(file: path, key: key, begin: begin, end: end, dataSize: dataSize)
        }
        guard end - begin == byteCount else {
            throw WeightsError.byteLengthMismatch(file: path, key: key, expected: byteCount, found: end - begin)
        }
        return TensorInfo(name: key, dtype: dtype, shape: shape, byteRange: begin..<end)
    }

    private static func literal(_ value: StrictJSON) -> String {
        switch value {
        case let .number(text): return text
        case let .string(text): return "\"\(text)\""
        case let .bool(flag): return String(flag)
        case .null: return "null"
        case .array: return "[...]"
        case .object: return "{...}"
        }
    }
}
