import Testing
@testable import Imaging

@Suite("EXIF orientation")
struct ExifOrientationTests {
    /// A TIFF structure whose IFD0 holds a Make tag and then the given orientation entry.
    static func tiff(orientation: Int, bigEndian: Bool, type: Int = 3, entries: Int? = nil) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { bigEndian ? [UInt8(v >> 8 & 255), UInt8(v & 255)] : [UInt8(v & 255), UInt8(v >> 8 & 255)] }
        func u32(_ v: Int) -> [UInt8] { bigEndian ? u16(v >> 16) + u16(v & 0xFFFF) : u16(v & 0xFFFF) + u16(v >> 16) }
        var bytes: [UInt8] = bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]
        bytes += u16(42) + u32(8) + u16(entries ?? 2)
        bytes += u16(0x010F) + u16(2) + u32(2) + [0x78, 0, 0, 0]
        bytes += u16(0x0112) + u16(type) + u32(1) + u16(orientation) + [0, 0]
        bytes += u32(0)
        return bytes
    }

    static func parse(_ bytes: [UInt8]) -> ExifOrientation? {
        bytes.withUnsafeBytes { ExifOrientation.parse(tiff: $0) }
    }

    @Test("reads the tag in both byte orders")
    func parsesBothByteOrders() {
        for value in 1...8 {
            #expect(Self.parse(Self.tiff(orientation: value, bigEndian: false))?.rawValue == value)
            #expect(Self.parse(Self.tiff(orientation: value, bigEndian: true))?.rawValue == value)
        }
    }

    @Test("malformed or missing data gives no orientation, without crashing")
    func malformed() {
        #expect(Self.parse([]) == nil)
        #expect(Self.parse(Array("Exif".utf8)) == nil)
        #expect(Self.parse(Self.tiff(orientation: 9, bigEndian: false)) == nil)           // out of range
        #expect(Self.parse(Self.tiff(orientation: 0, bigEndian: true)) == nil)
        #expect(Self.parse(Self.tiff(orientation: 6, bigEndian: false, type: 4)) == nil)  // LONG, not SHORT
        #expect(Self.parse(Self.tiff(orientation: 6, bigEndian: false, entries: 1)) == nil)  // tag not listed
        var wrongMagic = Self.tiff(orientation: 6, bigEndian: false)
        wrongMagic[2] = 43
        #expect(Self.parse(wrongMagic) == nil)
        var badOffset = Self.tiff(orientation: 6, bigEndian: true)
        badOffset[4...7] = [0x7F, 0xFF, 0xFF, 0xFF]
        #expect(Self.parse(badOffset) == nil)
        // An entry count far beyond the data must stop at the end of the buffer.
        let huge = Self.tiff(orientation: 6, bigEndian: false, entries: 60_000)
        #expect(Self.parse(huge)?.rawValue == 6)
        let full = Self.tiff(orientation: 6, bigEndian: false)
        // Every truncation: the value occupies bytes 30-31 (8 header + 2 count + 12 Make + 8).
        for length in 0...full.count {
            let parsed = Self.parse(Array(full[..<length]))
            #expect(parsed == (length >= 32 ? .rotateClockwise : nil), "truncated to \(length)")
        }
    }

    /// The 3x2 image [[a b c], [d e f]] and where Pillow's exif_transpose puts each pixel.
    @Test("transforms match Pillow's exif_transpose", arguments: ExifOrientation.allCases)
    func transforms(orientation: ExifOrientation) {
        let expected: [ExifOrientation: [[Character]]] = [
            .identity: [["a", "b", "c"], ["d", "e", "f"]],
            .flipLeftRight: [["c", "b", "a"], ["f", "e", "d"]],
            .rotate180: [["f", "e", "d"], ["c", "b", "a"]],
            .flipTopBottom: [["d", "e", "f"], ["a", "b", "c"]],
            .transpose: [["a", "d"], ["b", "e"], ["c", "f"]],
            .rotateClockwise: [["d", "a"], ["e", "b"], ["f", "c"]],
            .transverse: [["f", "c"], ["e", "b"], ["d", "a"]],
            .rotateCounterClockwise: [["c", "f"], ["b", "e"], ["a", "d"]],
        ]
        let labels: [Character] = ["a", "b", "c", "d", "e", "f"]
        // Pixel i = (i, 10 + i, 20 + i) so every channel is checked.
        var source: [UInt8] = []
        for i in 0..<6 { source += [UInt8(i), UInt8(10 + i), UInt8(20 + i)] }
        var output = [UInt8](repeating: 255, count: 18)
        source.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                orientation.apply(source: src.baseAddress!, width: 3, height: 2, destination: dst.baseAddress!)
            }
        }
        let grid = expected[orientation]!
        #expect(orientation.swapsAxes == (grid.count == 3))
        let width = grid[0].count
        for (y, row) in grid.enumerated() {
            for (x, label) in row.enumerated() {
                let i = labels.firstIndex(of: label)!
                let p = (y * width + x) * 3
                #expect(Array(output[p..<p + 3]) == [UInt8(i), UInt8(10 + i), UInt8(20 + i)],
                        "\(orientation) at (\(x), \(y)) should be \(label)")
            }
        }
    }
}
