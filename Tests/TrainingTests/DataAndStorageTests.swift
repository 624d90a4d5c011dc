import Foundation
import GRDB
import Testing
@testable import Training

/// A fresh temporary directory per test.
func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "headtune-training-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct LabeledDatasetTests {
    let images: Set<String> = ["jpg", "jpeg", "png"]

    @Test func classFoldersIgnoreNonImagesAndHiddenFiles() throws {
        let root = try temporaryDirectory()
        for path in ["cat/a.jpg", "cat/sub/b.PNG", "cat/.DS_Store", "cat/notes.txt", "dog/c.jpeg", "README", ".hidden/x.jpg"] {
            try FileManager.default.createDirectory(atPath: root + "/" + (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: root + "/" + path, contents: Data([1]))
        }
        let dataset = try LabeledDataset.load(path: root, imageExtensions: images)
        #expect(dataset.labels == ["cat", "dog"])
        #expect(dataset.samples.map { String($0.path.dropFirst(root.count + 1)) } == ["cat/a.jpg", "cat/sub/b.PNG", "dog/c.jpeg"])
        #expect(dataset.samples.map(\.label) == [0, 0, 1])
        #expect(Set(dataset.ignoredFiles.map { String($0.dropFirst(root.count + 1)) }) == ["cat/notes.txt", "README"])
    }

    @Test func csvManifestWithQuotesAndSplitColumn() throws {
        let root = try temporaryDirectory()
        let csv = "path,label,split\nimgs/a.jpg,\"big, red\",train\n\"imgs/b \"\"2\"\".png\",blue,val\nimgs/c.png,blue,\nreadme.md,blue,\n"
        try csv.write(toFile: root + "/data.csv", atomically: true, encoding: .utf8)
        let dataset = try LabeledDataset.load(path: root + "/data.csv", imageExtensions: images)
        #expect(dataset.labels == ["big, red", "blue"])
        #expect(dataset.samples == [
            LabeledSample(path: root + "/imgs/a.jpg", label: 0, split: .train),
            LabeledSample(path: root + "/imgs/b \"2\".png", label: 1, split: .validation),
            LabeledSample(path: root + "/imgs/c.png", label: 1, split: nil),
        ])
        #expect(dataset.ignoredFiles == [root + "/readme.md"])
    }

    @Test func manifestErrorsNameTheLine() throws {
        let root = try temporaryDirectory()
        try "path,label,split\na.jpg,x,test\n".write(toFile: root + "/m.csv", atomically: true, encoding: .utf8)
        #expect(throws: TrainingError.invalidManifest(path: root + "/m.csv", line: 2, reason: "split \"test\" is not train or validation")) {
            try LabeledDataset.load(path: root + "/m.csv", imageExtensions: images)
        }
    }

    @Test func fixedLabelsRejectUnknownClassesNamingEachFolderWithTheNearestClass() throws {
        let root = try temporaryDirectory()
        for (folder, count) in [("owl", 1), ("Dog", 2), ("cat", 1), ("caat", 1)] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
            for i in 0..<count { FileManager.default.createFile(atPath: root + "/\(folder)/\(i).jpg", contents: Data([1])) }
        }
        let expected = TrainingError.unknownLabels(source: root, isFolder: true, labels: [
            .init(label: "Dog", images: 2, suggestion: "dog"),
            .init(label: "caat", images: 1, suggestion: "cat"),
            .init(label: "owl", images: 1, suggestion: nil),
        ], known: ["cat", "dog"])
        #expect(throws: expected) {
            try LabeledDataset.load(path: root, imageExtensions: images, labels: ["cat", "dog"])
        }
        #expect(expected.localizedDescription == "\(root): folder \(root)/Dog/ (2 image(s)) is not one of the head's classes; "
            + "did you mean \"dog\"?; folder \(root)/caat/ (1 image(s)) is not one of the head's classes; did you mean \"cat\"?; "
            + "folder \(root)/owl/ (1 image(s)) is not one of the head's classes. The head's classes: cat, dog. "
            + "Rename the folders to match, or pass --ignore-unknown-labels to leave those images out")

        // A training run's --validation-dir: the training data's classes, and no flag that train lacks.
        #expect {
            try LabeledDataset.load(path: root, imageExtensions: images, labels: ["cat", "dog"], labelsFrom: .trainingData)
        } throws: {
            let message = ($0 as? LocalizedError)?.errorDescription ?? ""
            return message.contains("is not one of the training data's classes; did you mean \"dog\"?")
                && message.contains("The training data's classes: cat, dog.") && !message.contains("--ignore-unknown-labels")
        }

        let kept = try LabeledDataset.load(path: root, imageExtensions: images, labels: ["cat", "dog"], ignoreUnknownLabels: true)
        #expect(kept.samples.map(\.path) == [root + "/cat/0.jpg"])
        #expect(kept.unknownLabelCounts == ["Dog": 2, "caat": 1, "owl": 1])
    }

    @Test func nameSuggestionsPreferCaseThenFewEdits() {
        #expect(NameSuggestion.closest(to: "trian", among: ["classify", "train", "evaluate"]) == "train")
        #expect(NameSuggestion.closest(to: "TRAIN", among: ["classify", "train"]) == "train")
        #expect(NameSuggestion.closest(to: "zebra", among: ["classify", "train"]) == nil)
        #expect(NameSuggestion.editDistance("abcd", "acbd") == 1)
    }
}

