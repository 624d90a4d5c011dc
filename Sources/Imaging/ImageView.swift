/// One deterministic way of turning an image into the network input: an optional crop window taken
/// first, the geometry policy, and an optional left-right mirror of the resulting network input.
/// Mirroring the input itself (not the source before the geometry) makes the mirrored view exactly the
/// flipped tensor: an exported graph's test-time flip and the KServe tensor path compute the same
/// thing, and a centre crop with an odd margin does not shift by a pixel. Training extracts features
/// of several views per image (augmentation) and caches them under `name`; deterministic views keep
/// that cache valid from run to run.
public struct ImageView: Hashable, Sendable {
    /// A window of `scale` times the width and height, placed at `anchorX`/`anchorY` (0 = left/top
    /// edge, 0.5 = centred, 1 = right/bottom edge).
    public struct CropWindow: Hashable, Sendable {
        public var anchorX: Float
        public var anchorY: Float
        public var scale: Float

        public init(anchorX: Float, anchorY: Float, scale: Float) {
            precondition(scale > 0 && scale <= 1, "crop scale \(scale)")
            self.anchorX = anchorX
            self.anchorY = anchorY
            self.scale = scale
        }
    }

    public var policy: CropPolicy
    public var crop: CropWindow?
    public var mirrored: Bool

    public init(policy: CropPolicy, crop: CropWindow? = nil, mirrored: Bool = false) {
        self.policy = policy
        self.crop = crop
        self.mirrored = mirrored
    }

    /// Stable text key, e.g. "resize", "resize+mirror", "letterbox+crop(0,1,0.8)". ("flip" named the
    /// mirror taken before the geometry, in feature caches written before 2026-12; "mirror" keeps
    /// those entries from being read as this view's.)
    public var name: String {
        var parts = [policy.rawValue]
        if let crop { parts.append("crop(\(Self.format(crop.anchorX)),\(Self.format(crop.anchorY)),\(Self.format(crop.scale)))") }
        if mirrored { parts.append("mirror") }
        return parts.joined(separator: "+")
    }

    private static func format(_ value: Float) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    /// The crop window of `image` (the whole image without a crop), before the geometry policy.
    public func window(_ image: RGBImage) -> RGBImage {
        guard let crop else { return image }
        let width = max(1, Int((Float(image.width) * crop.scale).rounded()))
        let height = max(1, Int((Float(image.height) * crop.scale).rounded()))
        let x = Int((Float(image.width - width) * crop.anchorX).rounded())
        let y = Int((Float(image.height - height) * crop.anchorY).rounded())
        return image.cropped(x: x, y: y, width: width, height: height)
    }

    /// This view without its mirror: the views that share one geometry pass.
    public var unmirrored: ImageView { ImageView(policy: policy, crop: crop) }

    /// The smallest decoded side that keeps the policy from upsampling after the crop.
    public func minimumDecodeSide(_ spec: PreprocessingSpec) -> Int {
        let side = spec.minimumDecodeSide(policy: policy)
        guard let crop else { return side }
        return Int((Float(side) / crop.scale).rounded(.up))
    }
}

extension RGBImage {
    /// The image mirrored left to right.
    public func mirrored() -> RGBImage {
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let row = y * width * 3
                    for x in 0..<width {
                        let from = row + x * 3, to = row + (width - 1 - x) * 3
                        dst[to] = src[from]; dst[to + 1] = src[from + 1]; dst[to + 2] = src[from + 2]
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// The `width` x `height` region whose top-left pixel is (x, y); it must lie inside the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
        precondition(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= width && y + h <= height,
                     "crop \(w)x\(h)+\(x)+\(y) outside \(width)x\(height)")
        var out = [UInt8](repeating: 0, count: w * h * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for row in 0..<h {
                    (dst.baseAddress! + row * w * 3).update(from: src.baseAddress! + ((y + row) * width + x) * 3, count: w * 3)
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}
