// Entry points for callers that hold images in memory rather than in files (the HTTP service): the
// same preprocessing and the same head arithmetic as the file-based paths, so a request body gets
// exactly the answer `headtune classify` gives for the same bytes on disk.

import Imaging
import Training

extension Backbone {
    /// Like `prepare(path:view:into:)` for image bytes: decodes at the scale the view needs, crops and
    /// mirrors, then applies the view's policy. `name` only labels errors.
    public func prepare(bytes: [UInt8], name: String, view: ImageView,
                        into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        let options = DecodeOptions(maxPixels: maxPixels, minimumSide: view.minimumDecodeSide(forOutput: inputSize))
        let image = try ImageDecoder.decode(bytes: bytes, name: name, options: options)
        Preprocessor(size: inputSize, policy: view.policy).preprocess(view.apply(image), into: destination)
    }
}

extension HeadPredictor {
    /// What the head says about each image (probabilities, and the out-of-distribution verdict when the
    /// head has a detector) from its backbone features under each of `views`, laid out image-major
    /// (every view of the first image, then of the second, ...) and averaged over the views as
    /// `predict(paths:extractor:)` does.
    public func outputs(viewFeatures: [[Float]]) -> [Output] {
        precondition(viewFeatures.count % views.count == 0, "features for \(viewFeatures.count) views, \(views.count) per image")
        let images = viewFeatures.count / views.count
        let averaged = averagedFeatures(viewFeatures.map { .success($0) }, paths: images, views: views.count)
        return outputs(for: averaged).compactMap { try? $0.get() }
    }
}
