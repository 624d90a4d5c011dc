/// Turns a decoded RGB image into the network input its `PreprocessingSpec` describes: geometry
/// (centre crop, resize or letterbox, with Pillow-identical antialiased bicubic) to size x size uint8,
/// then the spec's normalization, channels-last.
public struct Preprocessor: Sendable {
    public let spec: PreprocessingSpec
    public let policy: CropPolicy
    /// Per channel, byte value -> float (built once from `spec.normalization`).
    private let tables: [[Float]]

    /// - policy: nil takes the spec's `defaultPolicy`
    public init(_ spec: PreprocessingSpec, policy: CropPolicy? = nil) {
        self.init(spec, policy: policy ?? spec.defaultPolicy, tables: spec.normalizationTables)
    }

    private init(_ spec: PreprocessingSpec, policy: CropPolicy, tables: [[Float]]) {
        self.spec = spec
        self.policy = policy
        self.tables = tables
    }

    /// The same preprocessing under another geometry policy (the normalization tables are shared, not rebuilt).
    public func with(policy: CropPolicy) -> Preprocessor {
        policy == self.policy ? self : Preprocessor(spec, policy: policy, tables: tables)
    }

    /// Output side in pixels.
    public var size: Int { spec.inputSize }

    /// The `DecodeOptions.minimumSide` to decode with for this policy and size.
    public var minimumDecodeSide: Int { spec.minimumDecodeSide(policy: policy) }

    /// Decode options for this preprocessor (draft-mode JPEG decoding at the smallest adequate DCT scale).
    public var decodeOptions: DecodeOptions { DecodeOptions(minimumSide: minimumDecodeSide) }

    /// The source box (x0, y0, x1, y1) the TF centre crop takes from a width x height image.
    /// Only meaningful for `PreprocessingSpec.CenterCrop.fraction`.
    public func centerCropBox(width: Int, height: Int) -> (x0: Int, y0: Int, x1: Int, y1: Int) {
        guard case .fraction(let margin) = spec.centerCrop else { return (0, 0, width, height) }
        // A 1-pixel-wide image would give c = 0; take at least one pixel.
        let c = max(PreprocessingSpec.fractionCropSide(forMinimumSide: min(width, height), output: size, margin: margin), 1)
        let y0 = (height - c + 1) / 2
        let x0 = (width - c + 1) / 2
        return (x0, y0, x0 + c, y0 + c)
    }

    /// The size the shortest-side rule resizes a width x height image to before cropping: the short
    /// side becomes `size`, the long one `Int(size · long / short)` (at least `size`).
    public func shortestSideSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let short = min(width, height), long = max(width, height)
        let scaledLong = max(size, Int(Double(size) * Double(long) / Double(short)))
        return width <= height ? (size, scaledLong) : (scaledLong, size)
    }

    /// The uint8 network input: `size` x `size` RGB, HWC.
    public func inputPixels(_ image: RGBImage) -> RGBImage {
        precondition(image.width > 0 && image.height > 0, "empty image")
        switch (policy, spec.centerCrop) {
        case (.centerCrop, .fraction):
            let box = centerCropBox(width: image.width, height: image.height)
            return BicubicResampler.resample(image, width: size, height: size,
                                             box: (Float(box.x0), Float(box.y0), Float(box.x1), Float(box.y1)))
        case (.centerCrop, .shortestSide):
            let scaled = shortestSideSize(width: image.width, height: image.height)
            let resized = BicubicResampler.resample(image, width: scaled.width, height: scaled.height,
                                                    box: (0, 0, Float(image.width), Float(image.height)))
            return resized.cropped(x: (scaled.width - size) / 2, y: (scaled.height - size) / 2, width: size, height: size)
        case (.resize, _):
            return BicubicResampler.resample(image, width: size, height: size,
                                             box: (0, 0, Float(image.width), Float(image.height)))
        case (.letterbox, _):
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
        var canvas = RGBImage(width: size, height: size, filledWith: spec.neutralPixel).pixels
        canvas.withUnsafeMutableBufferPointer { out in
            scaled.pixels.withUnsafeBufferPointer { src in
                let rowBytes = fitted.width * 3
                for y in 0..<fitted.height {
                    let dst = out.baseAddress! + ((top + y) * size + left) * 3
                    dst.update(from: src.baseAddress! + y * rowBytes, count: rowBytes)
                }
            }
        }
        return RGBImage(width: size, height: size, pixels: canvas)
    }

    /// Writes the normalized value of every byte of `image` into `output`, keeping the HWC (NHWC for
    /// one image) layout: `output` must hold width · height · 3 floats, RGB order.
    public func normalize(_ image: RGBImage, into output: UnsafeMutablePointer<Float>) {
        image.pixels.withUnsafeBufferPointer { src in
            tables[0].withUnsafeBufferPointer { r in
                tables[1].withUnsafeBufferPointer { g in
                    tables[2].withUnsafeBufferPointer { b in
                        var i = 0
                        while i < src.count {
                            output[i] = r[Int(src[i])]
                            output[i + 1] = g[Int(src[i + 1])]
                            output[i + 2] = b[Int(src[i + 2])]
                            i += 3
                        }
                    }
                }
            }
        }
    }

    /// Geometry then normalisation: writes `size · size · 3` floats, [size][size][3].
    public func preprocess(_ image: RGBImage, into output: UnsafeMutablePointer<Float>) {
        normalize(inputPixels(image), into: output)
    }

    /// Geometry then normalisation into a new array of `size · size · 3` floats (HWC).
    public func tensor(_ image: RGBImage) -> [Float] {
        let input = inputPixels(image)
        return [Float](unsafeUninitializedCapacity: input.pixels.count) { buffer, initialized in
            normalize(input, into: buffer.baseAddress!)
            initialized = input.pixels.count
        }
    }
}
