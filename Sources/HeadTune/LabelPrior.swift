import Training

/// Class directions in the image feature space from the class names' text embeddings, through the
/// DeViSE-style map of the image-text alignment: the map M [text, features] sends an image's features
/// f to M f in the text space, so the text embedding t of a class name scores an image with
/// t · (M f) = (Mᵀ t) · f, a linear classifier row Mᵀ t. `HeadTrainer.train(prior:)` starts a linear
/// head from these rows (`headtune train --init-from-labels`) for few-shot data.
public enum LabelPrior {
    /// [labels, featureCount]: row c is Mᵀ t_c.
    /// - labelEmbeddings: one unit text embedding per class, in the head's label order
    public static func classDirections(labelEmbeddings: [[Float]], alignment: ImageTextAlignment) -> FeatureMatrix {
        let d = alignment.textDimension, f = alignment.featureCount
        var directions = FeatureMatrix(columns: f)
        for t in labelEmbeddings {
            precondition(t.count == d, "text embedding of \(t.count), alignment expects \(d)")
            var row = [Float](repeating: 0, count: f)
            for i in 0..<d where t[i] != 0 {
                let weight = t[i], base = i * f
                for j in 0..<f { row[j] += weight * alignment.projection[base + j] }
            }
            directions.append(row: row)
        }
        return directions
    }

    /// A readable class name from a folder label: a leading number ("001_") is dropped and
    /// underscores become spaces, so "001_AM_General_Hummer_SUV_2000" reads "AM General Hummer SUV 2000".
    public static func className(fromLabel label: String) -> String {
        var name = Substring(label)
        if let separator = name.firstIndex(where: { $0 == "_" || $0 == "-" || $0 == " " }),
           separator > name.startIndex, name[..<separator].allSatisfy(\.isNumber) {
            name = name[name.index(after: separator)...]
        }
        let words = name.split(whereSeparator: { $0 == "_" || $0 == " " })
        return words.isEmpty ? label : words.joined(separator: " ")
    }
}
