import Foundation

/// The body of `POST /v1/embed/text`: a non-empty JSON array of strings. Apart from Hummingbird so
/// that a fuzzer (Fuzz/EmbedTextFuzzer.swift) reaches it without a server.
enum TextRequestBody {
    /// The texts of `body`, or 400 saying what the body must be.
    static func texts(_ body: Data) throws -> [String] {
        guard let texts = try? JSONDecoder().decode([String].self, from: body) else {
            throw ServiceError.badRequest("the body must be a JSON array of strings, e.g. [\"a cat\", \"a dog\"]")
        }
        guard !texts.isEmpty else { throw ServiceError.badRequest("the array of texts is empty") }
        return texts
    }
}
