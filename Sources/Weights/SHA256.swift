import CSHA256

/// SHA-256 (FIPS 180-4), so the Weights module can check files against the manifest (and the feature
/// cache can key images by content) without a crypto dependency. Not constant-time; it only fingerprints files we are about to trust.
public struct SHA256 {
    /// Lowercase hex digest of `bytes` (CSHA256: the x86 SHA extensions where the CPU has them).
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        hk_sha256(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, &digest)
        return hexString(digest)
    }

    /// The same through the portable compression only (tests compare the two).
    public static func portableHex(_ bytes: UnsafeRawBufferPointer) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        hk_sha256_portable(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, &digest)
        return hexString(digest)
    }

    /// Whether `hex` runs on the CPU's SHA extensions.
    public static var isAccelerated: Bool { hk_sha256_accelerated() != 0 }

    private static func hexString(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(64)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Digest of a whole file, read through a memory map.
    public static func hex(fileAt path: String) throws -> String {
        let file = try MappedFile(path: path)
        // The mapping lives only as long as `file`; without this it could be unmapped mid-hash.
        return withExtendedLifetime(file) { hex(file.bytes) }
    }
}
