// BERT WordPiece tokenization (Devlin et al. 2019; Wu et al. 2016 for WordPiece), equal to the Hugging
// Face `tokenizers` pipeline of all-MiniLM-L6-v2's tokenizer.json: BertNormalizer (clean text, CJK
// spacing, strip accents, lowercase), BertPreTokenizer (whitespace + punctuation), WordPiece (greedy
// longest match, `##` continuations, 100-character words), TemplateProcessing `[CLS] $A [SEP]`.
//
// Everything works on Unicode scalars, as the Rust implementation works on `char`s: Swift `Character`s
// (grapheme clusters) would glue combining marks to their base letter and change the splits.

import Foundation

/// Settings of a BERT-style uncased WordPiece tokenizer.
public struct WordPieceConfiguration: Sendable, Equatable {
    public var lowercase = true
    /// nil follows `lowercase`, as in BertNormalizer.
    public var stripAccents: Bool? = nil
    public var splitCJKCharacters = true
    public var unknownToken = "[UNK]"
    public var classToken = "[CLS]"
    public var separatorToken = "[SEP]"
    public var paddingToken = "[PAD]"
    public var continuingPrefix = "##"
    /// Longer words (in Unicode scalars) become `[UNK]` without being split.
    public var maxCharactersPerWord = 100
    /// Total tokens including `[CLS]` and `[SEP]` (sentence-transformers' max_seq_length: 256 for
    /// all-MiniLM-L6-v2, not the 512 positions the network has).
    public var maxLength = 256

    public init() {}
}

/// Text -> token ids for BERT-family encoders.
public struct WordPieceTokenizer: Sendable {
    public let configuration: WordPieceConfiguration
    /// Token -> id, the line number in vocab.txt.
    let vocabulary: [String: Int32]
    /// id -> token.
    let tokens: [String]
    public let unknownID: Int32
    public let classID: Int32
    public let separatorID: Int32
    public let paddingID: Int32
    /// The most Unicode scalars a vocabulary entry has in canonical decomposition (NFD): no longer
    /// candidate can equal one (String equality is canonical equivalence, and decomposing never
    /// shortens), so the greedy match starts there instead of at the word's end.
    let longestTokenScalars: Int

    public var vocabularySize: Int { tokens.count }

