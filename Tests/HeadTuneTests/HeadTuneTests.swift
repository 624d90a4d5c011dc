import Foundation
import Testing
import TestSupport
import Training
@testable import HeadTune

@Suite struct RecordTests {
    @Test func jsonLineKeepsContractOrderAndEscapes() {
        let ok = ClassificationRecord(path: "a \"b\"/c.jpg", predictions: [Prediction(label: "tabby", index: 281, score: 0.5)])
        #expect(ok.json.serialized() == #"{"path": "a \"b\"/c.jpg", "predictions": [{"label": "tabby", "index": 281, "score": 0.5}]}"#)
        let failed = ClassificationRecord(path: "x.txt", error: "x.txt: not a JPEG or PNG\n(starts with 3C)")
        #expect(failed.json.serialized() == #"{"path": "x.txt", "error": "x.txt: not a JPEG or PNG\n(starts with 3C)"}"#)
        #expect(JSONValue.string("\u{1}").serialized() == #""\u0001""#)
        #expect(JSONValue.float(.nan).serialized() == "null")
    }

    @Test func largestEntriesAreSortedAndCapped() {
        let values: [Float] = [0.1, 0.4, 0.05, 0.4, 0.05]
        let top = values.withUnsafeBufferPointer { largestEntries($0, k: 3) }
        #expect(top.map(\.index) == [1, 3, 0])
        let all = values.withUnsafeBufferPointer { largestEntries($0, k: 10) }
        #expect(all.count == 5)
    }

    @Test func softmaxSumsToOne() {
        let p = probabilities(fromLogits: [1, 2, 3, 1000])
        #expect(abs(p.reduce(0, +) - 1) < 1e-6)
        #expect(p[3] == 1)
    }

    @Test func imageNetLabelsShipWithTheLibrary() throws {
        let labels = try ImageNetLabels.load()
        #expect(labels.names.count == 1000)
        #expect(labels.label(281) == "tabby")
        #expect(labels.label(0) == "tench")
        #expect(labels.names[282] == "tiger cat")
    }
}

@Suite struct InputAndOutputTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("headtune-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("b/c"), withIntermediateDirectories: true)
        for name in ["b/z.JPG", "b/c/y.png", "a.jpeg", "notes.txt", ".DS_Store", "b/.hidden.png"] {
            FileManager.default.createFile(atPath: directory.appendingPathComponent(name).path, contents: Data([0]))
        }
    }

    @Test func directoriesAreWalkedSortedAndFiltered() throws {
        let root = directory.path
        let found = try InputCollector.collect([root, "/no/such/file.jpg", root + "/notes.txt"])
        #expect(found == ["\(root)/a.jpeg", "\(root)/b/c/y.png", "\(root)/b/z.JPG", "/no/such/file.jpg", "\(root)/notes.txt"])
    }

    @Test func linkedFoldersAreFollowedOnceAndSkippedFilesAreCountedWithReasons() throws {
        let fileManager = FileManager.default
        let root = directory.path
        let linkdir = root + "/linkdir"
        try fileManager.createDirectory(atPath: linkdir, withIntermediateDirectories: true)
        try fileManager.createSymbolicLink(atPath: linkdir + "/linked", withDestinationPath: root + "/b")
        try fileManager.createSymbolicLink(atPath: linkdir + "/broken.jpg", withDestinationPath: root + "/gone.jpg")
        try fileManager.createSymbolicLink(atPath: linkdir + "/loop", withDestinationPath: linkdir)
        _ = fileManager.createFile(atPath: linkdir + "/photo.AVIF", contents: Data([0]))
        _ = fileManager.createFile(atPath: linkdir + "/anim.gif", contents: Data([0]))
        // Decoded formats are inputs whatever their bytes (the decoder reports what they are).
        _ = fileManager.createFile(atPath: linkdir + "/scan.tiff", contents: Data([0]))
        _ = fileManager.createFile(atPath: linkdir + "/phone.webp", contents: Data([0]))
        _ = fileManager.createFile(atPath: linkdir + "/phone.HEIC", contents: Data([0]))

        let collected = InputCollector.collectReporting([linkdir])
        #expect(collected.paths == ["\(linkdir)/linked/c/y.png", "\(linkdir)/linked/z.JPG", "\(linkdir)/phone.HEIC",
                                   "\(linkdir)/phone.webp", "\(linkdir)/scan.tiff"])
        #expect(collected.skipped == [
            .init(path: "\(linkdir)/anim.gif", reason: .unsupportedFormat),
            .init(path: "\(linkdir)/broken.jpg", reason: .brokenLink),
            .init(path: "\(linkdir)/loop/", reason: .linkLoop),
            .init(path: "\(linkdir)/photo.AVIF", reason: .unsupportedFormat),
        ])
        #expect(collected.skippedSummary(examples: 1) == "skipped 4 file(s): 2 in an image format headtune does not decode "
            + "(convert to JPEG or PNG) (\(linkdir)/anim.gif, ...); 1 a broken symbolic link (\(linkdir)/broken.jpg); "
            + "1 a symbolic link back into a folder being walked (\(linkdir)/loop/)")
        #expect(InputCollector.collectReporting([root + "/b"]).skippedSummary() == nil)
    }

    @Test func failedRunLeavesPreviousOutputIntact() throws {
        let target = directory.appendingPathComponent("out.jsonl").path
        try Data("previous\n".utf8).write(to: URL(fileURLWithPath: target))
        let partial = try OutputSink(path: target)
        partial.write("half a run\n")
        partial.discard()
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "previous\n")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)

        let complete = try OutputSink(path: target)
        complete.write("new\n")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "previous\n", "visible only after commit")
        try complete.commit()
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "new\n")
    }
}

