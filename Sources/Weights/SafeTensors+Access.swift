extension SafeTensors {
    /// The tensor converted to `Float`, row-major. F32 is copied as is; F16, BF16 and F64 are converted.
    /// Integer and bool tensors throw `dtypeMismatch`.
    public func floats(_ name: String) throws -> [Float] {
        let info = try info(name)
        let count = info.elementCount
        return try withRawBytes(name) { raw in
            switch info.dtype {
            case .f32:
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    #if _endian(little)
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
                    #else
                    for i in 0..<count { buffer[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                    #endif
                    initialized = count
                }
            case .f16:
                return (0..<count).map { Self.float(half: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            case .bf16:
                return (0..<count).map { Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
            case .f64:
                return (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            case .i64, .i32, .i16, .i8, .u8, .bool:
                throw WeightsError.dtypeMismatch(file: path, key: name, found: info.dtype, wanted: "Float")
            }
        }
    }

    /// Strict load: the tensor as `Float`s after checking its shape is exactly `shape`.
    /// Throws `missingTensor` or `shapeMismatch(file, key, expected, found)`.
    public func tensor(_ name: String, shape: [Int]) throws -> [Float] {
        try checkShape(name, shape)
        return try floats(name)
    }

    /// Calls `body` with an F32 tensor's elements without copying when the mapping is 4-byte aligned
    /// (files written by scripts/assets.py always are), else with an aligned copy.
    /// Pass `shape` to check it first. Other dtypes throw `dtypeMismatch`: use `floats(_:)` for those.
    public func withFloatBuffer<R>(_ name: String, shape: [Int]? = nil,
                                   _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        let info = try info(name)
        if let shape { try checkShape(name, shape) }
        guard info.dtype == .f32 else {
            throw WeightsError.dtypeMismatch(file: path, key: name, found: info.dtype, wanted: "a zero-copy F32 buffer")
        }
        #if _endian(little)
        let aligned: Bool = try withRawBytes(name) { raw in
            raw.baseAddress.map { Int(bitPattern: $0) % MemoryLayout<Float>.alignment == 0 } ?? true
        }
        if aligned {
            return try withRawBytes(name) { raw in
                guard let base = raw.baseAddress else { return try body(UnsafeBufferPointer(start: nil, count: 0)) }
                return try base.withMemoryRebound(to: Float.self, capacity: info.elementCount) {
                    try body(UnsafeBufferPointer(start: $0, count: info.elementCount))
                }
            }
        }
        #endif
        return try floats(name).withUnsafeBufferPointer(body)
    }

    /// An I8 tensor as stored (quantized weights); any other dtype is refused, not converted.
    public func int8s(_ name: String, shape: [Int]) throws -> [Int8] {
        let info = try info(name)
        guard info.dtype == .i8 else { throw WeightsError.dtypeMismatch(file: path, key: name, found: info.dtype, wanted: "I8") }
        try checkShape(name, shape)
        return try withRawBytes(name) { raw in raw.map { Int8(bitPattern: $0) } }
    }

    /// An integer tensor (I64, I32, I16, I8, U8) widened to `Int64`, e.g. BERT `position_ids`.
    public func int64s(_ name: String) throws -> [Int64] {
        let info = try info(name)
        return try withRawBytes(name) { raw in
            let n = info.elementCount
            switch info.dtype {
            case .i64: return (0..<n).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            case .i32: return (0..<n).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            case .i16: return (0..<n).map { Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
            case .i8: return (0..<n).map { Int64(Int8(bitPattern: raw[$0])) }
            case .u8: return (0..<n).map { Int64(raw[$0]) }
            case .f64, .f32, .f16, .bf16, .bool:
                throw WeightsError.dtypeMismatch(file: path, key: name, found: info.dtype, wanted: "Int64")
            }
        }
    }

    private func checkShape(_ name: String, _ expected: [Int]) throws {
        let found = try info(name).shape
        guard found == expected else {
            throw WeightsError.shapeMismatch(file: path, key: name, expected: expected, found: found)
        }
    }

    /// IEEE 754 binary16 -> binary32, exact for every input (done by hand: `Float16` is not available
    /// on every platform Swift targets).
    static func float(half bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let mantissa = UInt32(bits & 0x03FF)
        switch exponent {
        case 0:  // zero or subnormal: mantissa x 2^-24
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:  // infinity or NaN (payload kept)
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        default:  // rebias 15 -> 127
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }
}
