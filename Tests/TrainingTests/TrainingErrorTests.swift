import Foundation
import Testing
@testable import Training

@Suite struct TrainingErrorTests {
    @Test func messageNamesThePath() {
        #expect(TrainingError.invalidDataset(path: "cars/", reason: "no class folders").errorDescription == "cars/: no class folders")
    }
}

@Suite struct HeadFileSniffingTests {
    @Test func anImageGivenAsAHeadIsNamedForWhatItIs() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("photo-\(UUID().uuidString).jpg").path
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 0x4A, 0x46, 0x49, 0x46, 0, 1]).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: TrainingError.notAHeadFile(path: path, kind: "a JPEG image")) { try HeadFile.read(path: path) }
        #expect(TrainingError.notAHeadFile(path: "photo.jpg", kind: "a JPEG image").localizedDescription
            == "photo.jpg is a JPEG image, not a head file (head files are written by `headtune train DATA --out NAME.head`)")
    }

    @Test func kindsAreToldByTheirFirstBytesButASafetensorsHeaderLengthWins() {
        #expect(KnownFileKind.sniff([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], fileSize: 100) == .png)
        #expect(KnownFileKind.sniff(Array("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8), fileSize: 100) == .webp)
        #expect(KnownFileKind.sniff(Array("%PDF-1.7".utf8), fileSize: 100) == .pdf)
        // "BM" (0x4D42 = 19778) as the low bytes of a safetensors header length that fits the file
        let safetensors: [UInt8] = [0x42, 0x4D, 0, 0, 0, 0, 0, 0, UInt8(ascii: "{")]
        #expect(KnownFileKind.sniff(safetensors, fileSize: 30_000) == nil)
        #expect(KnownFileKind.sniff(safetensors, fileSize: 100) == .bmp)
        #expect(KnownFileKind.sniff([0x10, 0, 0, 0, 0, 0, 0, 0, UInt8(ascii: "{")], fileSize: 100) == nil)
    }
}
