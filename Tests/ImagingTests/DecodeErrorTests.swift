import Foundation
import Testing
@testable import Imaging

/// Everything the decoder must refuse, with a typed error naming the file.
@Suite("Decoder errors")
struct DecodeErrorTests {
    @Test("empty file and empty body")
    func empty() throws {
        let directory = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("empty.jpg").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        expectError(.emptyFile(path: path)) { _ = try ImageDecoder.decode(fileAt: path) }
        expectError(.emptyFile(path: "upload")) { _ = try ImageDecoder.decode(bytes: [], name: "upload") }
        #expect(ImagingError.emptyFile(path: "a/b.jpg").errorDescription == "a/b.jpg: empty file (0 bytes)")
    }

    @Test("non-image data names the file and shows the first bytes in hex")
    func notAnImage() throws {
        let path = TestFiles.fixture("not_an_image.txt")
        let error = thrownError { _ = try ImageDecoder.decode(fileAt: path) }
        #expect(error == .unsupportedFormat(path: path, leadingBytes: [0x3C, 0x68, 0x74, 0x6D]))
        #expect(error?.errorDescription == "\(path): not a JPEG, PNG, WebP, TIFF or HEIF image (starts with 3C 68 74 6D)")
        // Extension does not matter, content does: a PNG named .jpg still decodes.
        let renamed = try ImageDecoder.decode(bytes: TestFiles.bytes(TestFiles.fixture("png_rgb8.png")), name: "x.jpg")
        #expect(renamed.width == 13)
        // Fewer than 4 bytes, and a known foreign format.
        let short = thrownError { _ = try ImageDecoder.decode(bytes: [0x0A], name: "short") }
        #expect(short?.errorDescription == "short: not a JPEG, PNG, WebP, TIFF or HEIF image (starts with 0A)")
        let gif = thrownError { _ = try ImageDecoder.decode(bytes: Array("GIF89a..".utf8), name: "g.jpg") }
        #expect(gif?.errorDescription == "g.jpg: not a JPEG, PNG, WebP, TIFF or HEIF image (starts with 47 49 46 38, looks like GIF)")
    }

    @Test("truncated JPEGs are errors, not grey padding",
          arguments: ["jpeg_baseline.jpg", "jpeg_progressive.jpg", "jpeg_643x481.jpg", "jpeg_cmyk_adobe.jpg"])
    func truncatedJPEG(file: String) throws {
        let bytes = try TestFiles.bytes(TestFiles.fixture(file))
        for cut in [3, 20, bytes.count / 3, bytes.count / 2, bytes.count - 40] {
            let error = thrownError { _ = try ImageDecoder.decode(bytes: Array(bytes[..<cut]), name: "cut.jpg") }
            guard case .corrupt(let path, let format, let reason)? = error else {
                Issue.record("\(file) cut at \(cut) of \(bytes.count): \(String(describing: error))")
                continue
            }
            #expect(path == "cut.jpg" && format == .jpeg)
            #expect(reason == "Premature end of JPEG file", "\(file) cut at \(cut): \(reason)")
            #expect(error?.errorDescription == "cut.jpg: truncated or corrupt JPEG (Premature end of JPEG file)")
        }
        // The uncut file decodes (so the cuts above are what fails).
        _ = try ImageDecoder.decode(bytes: bytes, name: file)
    }

    @Test("truncated PNGs are errors", arguments: ["png_rgb8.png", "png_rgba8_interlaced.png", "png_palette8_trns.png", "png_gray16.png"])
    func truncatedPNG(file: String) throws {
        let bytes = try TestFiles.bytes(TestFiles.fixture(file))
        // Inside the signature+IHDR, right after IHDR, inside IDAT, and just before the IDAT CRC.
        let idatEnd = bytes.count - 12  // IEND is the last 12 bytes
        for cut in [12, 20, 33, 50, (33 + idatEnd) / 2, idatEnd - 4] {
            let error = thrownError { _ = try ImageDecoder.decode(bytes: Array(bytes[..<cut]), name: "cut.png") }
            guard case .corrupt(let path, let format, let reason)? = error else {
                Issue.record("\(file) cut at \(cut) of \(bytes.count): \(String(describing: error))")
                continue
            }
            #expect(path == "cut.png" && format == .png && !reason.isEmpty)
        }
        // A missing IEND after complete image data is tolerated: every pixel is there.
        let withoutEnd = try ImageDecoder.decode(bytes: Array(bytes[..<idatEnd]), name: "noiend.png")
        #expect(withoutEnd == (try ImageDecoder.decode(bytes: bytes, name: file)))
    }