    /// Reads vocab.txt: one token per line, the id is the (0-based) line number.
    public init(vocabularyFile url: URL, configuration: WordPieceConfiguration = WordPieceConfiguration()) throws(ModelsError) {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw .unreadableFile(file: url.path, reason: error.localizedDescription)
        }
        var lines = text.components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines, configuration: configuration, sourceName: url.path)
    }

    /// - tokens: the vocabulary in id order.
    public init(tokens: [String], configuration: WordPieceConfiguration = WordPieceConfiguration(),
                sourceName: String = "vocabulary") throws(ModelsError) {
        self.configuration = configuration
        self.tokens = tokens
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(tokens.count)
        // First occurrence wins, as in tokenizers' vocab loading... duplicates would be a broken file.
        for (id, token) in tokens.enumerated() where vocabulary[token] == nil { vocabulary[token] = Int32(id) }
        self.vocabulary = vocabulary
        longestTokenScalars = tokens.lazy.map { $0.decomposedStringWithCanonicalMapping.unicodeScalars.count }.max() ?? 0
        func id(_ token: String) throws(ModelsError) -> Int32 {
            guard let id = vocabulary[token] else { throw .invalidVocabulary(file: sourceName, reason: "no \(token) token") }
            return id
        }
        unknownID = try id(configuration.unknownToken)
        classID = try id(configuration.classToken)
        separatorID = try id(configuration.separatorToken)
        paddingID = try id(configuration.paddingToken)
    }

    /// The token string of an id (for debugging and tests).
    public func token(_ id: Int32) -> String { tokens[Int(id)] }

    /// `[CLS] pieces... [SEP]`, truncated to `maxLength` tokens in total.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [classID]
        let budget = max(0, configuration.maxLength - 2)
        outer: for word in preTokenize(normalize(text)) {
            for id in wordPieces(word) {
                if ids.count - 1 >= budget { break outer }
                ids.append(id)
            }
        }
        ids.append(separatorID)
        return ids
    }

    /// The word pieces of `text` without special tokens or truncation.
    public func tokenize(_ text: String) -> [String] {
        preTokenize(normalize(text)).flatMap { wordPieces($0).map(token) }
    }

    // MARK: - BertNormalizer

    /// Clean text, space out CJK ideographs, strip accents (NFD, drop nonspacing marks), lowercase:
    /// the order of tokenizers' BertNormalizer.
    func normalize(_ text: String) -> String.UnicodeScalarView {
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if configuration.splitCJKCharacters && Self.isCJK(scalar) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        var result = cleaned
        // Below U+00C0 no scalar has a canonical decomposition or is a nonspacing mark: the text is
        // its own NFD with nothing to strip, and Foundation's NFD pass is skipped (most of the time
        // of a short English text).
        if configuration.stripAccents ?? configuration.lowercase, !cleaned.allSatisfy({ $0.value < 0xC0 }) {
            result = String.UnicodeScalarView()
            for scalar in String(cleaned).decomposedStringWithCanonicalMapping.unicodeScalars
            where scalar.properties.generalCategory != .nonspacingMark {
                result.append(scalar)
            }
        }
        if configuration.lowercase {
            // Per scalar, without context (no final-sigma rule), as Rust's char::to_lowercase.
            var lowered = String.UnicodeScalarView()
            for scalar in result {
                // ASCII directly: lowercaseMapping builds a String per scalar (most of the tokenizer's time).
                if scalar.isASCII {
                    lowered.append(scalar.value >= 0x41 && scalar.value <= 0x5A ? Unicode.Scalar(UInt8(scalar.value + 0x20)) : scalar)
                } else {
                    lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
                }
            }
            result = lowered
        }
        return result
    }

    /// BERT treats \t \n \r as whitespace, not control; other C* categories are control.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// Unicode White_Space, as Rust's char::is_whitespace.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    /// The CJK Unified Ideographs blocks BERT spaces out (not Hangul, Hiragana or Katakana).
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }

    // MARK: - BertPreTokenizer

    /// Splits on whitespace (dropped) and punctuation (kept as one-scalar words).
    func preTokenize(_ text: String.UnicodeScalarView) -> [String.UnicodeScalarView] {
        var words: [String.UnicodeScalarView] = []
        var current = String.UnicodeScalarView()
        func flush() {
            if !current.isEmpty { words.append(current) }
            current = String.UnicodeScalarView()
        }
        for scalar in text {
            if Self.isWhitespace(scalar) {
                flush()
            } else if Self.isPunctuation(scalar) {
                flush()
                words.append(String.UnicodeScalarView([scalar]))
            } else {
                current.append(scalar)
            }
        }
        flush()
        return words
    }

    /// BERT's punctuation: all non-alphanumeric printable ASCII (so `$`, `+`, `^`, `` ` `` count, which
    /// Unicode calls symbols) plus every Unicode P* category.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 33...47, 58...64, 91...96, 123...126: return true
        default: break
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    // MARK: - WordPiece

    /// Greedy longest-match-first; a word with any unmatchable rest, or too long, is one `[UNK]`.
    func wordPieces(_ word: String.UnicodeScalarView) -> [Int32] {
        let scalarCount = word.count
        if scalarCount > configuration.maxCharactersPerWord { return [unknownID] }
        // The word's UTF-8 and where each scalar starts in it: a candidate is one slice, decoded at
        // once (appending scalar by scalar was most of the tokenizer's time).
        let utf8 = Array(String(word).utf8)
        var offsets = [0]
        offsets.reserveCapacity(scalarCount + 1)
        for scalar in word { offsets.append(offsets[offsets.count - 1] + UTF8.width(scalar)) }
        var pieces: [Int32] = []
        var start = 0
        let prefixScalars = configuration.continuingPrefix.unicodeScalars.count
        while start < scalarCount {
            // Longer candidates cannot be in the vocabulary: without this bound a 100-scalar word
            // built 5,050 candidate strings.
            var end = min(scalarCount, start + max(0, longestTokenScalars - (start > 0 ? prefixScalars : 0)))
            var match: Int32?
            while end > start {
                let piece = String(decoding: utf8[offsets[start]..<offsets[end]], as: UTF8.self)
                let candidate = start > 0 ? configuration.continuingPrefix + piece : piece
                if let id = vocabulary[candidate] {
                    match = id
                    break
                }
                end -= 1
            }
            guard let match else { return [unknownID] }
            pieces.append(match)
            start = end
        }
        return pieces
    }
}

extension WordPieceTokenizer: TextTokenizer {
    public var maxLength: Int { configuration.maxLength }
}
