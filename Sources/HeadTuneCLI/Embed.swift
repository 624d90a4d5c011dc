import ArgumentParser
import Foundation
import HeadTune

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the backbone's pooled feature vector (1280-d for EfficientNet-Lite0) for each image.",
        discussion: """
            jsonl: {"path": "cat.jpg", "embedding": [0.12, ...]} per input, {"path": ..., "error": ...} on failure.
            npy: a float32 array [images, features] written to --output; stdout then gets one JSON line per
            input telling its row ({"path": ..., "row": 0}) or its error, so rows map back to files.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case jsonl, npy
    }


    @Option(help: "Output format: jsonl or npy (npy needs --output).")
    var format: Format = .jsonl

    @OptionGroup var inputs: InputOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var backbone: BackboneOptions

    func validate() throws {
        if format == .npy && (output.output == nil || output.output == "-") {
            throw ValidationError("--format npy writes binary data: give --output FILE.npy")
        }
    }

    func run() throws {
        let paths = try inputs.collect()
        let model = try backbone.loadBackbone()

        let sink: OutputSink
        let index: OutputSink?
        switch format {
        case .jsonl:
            sink = try OutputSink(path: output.output)
            index = nil
        case .npy:
            sink = try OutputSink(path: output.output)
            index = try OutputSink(path: nil)
        }
        var rows: [Float] = []
        var rowCount = 0
        let failures: Int
        do {
            failures = try runBackbone(backbone: model, options: backbone, inputs: paths, forceProgress: inputs.progress,
                                       computeLogits: false) { path, result in
                var record: [(String, JSONValue)] = [("path", .string(path))]
                switch result {
                case .success(let output) where format == .npy:
                    rows.append(contentsOf: output.features)
                    record.append(("row", .integer(rowCount)))
                    rowCount += 1
                case .success(let output):
                    record.append(("embedding", .array(output.features.map { .float($0) })))
                case .failure(let error):
                    record.append(("error", .string(errorMessage(error, path: path))))
                }
                (index ?? sink).write(JSONValue.object(record).serialized() + "\n")
            }
            if format == .npy {
                sink.write(NumpyArray.float32(rows, shape: [rowCount, model.featureCount]))
            }
        } catch {
            sink.discard()
            throw error
        }
        try finish(sink, failures: failures, total: paths.count)
    }
}

/// Minimal writer for NumPy's .npy format (version 1.0, little-endian float32, C order).
enum NumpyArray {
    static func float32(_ values: [Float], shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }
}
