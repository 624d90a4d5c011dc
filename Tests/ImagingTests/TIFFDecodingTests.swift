import Foundation
import Testing
@testable import Imaging

/// A little-endian, 8-bit greyscale, PackBits-compressed TIFF of one value, written here so a large
/// declared page costs about 1.6 % of its pixels in the test (no committed file).
enum PackBitsTIFF {
    static func make(width: Int, height: Int, rowsPerStrip: Int, value: UInt8) -> [UInt8] {
        // A row is runs of up to 128 equal bytes, each (257 - run, value).
        var row: [UInt8] = []
        var left = width
        while left > 0 {
            let run = min(left, 128)
            row += [UInt8(257 - run), value]
            left -= run
        }
        let strips = (height + rowsPerStrip - 1) / rowsPerStrip
        var stripData: [[UInt8]] = []
        for strip in 0..<strips {
            let rows = min(rowsPerStrip, height - strip * rowsPerStrip)
            stripData.append([UInt8]((0..<rows).flatMap { _ in row }))
        }
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) }
        let entries = 9
        let ifdOffset = 8
        let arraysOffset = ifdOffset + 2 + entries * 12 + 4
        let offsetsArray = arraysOffset, countsArray = arraysOffset + 4 * strips
        var dataOffset = countsArray + 4 * strips
        var offsets: [Int] = []
        for strip in stripData {
            offsets.append(dataOffset)
            dataOffset += strip.count
        }
        func entry(_ tag: Int, _ type: Int, _ count: Int, _ value: Int) -> [UInt8] {
            u16(tag) + u16(type) + u32(count) + (type == 3 && count == 1 ? u16(value) + [0, 0] : u32(value))
        }
        var file: [UInt8] = [0x49, 0x49, 0x2A, 0x00] + u32(ifdOffset) + u16(entries)
        file += entry(256, 4, 1, width) + entry(257, 4, 1, height) + entry(258, 3, 1, 8) + entry(259, 3, 1, 32773)
        file += entry(262, 3, 1, 1)
        file += strips == 1 ? entry(273, 4, 1, offsets[0]) : entry(273, 4, strips, offsetsArray)
        file += entry(277, 3, 1, 1) + entry(278, 4, 1, rowsPerStrip)
        file += strips == 1 ? entry(279, 4, 1, stripData[0].count) : entry(279, 4, strips, countsArray)
        file += u32(0)
        if strips > 1 {
            for offset in offsets { file += u32(offset) }
            for strip in stripData { file += u32(strip.count) }
        } else {
            file += [UInt8](repeating: 0, count: 8)
        }
        for strip in stripData { file += strip }
        return file
    }
}

/// TIFF through libtiff's RGBA interface, one strip (or row of tiles) at a time: every photometric
/// Pillow writes, compressions, tiles, separate planes, multi-page (first page), tag 274, box
/// reduction, the bombs and the refusals. Expected pixels: scripts/make_imaging_fixtures.py.
@Suite("TIFF decoding")
struct TIFFDecodingTests {
    static let fixtures = FixtureManifest.shared.tiff

    @Test("decodes to the expected RGB", arguments: fixtures)
    func decodesAsExpected(fixture: FixtureManifest.Image) throws {
        if fixture.lossless == true { #expect(fixture.tolerance == 0) }
        let decoded = try fixture.decodeAndCompare(format: .tiff)
        #expect(decoded.scaleDenominator == 1 && decoded.reductionFactor == 1)
        #expect(decoded.orientation == (fixture.orientation ?? 1))
    }

    @Test("the fixtures cover the photometrics, compressions and layouts")
    func coverage() {
        let files = Set(Self.fixtures.map(\.file))
        for name in ["tiff_rgb8_raw.tif", "tiff_rgb8_lzw.tif", "tiff_rgb8_adobe_deflate.tif", "tiff_rgb8_packbits.tif",
                     "tiff_gray8_lzw.tif", "tiff_bilevel_group4.tif", "tiff_palette_deflate.tif", "tiff_gray16.tif",
                     "tiff_cmyk_lzw.tif", "tiff_rgba_deflate.tif", "tiff_jpeg_ycbcr.tif", "tiff_multipage.tif",
                     "tiff_tiled_lzw.tif", "tiff_tiled_planar_deflate.tif", "tiff_strips_rows3.tif"] {
            #expect(files.contains(name), "no fixture \(name)")
        }
        #expect(Set(Self.fixtures.compactMap(\.orientation)) == Set(1...8))
    }

    @Test("tag 274 is applied like EXIF orientation, and can be turned off")
    func orientationTag() throws {
        try expectRotatedClockwise("tiff_orientation6.tif", storedWidth: 3, storedHeight: 2)
    }

    @Test("tiled and stripped pages are box-reduced to the box mean of the exact decode", arguments: [
        "tiff_tiled_lzw.tif", "tiff_tiled_planar_deflate.tif", "tiff_strips_rows3.tif",
    ])
    func boxReduction(file: String) throws {
        let path = TestFiles.fixture(file)  // 40 x 37
        let exact = try ImageDecoder.decode(fileAt: path)
        let reduced = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(minimumSide: 4))
        #expect(reduced.reductionFactor == 4)  // floor(37 / 8)
        #expect(reduced.image == BoundedDecodeTests.boxReduced(exact, factor: 4))
    }

