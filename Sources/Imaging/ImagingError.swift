#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Every way decoding can fail. Each case carries the file path (or the name the caller gave
/// to in-memory bytes) so the message can be shown to a user as is.
public enum ImagingError: Error, LocalizedError, Equatable, Sendable {
    /// Missing file, a directory, no permission, or an I/O error; `reason` is the system's text.
    case unreadable(path: String, reason: String)
    /// The file or body has no bytes at all.
    case emptyFile(path: String)
    /// The file is bigger than `DecodeOptions.maxFileBytes`.
    case fileTooLarge(path: String, bytes: Int, limit: Int)
    /// No JPEG, PNG, WebP, TIFF or HEIF magic bytes; `leadingBytes` are the first (up to 4) bytes.
    case unsupportedFormat(path: String, leadingBytes: [UInt8])
    /// Truncated or malformed data; `reason` is the library's message.
    case corrupt(path: String, format: ImageFormat, reason: String)
    /// A well-formed file of a variant we do not decode (e.g. a 12-bit JPEG).
    case unsupportedImage(path: String, format: ImageFormat, reason: String)
    /// The header declares more pixels than `DecodeOptions.maxPixels` (a decompression bomb).
    case tooLarge(path: String, width: Int, height: Int, limit: Int)
    /// The header declares a zero width or height.
    case zeroSize(path: String, format: ImageFormat, width: Int, height: Int)
    /// An allocation for the decoded pixels failed.
    case outOfMemory(path: String, reason: String)

    /// The path or name the error is about.
    public var path: String {
        switch self {
        case .unreadable(let path, _), .emptyFile(let path), .fileTooLarge(let path, _, _),
             .unsupportedFormat(let path, _), .corrupt(let path, _, _),
             .unsupportedImage(let path, _, _), .tooLarge(let path, _, _, _),
             .zeroSize(let path, _, _, _), .outOfMemory(let path, _):
            return path
        }
    }

    public var errorDescription: String? {
        switch self {
        case .unreadable(let path, let reason):
            return "\(path): cannot read file (\(reason))"
        case .emptyFile(let path):
            return "\(path): empty file (0 bytes)"
        case .fileTooLarge(let path, let bytes, let limit):
            return "\(path): file is \(bytes) bytes, above the limit of \(limit) bytes"
        case .unsupportedFormat(let path, let leading):
            let hex = leading.map { byte in
                let digits = String(byte, radix: 16, uppercase: true)
                return digits.count == 1 ? "0" + digits : digits
            }.joined(separator: " ")
            let hint = Self.knownFormat(leading).map { ", looks like \($0)" } ?? ""
            return "\(path): not a \(ImageFormat.decodedList) image (starts with \(hex)\(hint))"
        case .corrupt(let path, let format, let reason):
            return "\(path): truncated or corrupt \(format.rawValue) (\(reason))"
        case .unsupportedImage(let path, let format, let reason):
            return "\(path): unsupported \(format.rawValue) (\(reason))"
        case .tooLarge(let path, let width, let height, let limit):
            // PNG allows 2^32 - 1 per side: the product can exceed Int.max.
            let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
            return "\(path): image declares \(width)x\(height) = \(overflow ? "more than \(Int.max)" : String(pixels)) pixels, "
                + "above the limit of \(limit) (possible decompression bomb)"
        case .zeroSize(let path, let format, let width, let height):
            return "\(path): \(format.rawValue) declares an empty image (\(width)x\(height))"
        case .outOfMemory(let path, let reason):
            return "\(path): out of memory while decoding (\(reason))"
        }
    }

    /// Names a few formats people commonly mistake for the decoded ones, to make the message actionable.
    private static func knownFormat(_ bytes: [UInt8]) -> String? {
        if bytes.starts(with: [0x47, 0x49, 0x46, 0x38]) { return "GIF" }
        if bytes.starts(with: [0x52, 0x49, 0x46, 0x46]) { return "RIFF (a WebP truncated in its header, or AVI/WAV)" }
        if bytes.starts(with: [0x42, 0x4D]) { return "BMP" }
        if bytes.starts(with: [0x49, 0x49, 0x2B, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2B]) {
            return "BigTIFF, which is not read"
        }
        if bytes.starts(with: [0x25, 0x50, 0x44, 0x46]) { return "PDF" }
        return nil
    }
}
