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

extension Preprocessor {
    /// Bytes -> network inputs, the one path every caller takes: decodes `source` once per distinct
    /// decode scale the views need (an image and its mirror share one decode, JPEGs are DCT-scaled
    /// where the geometry allows), applies each view (crop, mirror), then the view's geometry policy
    /// and this preprocessor's normalization. Writes `views.count` consecutive [size, size, 3] inputs.
    /// The plain view of this preprocessor's own policy gives exactly `preprocess(decoded image)`.
    public func prepare(_ source: ImageSource, views: [ImageView], maxPixels: Int,
                        into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        var decoded: [Int: RGBImage] = [:]
        let floats = size * size * 3
        for (v, view) in views.enumerated() {
            let side = view.minimumDecodeSide(spec)
            let image: RGBImage
            if let known = decoded[side] { image = known } else {
                image = try ImageDecoder.decode(source, options: DecodeOptions(maxPixels: maxPixels, minimumSide: side))
                decoded[side] = image
            }
            with(policy: view.policy).preprocess(view.apply(image), into: destination + v * floats)
        }
    }
}