    @Test("a 9,000 x 9,000 page in 16-row strips decodes reduced, holding one band and the reduced image")
    func largePageIsBounded() throws {
        let tiff = PackBitsTIFF.make(width: 9_000, height: 9_000, rowsPerStrip: 16, value: 77)
        #expect(tiff.count < 1_500_000)
        let options = DecodeOptions(minimumSide: 224)
        let decoded = try ImageDecoder.decodeDetailed(bytes: tiff, name: "page.tif", options: options)
        #expect(decoded.format == .tiff && decoded.reductionFactor == 20)  // floor(9000 / 448)
        #expect(decoded.image.width == 450 && decoded.image.height == 450)
        #expect(decoded.image.pixels.allSatisfy { $0 == 77 })
        // Sums (450^2 x 12 B = 2.4 MB), the output, one 16-row RGBA band (576 KB): not 243 MB.
        #expect(decoded.peakDecodeBytes < 4_000_000, "peak \(decoded.peakDecodeBytes)")
        let estimate = try tiff.withUnsafeBytes { try ImageDecoder.estimate(bytes: $0, name: "page.tif", options: options) }
        #expect(estimate.width == 450 && estimate.height == 450 && estimate.reductionFactor == 20)
        #expect(estimate.decoderBytes >= decoded.peakDecodeBytes && estimate.decoderBytes < 6_000_000, "\(estimate)")
    }

    @Test("a page stored as one strip is bounded by the decoder memory limit, said in the error")
    func singleStripOverWorkingLimit() throws {
        let tiff = PackBitsTIFF.make(width: 2_000, height: 2_000, rowsPerStrip: 2_000, value: 5)
        let options = DecodeOptions(minimumSide: 224, maxWorkingBytes: 8 << 20)
        let error = thrownError { _ = try ImageDecoder.decode(bytes: tiff, name: "one-strip.tif", options: options) }
        guard case .outOfMemory(let path, let reason) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(path == "one-strip.tif")
        // 2000 x 2000 x 4 (RGBA band) + 4 MB (the decoded strip) = 20 MB.
        #expect(reason.contains("strip of 2000 rows x 2000 pixels needs 20000000 bytes"), "\(reason)")
        #expect(reason.contains("decoder memory limit of 8388608 bytes"), "\(reason)")
        // The same page in 16-row strips fits.
        let striped = PackBitsTIFF.make(width: 2_000, height: 2_000, rowsPerStrip: 16, value: 5)
        #expect(try ImageDecoder.decode(bytes: striped, name: "striped.tif", options: options).width == 500)
    }

    @Test("a declared 100000 x 100000 page is refused from the header, by decode and estimate alike")
    func bombRefused() throws {
        let path = TestFiles.fixture("tiff_bomb_100000x100000.tif")
        let expected = ImagingError.tooLarge(path: path, width: 100_000, height: 100_000, limit: DecodeOptions.defaultMaxPixels)
        expectError(expected) { _ = try ImageDecoder.decode(fileAt: path) }
        let bytes = try TestFiles.bytes(path)
        expectError(expected) { _ = try bytes.withUnsafeBytes { try ImageDecoder.estimate(bytes: $0, name: path) } }
    }

    @Test("damaged files are refused with libtiff's reason, and libtiff prints nothing", arguments: [
        "tiff_truncated.tif", "tiff_bad_ifd_offset.tif", "tiff_zero_width.tif",
    ])
    func corruptRefusedSilently(file: String) throws {
        let path = TestFiles.fixture(file)
        let (error, printed) = try Self.capturingStandardError { thrownError { _ = try ImageDecoder.decode(fileAt: path) } }
        // The test runner reports other tests on stderr meanwhile; its lines start with its symbols.
        let foreign = printed.split(separator: "\n").filter { line in
            guard let first = line.trimmingCharacters(in: .whitespaces).first else { return false }
            return !"◇✔✘↳".contains(first)
        }
        #expect(foreign.isEmpty, "libtiff printed: \(foreign)")
        guard case .corrupt(let errorPath, .tiff, let reason)? = error else {
            Issue.record("\(file): got \(String(describing: error))")
            return
        }
        #expect(errorPath == path)
        // libtiff's own words, with the function that found the damage.
        let expected = ["tiff_truncated.tif": "Can not read TIFF directory", "tiff_bad_ifd_offset.tif": "Can not read TIFF directory",
                        "tiff_zero_width.tif": "scanline size is zero"][file]!
        #expect(reason.contains(expected) && reason.contains(": "), "\(reason)")
    }

    /// Runs `body` with file descriptor 2 redirected to a temporary file; returns what was written.
    static func capturingStandardError<T>(_ body: () throws -> T) throws -> (T, String) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("stderr-\(UUID().uuidString)")
        let capture = open(url.path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
        try #require(capture >= 0)
        let saved = dup(2)
        fflush(nil)
        dup2(capture, 2)
        let result = Result { try body() }
        fflush(nil)
        dup2(saved, 2)
        close(saved)
        close(capture)
        let printed = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: url)
        return (try result.get(), printed)
    }
}
