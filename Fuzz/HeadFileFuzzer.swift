// libFuzzer target: bytes -> SafeTensors -> HeadFile.read (the `headtune` metadata JSON, its format
// version, the architecture against the labels and features, every tensor's shape, the detector's and
// the tuned tail's tensors). Built by scripts/build-fuzzer with Sources/Training (and Kernels, Imaging,
// Weights).
import Foundation
@testable import Training
import Weights

/// A refusal names the file; a head that reads is consistent (labels = outputs, parameters = the
/// architecture's count, standardization = inputs) and survives writing and reading back unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzHeadFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let name = "fuzz.head"
    let head: HeadFile
    do {
        let file = try SafeTensors(copying: UnsafeRawBufferPointer(start: data, count: size), name: name)
        head = try HeadFile.read(file, path: name)
    } catch {
        requireNamed(error, name)
        return 0
    }
    let architecture = head.metadata.architecture
    require(head.metadata.labels.count == architecture.classes && head.head.parameters.count == architecture.parameterCount
            && head.standardization.mean.count == architecture.inputs && head.standardization.inverseStd.count == architecture.inputs,
            "inconsistent head \(architecture)")
    let again: HeadFile
    do {
        let bytes = try head.serialized()
        again = try bytes.withUnsafeBytes { try HeadFile.read(SafeTensors(copying: $0, name: name), path: name) }
    } catch {
        fatalError("a head that reads does not read back after writing: \(error)")
    }
    require(again.metadata == head.metadata, "metadata changed in the round trip")
    require(again.head.parameters.map(\.bitPattern) == head.head.parameters.map(\.bitPattern)
            && again.standardization.mean.map(\.bitPattern) == head.standardization.mean.map(\.bitPattern)
            && again.standardization.inverseStd.map(\.bitPattern) == head.standardization.inverseStd.map(\.bitPattern)
            && again.outOfDistribution?.bank.values.map(\.bitPattern) == head.outOfDistribution?.bank.values.map(\.bitPattern)
            && again.tail?.tensors.map(\.shape) == head.tail?.tensors.map(\.shape),
            "tensors changed in the round trip")
    return 0
}
