/// 64-bit FNV-1a (Fowler, Noll, Vo): a fast non-cryptographic fingerprint, used to seed per-class
/// generators and to detect damaged feature-cache entries.
public enum FNV1a {
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01B3
        }
        return h
    }

    public static func hash(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { hash($0) } }
}
