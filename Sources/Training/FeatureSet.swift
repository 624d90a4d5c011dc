import Models

/// Which backbone outputs make up the feature vector a head is trained on. A head records its set,
/// and every path that feeds it (evaluate, classify, the service) extracts that same set.
public enum FeatureSet: String, Codable, Sendable, CaseIterable {
    /// The pooled output of the final 1x1 convolution: [headChannels] (1280 for Lite0).
    case head
    /// `head` followed by the global average of every stage's last block output:
    /// [headChannels + stagePooledFeatureCount] (1280 + 784 = 2064 for Lite0). Mid-level features,
    /// for domains far from ImageNet (ultrasound, X-ray).
    case headAndStages = "head+stages"

    /// Values per image under this set.
    public func featureCount(of model: EfficientNetLite) -> Int {
        switch self {
        case .head: return model.featureCount
        case .headAndStages: return model.featureCount + model.stagePooledFeatureCount
        }
    }

    /// Whether `EfficientNetLite.forward` must write its stage-pooled output for this set.
    public var needsStagePooling: Bool { self == .headAndStages }

    /// One image's feature vector under this set from the backbone's outputs.
    /// - head: [headChannels]; stagePooled: [stagePooledFeatureCount], required for `.headAndStages`
    public func compose(head: [Float], stagePooled: [Float]?) -> [Float] {
        switch self {
        case .head: return head
        case .headAndStages:
            guard let stagePooled else { preconditionFailure("head+stages features need the stage-pooled values") }
            return head + stagePooled
        }
    }
}
