/// How a network wants its input made, declared by the model (Imaging only applies it): the input
/// side, what "centre crop" means for it, how bytes become floats, and the geometry used when nobody
/// asks for another one.
public struct PreprocessingSpec: Sendable, Equatable {
    /// What the `centerCrop` policy does for this network.
    public enum CenterCrop: Sendable, Equatable {
        /// TensorFlow's eval crop (EfficientNet, Inception): the centred square of side
        /// c = floor(size / (size + margin) · min(W, H)) at offsets ((W - c + 1) / 2, (H - c + 1) / 2),
        /// resized to size x size in one resampling (margin 32 at 224 = the 0.875 crop).
        case fraction(margin: Int)
        /// Hugging Face image processors (CLIP): the shortest side resized to `size` (the long side
        /// truncated to an integer, aspect kept), then the centred size x size window cut out.
        case shortestSide
    }

    /// Byte value x of channel c -> network input.
    public enum Normalization: Sendable, Equatable {
        /// (x - offset) / scale on every channel (EfficientNet-Lite: offset 127, scale 128).
        case scaleOffset(offset: Float, scale: Float)
        /// (x / 255 - mean[c]) / std[c] (CLIP, torchvision).
        case meanStd(mean: [Float], std: [Float])
    }

    /// Output side in pixels (square input).
    public var inputSize: Int
    public var centerCrop: CenterCrop
    public var normalization: Normalization
    /// The geometry of the network's own outputs (ImageNet classifier, embeddings, text space); heads
    /// record the policy they were trained with instead.
    public var defaultPolicy: CropPolicy

    public init(inputSize: Int, centerCrop: CenterCrop, normalization: Normalization, defaultPolicy: CropPolicy) {
        precondition(inputSize > 0, "input size \(inputSize)")
        if case .meanStd(let mean, let std) = normalization {
            precondition(mean.count == 3 && std.count == 3 && std.allSatisfy { $0 > 0 }, "mean/std need 3 channels, std > 0")
        }
        self.inputSize = inputSize
        self.centerCrop = centerCrop
        self.normalization = normalization
        self.defaultPolicy = defaultPolicy
    }

    /// Per channel (RGB), the 256 floats each byte value becomes, computed as the float32 references do.
    public var normalizationTables: [[Float]] {
        switch normalization {
        case .scaleOffset(let offset, let scale):
            let table = (0...255).map { (Float($0) - offset) / scale }
            return [table, table, table]
        case .meanStd(let mean, let std):
            return (0..<3).map { c in (0...255).map { Float((Double($0) / 255 - Double(mean[c])) / Double(std[c])) } }
        }
    }

    /// The byte value per channel that normalizes closest to 0: letterbox borders carry no signal.
    public var neutralPixel: (UInt8, UInt8, UInt8) {
        let values: [UInt8]
        switch normalization {
        case .scaleOffset(let offset, _):
            let v = UInt8(max(0, min(255, offset.rounded())))
            values = [v, v, v]
        case .meanStd(let mean, _):
            values = mean.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) }
        }
        return (values[0], values[1], values[2])
    }

    /// The smallest decoded side for which `policy` never upsamples an image that had enough pixels:
    /// feed it to `DecodeOptions.minimumSide` so JPEG draft decoding stays exact enough. The TF centre
    /// crop needs the crop side c >= size (256 for 224); the others need both sides >= size
    /// (conservative for letterbox, whose short side may end up smaller).
    public func minimumDecodeSide(policy: CropPolicy) -> Int {
        switch (policy, centerCrop) {
        case (.centerCrop, .fraction(let margin)):
            var side = inputSize + margin
            // The float product can land just below an integer for some sizes; step past it.
            while Self.fractionCropSide(forMinimumSide: side, output: inputSize, margin: margin) < inputSize { side += 1 }
            return side
        case (.centerCrop, .shortestSide), (.resize, _), (.letterbox, _):
            return inputSize
        }
    }

    /// c = Int(size / (size + margin) · minSide), in the reference's operation order.
    static func fractionCropSide(forMinimumSide minSide: Int, output size: Int, margin: Int) -> Int {
        Int(Double(size) / Double(size + margin) * Double(minSide))
    }
}
