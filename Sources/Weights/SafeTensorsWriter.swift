import Foundation

/// Serializes float32 tensors and string metadata in the safetensors format that `SafeTensors`
/// reads (header JSON padded with spaces to an 8-byte boundary, tensors in name order).
public enum SafeTensorsWriter {
    public struct Tensor: Sendable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]

        public init(name: String, shape: [Int], values: [Float]) {
            precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// The complete file contents.
    public static func serialize(_ tensors: [Tensor], metadata: [String: String]) -> Data {
        let sorted = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for tensor in sorted {
            let bytes = tensor.values.count * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        // Sorted keys make the file a pure function of its contents (same head, same bytes).
        var headerBytes = [UInt8]((try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8))
        // Padding keeps the data section 8-byte aligned for readers that map it directly.
        headerBytes += [UInt8](repeating: 0x20, count: (8 - headerBytes.count % 8) % 8)
        var data = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: headerBytes)
        for tensor in sorted {
            #if _endian(little)
            tensor.values.withUnsafeBytes { data.append(contentsOf: $0) }
            #else
            for v in tensor.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            #endif
        }
        return data
    }
}
