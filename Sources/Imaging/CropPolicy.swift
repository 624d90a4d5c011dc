/// How an image of any shape becomes the square network input. What `centerCrop` cuts exactly is the
/// network's own rule (`PreprocessingSpec.CenterCrop`). Stored in head files by its raw value.
public enum CropPolicy: String, Sendable, CaseIterable, Codable {
    /// The centred square the network was trained on (its `PreprocessingSpec.centerCrop`).
    case centerCrop = "center-crop"
    /// The whole image squashed to size x size (aspect ratio not kept).
    case resize
    /// The whole image scaled to fit inside size x size keeping its aspect ratio, centred, with
    /// the border filled with the network's neutral pixel (`PreprocessingSpec.neutralPixel`).
    case letterbox
}
