// libFuzzer entry point for the decode path: bytes -> ImageDecoder (libjpeg-turbo / libpng through
// the CImageCodecs shim) -> Preprocessor -> the normalized network tensor. Built by scripts/build-fuzzer
// (`make fuzz`) with Sources/Imaging, with -sanitize=fuzzer,address.

import Foundation
@testable import Imaging

/// One of the decode modes the CLI uses (DCT-scaled and box-reduced for the centre crop, for resize,
/// full size for letterbox), chosen by the input's length so each input is decoded once (three
/// decodes per input made ~98 executions/s), with a pixel limit low enough that libFuzzer's memory
/// limit is never the finding. The header-only estimate must agree with the decode.
/// The network input is 32 pixels, not 224: the crop, resize and normalization code is the same for
/// every size, and 224 spent most of each execution filling and checking 150,528 floats (~1,000
/// executions/s); the decode side follows from it as in the CLI (`minimumDecodeSide`), so the DCT
/// scaling and box reduction run more often, not less.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzDecode(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let inputSize = 32
    let spec = PreprocessingSpec(inputSize: inputSize, centerCrop: .fraction(margin: 5),
                                 normalization: .scaleOffset(offset: 127, scale: 128), defaultPolicy: .centerCrop)
    let policies: [CropPolicy] = [.centerCrop, .resize, .letterbox]
    let policy = policies[size % policies.count]
    let options = DecodeOptions(maxPixels: 24_000_000, minimumSide: policy == .letterbox ? 0 : spec.minimumDecodeSide(policy: policy))
    let estimate = try? ImageDecoder.estimate(bytes: bytes, name: "fuzz-input", options: options)
    let decoded: DecodedImage
    do { decoded = try ImageDecoder.decodeDetailed(bytes: bytes, name: "fuzz-input", options: options) } catch {
        // The CLI prints every error: its message must be computable for any input (an
        // overflowing pixel count in this message was a crash found by the hostile-file set).
        guard error.errorDescription?.hasPrefix("fuzz-input: ") == true else { fatalError("message: \(error)") }
        return 0
    }
    // A decode that succeeds passed every header check the estimate runs, and made what it predicted.
    guard let estimate else { fatalError("the estimate refused a file that decodes") }
    let image = decoded.image
    guard estimate.width * estimate.height == image.width * image.height,
          estimate.reductionFactor == decoded.reductionFactor else {
        fatalError("estimate \(estimate) for a \(image.width)x\(image.height) decode reduced by \(decoded.reductionFactor)")
    }
    if decoded.format == .png && estimate.decoderBytes < decoded.peakDecodeBytes {
        fatalError("estimated \(estimate.decoderBytes) bytes, the decode held \(decoded.peakDecodeBytes)")
    }
    let tensor = Preprocessor(spec, policy: policy).tensor(image)
    // A decoded image must give a full tensor of values in the normalization's range.
    guard tensor.count == inputSize * inputSize * 3, tensor.allSatisfy({ $0 >= -1 && $0 <= 1 }) else {
        fatalError("bad tensor for a \(image.width)x\(image.height) image")
    }
    return 0
}