    @Test("damaged PNG data and checksums are errors")
    func corruptPNG() throws {
        let original = try TestFiles.bytes(TestFiles.fixture("png_rgb8.png"))
        // A flipped byte inside the compressed IDAT data: zlib's Adler-32 check catches it first.
        var data = original
        data[60] ^= 0x55
        expectError(.corrupt(path: "bad.png", format: .png, reason: "IDAT: incorrect data check")) {
            _ = try ImageDecoder.decode(bytes: data, name: "bad.png")
        }
        // A wrong CRC on the critical IHDR chunk (its CRC is bytes 29-32).
        var crc = original
        crc[30] ^= 0x01
        expectError(.corrupt(path: "crc.png", format: .png, reason: "IHDR: CRC error")) {
            _ = try ImageDecoder.decode(bytes: crc, name: "crc.png")
        }
    }

    @Test("decompression bombs are refused from the header",
          arguments: [("png_bomb_100000x100000.png", 100_000, 100_000), ("png_wide_2147483647x1.png", 2_147_483_647, 1),
                      ("jpeg_bomb_65000x65000.jpg", 65_000, 65_000), ("jpeg_bomb_65535x65535.jpg", 65_535, 65_535)])
    func bombs(file: String, width: Int, height: Int) throws {
        let path = TestFiles.fixture(file)
        #expect(try TestFiles.bytes(path).count < 1000)  // a tiny file that declares a huge image
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            expectError(.tooLarge(path: path, width: width, height: height, limit: 100_000_000)) {
                _ = try ImageDecoder.decode(fileAt: path)
            }
        }
        // Refused before any pixel work: far below what even touching such a buffer would cost.
        #expect(elapsed < .milliseconds(200))
        let error = thrownError { _ = try ImageDecoder.decode(fileAt: path) }
        #expect(error?.errorDescription?.hasPrefix("\(path): image declares \(width)x\(height)") == true)
    }

    @Test("the pixel limit is configurable")
    func configurableLimit() throws {
        // png_rgb8.png is 13x9 = 117 pixels; jpeg_baseline.jpg is 32x24 = 768.
        let png = TestFiles.fixture("png_rgb8.png"), jpeg = TestFiles.fixture("jpeg_baseline.jpg")
        expectError(.tooLarge(path: png, width: 13, height: 9, limit: 116)) {
            _ = try ImageDecoder.decode(fileAt: png, options: DecodeOptions(maxPixels: 116))
        }
        #expect(try ImageDecoder.decode(fileAt: png, options: DecodeOptions(maxPixels: 117)).width == 13)
        expectError(.tooLarge(path: jpeg, width: 32, height: 24, limit: 767)) {
            _ = try ImageDecoder.decode(fileAt: jpeg, options: DecodeOptions(maxPixels: 767))
        }
        #expect(try ImageDecoder.decode(fileAt: jpeg, options: DecodeOptions(maxPixels: 768)).width == 32)
        // The limit applies to the declared size even when DCT scaling would decode fewer pixels.
        let big = TestFiles.fixture("jpeg_643x481.jpg")
        expectError(.tooLarge(path: big, width: 643, height: 481, limit: 10_000)) {
            _ = try ImageDecoder.decode(fileAt: big, options: DecodeOptions(maxPixels: 10_000, minimumSide: 8))
        }
    }

    @Test("zero-sized images")
    func zeroSize() throws {
        let png = TestFiles.fixture("png_zero_width.png"), jpeg = TestFiles.fixture("jpeg_zero_height.jpg")
        expectError(.zeroSize(path: png, format: .png, width: 0, height: 2)) { _ = try ImageDecoder.decode(fileAt: png) }
        expectError(.zeroSize(path: jpeg, format: .jpeg, width: 16, height: 0)) { _ = try ImageDecoder.decode(fileAt: jpeg) }
        #expect(ImagingError.zeroSize(path: "z.png", format: .png, width: 0, height: 2).errorDescription
            == "z.png: PNG declares an empty image (0x2)")
    }

    @Test("12-bit JPEG is reported as unsupported")
    func twelveBit() throws {
        let path = TestFiles.fixture("jpeg_12bit.jpg")
        expectError(.unsupportedImage(path: path, format: .jpeg, reason: "Unsupported JPEG data precision 12")) {
            _ = try ImageDecoder.decode(fileAt: path)
        }
    }

    @Test("missing file, directory, device and oversized file")
    func unreadable() throws {
        let directory = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("nope.jpg").path
        expectError(.unreadable(path: missing, reason: "No such file or directory")) { _ = try ImageDecoder.decode(fileAt: missing) }
        expectError(.unreadable(path: directory.path, reason: "is a directory")) { _ = try ImageDecoder.decode(fileAt: directory.path) }
        expectError(.unreadable(path: "/dev/null", reason: "not a regular file")) { _ = try ImageDecoder.decode(fileAt: "/dev/null") }
        let png = TestFiles.fixture("png_rgb8.png")
        let size = try TestFiles.bytes(png).count
        expectError(.fileTooLarge(path: png, bytes: size, limit: 100)) {
            _ = try ImageDecoder.decode(fileAt: png, options: DecodeOptions(maxFileBytes: 100))
        }
        #expect(ImagingError.unreadable(path: "p/x.jpg", reason: "No such file or directory").errorDescription
            == "p/x.jpg: cannot read file (No such file or directory)")
    }

    // Root reads files whatever their mode, so the check only means something for other users.
    @Test("file without read permission", .enabled(if: geteuid() != 0, "running as root: permissions are not enforced"))
    func permissionDenied() throws {
        let directory = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("secret.png").path
        try FileManager.default.copyItem(atPath: TestFiles.fixture("png_rgb8.png"), toPath: path)
        #expect(chmod(path, 0) == 0)
        expectError(.unreadable(path: path, reason: "Permission denied")) { _ = try ImageDecoder.decode(fileAt: path) }
    }

    @Test("error messages read like the project's convention")
    func messages() {
        #expect(ImagingError.corrupt(path: "photos/x.jpg", format: .jpeg, reason: "Premature end of JPEG file").errorDescription
            == "photos/x.jpg: truncated or corrupt JPEG (Premature end of JPEG file)")
        #expect(ImagingError.tooLarge(path: "b.png", width: 100_000, height: 100_000, limit: 100_000_000).errorDescription
            == "b.png: image declares 100000x100000 = 10000000000 pixels, above the limit of 100000000 (possible decompression bomb)")
        #expect(ImagingError.corrupt(path: "q", format: .png, reason: "r").path == "q")
    }
}

