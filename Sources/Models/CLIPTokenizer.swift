// CLIP's text tokenizer (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
// Supervision"; openai/CLIP `simple_tokenizer.py`), equal to Hugging Face transformers' fast CLIP tokenizer
// (`CLIPTokenizerFast` in 4.x, `CLIPTokenizer` in 5.x; the tokenizer.json pipeline of the hub's
// openai/clip-vit-* folders), which CLIPProcessor uses:
//
//   normalizer      NFC; every run of whitespace (Unicode White_Space) -> one space; lowercase, scalar by
//                   scalar (Rust's char::to_lowercase: no final-sigma rule, İ -> i + U+0307)
//   added tokens    `<|startoftext|>`, `<|endoftext|>` found in the normalized text (`normalized: true` in
//                   the converter's tokenizer.json, so `<|EndOfText|>` is the token too)
//   pre-tokenizer   the pieces matched by 's|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//                   (whitespace between them dropped), each as UTF-8 bytes (ByteLevel; its GPT-2 regex
//                   splits none of these pieces further)
//   model           BPE with the `</w>` end-of-word suffix (ByteLevelBPE)
//   post-processor  `<|startoftext|> content <|endoftext|>`, content truncated to maxLength - 2 tokens
//
// Where transformers 4.57's slow CLIPTokenizer and OpenAI's SimpleTokenizer give other ids (ftfy fixes,
// HTML entities, Python's wider `\s`, final sigma, case-insensitive contractions), the goldens record both;
// see Tests/ModelsTests/Resources/clip_tokenizer_golden.json and scripts/make_clip_goldens.py.
//
// Everything works on Unicode scalars, as the Rust implementation works on `char`s.

import Foundation

/// Text -> token ids for CLIP text towers (vocab.json + merges.txt of a Hugging Face CLIP folder).
public struct CLIPTokenizer: TextTokenizer {
    public static let startOfTextToken = "<|startoftext|>"
    public static let endOfTextToken = "<|endoftext|>"
    static let endOfWordSuffix = "</w>"

    let bpe: ByteLevelBPE
    /// 77 for every released CLIP (the text tower's position embeddings).
    public let maxLength: Int
    /// 49406 in CLIP's vocabulary.
    public let startOfTextID: Int32
    /// 49407 in CLIP's vocabulary; also the padding id, as transformers pads CLIP with `<|endoftext|>`.
    public let endOfTextID: Int32

    public var paddingID: Int32 { endOfTextID }
    public var vocabularySize: Int { bpe.vocabularySize }

    /// Reads `vocab.json` and `merges.txt` from a CLIP checkpoint folder.
    public init(directory: URL, maxLength: Int = 77) throws(ModelsError) {
        try self.init(vocabularyFile: directory.appendingPathComponent("vocab.json"),
                      mergesFile: directory.appendingPathComponent("merges.txt"), maxLength: maxLength)
    }

    public init(vocabularyFile: URL, mergesFile: URL, maxLength: Int = 77) throws(ModelsError) {
        try self.init(bpe: ByteLevelBPE(vocabularyFile: vocabularyFile, mergesFile: mergesFile, endOfWordSuffix: Self.endOfWordSuffix),
                      maxLength: maxLength, vocabularyName: vocabularyFile.path)
    }

    /// - bpe: a model with the `</w>` suffix whose vocabulary has CLIP's two special tokens.
    public init(bpe: ByteLevelBPE, maxLength: Int = 77, vocabularyName: String = "vocab.json") throws(ModelsError) {
        guard maxLength >= 2 else {
            throw .invalidInput(reason: "CLIP maxLength \(maxLength) leaves no room for <|startoftext|> and <|endoftext|>")
        }
        guard bpe.endOfWordSuffix == Self.endOfWordSuffix else {
            throw .invalidConfiguration(file: vocabularyName, reason: "CLIP's BPE uses the end-of-word suffix </w>, not \"\(bpe.endOfWordSuffix)\"")
        }
        func id(_ token: String) throws(ModelsError) -> Int32 {
            guard let id = bpe.id(of: token) else { throw .invalidVocabulary(file: vocabularyName, reason: "no \(token) token") }
            return id
        }
        self.bpe = bpe
        self.maxLength = maxLength
        startOfTextID = try id(Self.startOfTextToken)
        endOfTextID = try id(Self.endOfTextToken)
    }

    /// The token string of an id (for debugging and tests).
    public func token(_ id: Int32) -> String { bpe.tokens[Int(id)] }

