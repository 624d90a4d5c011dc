// Tokenizer throughput, outside SwiftPM: scripts/bench-tokenizer compiles this file with the
// WordPiece tokenizer's sources (of the work tree, or of a git revision for a before/after figure)
// and alternates the binaries.
//   wordpiece-bench VOCAB TEXTS [--seconds S]   one JSON line: texts/s, tokens, a checksum of the ids
//   wordpiece-bench VOCAB TEXTS --passes N      the same for exactly N passes over the texts (under
//                                               valgrind, two N give the allocations per text)
//   wordpiece-bench VOCAB TEXTS --dump          one JSON line per text: the text and its ids
// TEXTS holds one text per line.
import Foundation
import Models

@main
struct WordPieceBench {
    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 3 else {
            FileHandle.standardError.write(Data("usage: wordpiece-bench VOCAB TEXTS [--seconds S | --dump]\n".utf8))
            exit(2)
        }
        let tokenizer = try WordPieceTokenizer(vocabularyFile: URL(fileURLWithPath: arguments[1]))
        let texts = try String(contentsOfFile: arguments[2], encoding: .utf8).split(separator: "\n").map(String.init)
        if arguments.contains("--dump") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            struct Line: Encodable { let text: String; let ids: [Int32] }
            for text in texts {
                print(String(decoding: try encoder.encode(Line(text: text, ids: tokenizer.encode(text))), as: UTF8.self))
            }
            return
        }
        var seconds = 3.0
        if let i = arguments.firstIndex(of: "--seconds"), i + 1 < arguments.count, let s = Double(arguments[i + 1]) { seconds = s }
        var passes = Int.max
        if let i = arguments.firstIndex(of: "--passes"), i + 1 < arguments.count, let n = Int(arguments[i + 1]) { passes = n; seconds = .infinity }
        // One pass untimed (page faults, lazy Unicode tables), then whole passes until `seconds`.
        var checksum: UInt64 = 14_695_981_039_346_656_037
        var tokens = 0
        for text in texts {
            for id in tokenizer.encode(text) { checksum = (checksum ^ UInt64(UInt32(bitPattern: id))) &* 1_099_511_628_211 }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        var encoded = 0, elapsed = 0.0
        var pass = 0
        while pass < passes && elapsed < seconds {
            for text in texts { tokens += tokenizer.encode(text).count }
            encoded += texts.count
            pass += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        print("{\"texts\": \(encoded), \"seconds\": \(String(format: "%.3f", elapsed)), "
              + "\"texts_per_s\": \(String(format: "%.1f", Double(encoded) / elapsed)), "
              + "\"tokens_per_text\": \(String(format: "%.2f", Double(tokens) / Double(max(encoded, 1)))), "
              + "\"checksum\": \"\(String(checksum, radix: 16))\"}")
    }
}
