import Foundation

/// The 1000 ImageNet-1k class names in the standard sorted-WNID order (index 0 = tench).
public struct ImageNetLabels: Sendable {
    /// Full synonym lists, e.g. "tabby, tabby cat".
    public let names: [String]

    /// The first synonym, e.g. "tabby": what predictions show as `label`.
    public func label(_ index: Int) -> String {
        let name = names[index]
        return name.split(separator: ",", maxSplits: 1).first.map { String($0) } ?? name
    }

    public static func load() throws -> ImageNetLabels {
        guard let url = Bundle.module.url(forResource: "imagenet_classes", withExtension: "txt") else {
            throw HeadTuneError.missingResource("imagenet_classes.txt")
        }
        let names = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
        guard names.count == 1000 else {
            throw HeadTuneError.missingResource("imagenet_classes.txt has \(names.count) lines, expected 1000")
        }
        return ImageNetLabels(names: names)
    }
}
