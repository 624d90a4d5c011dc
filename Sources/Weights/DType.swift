/// Element types a safetensors file may declare (the names are the format's own codes).
public enum DType: String, CaseIterable, Sendable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// One tensor's declaration in a safetensors header, already validated.
public struct TensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    /// Row-major dimensions, outermost first (PyTorch order, e.g. OIHW for convolutions).
    public let shape: [Int]
    /// Byte range within the data section (after the header).
    public let byteRange: Range<Int>

    /// Product of the shape (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
}