@Suite struct DatasetSplitterTests {
    @Test func stratifiedSeededAndStableWhenAClassIsAdded() throws {
        let labels = Array(repeating: 0, count: 10) + Array(repeating: 1, count: 5)
        let a = try DatasetSplitter.stratified(labels: labels, classNames: ["a", "b"], fraction: 0.2, seed: 1)
        #expect(a.validation.filter { labels[$0] == 0 }.count == 2 && a.validation.filter { labels[$0] == 1 }.count == 1)
        #expect(Set(a.train).isDisjoint(with: a.validation) && a.train.count + a.validation.count == 15)
        #expect(try DatasetSplitter.stratified(labels: labels, classNames: ["a", "b"], fraction: 0.2, seed: 1) == a)
        let withC = try DatasetSplitter.stratified(labels: labels + [2, 2, 2], classNames: ["a", "b", "c"], fraction: 0.2, seed: 1)
        #expect(withC.validation.filter { $0 < 15 } == a.validation)
    }

    @Test func aClassWithOneImageGetsAClearMessage() {
        #expect(throws: TrainingError.tooFewImages(label: "rare", count: 1, needed: 2)) {
            try DatasetSplitter.stratified(labels: [0, 0, 0, 1], classNames: ["common", "rare"], fraction: 0.2, seed: 0)
        }
    }
}

@Suite struct FeatureCacheTests {
    let key = FeatureKey(contentSHA256: String(repeating: "ab", count: 32), backbone: "net@1/aaaa", view: "resize")

    @Test func storesAndFindsVectorsOnlyForTheSameBackboneAndView() throws {
        let cache = try FeatureCache(path: try temporaryDirectory() + "/f.sqlite")
        try cache.store([(key, [1, 2, 3])])
        #expect(try cache.lookup([key], dimension: 3).vectors == [[1, 2, 3]])
        var otherBackbone = key
        otherBackbone.backbone = "net@2/bbbb"
        var otherView = key
        otherView.view = "resize+flip"
        #expect(try cache.lookup([otherBackbone, otherView], dimension: 3).vectors == [nil, nil])
    }

    @Test func aHeadEntryIsNeverReturnedForAnotherFeatureSet() throws {
        let cache = try FeatureCache(path: try temporaryDirectory() + "/f.sqlite")
        try cache.store([(key, [1, 2, 3])])
        var stages = key
        stages.featureSet = .headAndStages
        // Neither a hit nor damage: the head entry stays for head requests.
        #expect(try cache.lookup([stages], dimension: 5) == (vectors: [nil], damaged: 0))
        #expect(try cache.lookup([stages], dimension: 3) == (vectors: [nil], damaged: 0))
        try cache.store([(stages, [1, 2, 3, 4, 5])])
        #expect(try cache.lookup([key], dimension: 3).vectors == [[1, 2, 3]])
        #expect(try cache.lookup([stages], dimension: 5).vectors == [[1, 2, 3, 4, 5]])
        #expect(try cache.count() == 2)
    }

