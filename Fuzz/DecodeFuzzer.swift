// libFuzzer entry point for the decode path: bytes -> ImageDecoder (libjpeg-turbo / libpng through
// the CImageCodecs shim) -> Preprocessor -> the normalized network tensor. Compiled together with
// Sources/Imaging as one module by scripts/build-fuzzer (`make fuzz`), with -sanitize=fuzzer,address.

/// Both decode modes the CLI uses (DCT-scaled draft and full size) and every geometry policy, with a
/// pixel limit low enough that libFuzzer's memory limit is never the finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzDecode(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let inputSize = 224
    for (minimumSide, policy) in [(256, CropPolicy.centerCrop), (224, .resize), (0, .letterbox)] {
        let options = DecodeOptions(maxPixels: 24_000_000, minimumSide: minimumSide)
        let decoded: DecodedImage
        do { decoded = try ImageDecoder.decodeDetailed(bytes: bytes, name: "fuzz-input", options: options) } catch {
            // The CLI prints every error: its message must be computable for any input (an
            // overflowing pixel count in this message was a crash found by the hostile-file set).
            guard error.errorDescription?.hasPrefix("fuzz-input: ") == true else { fatalError("message: \(error)") }
            continue
        }
        let spec = PreprocessingSpec(inputSize: inputSize, centerCrop: .fraction(margin: 32),
                                     normalization: .scaleOffset(offset: 127, scale: 128), defaultPolicy: .centerCrop)
        let tensor = Preprocessor(spec, policy: policy).tensor(decoded.image)
        // A decoded image must give a full tensor of values in the normalization's range.
        guard tensor.count == inputSize * inputSize * 3, tensor.allSatisfy({ $0 >= -1 && $0 <= 1 }) else {
            fatalError("bad tensor for a \(decoded.image.width)x\(decoded.image.height) image")
        }
    }
    return 0
}