/// The whole path the CLI runs: files -> decode -> preprocess -> network -> results in input order,
/// with bad files reported in place and the batch going on.
@Suite struct BatchRunnerTests {
    @Test func mixedBatchKeepsOrderAndReportsBadFiles() throws {
        let backbone = try ImageEncoder.load(weightsDirectory: try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights")
                .deletingLastPathComponent())
        let samples = try Golden.efficientNetSamples()
        let chelsea = try Golden.asset("samples/chelsea.png", fetchWith: "make samples").path
        let coffee = try Golden.asset("samples/coffee.png", fetchWith: "make samples").path
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("headtune-bad-\(UUID().uuidString).jpg")
        try Data("<html>".utf8).write(to: bad)
        defer { try? FileManager.default.removeItem(at: bad) }
        let paths = [chelsea, bad.path, coffee, "/no/such/image.png", chelsea]

        for batchSize in [1, 2, 16] {
            var seen: [Int] = []
            var top1: [Int: Int] = [:]
            var errors: [Int: String] = [:]
            try BatchRunner(encoder: backbone, batchSize: batchSize, threads: 2).run(paths: paths) { index, result in
                seen.append(index)
                switch result {
                case .success(let output):
                    #expect(output.features.count == 1280)
                    let logits = try #require(output.logits)
                    top1[index] = logits.indices.max { logits[$0] < logits[$1] }
                case .failure(let error):
                    errors[index] = (error as? LocalizedError)?.errorDescription ?? "\(error)"
                }
            }
            #expect(seen == Array(paths.indices), "batch size \(batchSize)")
            let expectedChelsea = samples.first { $0.name == "chelsea" }!.top5[0].index
            let expectedCoffee = samples.first { $0.name == "coffee" }!.top5[0].index
            #expect(top1 == [0: expectedChelsea, 2: expectedCoffee, 4: expectedChelsea])
            #expect(errors.keys.sorted() == [1, 3])
            #expect(errors[1]?.contains(bad.path) == true)
            #expect(errors[1]?.contains("3C 68 74 6D") == true, "\(errors[1] ?? "")")
            #expect(errors[3]?.contains("/no/such/image.png") == true)
        }
    }
}

@Suite struct ReportRenderingTests {
    /// Two of four classes present; "c" is predicted once (precision defined: 0), "d" never.
    let report = ClassificationReport(probabilities: [0.7, 0.1, 0.1, 0.1,  0.1, 0.2, 0.6, 0.1,  0.1, 0.8, 0.05, 0.05],
                                      truth: [0, 1, 1], paths: ["a.jpg", "b1.jpg", "b2.jpg"], labels: ["a", "b", "c", "d"])

    @Test func classesWithoutSupportShowNotApplicableInsteadOfZeros() {
        let rows = report.text(title: "t").split(separator: "\n").map(String.init)
        #expect(rows.contains("  a          1.000   1.000  1.000        1"))
        #expect(rows.contains("  c          0.000     n/a    n/a        0"))
        #expect(rows.contains("  d            n/a     n/a    n/a        0"))
        #expect(rows.contains("  (n/a: no image of that class here, or none predicted as it)"))
        #expect(report.html(title: "t", maxPixels: 1_000_000).contains("<span class=\"na\">n/a</span>"))
    }
}
