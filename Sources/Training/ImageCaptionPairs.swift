import Foundation

/// Image-caption pairs read from CSV files (`image,caption`, other columns ignored), for fitting an
/// image-text bridge. Several captions may name the same image; the images are kept once each, in
/// first-seen order, and every caption points at its image.
public struct ImageCaptionPairs: Sendable, Equatable {
    /// One captioned image: the resolved path and where it was first listed (for messages).
    public struct Image: Sendable, Equatable {
        public var path: String
        /// "captions.csv:12": the CSV row that first named it.
        public var firstRow: String
    }

    public var images: [Image]
    public var captions: [String]
    /// Per caption, the index of its image in `images`.
    public var owner: [Int]
    /// Rows that were left out, each with its file, line and reason ("a.csv:7: empty caption").
    public var skippedRows: [String]
    /// The CSV files read.
    public var sources: [String]

    public init(images: [Image], captions: [String], owner: [Int], skippedRows: [String] = [], sources: [String] = []) {
        precondition(owner.count == captions.count && owner.allSatisfy { images.indices.contains($0) }, "caption owners")
        self.images = images
        self.captions = captions
        self.owner = owner
        self.skippedRows = skippedRows
        self.sources = sources
    }

    public var count: Int { captions.count }

    /// Reads and merges CSV files. An image path is resolved against the CSV's folder, then against an
    /// `images/` folder beside it (the Flickr8k layout); a row whose image is in neither, or whose
    /// caption is empty, is skipped with a message naming the file and line (one bad row should not
    /// cost the whole fit). A file without `image` and `caption` columns is an error.
    public static func load(csvFiles: [String]) throws -> ImageCaptionPairs {
        var result = ImageCaptionPairs(images: [], captions: [], owner: [], sources: csvFiles)
        var imageIndex: [String: Int] = [:]
        for file in csvFiles {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw TrainingError.invalidDataset(path: file, reason: "not a readable UTF-8 CSV file")
            }
            var rows = try CSV.parse(text, path: file)
            guard let header = rows.first?.fields.map({ $0.lowercased().trimmingCharacters(in: .whitespaces) }),
                  let imageColumn = header.firstIndex(of: "image"), let captionColumn = header.firstIndex(of: "caption") else {
                throw TrainingError.invalidManifest(path: file, line: 1, reason: "expected a header row with columns image,caption")
            }
            rows.removeFirst()
            let base = (file as NSString).deletingLastPathComponent
            let folders = [base, base.isEmpty ? "images" : base + "/images"]
            for row in rows {
                let place = "\(file):\(row.line)"
                guard row.fields.count > max(imageColumn, captionColumn) else {
                    result.skippedRows.append("\(place): expected \(header.count) columns, found \(row.fields.count)")
                    continue
                }
                let name = row.fields[imageColumn].trimmingCharacters(in: .whitespaces)
                let caption = row.fields[captionColumn].trimmingCharacters(in: .whitespacesAndNewlines)
                guard !name.isEmpty else { result.skippedRows.append("\(place): empty image path"); continue }
                guard !caption.isEmpty else { result.skippedRows.append("\(place): empty caption for \(name)"); continue }
                let candidates = name.hasPrefix("/") ? [name] : folders.map { $0.isEmpty ? name : $0 + "/" + name }
                guard let path = candidates.first(where: isRegularFile) else {
                    result.skippedRows.append("\(place): image \(name) not found (looked in \(candidates.joined(separator: " and ")))")
                    continue
                }
                let index: Int
                if let known = imageIndex[path] {
                    index = known
                } else {
                    index = result.images.count
                    imageIndex[path] = index
                    result.images.append(Image(path: path, firstRow: place))
                }
                result.captions.append(caption)
                result.owner.append(index)
            }
        }
        return result
    }

    /// The pairs of the images whose `keep` is true (images renumbered in order), with `reason` added
    /// to the skipped rows of every image dropped.
    public func keepingImages(_ keep: [Bool], reasons: [String?] = []) -> ImageCaptionPairs {
        var renumber = [Int?](repeating: nil, count: images.count)
        var result = ImageCaptionPairs(images: [], captions: [], owner: [], skippedRows: skippedRows, sources: sources)
        for (i, image) in images.enumerated() {
            if keep[i] {
                renumber[i] = result.images.count
                result.images.append(image)
            } else {
                let reason = reasons.indices.contains(i) ? reasons[i] ?? "dropped" : "dropped"
                // Decoding errors already name the file.
                result.skippedRows.append("\(image.firstRow): " + (reason.hasPrefix(image.path) ? reason : "\(image.path): \(reason)"))
            }
        }
        for (caption, owner) in zip(captions, owner) {
            if let index = renumber[owner] {
                result.captions.append(caption)
                result.owner.append(index)
            }
        }
        return result
    }

    /// The pairs of the images at `indices` (in that order), renumbered; their captions in the order
    /// `captionIndices(ofImages:)` gives.
    public func selectingImages(_ indices: [Int]) -> ImageCaptionPairs {
        var renumber = [Int?](repeating: nil, count: images.count)
        for (n, i) in indices.enumerated() { renumber[i] = n }
        let kept = captionIndices(ofImages: indices)
        return ImageCaptionPairs(images: indices.map { images[$0] }, captions: kept.map { captions[$0] },
                                 owner: kept.map { renumber[owner[$0]]! }, sources: sources)
    }

    /// The captions of the images at `indices`, in caption order.
    public func captionIndices(ofImages indices: [Int]) -> [Int] {
        var selected = [Bool](repeating: false, count: images.count)
        for i in indices { selected[i] = true }
        return owner.indices.filter { selected[owner[$0]] }
    }

    /// A seeded split by image (all captions of an image on one side), so held-out captions never
    /// describe an image the fit has seen. At least one image on each side.
    public static func splitImages(count: Int, heldOutFraction: Double, seed: UInt64) -> (train: [Int], heldOut: [Int]) {
        precondition(count >= 2 && heldOutFraction > 0 && heldOutFraction < 1, "split of \(count) images by \(heldOutFraction)")
        var order = Array(0..<count)
        var generator = SeededGenerator(seed: seed)
        generator.shuffle(&order)
        let held = min(count - 1, max(1, Int((heldOutFraction * Double(count)).rounded())))
        return (Array(order[held...]).sorted(), Array(order[..<held]).sorted())
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}
