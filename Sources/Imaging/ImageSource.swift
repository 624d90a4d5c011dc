/// Where an image's encoded bytes come from: a file (the CLI, training) or memory (a request body).
public enum ImageSource: Sendable {
    case file(path: String)
    /// `name` only labels errors (e.g. the multipart file name).
    case bytes([UInt8], name: String)

    /// The path or name errors are reported under.
    public var name: String {
        switch self {
        case .file(let path): return path
        case .bytes(_, let name): return name
        }
    }
}

extension ImageDecoder {
    public static func decode(_ source: ImageSource, options: DecodeOptions) throws(ImagingError) -> RGBImage {
        switch source {
        case .file(let path): return try decode(fileAt: path, options: options)
        case .bytes(let bytes, let name): return try decode(bytes: bytes, name: name, options: options)
        }
    }
}

extension ImageSource {
    /// The encoded bytes in memory: a file is read (bounded by `maxFileBytes`), bytes stay as they are.
    public func loaded(maxFileBytes: Int = DecodeOptions.defaultMaxFileBytes) throws(ImagingError) -> ImageSource {
        switch self {
        case .file(let path): return .bytes(try ImageDecoder.readFile(path, maxBytes: maxFileBytes), name: path)
        case .bytes: return self
        }
    }
}

extension Preprocessor {
    /// What `prepare` costs for these bytes under these views, from the headers alone (a file is read
    /// first). Throws what the decode would throw on the header (e.g. `.tooLarge`).
    public func decodeCost(_ source: ImageSource, views: [ImageView], maxPixels: Int) throws(ImagingError) -> DecodeCost {
        guard case .bytes(let bytes, let name) = try source.loaded() else { return DecodeCost(bytes: 0, sourcePixels: 0) }
        return try bytes.withUnsafeBufferPointer { (buffer) throws(ImagingError) -> DecodeCost in
            let raw = UnsafeRawBufferPointer(buffer)
            var images = 0, largestExtra = 0, sourcePixels = 0
            for side in Set(views.map { $0.minimumDecodeSide(spec) }) {
                let estimate = try ImageDecoder.estimate(bytes: raw, name: name,
                                                         options: DecodeOptions(maxPixels: maxPixels, minimumSide: side))
                images += estimate.imageBytes
                largestExtra = max(largestExtra, estimate.decoderBytes + estimate.imageBytes)
                sourcePixels = estimate.sourceWidth * estimate.sourceHeight
            }
            return DecodeCost(bytes: images + largestExtra, sourcePixels: sourcePixels)
        }
    }

    /// `prepare` under a decode budget: reserves `decodeCost` first (blocking the calling thread
    /// while the budget is spent), so decodes running at once never hold more than the budget
    /// together. The file is read once.
    public func prepare(_ source: ImageSource, views: [ImageView], maxPixels: Int, budget: MemoryBudget?,
                        into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        guard let budget else { return try prepare(source, views: views, maxPixels: maxPixels, into: destination) }
        let loaded = try source.loaded()
        let cost = try decodeCost(loaded, views: views, maxPixels: maxPixels)
        try budget.withReservation(cost.bytes) { () throws(ImagingError) in
            try prepare(loaded, views: views, maxPixels: maxPixels, into: destination)
        }
    }

    /// Bytes -> network inputs, the one path every caller takes: decodes `source` once per distinct
    /// decode scale the views need (JPEGs are DCT-scaled where the geometry allows), takes each view's
    /// crop window and geometry policy (once for a view and its mirror), mirrors the input for mirrored
    /// views, and normalizes. Writes `views.count` consecutive [size, size, 3] inputs.
    /// The plain view of this preprocessor's own policy gives exactly `preprocess(decoded image)`.
    public func prepare(_ source: ImageSource, views: [ImageView], maxPixels: Int,
                        into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        var decoded: [Int: RGBImage] = [:]
        var inputs: [ImageView: RGBImage] = [:]
        let floats = size * size * 3
        for (v, view) in views.enumerated() {
            let geometry = view.unmirrored
            let input: RGBImage
            if let known = inputs[geometry] { input = known } else {
                let side = view.minimumDecodeSide(spec)
                let image: RGBImage
                if let known = decoded[side] { image = known } else {
                    image = try ImageDecoder.decode(source, options: DecodeOptions(maxPixels: maxPixels, minimumSide: side))
                    decoded[side] = image
                }
                input = with(policy: view.policy).inputPixels(geometry.window(image))
                inputs[geometry] = input
            }
            normalize(view.mirrored ? input.mirrored() : input, into: destination + v * floats)
        }
    }
}

/// What decoding one image for a set of views costs (`Preprocessor.decodeCost`).
public struct DecodeCost: Sendable, Equatable {
    /// Peak bytes held: every distinct decode the views need (kept until the last view is done)
    /// plus, for the largest, its decoder's working memory and the resampler's intermediate image.
    public var bytes: Int
    /// Pixels the header declares: the decode reads through all of them, so its time grows with this.
    public var sourcePixels: Int
}
