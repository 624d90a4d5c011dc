import Foundation
import Imaging
import Testing
import TestSupport
import Training
@testable import HeadTune

/// `headtune classify` at scale: order under parallel decoding, bad files amid good ones, resume,
/// shards, top-k, sigmoid heads and the out-of-distribution flag, on real photos and the real backbone.
@Suite(.serialized) final class BatchClassificationTests {
    let backbone: ImageEncoder
    let root: String
    let chelsea: String, coffee: String, rocket: String

    init() throws {
        backbone = try ImageEncoder.load(weightsDirectory: try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights")
                .deletingLastPathComponent())
        root = NSTemporaryDirectory() + "headtune-batch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chelsea = try Golden.asset("samples/chelsea.png", fetchWith: "make samples").path
        coffee = try Golden.asset("samples/coffee.png", fetchWith: "make samples").path
        rocket = try Golden.asset("samples/rocket.jpg", fetchWith: "make samples").path
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    private func imagenet(batchSize: Int = 2, decodeThreads: Int? = nil, topK: Int = 3) throws -> BatchClassifier {
        var job = BatchClassifier(encoder: backbone, classifier: .imagenet(try ImageNetLabels.load()), topK: topK)
        job.batchSize = batchSize
        job.threads = 2
        job.decodeThreads = decodeThreads
        return job
    }

    private func records(_ job: BatchClassifier, _ paths: [String]) throws -> [ClassificationRecord] {
        var out: [ClassificationRecord] = []
        try job.run(paths: paths) { out.append($0) }
        return out
    }

    @Test func recordsFollowInputOrderWhateverTheParallelism() throws {
        let junk = root + "/notes.jpg"
        try Data("<html>".utf8).write(to: URL(fileURLWithPath: junk))
        let paths = [rocket, junk, coffee, chelsea, "/no/such.png", rocket, coffee]
        let reference = try records(imagenet(batchSize: 1, decodeThreads: 1), paths)
        #expect(reference.map(\.path) == paths)
        #expect(reference.map { $0.error != nil } == [false, true, false, false, true, false, false])
        #expect(reference[2].predictions?.first?.label == "espresso")
        for (batch, decoders) in [(3, 4), (7, 2), (16, 3)] {
            let run = try records(imagenet(batchSize: batch, decodeThreads: decoders), paths)
            #expect(run.map(\.path) == paths, "batch \(batch), \(decoders) decoders")
            #expect(run.map(\.error) == reference.map(\.error))
            #expect(run.map { $0.predictions?.map(\.index) } == reference.map { $0.predictions?.map(\.index) })
            for (a, b) in zip(run, reference) {
                for (p, q) in zip(a.predictions ?? [], b.predictions ?? []) { #expect(abs(p.score - q.score) < 1e-4) }
            }
        }
    }

    /// A smaller version of `scripts/make_hostile_files.py`: every file gets exactly one record.
    @Test func hostileFilesAmidGoodOnesAreEachReported() throws {
        let jpeg = try [UInt8](Data(contentsOf: URL(fileURLWithPath: rocket)))
        let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: coffee)))
        var hostile: [String: [UInt8]] = ["empty.jpg": [], "magic.png": Array("GIF89a, not a PNG".utf8),
                                          "jpeg-as-png.png": Array(jpeg.prefix(4096)), "one-byte.jpg": [0xFF]]
        for fraction in [0.001, 0.01, 0.1, 0.5, 0.9, 0.999] {
            hostile["cut-\(fraction).jpg"] = Array(jpeg.prefix(Int(Double(jpeg.count) * fraction)))
            hostile["cut-\(fraction).png"] = Array(png.prefix(Int(Double(png.count) * fraction)))
        }
        // Huge declared sizes: 65535 x 65535 in the JPEG frame header and the PNG IHDR.
        var bigJPEG = jpeg
        if let sof = (0..<(bigJPEG.count - 9)).first(where: { bigJPEG[$0] == 0xFF && (0xC0...0xC2).contains(bigJPEG[$0 + 1]) }) {
            for i in (sof + 5)...(sof + 8) { bigJPEG[i] = 0xFF }
        }
        hostile["huge.jpg"] = bigJPEG
        var bigPNG = png
        for i in 16..<24 { bigPNG[i] = i % 4 < 2 ? 0 : 0xFF }
        hostile["huge.png"] = bigPNG
        var paths = [chelsea]
        for (name, bytes) in hostile.sorted(by: { $0.key < $1.key }) {
            let path = root + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        paths.append(coffee)
        let out = try records(imagenet(batchSize: 4), paths)
        #expect(out.map(\.path) == paths)
        for record in out { #expect((record.predictions == nil) != (record.error == nil), "\(record.path)") }
        #expect(out.first?.predictions?.first?.label == "tiger cat" && out.last?.predictions?.first?.label == "espresso")
        for name in ["empty.jpg", "magic.png", "jpeg-as-png.png", "one-byte.jpg", "huge.jpg", "huge.png", "cut-0.001.jpg", "cut-0.01.png"] {
            let record = try #require(out.first { $0.path.hasSuffix("/" + name) })
            #expect(record.error?.hasPrefix(record.path) == true, "\(name): \(record.error ?? "no error")")
        }
    }

    @Test func anInterruptedRunResumesToTheSameFile() throws {
        let paths = [chelsea, coffee, root + "/missing.jpg", rocket, chelsea, coffee]
        let job = try imagenet(batchSize: 1)
        let complete = root + "/complete.jsonl", resumed = root + "/resumed.jsonl"
        let sink = try OutputSink(resumablePath: complete, append: false)
        try job.run(paths: paths) { sink.write($0.json.serialized() + "\n") }
        try sink.commit()

        // The first run dies after three records, in the middle of writing the fourth.
        struct Killed: Error {}
        let first = try OutputSink(resumablePath: resumed, append: false)
        var written = 0
        #expect(throws: Killed.self) {
            try job.run(paths: paths) { record in
                guard written < 3 else { throw Killed() }
                first.write(record.json.serialized() + "\n")
                written += 1
            }
        }
        first.write(#"{"path": "\#(rocket)", "predic"#)
        first.discard()
        #expect(!FileManager.default.fileExists(atPath: resumed), "nothing at the final path before the run completes")

        let log = try ResumeLog.prepare(outputPath: resumed, format: .jsonl)
        #expect(log.records == 2 && log.dropped == 2)  // the error record and the cut-off line are redone
        let remaining = log.remaining(paths)
        #expect(remaining == [root + "/missing.jpg", rocket, chelsea, coffee])
        let second = try OutputSink(resumablePath: resumed, append: true)
        try job.run(paths: remaining) { second.write($0.json.serialized() + "\n") }
        try second.commit()
        let lines = try String(contentsOfFile: resumed, encoding: .utf8).split(separator: "\n")
        let reference = try String(contentsOfFile: complete, encoding: .utf8).split(separator: "\n")
        // Same records; only the retried error record moved behind the ones kept.
        #expect(Set(lines) == Set(reference) && lines.count == reference.count)
        #expect(Array(lines.prefix(2)) == Array(reference.prefix(2)) && Array(lines.suffix(3)) == Array(reference.suffix(3)))
        #expect(!FileManager.default.fileExists(atPath: OutputSink.partialPath(for: resumed)))
    }

    @Test func resumeReadsCSVRecordsAndCountsRepeatedPaths() throws {
        let output = root + "/out.csv"
        let csv = #"""
            path,rank,index,label,score,error
            a.jpg,1,3,x,0.9,
            a.jpg,2,4,y,0.1,
            "b,1.jpg",1,3,"x, and ""y""",1.0,
            bad.jpg,,,,,bad.jpg: not a JPEG or PNG
            a.jpg,1,3,x,0.9,
            a.jpg,2,4,y,0.1,
            c.jpg,1,3,x,0.
            """#
        try Data(csv.utf8).write(to: URL(fileURLWithPath: output + ".partial"))
        let log = try ResumeLog.prepare(outputPath: output, format: .csv)
        #expect(log.finished == ["a.jpg": 2, "b,1.jpg": 1] && log.hasHeader && log.dropped == 2)
        #expect(log.remaining(["a.jpg", "b,1.jpg", "bad.jpg", "a.jpg", "a.jpg", "c.jpg"]) == ["bad.jpg", "a.jpg", "c.jpg"])
        let kept = try String(contentsOfFile: output + ".partial", encoding: .utf8)
        #expect(kept.hasPrefix("path,rank,index,label,score,error\na.jpg,1,3,x,0.9,\n") && !kept.contains("bad.jpg")
                && !kept.contains("c.jpg"))
    }

    @Test func shardsPartitionTheInputsStably() {
        let paths = (0..<2000).map { "photos/\($0 % 37)/img_\($0).jpg" }
        for count in [1, 2, 3, 8] {
            let shards = (0..<count).map { InputShard(index: $0, count: count)!.select(paths) }
            #expect(shards.map(\.count).reduce(0, +) == paths.count, "no path in two shards, none left out")
            #expect(Set(shards.flatMap { $0 }) == Set(paths))
            for shard in shards {
                #expect(shard == paths.filter(Set(shard).contains), "input order kept")
                if count > 1 { #expect(abs(shard.count - paths.count / count) < paths.count / count / 4, "balanced") }
            }
        }
        // FNV-1a of the UTF-8 bytes: the same on every machine and run (Swift's Hasher is not).
        // Values from an independent FNV-1a (Python, in the commit that added this test).
        #expect(FNV1a.hash(Array("photos/cat.jpg".utf8)) == 0x4664_4EAA_9E47_EEB2)
        #expect((0..<8).filter { InputShard(index: $0, count: 8)!.contains("photos/cat.jpg") } == [2])
        #expect(InputShard("3/8") == InputShard(index: 3, count: 8) && InputShard("8/8") == nil && InputShard("x") == nil)
    }

    /// A two-class head trained on crops of two photos (a cat, a coffee cup): top-k is capped at 2,
    /// classify agrees with the training-time feature path, a noise image is flagged unknown while a
    /// new crop of the cat is not, sigmoid for multi-label heads.
    @Test func headRecordsCapTopKAndFlagAnObviousOutlier() throws {
        let data = root + "/train"
        func crops(of path: String, into folder: String, count: Int) throws {
            let image = try ImageDecoder.decode(fileAt: path)
            let w = image.width * 7 / 10, h = image.height * 7 / 10
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for i in 0..<count {
                let crop = image.cropped(x: (image.width - w) * (i % 4) / 3, y: (image.height - h) * (i / 4 % 3) / 2, width: w, height: h)
                let target = folder + "/crop\(i).png"
                try Data(PNGEncoder.encode(crop)).write(to: URL(fileURLWithPath: target))
            }
        }
        try crops(of: chelsea, into: data + "/animal", count: 8)
        try crops(of: coffee, into: data + "/object", count: 8)
        // A file the head never saw whose features it did: features average an image and its mirror
        // image (test-time flip), so the mirror of a training crop sits on a training point.
        let newCat = root + "/mirrored-cat.png"
        try Data(PNGEncoder.encode(try ImageDecoder.decode(fileAt: data + "/animal/crop5.png").mirrored()))
            .write(to: URL(fileURLWithPath: newCat))
        var request = HeadTrainingRequest(data: data)
        request.validationSplit = 0
        let extractor = FeatureExtractor(encoder: backbone, cache: nil, batchSize: 4, threads: 2)
        var headFile = try HeadTraining.run(request, encoder: backbone, extractor: extractor).headFile
        let detector = try #require(headFile.outOfDistribution)
        #expect(detector.bank.rows == 16 && detector.settings.calibration == "leave-one-out")
        let headPath = root + "/pets.head"
        try headFile.write(to: headPath)
        let predictor = try HeadPredictor.load(path: headPath, encoder: backbone)
        #expect(predictor.head.outOfDistribution == detector, "the detector survives the head file")

        // Uniform noise: nothing like a photo.
        var generator = SeededGenerator(seed: 7)
        let noise = RGBImage(width: 256, height: 256, pixels: (0..<(256 * 256 * 3)).map { _ in UInt8(generator.next() & 0xFF) })
        let noisePath = root + "/noise.png"
        try Data(PNGEncoder.encode(noise)).write(to: URL(fileURLWithPath: noisePath))

        var job = BatchClassifier(encoder: backbone, classifier: .head(predictor), topK: 5)
        job.batchSize = 2
        job.includeLogits = true
        job.includeEmbedding = true
        let paths = [newCat, noisePath, coffee]
        let out = try records(job, paths)
        #expect(out.map { $0.predictions?.count } == [2, 2, 2])
        #expect(out.map { $0.predictions?.first?.label } == ["animal", out[1].predictions?.first?.label, "object"])
        #expect(out[0].unknown == false && out[1].unknown == true, "\(out.map(\.oodScore)), threshold \(detector.settings.threshold)")
        #expect(out[1].oodScore! > out[2].oodScore!, "noise is farther from the training images than the whole coffee photo")
        #expect(out[0].embedding?.count == 1280 && out[0].logits?.count == 2)

        // The same probabilities as the feature-extractor path training and evaluation use.
        let expected = try predictor.predict(paths: paths, extractor: extractor)
        for (record, result) in zip(out, expected) {
            let p = try result.get()
            for prediction in record.predictions! { #expect(abs(prediction.score - p[prediction.index]) < 1e-5) }
        }

        headFile.metadata.multiLabel = true
        try headFile.write(to: headPath)
        job.classifier = .head(try HeadPredictor.load(path: headPath, encoder: backbone))
        let sigmoid = try records(job, [coffee])[0]
        for prediction in sigmoid.predictions! {
            #expect(abs(prediction.score - 1 / (1 + exp(-sigmoid.logits![prediction.index]))) < 1e-6)
        }
    }

    @Test func detectorThresholdFollowsTheChosenPercentile() {
        var generator = SeededGenerator(seed: 3)
        func cluster(_ rows: Int, centre: Float) -> FeatureMatrix {
            var m = FeatureMatrix(columns: 16)
            for _ in 0..<rows { m.append(row: (0..<16).map { c in (c == 0 ? centre : 0) + 0.1 * generator.gaussian() }) }
            return m
        }
        let train = cluster(200, centre: 1), validation = cluster(100, centre: 1)
        let detector = OutOfDistributionDetector.fit(train: train, validation: validation, k: 5, percentile: 90)!
        let flagged = detector.scores(validation, logits: [])[.knn]!.filter(detector.isUnknown).count
        #expect(flagged == 10, "90th percentile of 100 validation images flags 10 of them")
        let far = detector.scores(cluster(20, centre: -1), logits: [])[.knn]!
        #expect(far.allSatisfy(detector.isUnknown))
        #expect(OutOfDistributionDetector.fit(train: cluster(1, centre: 1), validation: nil) == nil)
    }
}
