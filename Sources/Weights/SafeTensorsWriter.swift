import Foundation

/// Serializes float32, int8 and int32 tensors and string metadata in the safetensors format that `SafeTensors`
/// reads (header JSON padded with spaces to an 8-byte boundary, tensors in name order).
public enum SafeTensorsWriter {
    public struct Tensor: Sendable {
        public var name: String
        public var shape: [Int]
        public var dtype: DType
        /// Little-endian element bytes, row-major.
        public var bytes: [UInt8]

        public init(name: String, shape: [Int], values: [Float]) {
            precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
            self.name = name
            self.shape = shape
            dtype = .f32
            #if _endian(little)
            bytes = values.withUnsafeBytes { Array($0) }
            #else
            bytes = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
            #endif
        }

        /// An int8 tensor (quantized weights).
        public init(name: String, shape: [Int], int8s: [Int8]) {
            precondition(shape.reduce(1, *) == int8s.count, "\(name): \(int8s.count) values for shape \(shape)")
            self.name = name
            self.shape = shape
            dtype = .i8
            bytes = int8s.map { UInt8(bitPattern: $0) }
        }

        /// An int32 tensor.
        public init(name: String, shape: [Int], int32s: [Int32]) {
            precondition(shape.reduce(1, *) == int32s.count, "\(name): \(int32s.count) values for shape \(shape)")
            self.name = name
            self.shape = shape
            dtype = .i32
            #if _endian(little)
            bytes = int32s.withUnsafeBytes { Array($0) }
            #else
            bytes = int32s.flatMap { v in withUnsafeBytes(of: v.littleEndian, Array.init) }
            #endif
        }
    }

    /// The complete file contents.
    public static func serialize(_ tensors: [Tensor], metadata: [String: String]) -> Data {
        let sorted = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for tensor in sorted {
            let bytes = tensor.bytes.count
            header[tensor.name] = ["dtype": tensor.dtype.rawValue, "shape": tensor.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        // Sorted keys make the file a pure function of its contents (same head, same bytes).
        var headerBytes = [UInt8]((try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8))
        // Padding keeps the data section 8-byte aligned for readers that map it directly.
        headerBytes += [UInt8](repeating: 0x20, count: (8 - headerBytes.count % 8) % 8)
        var data = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: headerBytes)
        for tensor in sorted { data.append(contentsOf: tensor.bytes) }
        return data
    }
}
