/// A JSON value whose objects keep their key order, so every record reads `{"path": ..., ...}` first
/// (Foundation's JSONEncoder does not promise an order on Linux).
public indirect enum JSONValue: Sendable, Equatable {
    case string(String)
    case number(Double)
    case float(Float)
    case integer(Int)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.serialized() == b.serialized() }

    /// Compact JSON text (no newline).
    public func serialized() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        switch self {
        case .string(let s): Self.writeString(s, to: &out)
        case .number(let d): out += d.isFinite ? "\(d)" : "null"
        case .float(let f): out += f.isFinite ? "\(f)" : "null"
        case .integer(let i): out += String(i)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += ", " }
                Self.writeString(key, to: &out)
                out += ": "
                value.write(to: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension ClassificationRecord {
    /// `{"path": ..., "predictions": [{"label": ..., "index": ..., "score": ...}, ...]}` (then
    /// `unknown`, `ood_score`, `embedding`, `logits` when present) or `{"path": ..., "error": ...}`.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("path", .string(path))]
        if let predictions {
            members.append(("predictions", .array(predictions.map {
                .object([("label", .string($0.label)), ("index", .integer($0.index)), ("score", .float($0.score))])
            })))
        }
        if let unknown { members.append(("unknown", .bool(unknown))) }
        if let oodScore { members.append(("ood_score", .float(oodScore))) }
        if let oodScores { members.append(("ood_scores", .object(oodScores.map { ($0.name, .float($0.score)) }))) }
        if let embedding { members.append(("embedding", .array(embedding.map { .float($0) }))) }
        if let logits { members.append(("logits", .array(logits.map { .float($0) }))) }
        if let error { members.append(("error", .string(error))) }
        return .object(members)
    }
}
