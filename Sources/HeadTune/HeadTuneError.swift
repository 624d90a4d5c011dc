import Foundation

/// Errors of the library layer shared by the CLI and the service.
public enum HeadTuneError: Error, LocalizedError, Equatable {
    case missingResource(String)
    case noInputs(searched: [String])
    case outputFailed(path: String, reason: String)
    case alignmentFailed(String)
    case alignmentUnavailable(path: String, reason: String)
    case indexFailed(path: String, reason: String)
    /// A head or command asked for outputs the encoder does not compute.
    case unsupportedFeatures(featureSet: String, encoder: String)
    case invalidText(reason: String)
    /// Partial fine-tuning asked of an encoder that cannot do it, or with a dataset that cannot feed it.
    case fineTuningUnsupported(reason: String)
    /// `headtune quantize` cannot make an int8 form of this network, or had too few images.
    case quantizationFailed(reason: String)
    /// `headtune export` of a network without an ONNX graph writer, or without what was asked.
    case exportUnsupported(model: String, reason: String)
    /// Too few usable image-caption pairs were left to fit a bridge on.
    case tooFewPairs(sources: [String], images: Int, captions: Int, needed: Int)

    public var errorDescription: String? {
        switch self {
        case .missingResource(let what): return "missing bundled resource: \(what)"
        case .noInputs(let searched):
            return "no images (.jpg, .jpeg, .png) found in \(searched.joined(separator: ", "))"
        case .outputFailed(let path, let reason): return "\(path): cannot write output (\(reason))"
        case .alignmentFailed(let reason): return "image-text alignment: \(reason)"
        case .alignmentUnavailable(let path, let reason):
            return "\(path): unusable image-text alignment (\(reason)); make it with `headtune align` (make align)"
        case .indexFailed(let path, let reason): return "\(path): image index error (\(reason))"
        case .unsupportedFeatures(let featureSet, let encoder):
            return "\(encoder) does not compute \(featureSet) features"
        case .invalidText(let reason): return "text encoder input: \(reason)"
        case .fineTuningUnsupported(let reason): return "partial fine-tuning: \(reason)"
        case .quantizationFailed(let reason): return "quantize: \(reason)"
        case .exportUnsupported(let model, let reason): return "cannot export \(model) to ONNX: \(reason)"
        case .tooFewPairs(let sources, let images, let captions, let needed):
            return "\(sources.joined(separator: ", ")): \(captions) usable pair(s) of \(images) image(s) left; fitting a bridge "
                + "needs at least \(needed) captioned images (some held out to measure it)"
        }
    }
}
