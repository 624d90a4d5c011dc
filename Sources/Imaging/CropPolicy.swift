/// How an image of any shape becomes the square network input.
public enum CropPolicy: String, Sendable, CaseIterable {
    /// TensorFlow EfficientNet eval crop: the centred square of side
    /// c = floor(size / (size + 32) * min(W, H)) (= 0.875 * min side for 224), offsets
    /// ((W - c + 1) / 2, (H - c + 1) / 2), resized to size x size. The canonical policy.
    case centerCrop = "center-crop"
    /// The whole image squashed to size x size (aspect ratio not kept).
    case resize
    /// The whole image scaled to fit inside size x size keeping its aspect ratio, centred, with
    /// the border filled with grey 127 (`Preprocessor.letterboxFill`).
    case letterbox

    /// The smallest decoded side for which this policy never upsamples an image that had
    /// enough pixels: feed it to `DecodeOptions.minimumSide` so JPEG draft decoding stays exact
    /// enough. centerCrop needs the crop side c >= output (256 for 224); resize and letterbox
    /// need both sides >= output (conservative for letterbox, whose short side may be smaller).
    public func minimumDecodeSide(forOutput size: Int) -> Int {
        precondition(size > 0, "output size \(size)")
        switch self {
        case .centerCrop:
            var side = size + 32
            // The float product can land just below an integer for some sizes; step past it.
            while CropPolicy.centerCropSide(forMinimumSide: side, output: size) < size { side += 1 }
            return side
        case .resize, .letterbox:
            return size
        }
    }

    /// c = Int(size / (size + 32) * minSide), computed in the reference's operation order.
    static func centerCropSide(forMinimumSide minSide: Int, output size: Int) -> Int {
        Int(Double(size) / Double(size + 32) * Double(minSide))
    }
}
