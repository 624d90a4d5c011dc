/// Which encoder outputs make up the feature vector a head is trained on. A head records its set, and
/// every path that feeds it (evaluate, classify, the service) extracts that same set; the encoder says
/// which outputs a set is made of (`ImageEncoder.outputs(for:)`).
public enum FeatureSet: String, Codable, Sendable, CaseIterable {
    /// The encoder's pooled features (EfficientNet-Lite0: the 1280 of the final 1x1 convolution).
    case head
    /// `head` followed by the global average of every stage's output (1280 + 784 = 2064 for Lite0).
    /// Mid-level features, for domains far from ImageNet (ultrasound, X-ray).
    case headAndStages = "head+stages"
}
