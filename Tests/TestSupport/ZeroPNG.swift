import Imaging

/// PNGs whose pixel data is all zero bytes (black RGB, transparent RGBA), deflated with fixed
/// Huffman codes as length-258 matches: a 9,999 x 9,999 RGB image is 1.9 MB, the shape of the
/// decompression bombs an attacker sends under the pixel limit.
public enum ZeroPNG {
    public enum ColorType: UInt8, Sendable {
        case rgb = 2, rgba = 6
        var channels: Int { self == .rgb ? 3 : 4 }
    }

    public static func make(width: Int, height: Int, colorType: ColorType, interlaced: Bool) -> [UInt8] {
        // Raw bytes: every row (of every Adam7 pass) is a filter byte then its samples, all zero.
        var rawCount = 0
        if interlaced {
            let starts = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            for (x0, y0, dx, dy) in starts {
                let columns = (width - x0 + dx - 1) / dx, rows = (height - y0 + dy - 1) / dy
                if columns > 0 && rows > 0 { rawCount += rows * (1 + columns * colorType.channels) }
            }
        } else {
            rawCount = height * (1 + width * colorType.channels)
        }
        var ihdr = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        ihdr += [8, colorType.rawValue, 0, 0, interlaced ? 1 : 0]
        let zlib: [UInt8] = [0x78, 0x01] + deflateZeros(count: rawCount)
            + bigEndian(UInt32(rawCount % 65_521) << 16 | 1)  // Adler-32 of zeros: a = 1, b = n
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", ihdr) + chunk("IDAT", zlib) + chunk("IEND", [])
    }

    /// One final fixed-Huffman block: a literal 0, then matches of 258 at distance 1, then literals.
    static func deflateZeros(count: Int) -> [UInt8] {
        var writer = BitWriter()
        writer.write(0b1, bits: 1)  // BFINAL
        writer.write(0b01, bits: 2)  // BTYPE = fixed Huffman
        writer.writeCode(0b0011_0000, bits: 8)  // literal 0
        var remaining = count - 1
        // Length symbol 285 (= 258, code 1100 0101) then distance code 0 (= 1, 00000), reversed once.
        var match = BitWriter()
        match.writeCode(0b1100_0101, bits: 8)
        let reversedMatch = UInt32(match.bytes[0])
        while remaining >= 258 {
            writer.write(reversedMatch, bits: 13)
            remaining -= 258
        }
        for _ in 0..<remaining { writer.writeCode(0b0011_0000, bits: 8) }
        writer.writeCode(0, bits: 7)  // end of block (256)
        return writer.finished
    }

    struct BitWriter {
        var bytes: [UInt8] = []
        var accumulator: UInt64 = 0
        var filled: UInt64 = 0

        /// Header fields: least significant bit first.
        mutating func write(_ value: UInt32, bits: UInt32) {
            accumulator |= UInt64(value) << filled
            filled += UInt64(bits)
            while filled >= 8 {
                bytes.append(UInt8(truncatingIfNeeded: accumulator))
                accumulator >>= 8
                filled -= 8
            }
        }

        /// Huffman codes: most significant bit first.
        mutating func writeCode(_ code: UInt32, bits: UInt32) {
            var reversed: UInt32 = 0
            for i in 0..<bits where code & (1 << i) != 0 { reversed |= 1 << (bits - 1 - i) }
            write(reversed, bits: bits)
        }

        var finished: [UInt8] { filled > 0 ? bytes + [UInt8(truncatingIfNeeded: accumulator)] : bytes }
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(PNGEncoder.crc32(body))
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