    /// `<|startoftext|> tokens... <|endoftext|>`, at most `maxLength` ids: longer text loses its end, never the
    /// end-of-text token.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [startOfTextID]
        ids.reserveCapacity(min(maxLength, 2 + text.utf8.count))
        appendContent(of: text, to: &ids, limit: maxLength - 2)
        ids.append(endOfTextID)
        return ids
    }

    /// The content tokens of `text`, without the added start and end tokens or truncation.
    public func tokenize(_ text: String) -> [String] {
        var ids: [Int32] = []
        appendContent(of: text, to: &ids, limit: .max)
        return ids.map(token)
    }

    /// Appends up to `limit` content ids; stops reading the text once they are there.
    func appendContent(of text: String, to ids: inout [Int32], limit: Int) {
        let base = ids.count
        let scalars = Self.normalize(text)
        var bytes: [UInt8] = []
        Self.forEachPiece(scalars) { piece in
            let room = limit - (ids.count - base)
            guard room > 0 else { return false }
            switch piece {
            case .startOfText: ids.append(startOfTextID)
            case .endOfText: ids.append(endOfTextID)
            case .text(let range):
                bytes.removeAll(keepingCapacity: true)
                for scalar in scalars[range] { UTF8.encode(scalar) { bytes.append($0) } }
                ids.append(contentsOf: bpe.encodeWord(bytes).prefix(room))
            }
            return ids.count - base < limit
        }
    }

    // MARK: - Normalizer

    /// NFC, whitespace runs -> " ", lowercase: tokenizers' Sequence[NFC, Replace(\s+, " "), Lowercase].
    static func normalize(_ text: String) -> [Unicode.Scalar] {
        // ASCII text is already NFC; skip Foundation's normalization for it.
        let composed = text.utf8.allSatisfy { $0 < 0x80 } ? text : text.precomposedStringWithCanonicalMapping
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(composed.unicodeScalars.count)
        var afterWhitespace = false
        for scalar in composed.unicodeScalars {
            if isWhitespace(scalar) {
                if !afterWhitespace { result.append(" ") }
                afterWhitespace = true
                continue
            }
            afterWhitespace = false
            if scalar.isASCII {
                let value = scalar.value
                result.append((0x41...0x5A).contains(value) ? Unicode.Scalar(UInt8(value + 0x20)) : scalar)
            } else {
                result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return result
    }

    /// Unicode White_Space: what Oniguruma's `\s` matches in tokenizers (so U+0085 and U+00A0 are
    /// whitespace, the ASCII separators U+001C...U+001F and U+200B are not).
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20, 0x09...0x0D: return true
        case 0..<0x80: return false
        default: return scalar.properties.isWhitespace
        }
    }

    // MARK: - Added tokens and pre-tokenizer

    enum Piece {
        case startOfText, endOfText
        case text(Range<Int>)
    }

    enum ScalarClass { case letter, number, whitespace, other }

    static func scalarClass(_ scalar: Unicode.Scalar) -> ScalarClass {
        switch scalar.value {
        case 0x61...0x7A, 0x41...0x5A: return .letter
        case 0x30...0x39: return .number
        case 0x20, 0x09...0x0D: return .whitespace
        case 0..<0x80: return .other
        default: break
        }
        if scalar.properties.isWhitespace { return .whitespace }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    static let startOfTextScalars = Array(startOfTextToken.unicodeScalars)
    static let endOfTextScalars = Array(endOfTextToken.unicodeScalars)

    /// Calls `body` with each special token and pre-tokenized piece of the normalized text, in order,
    /// until it returns false.
    static func forEachPiece(_ scalars: [Unicode.Scalar], _ body: (Piece) -> Bool) {
        var position = 0
        var segmentStart = 0
        func special(at index: Int) -> (Piece, Int)? {
            guard scalars[index] == "<", index + 1 < scalars.count, scalars[index + 1] == "|" else { return nil }
            for (token, piece) in [(startOfTextScalars, Piece.startOfText), (endOfTextScalars, Piece.endOfText)]
            where scalars.count - index >= token.count && scalars[index..<(index + token.count)].elementsEqual(token) {
                return (piece, token.count)
            }
            return nil
        }
        while position <= scalars.count {
            if position == scalars.count {
                _ = splitPieces(scalars, segmentStart..<position, body)
                return
            }
            if let (piece, length) = special(at: position) {
                guard splitPieces(scalars, segmentStart..<position, body), body(piece) else { return }
                position += length
                segmentStart = position
            } else {
                position += 1
            }
        }
    }

    /// The Split pre-tokenizer on one segment without special tokens; false when `body` asked to stop.
    static func splitPieces(_ scalars: [Unicode.Scalar], _ segment: Range<Int>, _ body: (Piece) -> Bool) -> Bool {
        var index = segment.lowerBound
        let end = segment.upperBound
        while index < end {
            let scalar = scalars[index]
            let start = index
            if scalar == "'", let length = contractionLength(scalars, at: index, end: end) {
                index += length
            } else {
                switch scalarClass(scalar) {
                case .whitespace:
                    index += 1
                    continue
                case .number:
                    index += 1
                case let run:
                    index += 1
                    while index < end && scalarClass(scalars[index]) == run { index += 1 }
                }
            }
            guard body(.text(start..<index)) else { return false }
        }
        return true
    }

    /// 's 't 'm 'd (2 scalars) or 're 've 'll (3) at `index`, which holds an apostrophe; case-sensitive,
    /// as tokenizers' regex is (it runs on lowercased text).
    static func contractionLength(_ scalars: [Unicode.Scalar], at index: Int, end: Int) -> Int? {
        guard index + 1 < end else { return nil }
        switch scalars[index + 1] {
        case "s", "t", "m", "d": return 2
        case "r", "v", "l":
            guard index + 2 < end else { return nil }
            let pair = (scalars[index + 1], scalars[index + 2])
            return pair == ("r", "e") || pair == ("v", "e") || pair == ("l", "l") ? 3 : nil
        default: return nil
        }
    }
}