/// Damaged input of every kind must end in pixels or a typed error, never a crash or a hang.
@Suite("Decoder robustness")
struct DecoderRobustnessTests {
    @Test("mutated files decode consistently or throw ImagingError",
          arguments: ["jpeg_baseline.jpg", "jpeg_progressive.jpg", "jpeg_cmyk_adobe.jpg", "jpeg_orientation6_MM.jpg",
                      "png_rgba8_interlaced.png", "png_palette4_trns.png", "png_gray16.png", "png_exif_orientation6.png"])
    func mutations(file: String) throws {
        let original = try TestFiles.bytes(TestFiles.fixture(file))
        var random = SplitMix(seed: UInt64(original.count))
        var decoded = 0, refused = 0
        for round in 0..<300 {
            var bytes = original
            switch round % 3 {
            case 0:  // flip a few bytes anywhere after the magic
                for _ in 0...Int.random(in: 0..<4, using: &random) {
                    bytes[Int.random(in: 8..<bytes.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
                }
            case 1:  // overwrite a run with 0xFF (marker soup for JPEG)
                let start = Int.random(in: 8..<bytes.count, using: &random)
                for i in start..<min(start + 16, bytes.count) { bytes[i] = 0xFF }
            default:  // drop a slice from the middle
                let start = Int.random(in: 8..<bytes.count - 1, using: &random)
                bytes.removeSubrange(start..<Int.random(in: start + 1...bytes.count, using: &random))
            }
            do {
                let result = try ImageDecoder.decodeDetailed(bytes: bytes, name: "fuzz")
                #expect(result.image.pixels.count == result.image.width * result.image.height * 3)
                #expect(result.image.width * result.image.height <= result.sourceWidth * result.sourceHeight)
                decoded += 1
            } catch {
                #expect(error.path == "fuzz" && error.errorDescription?.hasPrefix("fuzz: ") == true)
                refused += 1
            }
        }
        #expect(decoded + refused == 300)
        #expect(refused > 0, "no mutation of \(file) was detected")
    }
}

/// Truncation anywhere in a WebP, TIFF or HEIC is an error naming the file, never a partial image.
@Suite("Truncated WebP, TIFF and HEIC")
struct TruncatedWebPAndTIFFTests {
    @Test("every cut is refused", arguments: [
        "webp_lossy.webp", "webp_lossless_alpha.webp", "webp_animated.webp", "tiff_rgb8_raw.tif", "tiff_rgb8_lzw.tif",
        "tiff_tiled_lzw.tif", "tiff_strips_rows3.tif", "heic_rgb.heic", "heic_alpha.heic",
    ])
    func truncated(file: String) throws {
        let bytes = try TestFiles.bytes(TestFiles.fixture(file))
        for cut in [5, 13, 30, bytes.count / 3, bytes.count / 2, bytes.count - 9] {
            let error = thrownError { _ = try ImageDecoder.decode(bytes: Array(bytes[..<cut]), name: "cut") }
            #expect(error?.path == "cut", "\(file) cut at \(cut) of \(bytes.count)")
        }
    }

    @Test("a multi-page TIFF cut in its later pages still gives its whole first page")
    func multiPageCutAfterFirstPage() throws {
        let bytes = try TestFiles.bytes(TestFiles.fixture("tiff_multipage.tif"))
        let first = try ImageDecoder.decode(bytes: bytes, name: "whole")
        #expect(first == (try FixtureManifest.shared.tiff.first { $0.file == "tiff_multipage.tif" }!.expected()))
        let cut = try ImageDecoder.decode(bytes: Array(bytes[..<(bytes.count - 9)]), name: "cut")
        #expect(cut == first)
        // Cut inside the first page: refused.
        #expect(thrownError { _ = try ImageDecoder.decode(bytes: Array(bytes[..<30]), name: "cut") }?.path == "cut")
    }

    @Test("the format comes from the bytes: a WebP named .png and a TIFF named .jpg decode")
    func sniffedNotNamed() throws {
        let webp = try ImageDecoder.decodeDetailed(bytes: TestFiles.bytes(TestFiles.fixture("webp_lossless.webp")), name: "x.png")
        #expect(webp.format == .webp && webp.image.width == 13)
        let tiff = try ImageDecoder.decodeDetailed(bytes: TestFiles.bytes(TestFiles.fixture("tiff_rgb8_lzw.tif")), name: "x.jpg")
        #expect(tiff.format == .tiff && tiff.image.width == 13)
        // A RIFF that is not WebP (a WAV file) is not taken for one.
        let wav = thrownError { _ = try ImageDecoder.decode(bytes: Array("RIFF\u{24}\0\0\0WAVEfmt ".utf8), name: "a.wav") }
        #expect(wav == .unsupportedFormat(path: "a.wav", leadingBytes: Array("RIFF".utf8)))
    }
}
