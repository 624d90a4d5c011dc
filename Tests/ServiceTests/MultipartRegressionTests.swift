import Testing
@testable import Service

/// Content-Type headers that once parsed wrongly, found by the multipart fuzzer (Fuzz/MultipartFuzzer.swift).
@Suite struct MultipartRegressionTests {
    /// A quote, "=" or ";" followed by a combining mark is one Swift Character with it, so reading
    /// Characters left the quotes on a boundary starting with U+0325 (and would have split at, or
    /// missed, the wrong semicolon and equals sign).
    @Test func combiningMarksDoNotHideQuotesEqualsOrSemicolons() {
        let quoted = MediaTypeHeader("multipart/form-data; boundary=\"\u{325}XyZ123\"; charset=utf-8")
        #expect(quoted?.parameters["boundary"] == "\u{325}XyZ123")
        #expect(quoted?.parameters["charset"] == "utf-8")
        let bare = MediaTypeHeader("multipart/form-data; boundary=\u{325}b;\u{301}x=y")
        #expect(bare?.parameters["boundary"] == "\u{325}b")
        #expect(bare?.parameters["\u{301}x"] == "y")
    }
}