    @Test func entriesWrittenBeforeFeatureSetsAreHeadEntries() throws {
        // A row exactly as caches before feature sets hold it (schema 1, the backbone column plain).
        let path = try temporaryDirectory() + "/f.sqlite"
        _ = try FeatureCache(path: path)
        let blob = [Float(1), 2, 3].withUnsafeBytes { Data($0) }
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO features VALUES (?, ?, ?, 3, ?, ?)",
                           arguments: [key.contentSHA256, key.backbone, key.view, Int64(bitPattern: FNV1a.hash(Array(blob))), blob])
        }
        let cache = try FeatureCache(path: path)
        #expect(try cache.lookup([key], dimension: 3).vectors == [[1, 2, 3]])
        var stages = key
        stages.featureSet = .headAndStages
        #expect(try cache.lookup([stages], dimension: 3).vectors == [nil])
    }

    @Test func damagedEntriesAreDetectedDeletedAndNotUsed() throws {
        let path = try temporaryDirectory() + "/f.sqlite"
        let cache = try FeatureCache(path: path)
        var second = key
        second.contentSHA256 = String(repeating: "cd", count: 32)
        var third = key
        third.contentSHA256 = String(repeating: "ef", count: 32)
        try cache.store([(key, [1, 2, 3]), (second, [4, 5, 6]), (third, [7, 8, 9])])
        // Flip bits in one vector and truncate another behind the cache's back.
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "UPDATE features SET vector = ? WHERE content_sha256 = ?",
                           arguments: [[Float(1), 2, 3.5].withUnsafeBytes { Data($0) }, key.contentSHA256])
            try db.execute(sql: "UPDATE features SET vector = substr(vector, 1, 8) WHERE content_sha256 = ?",
                           arguments: [second.contentSHA256])
        }
        let found = try cache.lookup([key, second, third], dimension: 3)
        #expect(found.vectors == [nil, nil, [7, 8, 9]])
        #expect(found.damaged == 2)
        #expect(try cache.count() == 1)
        // A different dimension (another backbone's layout under a reused key) is damage too.
        #expect(try cache.lookup([third], dimension: 4) == (vectors: [nil], damaged: 1))
    }

    @Test func aFileThatIsNotADatabaseIsMovedAside() throws {
        let path = try temporaryDirectory() + "/f.sqlite"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        let cache = try FeatureCache(path: path)
        #expect(cache.recoveredFrom == path + ".corrupt")
        try cache.store([(key, [1])])
        #expect(try cache.count() == 1)
    }

    @Test func contentHashesFollowTheBytesAndAreRemembered() throws {
        let root = try temporaryDirectory()
        try Data("abc".utf8).write(to: URL(fileURLWithPath: root + "/a.bin"))
        try Data("abc".utf8).write(to: URL(fileURLWithPath: root + "/b.bin"))
        let cache = try FeatureCache(path: root + "/f.sqlite")
        let hashes = try cache.contentHashes(paths: [root + "/a.bin", root + "/b.bin", root + "/missing.bin"])
        #expect(hashes == ["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", nil])
        try Data("abd".utf8).write(to: URL(fileURLWithPath: root + "/a.bin"))
        // Same size; a changed mtime (set explicitly, the write may land in the same tick) forces a rehash.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 10)], ofItemAtPath: root + "/a.bin")
        #expect(try cache.contentHashes(paths: [root + "/a.bin"])[0] != hashes[0])
    }
}

@Suite struct HeadFileTests {
    func sampleHeadFile(kind: HeadKind) -> HeadFile {
        var generator = SeededGenerator(seed: 1)
        let architecture = HeadArchitecture(kind: kind, inputs: 4, hidden: 3, classes: 2)
        let head = ClassificationHead(initializing: architecture, generator: &generator)
        var parameters = head.parameters
        for i in parameters.indices { parameters[i] = generator.gaussian() }
        let report = ClassificationReport(probabilities: [0.9, 0.1], truth: [0], paths: ["a.jpg"], labels: ["a", "b"])
        let metadata = HeadFile.Metadata(
            labels: ["a", "b"], backbone: .init(id: "net@1", weightsSHA256: "ff", featureCount: 4),
            preprocessing: .init(policy: .resize, inputSize: 224, testTimeFlip: true, augment: ["flip"]),
            architecture: architecture, training: TrainingConfiguration(), bestEpoch: 3,
            dataset: .init(source: "data/", imagesPerClass: [5, 6], trainImages: 9, validationImages: 2, trainRows: 18, skippedFiles: 1),
            validation: report, createdAt: "2026-01-01T00:00:00Z", headtuneVersion: "test")
        return HeadFile(metadata: metadata, head: ClassificationHead(architecture: architecture, parameters: parameters),
                        standardization: Standardization(mean: [1, 2, 3, 4], inverseStd: [0.5, 1, 2, 4]))
    }

