import Foundation
import Testing
import TestSupport
import Weights
@testable import Models

/// The CLIP tokenizer against transformers' fast CLIP tokenizer (CLIPTokenizerFast), with CLIP's real
/// vocabulary (weights/clip-bpe, from open_clip's bpe_simple_vocab_16e6.txt.gz): the edge cases and the
/// flickr8k caption digests of Resources/clip_tokenizer_golden.json (scripts/make_clip_goldens.py).
@Suite struct CLIPTokenizerTests {
    let tokenizer: CLIPTokenizer

    static let vocabularyDirectory = "weights/clip-bpe"

    /// Loaded once for the suite (Swift Testing makes one suite value per test).
    static let shared: Result<CLIPTokenizer, any Error> = Result {
        _ = try Golden.asset("\(vocabularyDirectory)/vocab.json", fetchWith: "make weights")
        return try CLIPTokenizer(directory: Golden.repositoryRoot.appendingPathComponent(vocabularyDirectory))
    }

    init() throws {
        tokenizer = try Self.shared.get()
    }

    // MARK: - The goldens

    struct GoldenFile: Decodable {
        struct Case: Decodable {
            let name: String
            let text: String
            let input_ids: [Int32]
            let untruncated_length: Int
            /// Absent for the long inputs.
            let tokens: [String]?
        }
        struct Captions: Decodable {
            let count: Int
            /// "KEY TEXT_DIGEST IDS_DIGEST LENGTH", KEY = <folder>/<image>#<caption_index>.
            let entries: [String]
        }
        let max_length: Int
        let cases: [Case]
        let captions: Captions
    }

