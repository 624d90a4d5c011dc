/// The container formats the decoder reads, recognised by their magic bytes.
public enum ImageFormat: String, Sendable, Equatable {
    case jpeg = "JPEG"
    case png = "PNG"
}
