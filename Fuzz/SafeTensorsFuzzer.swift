// libFuzzer target: bytes -> SafeTensors (the 8-byte length, the strict JSON header, every tensor's
// declaration) -> every tensor read. Built by scripts/build-fuzzer with Sources/Weights.
import Foundation
@testable import Weights

/// A file that opens must be readable in full (the header checks are what make the accessors safe,
/// and ASan sees any read past the data); one that does not must say why, naming the file. An
/// all-F32 file rewritten by our writer must read back the same.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let name = "fuzz.safetensors"
    let file: SafeTensors
    do { file = try SafeTensors(copying: UnsafeRawBufferPointer(start: data, count: size), name: name) } catch {
        requireNamed(error, name)
        return 0
    }
    var floatTensors: [SafeTensorsWriter.Tensor] = []
    for tensorName in file.tensorNames {
        guard let info = try? file.info(tensorName) else { fatalError("listed tensor \(tensorName) has no declaration") }
        require(info.byteRange.count == info.elementCount * info.dtype.byteSize, "\(tensorName): \(info.byteRange) for \(info.shape) \(info.dtype)")
        switch info.dtype {
        case .f32, .f16, .bf16, .f64:
            guard let values = try? file.floats(tensorName) else { fatalError("\(tensorName): floats refused a float tensor") }
            require(values.count == info.elementCount, "\(tensorName): \(values.count) floats for \(info.shape)")
            if info.dtype == .f32 { floatTensors.append(.init(name: tensorName, shape: info.shape, values: values)) }
        case .i64, .i32, .i16, .i8, .u8:
            guard let values = try? file.int64s(tensorName) else { fatalError("\(tensorName): int64s refused an integer tensor") }
            require(values.count == info.elementCount, "\(tensorName): \(values.count) integers for \(info.shape)")
        case .bool:
            let count = try? file.withRawBytes(tensorName) { $0.count }
            require(count == info.elementCount, "\(tensorName): \(count ?? -1) bytes for \(info.shape) BOOL")
        }
    }
    guard floatTensors.count == file.tensorNames.count else { return 0 }
    let rewritten = SafeTensorsWriter.serialize(floatTensors, metadata: file.metadata)
    let again: SafeTensors
    do { again = try rewritten.withUnsafeBytes { try SafeTensors(copying: $0, name: name) } } catch {
        fatalError("our writer's copy of a valid file does not read back: \(error)")
    }
    require(again.tensorNames == file.tensorNames && again.metadata == file.metadata, "names or metadata changed in the round trip")
    for tensor in floatTensors {
        let values = try? again.floats(tensor.name)
        require(try! again.shape(of: tensor.name) == tensor.shape
                && values?.map(\.bitPattern) == tensor.values.map(\.bitPattern), "\(tensor.name) changed in the round trip")
    }
    return 0
}