    static let golden: Result<GoldenFile, any Error> = Result {
        guard let resources = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            throw MissingResource(description: "ModelsTests resources are missing from the test bundle")
        }
        let data = try Data(contentsOf: resources.appendingPathComponent("clip_tokenizer_golden.json"))
        return try JSONDecoder().decode(GoldenFile.self, from: data)
    }

    @Test func specialTokensAndSizes() {
        #expect(tokenizer.vocabularySize == 49408)
        #expect((tokenizer.startOfTextID, tokenizer.endOfTextID, tokenizer.paddingID, tokenizer.maxLength) == (49406, 49407, 49407, 77))
        let generic: any TextTokenizer = tokenizer
        #expect(generic.encode("a photo of a cat") == [49406, 320, 1125, 539, 320, 2368, 49407])
    }

    @Test func edgeCasesGiveTheReferenceIDs() throws {
        let golden = try Self.golden.get()
        #expect(golden.max_length == 77)
        #expect(golden.cases.count >= 60)
        for c in golden.cases {
            let ids = tokenizer.encode(c.text)
            #expect(ids == c.input_ids, "case \(c.name): got \(ids.prefix(20).map(tokenizer.token))")
            if let tokens = c.tokens { #expect(ids.map(tokenizer.token) == tokens, "case \(c.name)") }
            #expect(tokenizer.tokenize(c.text).count + 2 == c.untruncated_length, "case \(c.name): untruncated length")
        }
    }

    static let datasets = Golden.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/datasets")
    static let captionFiles = ["flickr8k-dev", "flickr8k-train"]
    static let datasetsPresent = captionFiles.allSatisfy {
        FileManager.default.fileExists(atPath: datasets.appendingPathComponent("\($0)/captions.csv").path)
    }

    /// The captions are research-use data that stay out of the repository: the goldens hold digests of
    /// each caption's text and of its reference ids, and the captions are read here.
    @Test(.enabled(if: datasetsPresent, "../shared/datasets/flickr8k-{dev,train}/captions.csv are absent: the caption goldens need the shared datasets"))
    func flickr8kCaptionsGiveTheReferenceIDs() throws {
        let golden = try Self.golden.get()
        var captions: [String: String] = [:]
        for folder in Self.captionFiles {
            let url = Self.datasets.appendingPathComponent("\(folder)/captions.csv")
            let rows = try CaptionsCSV.rows(String(contentsOf: url, encoding: .utf8))
            #expect(rows.first == ["image", "caption_index", "caption"], "\(url.path): header")
            for row in rows.dropFirst() where row.count == 3 { captions["\(folder)/\(row[0])#\(row[1])"] = row[2] }
        }
        #expect(golden.captions.count == 3500 && golden.captions.entries.count == 3500)
        #expect(captions.count == golden.captions.count, "captions read from \(Self.datasets.path)")
        // All 3,500 captions through a fresh tokenizer (empty word cache). How fast is a benchmark's business
        // (a wall-clock bound here failed on a loaded machine: 1.47 s against 1 s), not this test's.
        let fresh = try CLIPTokenizer(bpe: ByteLevelBPE(vocabularyFile: Golden.repositoryRoot.appendingPathComponent("\(Self.vocabularyDirectory)/vocab.json"),
                                                        mergesFile: Golden.repositoryRoot.appendingPathComponent("\(Self.vocabularyDirectory)/merges.txt"),
                                                        endOfWordSuffix: "</w>"))
        let texts = Array(captions.values)
        var total = 0
        for text in texts { total += fresh.encode(text).count }
        #expect(total > 3500 * 5)

        var mismatches: [String] = []
        var changedCaptions: [String] = []
        for entry in golden.captions.entries {
            let fields = entry.split(separator: " ").map(String.init)
            try #require(fields.count == 4, "malformed golden entry \(entry)")
            guard let text = captions[fields[0]] else {
                changedCaptions.append("\(fields[0]) (absent)")
                continue
            }
            if Self.digest(text) != fields[1] {
                changedCaptions.append(fields[0])
                continue
            }
            let ids = tokenizer.encode(text)
            if Self.digest(ids.map(String.init).joined(separator: ",")) != fields[2] || ids.count != Int(fields[3]) {
                mismatches.append("\(fields[0]) \"\(text)\" -> \(ids.count) ids \(ids.map(tokenizer.token).joined(separator: " "))")
            }
        }
        #expect(changedCaptions.isEmpty, "the dataset changed since the goldens were made (rerun scripts/make_clip_goldens.py): \(changedCaptions.prefix(5))")
        #expect(mismatches.isEmpty, "\(mismatches.count) captions tokenized differently, e.g. \(mismatches.prefix(3))")
    }

    /// The first 16 hex digits of the sha256 of the UTF-8 text, as the golden script writes them.
    static func digest(_ text: String) -> String {
        var bytes = Array(text.utf8)
        return String(bytes.withUnsafeMutableBytes { SHA256.hex(UnsafeRawBufferPointer($0)) }.prefix(16))
    }

    /// The tiny CLIP fixture's text inputs (Resources/tiny-clip, scripts/make_clip_fixture.py) are this
    /// tokenizer's ids, padded with the padding id to the longest.
    @Test func tinyCLIPFixtureInputsAreThisTokenizersIDs() throws {
        struct Expected: Decodable {
            let texts: [String]
            let input_ids: [[Int32]]
            let attention_mask: [[Int32]]
        }
        let resources = try #require(Bundle.module.url(forResource: "Resources", withExtension: nil))
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: resources.appendingPathComponent("tiny-clip/expected.json")))
        let encoded = expected.texts.map(tokenizer.encode)
        let longest = encoded.map(\.count).max() ?? 0
        #expect(encoded.map { $0 + Array(repeating: tokenizer.paddingID, count: longest - $0.count) } == expected.input_ids)
        #expect(encoded.map { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: longest - $0.count) } == expected.attention_mask)
    }

    // MARK: - Behaviour

    @Test func truncationKeepsTheEndOfTextToken() throws {
        let ids = tokenizer.encode(Array(repeating: "dog", count: 200).joined(separator: " "))
        #expect(ids.count == 77)
        #expect(ids.first == 49406 && ids.last == 49407)
        #expect(ids[1..<76].allSatisfy { $0 == tokenizer.bpe.id(of: "dog</w>") })
        let short = try CLIPTokenizer(bpe: tokenizer.bpe, maxLength: 5)
        #expect(short.encode("a photo of a cat") == [49406, 320, 1125, 539, 49407])
        // Truncation cuts tokens, not words: a long word keeps its first pieces.
        #expect(try CLIPTokenizer(bpe: tokenizer.bpe, maxLength: 3).encode("supercalifragilistic").count == 3)
        #expect(try CLIPTokenizer(bpe: tokenizer.bpe, maxLength: 2).encode("a cat") == [49406, 49407])
        #expect(throws: ModelsError.self) { try CLIPTokenizer(bpe: tokenizer.bpe, maxLength: 1) }
    }

    @Test func tenThousandCharacterWordIsNotQuadratic() {
        let word = String(repeating: "ab", count: 5_000)
        let clock = ContinuousClock()
        var pieces = 0
        let elapsed = clock.measure { pieces = tokenizer.tokenize(word).count }
        #expect(pieces > 100)
        // A rescan-all-pairs merge loop needs seconds here even in a release build, tens of them in a debug
        // one; the queue takes milliseconds. The bound is loose so that a loaded CI machine does not trip it.
        #expect(elapsed < .seconds(10), "\(elapsed)")
    }

    @Test func sameWordTwiceUsesTheCacheAndAgrees() {
        let first = tokenizer.encode("a photograph of an astronaut riding a horse")
        #expect(tokenizer.encode("a photograph of an astronaut riding a horse") == first)
        #expect(tokenizer.bpe.merge(Array("photograph".utf8)) == tokenizer.bpe.encodeWord(Array("photograph".utf8)))
    }

    @Test func byteSymbolsAreGPT2sTable() {
        let symbols = ByteLevelBPE.byteSymbols
        #expect(Set(symbols).count == 256)
        #expect(symbols[Int(UInt8(ascii: "a"))] == "a" && symbols[0x20] == "\u{120}" && symbols[0] == "\u{100}" && symbols[0xAD] == "\u{143}")
        #expect(tokenizer.token(0) == "!" && tokenizer.token(188) == "\u{100}" && tokenizer.token(256) == "!</w>")
    }

    // MARK: - Bad files

    /// A scratch CLIP folder with the real files, then one of them broken.
    func brokenFolder(_ name: String, vocabulary: Data? = nil, merges: Data? = nil, dropVocabulary: Bool = false) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clip-tokenizer-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let source = Golden.repositoryRoot.appendingPathComponent(Self.vocabularyDirectory)
        if !dropVocabulary {
            try (vocabulary ?? Data(contentsOf: source.appendingPathComponent("vocab.json"))).write(to: folder.appendingPathComponent("vocab.json"))
        }
        try (merges ?? Data(contentsOf: source.appendingPathComponent("merges.txt"))).write(to: folder.appendingPathComponent("merges.txt"))
        return folder
    }

    func loadError(_ folder: URL) -> ModelsError? {
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            _ = try CLIPTokenizer(directory: folder)
            return nil
        } catch {
            return error
        }
    }

    @Test func missingVocabularyIsAnErrorNamingTheFile() throws {
        let folder = try brokenFolder("missing", dropVocabulary: true)
        let error = loadError(folder)
        guard case .unreadableFile(let file, let reason)? = error else {
            Issue.record("expected unreadableFile, got \(String(describing: error))")
            return
        }
        #expect(file.hasSuffix("/vocab.json") && reason == "no such file")
        #expect(error?.errorDescription?.contains("vocab.json") == true)
    }

    @Test func truncatedVocabularyJSONIsAnErrorNamingTheFile() throws {
        let real = try Data(contentsOf: Golden.repositoryRoot.appendingPathComponent("\(Self.vocabularyDirectory)/vocab.json"))
        for (label, bytes) in [("truncated", real.prefix(real.count / 2)), ("array", Data("[1, 2]".utf8)),
                               ("string id", Data(#"{"a": "1"}"#.utf8)), ("empty", Data("{}".utf8))] {
            guard case .invalidVocabulary(let file, let reason)? = loadError(try brokenFolder("json", vocabulary: Data(bytes))) else {
                Issue.record("\(label): expected invalidVocabulary")
                continue
            }
            #expect(file.hasSuffix("/vocab.json"), "\(label)")
            #expect(!reason.isEmpty, "\(label)")
        }
    }

    @Test func vocabularyWithoutSpecialTokensOrDenseIDsIsRejected() throws {
        let real = try String(contentsOf: Golden.repositoryRoot.appendingPathComponent("\(Self.vocabularyDirectory)/vocab.json"), encoding: .utf8)
        let noEnd = real.replacingOccurrences(of: #","<|endoftext|>":49407}"#, with: "}")
        #expect(noEnd != real)
        guard case .invalidVocabulary(_, let reason)? = loadError(try brokenFolder("special", vocabulary: Data(noEnd.utf8))) else {
            Issue.record("expected invalidVocabulary for a vocabulary without <|endoftext|>")
            return
        }
        #expect(reason == "no <|endoftext|> token")
        let gap = real.replacingOccurrences(of: #""<|endoftext|>":49407"#, with: #""<|endoftext|>":50000"#)
        guard case .invalidVocabulary(_, let gapReason)? = loadError(try brokenFolder("gap", vocabulary: Data(gap.utf8))) else {
            Issue.record("expected invalidVocabulary for an id out of range")
            return
        }
        #expect(gapReason.contains("50000"))
    }

    @Test func malformedMergesLineIsAnErrorNamingFileAndLine() throws {
        let cases: [(String, String, String)] = [
            ("one symbol", "#version: 0.2\ni n\nth\n", "line 3"),
            ("three symbols", "#version: 0.2\ni n\nt h e\n", "line 3"),
            ("empty line", "#version: 0.2\ni n\n\nt h\n", "line 3"),
            ("unknown symbol", "#version: 0.2\ni n\n\u{1F600} x\n", "line 3"),
            ("unknown product", "#version: 0.2\nq z\n", "line 2"),
            ("duplicate", "#version: 0.2\ni n\ni n\n", "line 3"),
        ]
        for (label, text, line) in cases {
            guard case .invalidVocabulary(let file, let reason)? = loadError(try brokenFolder("merges", merges: Data(text.utf8))) else {
                Issue.record("\(label): expected invalidVocabulary")
                continue
            }
            #expect(file.hasSuffix("/merges.txt"), "\(label)")
            #expect(reason.hasPrefix(line), "\(label): \(reason)")
        }
        // CRLF line ends and a missing version line are accepted, as tokenizers accepts them.
        #expect(loadError(try brokenFolder("crlf", merges: Data("#version: 0.2\r\ni n\r\nt h\r\n".utf8))) == nil)
        #expect(loadError(try brokenFolder("noversion", merges: Data("i n\nt h".utf8))) == nil)
    }
}

/// RFC 4180 rows (quoted fields with commas and doubled quotes, CRLF or LF line ends), enough for captions.csv.
enum CaptionsCSV {
    static func rows(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var scalars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        while let scalar = pending ?? scalars.next() {
            pending = nil
            if quoted {
                if scalar == "\"" {
                    let next = scalars.next()
                    if next == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; pending = next }
                } else {
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"": quoted = true
            case ",": row.append(field); field = ""
            case "\r": break
            case "\n": row.append(field); rows.append(row); row = []; field = ""
            default: field.unicodeScalars.append(scalar)
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}

struct MissingResource: Error, CustomStringConvertible {
    let description: String
}
