import ArgumentParser
import Foundation
import HeadTune
import Weights

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a head and its encoder (or the bundled ImageNet classifier) as one ONNX model.",
        discussion: """
            The model reads `pixels` [N, 3, 224, 224] float32 (RGB, NCHW) after the head's geometry policy and \
            the encoder's normalization, both written into the model's metadata (headtune.preprocessing); \
            `headtune preprocess` writes exactly these inputs. It answers `probabilities` [N, classes] and \
            `features` [N, width] (the pooled encoder features, as `classify --embeddings` prints them) and \
            `logits` [N, classes] (as `classify --logits` prints them). A head that predicts with test-time \
            flip averages the image and its mirror inside the graph; a head trained with --unfreeze is \
            exported with its tuned blocks. The labels are in headtune.labels (a JSON array). Prints one JSON \
            object on stdout: the file, its size and sha256, the inputs and outputs.

            Examples:
              headtune export --head demo-data/textures.head --out textures.onnx
              headtune export --imagenet --out efficientnet-lite0.onnx
            """)

    @Option(help: "Head file written by `headtune train`.", completion: .file())
    var head: String?

    @Flag(help: "Export the encoder's pretrained ImageNet classifier instead of a head.")
    var imagenet = false

    @Option(name: [.short, .long], help: "The ONNX file to write (written to a temporary file, then renamed).", completion: .file())
    var out: String

    @Option(help: ArgumentHelp("Image encoder: a bundled model's name or a model folder.",
                               discussion: "Default: efficientnet-lite0; a head needs the encoder it was trained on."), completion: .directory)
    var model: String?

    @Option(help: ArgumentHelp("Directory with the converted weights.", discussion: "Default: $HEADTUNE_WEIGHTS, then ./weights and its parents."),
            completion: .directory)
    var weights: String?

    func validate() throws {
        guard imagenet != (head != nil) else {
            throw ValidationError("choose what to export: --head FILE (trained with `headtune train`) or --imagenet")
        }
    }

    func run() throws {
        try AtomicFile.checkWritable(out)
        let encoder = try ImageEncoder.load(model: model, weightsDirectory: weights.map { URL(fileURLWithPath: $0) })
        let export: ONNXExport
        if let head {
            let predictor = try HeadPredictor.load(path: head, encoder: encoder)
            export = try ONNXExport.head(predictor, headFile: URL(fileURLWithPath: head))
        } else {
            let labels = try ImageNetLabels.load()
            // The labels predictions show (the first synonym: "tench", not "tench, Tinca tinca").
            export = try ONNXExport.pretrainedClassifier(encoder, labels: labels.names.indices.map(labels.label))
        }
        try AtomicFile.write(export.model, to: out)
        func tensors(_ list: [(name: String, shape: [String])]) -> JSONValue {
            .array(list.map { .object([("name", .string($0.name)), ("shape", .array($0.shape.map { Int($0).map(JSONValue.integer) ?? .string($0) }))]) })
        }
        let summary: JSONValue = .object([
            ("path", .string(out)), ("bytes", .integer(export.model.count)),
            ("sha256", .string(export.model.withUnsafeBytes { SHA256.hex($0) })),
            ("inputs", tensors(export.inputs)), ("outputs", tensors(export.outputs)), ("nodes", .integer(export.nodeCount)),
        ])
        print(summary.serialized())
    }
}