    @Test(arguments: [HeadKind.linear, .mlp])
    func roundTripKeepsEverything(kind: HeadKind) throws {
        let path = try temporaryDirectory() + "/x.head"
        let original = sampleHeadFile(kind: kind)
        try original.write(to: path)
        let loaded = try HeadFile.read(path: path)
        #expect(loaded.metadata == original.metadata)
        #expect(loaded.head == original.head)
        #expect(loaded.standardization == original.standardization)
        // Same contents, same bytes.
        #expect(try original.serialized() == Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent) == ["x.head"])
    }

    @Test func theFeatureSetRoundTripsAndOnlyStagesRaiseTheFormat() throws {
        let directory = try temporaryDirectory()
        var stages = sampleHeadFile(kind: .linear)
        stages.metadata.backbone.features = .headAndStages
        stages = HeadFile(metadata: stages.metadata, head: stages.head, standardization: stages.standardization)
        try stages.write(to: directory + "/stages.head")
        let loaded = try HeadFile.read(path: directory + "/stages.head")
        #expect(loaded.metadata.backbone.featureSet == .headAndStages)
        #expect(loaded.metadata.formatVersion == 3)
        #expect(loaded.metadata == stages.metadata)
        // A head on the last layer alone stays format 2, readable by builds from before feature sets.
        let plain = sampleHeadFile(kind: .linear)
        #expect(plain.metadata.formatVersion == 2)
        #expect(try metadataJSON(plain.serialized()).contains(#""features":"head""#))
    }

    @Test func aHeadWithoutTheFeatureSetReadsAsHead() throws {
        // The file a build from before feature sets wrote: no `features` key in the backbone entry.
        let directory = try temporaryDirectory()
        var old = sampleHeadFile(kind: .linear)
        old.metadata.backbone.features = nil
        let data = try old.serialized()
        #expect(try !metadataJSON(data).contains("features"))
        try data.write(to: URL(fileURLWithPath: directory + "/old.head"))
        let loaded = try HeadFile.read(path: directory + "/old.head")
        #expect(loaded.metadata.backbone.features == nil)
        #expect(loaded.metadata.backbone.featureSet == .head)
        #expect(loaded.metadata.formatVersion == 2)
    }

    /// The `headtune` metadata JSON of a serialized head file.
    func metadataJSON(_ data: Data) throws -> String {
        let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any]
        return try #require((header?["__metadata__"] as? [String: String])?["headtune"])
    }

    @Test func anotherBackboneIsRefused() throws {
        let head = sampleHeadFile(kind: .linear)
        try head.requireBackbone(id: "net@1", weightsSHA256: "ff", path: "x.head")
        #expect(throws: TrainingError.self) { try head.requireBackbone(id: "net@1", weightsSHA256: "ee", path: "x.head") }
        let message = TrainingError.backboneMismatch(path: "x.head", head: "a", running: "b").errorDescription ?? ""
        #expect(message.contains("x.head") && message.contains("retrain"))
    }

    @Test func truncatedOrForeignFilesAreRefused() throws {
        let directory = try temporaryDirectory()
        let data = try sampleHeadFile(kind: .linear).serialized()
        try data.prefix(data.count - 5).write(to: URL(fileURLWithPath: directory + "/cut.head"))
        #expect(throws: TrainingError.self) { try HeadFile.read(path: directory + "/cut.head") }
        let plain = SafeTensorsWriterProxy.plainSafetensors()
        try plain.write(to: URL(fileURLWithPath: directory + "/plain.safetensors"))
        #expect(throws: TrainingError.invalidHeadFile(path: directory + "/plain.safetensors",
                                                      reason: "a safetensors file without headtune metadata (not written by `headtune train`)")) {
            try HeadFile.read(path: directory + "/plain.safetensors")
        }
    }
}
