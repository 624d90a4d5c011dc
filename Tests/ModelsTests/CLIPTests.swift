import Foundation
import Imaging
import Kernels
import Testing
import TestSupport
import Weights
@testable import Models

/// CLIP's two towers against transformers.CLIPModel on a tiny seeded checkpoint with CLIP's real
/// vocabulary size, stored as fp16 (Resources/tiny-clip, written by scripts/make_clip_fixture.py; the
/// expected outputs are the fp32 model's on the fp16-rounded weights). Tolerance: 1e-4 relative to
/// each vector's largest value. `scripts/check-clip full-size` runs the numeric tests on a seeded
/// random ViT-B/32 instead, through HEADTUNE_CLIP_REFERENCE=DIR.
@Suite struct CLIPTests {
    static let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/tiny-clip")
    /// The reference the numeric tests compare with: the tiny fixture, or the folder named by
    /// HEADTUNE_CLIP_REFERENCE (the same files at the real size, written by make_clip_fixture.py --full-size).
    static let folder = ProcessInfo.processInfo.environment["HEADTUNE_CLIP_REFERENCE"].map { URL(fileURLWithPath: $0) } ?? tiny
    let expected: [String: Any]
    let model: CLIPModel

    init() throws {
        expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folder.appendingPathComponent("expected.json"))) as! [String: Any]
        model = try Self.load(config: "config.json")
    }

    static func load(config: String, towers: CLIPModel.Towers = .both) throws -> CLIPModel {
        let configuration = try CLIPConfiguration.load(contentsOf: folder.appendingPathComponent(config))
        let preprocessing = try CLIPModel.preprocessing(contentsOf: folder.appendingPathComponent("preprocessor_config.json"),
                                                        imageSize: configuration.imageSize)
        return try CLIPModel(configuration: configuration, preprocessing: preprocessing,
                             weights: try SafeTensors(contentsOf: folder.appendingPathComponent("model.safetensors")), towers: towers)
    }

    func matrix(_ key: String) -> [[Float]] { (expected[key] as! [[Double]]).map { $0.map(Float.init) } }

    /// Largest difference relative to the reference row's largest magnitude.
    func relativeError(_ got: [Float], _ want: [Float], _ what: String = #function) -> Float {
        let scale = max(want.map(abs).max() ?? 1, 1e-6)
        let error = zip(got, want).map { abs($0 - $1) }.max()! / scale
        // The figure BENCHMARKS.md and the README state (`scripts/check-clip full-size` prints it).
        if ProcessInfo.processInfo.environment["HEADTUNE_CLIP_REPORT"] != nil { print("relative error \(what): \(error)") }
        return error
    }

    func runText(_ model: CLIPModel, ids: [[Int32]], mask: [[UInt8]], normalize: Bool) -> (pooled: [[Float]], embeddings: [[Float]]) {
        let text = model.text!, batch = ids.count, sequence = ids[0].count, w = text.configuration.text.hiddenSize
        let d = text.dimension
        let workspace = CLIPWorkspace(rows: batch * sequence, tower: text.configuration.text, extra: 0)
        var pooled = [Float](repeating: 0, count: batch * w), embeddings = [Float](repeating: 0, count: batch * d)
        pooled.withUnsafeMutableBufferPointer { p in
            embeddings.withUnsafeMutableBufferPointer { e in
                text.forward(inputIDs: ids.flatMap { $0 }, attentionMask: mask.flatMap { $0 }, batch: batch, sequence: sequence,
                             workspace: workspace, threads: 2, pooled: p.baseAddress!, embeddings: e.baseAddress!, normalize: normalize)
            }
        }
        return ((0..<batch).map { Array(pooled[($0 * w)..<(($0 + 1) * w)]) }, (0..<batch).map { Array(embeddings[($0 * d)..<(($0 + 1) * d)]) })
    }

    @Test func textTowerMatchesTransformersPaddedAndAlone() throws {
        let ids = (expected["input_ids"] as! [[Int]]).map { $0.map(Int32.init) }
        let mask = (expected["attention_mask"] as! [[Int]]).map { $0.map(UInt8.init) }
        let raw = runText(model, ids: ids, mask: mask, normalize: false)
        let normalized = runText(model, ids: ids, mask: mask, normalize: true)
        for b in 0..<3 {
            #expect(relativeError(raw.pooled[b], matrix("text_pooled")[b]) < 1e-4, "text \(b) pooled")
            #expect(relativeError(raw.embeddings[b], matrix("text_embeds")[b]) < 1e-4, "text \(b) projected")
            #expect(relativeError(normalized.embeddings[b], matrix("text_embeds_normalized")[b]) < 1e-4, "text \(b) normalized")
        }
        for alone in expected["texts_alone"] as! [[String: Any]] {
            let ids = (alone["input_ids"] as! [Int]).map(Int32.init)
            let out = runText(model, ids: [ids], mask: [[UInt8](repeating: 1, count: ids.count)], normalize: false)
            #expect(relativeError(out.pooled[0], (alone["pooled"] as! [Double]).map(Float.init)) < 1e-4)
            #expect(relativeError(out.embeddings[0], (alone["text_embeds"] as! [Double]).map(Float.init)) < 1e-4)
        }
    }

    @Test func poolingRulesFollowTheConfig() throws {
        let probe = expected["pooling_probe"] as! [String: Any]
        let ids = (probe["input_ids"] as! [[Int]]).map { $0.map(Int32.init) }
        let mask = [[UInt8](repeating: 1, count: ids[0].count)]
        let argmax = runText(model, ids: ids, mask: mask, normalize: false)
        #expect(relativeError(argmax.pooled[0], (probe["pooled_argmax_rule"] as! [Double]).map(Float.init)) < 1e-4)
        let eos = runText(try Self.load(config: "config-eos-49407.json", towers: .text), ids: ids, mask: mask, normalize: false)
        #expect(relativeError(eos.pooled[0], (probe["pooled_first_eos_49407_rule"] as! [Double]).map(Float.init)) < 1e-4)
    }

    @Test func imageTowerAndLogitsMatchTransformers() throws {
        let pixels = try NumpyArray(contentsOf: Self.folder.appendingPathComponent("pixel_values_nhwc.npy")).floats()
        let vision = model.vision!
        let w = vision.configuration.vision.hiddenSize, d = vision.configuration.projectionDimension
        #expect(vision.outputWidths == [.features: w, .embedding: d])
        let session = vision.makeSession(threads: 2)
        var pooled = [Float](repeating: 0, count: 2 * w), embeddings = [Float](repeating: 0, count: 2 * d)
        pixels.withUnsafeBufferPointer { x in
            pooled.withUnsafeMutableBufferPointer { p in
                embeddings.withUnsafeMutableBufferPointer { e in
                    session.encode(x.baseAddress!, count: 2, outputs: [.features: p.baseAddress!, .embedding: e.baseAddress!])
                }
            }
        }
        for b in 0..<2 {
            #expect(relativeError(Array(pooled[(b * w)..<((b + 1) * w)]), matrix("image_pooled")[b]) < 1e-4, "image \(b) pooled")
            #expect(relativeError(Array(embeddings[(b * d)..<((b + 1) * d)]), matrix("image_embeds")[b]) < 1e-4, "image \(b) projected")
        }
        // logits_per_image = exp(logit_scale) · cos(image, text)
        #expect(abs(model.logitScale - Float(expected["logit_scale_exp"] as! Double)) < 1e-4)
        let ids = (expected["input_ids"] as! [[Int]]).map { $0.map(Int32.init) }
        let mask = (expected["attention_mask"] as! [[Int]]).map { $0.map(UInt8.init) }
        let texts = runText(model, ids: ids, mask: mask, normalize: true).embeddings
        let logits = matrix("logits_per_image")
        for b in 0..<2 {
            var image = Array(embeddings[(b * d)..<((b + 1) * d)])
            image.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: 1, columns: d) }
            let row = texts.map { t in model.logitScale * zip(image, t).map(*).reduce(0, +) }
            #expect(relativeError(row, logits[b]) < 1e-4, "logits of image \(b): \(row) vs \(logits[b])")
        }
    }

    @Test func preprocessingIsReadFromTheFolder() throws {
        let spec = model.vision!.preprocessing
        #expect(spec.inputSize == model.vision!.configuration.imageSize && spec.centerCrop == .shortestSide && spec.defaultPolicy == .centerCrop)
        #expect(spec.normalization == .meanStd(mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711]))
    }

    // MARK: - Bad input

    static func copyOfFixture(_ edit: (URL) throws -> Void) throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("headtune-clip-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: tiny, to: copy)
        try edit(copy)
        return copy
    }

    @Test func badFoldersAreNamedWithTheReason() throws {
        // Not a CLIP checkpoint: no config.json.
        let empty = try Self.copyOfFixture { try FileManager.default.removeItem(at: $0.appendingPathComponent("config.json")) }
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: ModelsError.self) { try ModelRegistry.imageEncoder(empty.path) }

        // An activation headtune does not run.
        let activation = try Self.copyOfFixture { copy in
            let url = copy.appendingPathComponent("config.json")
            let text = try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "\"quick_gelu\"", with: "\"swish\"")
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(at: activation) }
        do {
            _ = try ModelRegistry.imageEncoder(activation.path)
            Issue.record("an unknown activation loaded")
        } catch let error as ModelsError {
            let message = error.errorDescription ?? ""
            #expect(message.contains("config.json") && message.contains("swish"), "\(message)")
        }

        // A truncated safetensors file.
        let truncated = try Self.copyOfFixture { copy in
            let url = copy.appendingPathComponent("model.safetensors")
            let data = try Data(contentsOf: url)
            try data.prefix(data.count / 2).write(to: url)
        }
        defer { try? FileManager.default.removeItem(at: truncated) }
        do {
            _ = try ModelRegistry.imageEncoder(truncated.path)
            Issue.record("a truncated checkpoint loaded")
        } catch {
            #expect("\(error.localizedDescription)".contains("model.safetensors"), "\(error.localizedDescription)")
        }

        // The text tower without its tokenizer files (the fixture ships none: its vocabulary is CLIP's).
        do {
            _ = try ModelRegistry.textEncoder(Self.tiny.path)
            Issue.record("a text tower loaded without vocab.json")
        } catch let error as ModelsError {
            #expect(error.errorDescription?.contains("vocab.json") == true, "\(error)")
        }
    }

    /// The whole folder through the registry, with CLIP's vocabulary files beside it: what
    /// `--model DIR` loads.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HEADTUNE_CLIP_REFERENCE"] == nil, "the registry test runs on the tiny fixture"))
    func registryLoadsBothTowersOfAFolder() throws {
        let bpe = try Golden.asset("weights/clip-bpe/vocab.json", fetchWith: "make weights").deletingLastPathComponent()
        let folder = try Self.copyOfFixture { copy in
            for name in ["vocab.json", "merges.txt"] {
                try FileManager.default.copyItem(at: bpe.appendingPathComponent(name), to: copy.appendingPathComponent(name))
            }
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        let image = try ModelRegistry.imageEncoder(folder.path)
        let text = try ModelRegistry.textEncoder(folder.path)
        #expect(text.pairedImageModel == image.identifier && image.pairedTextModel == folder.path)
        #expect(image.identifier.hasPrefix("clip-image:") && text.identifier.hasPrefix("clip-text:"))
        #expect(text.tokenizer.encode("a photo of a cat") == [49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(abs((text.logitScale ?? 0) - Float(expected["logit_scale_exp"] as! Double)) < 1e-4)
        // The registry's text tower embeds like the model file: normalized text_embeds.
        let session = text.model.makeSession(tokens: 64, threads: 2)
        let ids: [Int32] = [49406, 320, 1125, 539, 320, 2368, 49407]
        var out = [Float](repeating: 0, count: 16)
        out.withUnsafeMutableBufferPointer {
            session.encode(inputIDs: ids, attentionMask: [UInt8](repeating: 1, count: 7), batch: 1, sequence: 7, embeddings: $0.baseAddress!)
        }
        var want = (expected["texts_alone"] as! [[String: Any]])[0]["text_embeds"] as! [Double]
        let norm = want.map { $0 * $0 }.reduce(0, +).squareRoot()
        want = want.map { $0 / norm }
        #expect(relativeError(out, want.map(Float.init)) < 1e-4)
    }
}
