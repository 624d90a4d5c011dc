// libFuzzer target: bytes -> WeightsManifest.decode (weights/manifest.json and samples/manifest.json:
// JSON through Codable, schema and sha256 checks). Built by scripts/build-fuzzer with Sources/Weights.
import Foundation
@testable import Weights

/// Every refusal is a `manifestInvalid` naming the file; an accepted manifest has only lowercase
/// 64-digit sha256 strings and finds each of its outputs by name.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzWeightsManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let name = "fuzz/manifest.json"
    let manifest: WeightsManifest
    do { manifest = try WeightsManifest.decode(Data(bytes: data, count: size), path: name) } catch {
        guard case WeightsError.manifestInvalid(let file, _) = error, file == name else {
            fatalError("not a manifestInvalid error naming the file: \(error)")
        }
        requireNamed(error, name)
        return 0
    }
    require(manifest.schema == 1, "accepted schema \(manifest.schema)")
    let hashes = manifest.assets.map(\.wheel.sha256) + manifest.files.flatMap { [$0.memberSHA256, $0.outputSHA256] }
    require(hashes.allSatisfy { $0.utf8.count == 64 && $0.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) } },
            "accepted a malformed sha256")
    for file in manifest.files { require(manifest.file(output: file.output)?.output == file.output, "\(file.output) not found by name") }
    return 0
}
