import Foundation
import Testing
@testable import Imaging

/// Inputs that once crashed headtune, kept so they never do again (Resources/regressions; the fuzz
/// corpus in Fuzz/corpus/decode has copies). Found by the hostile-file set of scripts/make_hostile_files.py.
@Suite struct DecodeRegressionTests {
    /// PNG allows 2^32 - 1 pixels per side; width * height overflowed Int while formatting the
    /// error message (a trap in every `classify` run that met such a file).
    @Test func hugeDeclaredPNGGivesAMessageNotATrap() throws {
        let path = TestFiles.resources.appendingPathComponent("regressions/png_4294967295x4294967295.png").path
        #expect(throws: ImagingError.self) { try ImageDecoder.decode(fileAt: path) }
        do {
            _ = try ImageDecoder.decode(fileAt: path)
        } catch {
            #expect(error == .tooLarge(path: path, width: 4_294_967_295, height: 4_294_967_295, limit: DecodeOptions.defaultMaxPixels))
            let message = error.errorDescription ?? ""
            #expect(message.hasPrefix(path + ": image declares 4294967295x4294967295 = more than "), "\(message)")
        }
    }
}
