// libFuzzer target: bytes -> the CSV manifest of `headtune train DATA.csv` (RFC 4180 rows through
// CSV.parse, then the path,label[,split] columns). Built by scripts/build-fuzzer with Sources/Training.
import Foundation
@testable import Training

/// A refusal names the file; accepted text gives one entry or ignored file per data row, each with a
/// non-empty path and label, images by extension only, paths resolved against the manifest's folder.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzCSVManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let name = "fuzz/manifest.csv"
    // The CLI reads the file as UTF-8 and refuses it otherwise; the fuzzer does the same.
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else { return 0 }
    let rows: [CSV.Row]
    do { rows = try CSV.parse(text, path: name) } catch {
        requireNamed(error, name)
        return 0
    }
    require(zip(rows, rows.dropFirst()).allSatisfy { $0.line < $1.line } && rows.allSatisfy { $0.line >= 1 },
            "row line numbers are not increasing")
    let manifest: (entries: [LabeledDataset.RawEntry], ignored: [String])
    do { manifest = try LabeledDataset.manifestEntries(text, path: name, imageExtensions: ["jpg", "jpeg", "png"]) } catch {
        requireNamed(error, name)
        return 0
    }
    require(manifest.entries.count + manifest.ignored.count == rows.count - 1, "\(rows.count - 1) rows gave \(manifest.entries.count) entries "
            + "and \(manifest.ignored.count) ignored files")
    for entry in manifest.entries {
        require(!entry.label.isEmpty && (entry.path.utf8.starts(with: "fuzz/".utf8) || entry.path.utf8.first == UInt8(ascii: "/")),
                "entry \(entry)")
        require(["jpg", "jpeg", "png"].contains((entry.path as NSString).pathExtension.lowercased()), "not an image: \(entry.path)")
    }
    return 0
}
