import Hummingbird

/// Query parameter readers that answer 400 with what is wrong.
extension Request {
    func queryInt(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = uri.queryParameters.get(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw ServiceError.badRequest("query parameter \(name)=\(text) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    func queryFloat(_ name: String, range: ClosedRange<Float>) throws -> Float? {
        guard let text = uri.queryParameters.get(name) else { return nil }
        guard let number = Float(text), range.contains(number) else {
            throw ServiceError.badRequest("query parameter \(name)=\(text) must be a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    /// Every value of a repeatable parameter, each also split at commas when `splitCommas`.
    func queryList(_ name: String, splitCommas: Bool) -> [String] {
        uri.queryParameters.getAll(name).flatMap { value -> [String] in
            splitCommas ? value.split(separator: ",").map(String.init) : [value]
        }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
