/// Turns a decoded RGB image into the network input: geometry (crop/resize/letterbox with
/// Pillow-identical antialiased bicubic) to `size` x `size` uint8, then (x - 127) / 128.
public struct Preprocessor: Sendable, Equatable {
    /// Output side in pixels (224 for EfficientNet-Lite0).
    public var size: Int
    public var policy: CropPolicy

    /// Letterbox border value: 127 normalises to (127 - 127) / 128 = 0, i.e. the padding is the
    /// network's zero input and carries no signal.
    public static let letterboxFill: UInt8 = 127

    public init(size: Int = 224, policy: CropPolicy = .centerCrop) {
        precondition(size > 0, "output size \(size)")
        self.size = size
        self.policy = policy
    }

    /// The `DecodeOptions.minimumSide` to decode with for this policy and size.
    public var minimumDecodeSide: Int { policy.minimumDecodeSide(forOutput: size) }

    /// Decode options for this preprocessor (draft-mode JPEG decoding at the smallest adequate
    /// DCT scale).
    public var decodeOptions: DecodeOptions { DecodeOptions(minimumSide: minimumDecodeSide) }

    /// The source box (x0, y0, x1, y1) the centre crop takes from a width x height image.
    public func centerCropBox(width: Int, height: Int) -> (x0: Int, y0: Int, x1: Int, y1: Int) {
        // A 1-pixel-wide image would give c = 0; take at least one pixel.
        let c = max(CropPolicy.centerCropSide(forMinimumSide: min(width, height), output: size), 1)
        let y0 = (height - c + 1) / 2
        let x0 = (width - c + 1) / 2
        return (x0, y0, x0 + c, y0 + c)
    }

    /// The uint8 network input: `size` x `size` RGB, HWC.
    public func inputPixels(_ image: RGBImage) -> RGBImage {
        precondition(image.width > 0 && image.height > 0, "empty image")
        switch policy {
        case .centerCrop:
            let box = centerCropBox(width: image.width, height: image.height)
            return BicubicResampler.resample(image, width: size, height: size,
                                             box: (Float(box.x0), Float(box.y0), Float(box.x1), Float(box.y1)))
        case .resize:
            return BicubicResampler.resample(image, width: size, height: size,
                                             box: (0, 0, Float(image.width), Float(image.height)))
        case .letterbox:
            return letterbox(image)
        }
    }

    /// Scaled size of the image inside the letterbox: the longer side becomes `size`, the other
    /// is rounded to nearest (at least 1).
    public func letterboxSize(width: Int, height: Int) -> (width: Int, height: Int) {
        if width >= height {
            return (size, max(1, (height * size * 2 + width) / (width * 2)))
        }
        return (max(1, (width * size * 2 + height) / (height * 2)), size)
    }

    private func letterbox(_ image: RGBImage) -> RGBImage {
        let fitted = letterboxSize(width: image.width, height: image.height)
        let scaled = BicubicResampler.resample(image, width: fitted.width, height: fitted.height,
                                               box: (0, 0, Float(image.width), Float(image.height)))
        let left = (size - fitted.width) / 2
        let top = (size - fitted.height) / 2
        var pixels = [UInt8](repeating: Self.letterboxFill, count: size * size * 3)
        pixels.withUnsafeMutableBufferPointer { out in
            scaled.pixels.withUnsafeBufferPointer { src in
                let rowBytes = fitted.width * 3
                for y in 0..<fitted.height {
                    let dst = out.baseAddress! + ((top + y) * size + left) * 3
                    dst.update(from: src.baseAddress! + y * rowBytes, count: rowBytes)
                }
            }
        }
        return RGBImage(width: size, height: size, pixels: pixels)
    }

    /// Writes (Float(u8) - 127) / 128 for every byte of `image` into `output`, keeping the HWC
    /// (NHWC for one image) layout: `output` must hold width * height * 3 floats, RGB order.
    public func normalize(_ image: RGBImage, into output: UnsafeMutablePointer<Float>) {
        image.pixels.withUnsafeBufferPointer { src in
            Self.normalizationTable.withUnsafeBufferPointer { table in
                for i in 0..<src.count { output[i] = table[Int(src[i])] }
            }
        }
    }

    /// Geometry then normalisation: writes `size * size * 3` floats, [size][size][3].
    public func preprocess(_ image: RGBImage, into output: UnsafeMutablePointer<Float>) {
        normalize(inputPixels(image), into: output)
    }

    /// Geometry then normalisation into a new array of `size * size * 3` floats (HWC).
    public func tensor(_ image: RGBImage) -> [Float] {
        let input = inputPixels(image)
        return [Float](unsafeUninitializedCapacity: input.pixels.count) { buffer, initialized in
            normalize(input, into: buffer.baseAddress!)
            initialized = input.pixels.count
        }
    }

    /// (Float(v) - 127) / 128 for v in 0...255, in Float like the float32 reference.
    static let normalizationTable: [Float] = (0...255).map { (Float($0) - 127) / 128 }
}
