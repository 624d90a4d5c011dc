import ArgumentParser
import Foundation

/// A byte count given as a number with an optional binary suffix: 268435456, 256m, 256MiB, 1g, 512k.
struct MemorySize: ExpressibleByArgument, Sendable, Equatable {
    var bytes: Int

    init(bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let text = argument.lowercased().trimmingCharacters(in: .whitespaces)
        let digits = text.prefix { $0.isNumber }
        let unit = text.dropFirst(digits.count).replacingOccurrences(of: "ib", with: "").replacingOccurrences(of: "b", with: "")
        let shifts = ["": 0, "k": 10, "m": 20, "g": 30]
        guard let value = Int(digits), let shift = shifts[unit], value <= Int.max >> shift else { return nil }
        bytes = value << shift
    }

    var defaultValueDescription: String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20)m" : String(bytes)
    }
}
