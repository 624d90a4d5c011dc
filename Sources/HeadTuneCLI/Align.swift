import ArgumentParser
import Foundation
import HeadTune
import Training
import Weights

extension PairedBridge.Kind: ExpressibleByArgument {}

struct Align: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit the image-text bridge and write it: from ImageNet class names, or from your image-caption pairs (--pairs).",
        discussion: """
            Without --pairs: embeds the 1000 ImageNet class names (every synonym in --template, averaged) with \
            the text encoder, and fits a ridge regression from those embeddings to the rows of the backbone's \
            ImageNet classifier (Frome et al. 2013), choosing lambda on held-out classes unless --lambda is given. \
            Deterministic: the same weights give the same file. `make align` runs it.

            With --pairs FILE.csv (columns image,caption; other columns ignored; image paths relative to the \
            CSV's folder or an images/ folder beside it; several captions per image): fits a map from the image \
            features (--features) into the text encoder's space with both networks frozen. contrastive \
            (default): symmetric InfoNCE with a learned temperature and weight decay, starting from and added \
            to the ConSE embedding (--no-conse: the map alone), early stopping on a seeded held-out fifth of the \
            images, then refitted on all pairs. asif: the pairs as anchors (Norelli et al. 2023), no training. \
            The file also holds the class-name bridge, so zero-shot, match, index, search and serve use the \
            fitted bridge from it by default and --method conse|devise still work. Features and caption \
            embeddings are cached (--cache). Prints the held-out R@1/5/10 of the fitted bridge and of ConSE on \
            the same pairs (a table on stderr, JSON on stdout).

            Examples:
              headtune align --out my-alignment.safetensors
              headtune zero-shot --alignment my-alignment.safetensors --labels "cat,rocket" samples/
            """)

    @Option(name: [.short, .customLong("out"), .long],
            help: "Output file (default: image-text-alignment.safetensors in the weights directory).", completion: .file())
    var output: String?

    @Option(help: "Ridge strength (default: chosen on held-out classes).")
    var lambda: Double?

    @Option(help: "Prompt for the class names; {} is replaced by each synonym.")
    var template: String = ImageTextAlignment.defaultClassTemplate

    @Option(help: ArgumentHelp("CSV of image-caption pairs (columns image,caption), repeatable.", valueName: "file.csv"),
            completion: .file(extensions: ["csv"]))
    var pairs: [String] = []

    @Option(help: "With --pairs: contrastive (a map trained with InfoNCE) or asif (training-free, the pairs as anchors).")
    var method: PairedBridge.Kind = .contrastive

    @Option(help: "With --pairs: image features the bridge reads (head, head+stages).")
    var features: FeatureSet = PairAlignmentRequest(csvFiles: []).featureSet

    @Flag(help: "With --pairs: the contrastive map alone, not added to the ConSE embedding.")
    var noConse = false

    @Option(help: "Classes ConSE mixes per image (T in Norouzi et al.).")
    var conseTop = 10

    @Option(help: "Contrastive fit: AdamW learning rate.") var learningRate: Float = ContrastiveMapConfiguration().learningRate
    @Option(help: "Contrastive fit: decoupled weight decay.") var weightDecay: Float = ContrastiveMapConfiguration().weightDecay
    @Option(help: "Contrastive fit: epochs at most.") var maxEpochs = ContrastiveMapConfiguration().maxEpochs
    @Option(help: "Contrastive fit: epochs without a lower held-out loss before stopping (0: never).")
    var patience = ContrastiveMapConfiguration().patience
    @Option(help: "Contrastive fit: images per minibatch.") var batchImages = ContrastiveMapConfiguration().batchImages
    @Option(help: "Seed of the held-out split and the fit.") var seed: UInt64 = 0
    @Option(help: "Share of the images held out (with their captions) to stop early and to measure.") var heldOut = 0.2
    @Flag(help: "Keep the bridge fitted without the held-out images instead of refitting on all pairs.") var noRefit = false

    @Flag(help: "Show a progress bar on stderr even when it is not a terminal.")
    var progress = false

    @OptionGroup var cacheOptions: CacheOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func validate() throws {
        if let lambda, !(lambda > 0) { throw ValidationError("--lambda must be positive") }
        guard template.contains("{}") else { throw ValidationError("--template must contain {}") }
        guard heldOut > 0 && heldOut < 1 else { throw ValidationError("--held-out must be in (0, 1)") }
        guard conseTop >= 1 && conseTop <= 1000 else { throw ValidationError("--conse-top must be in 1...1000") }
        if let output { try AtomicFile.checkWritable(output) }
    }

    func run() throws {
        let encoder = try encoderOptions.loadEncoder()
        let textEncoder = try encoderOptions.loadTextEncoder(for: encoder)
        let path = try output ?? TextSpace.defaultAlignmentPath(weightsDirectory: encoderOptions.weightsDirectory)
        let log = { (message: String) in printError("headtune: \(message)") }
        guard !pairs.isEmpty else {
            let alignment = try ImageTextAlignment.fit(encoder: encoder, textEncoder: textEncoder, lambda: lambda, template: template,
                                                       log: log)
            try alignment.write(to: path)
            printError("headtune: wrote \(path) (\(alignment.identifier), lambda \(alignment.ridgeLambda))")
            return
        }
        // The class-name part: the default file's (fitted there on first use), unless its recipe is changed here.
        let alignment = lambda != nil || template != ImageTextAlignment.defaultClassTemplate
            ? try ImageTextAlignment.fit(encoder: encoder, textEncoder: textEncoder, lambda: lambda, template: template, log: log)
            : try TextSpace.loadAlignment(imageEncoder: encoder, text: textEncoder, path: nil,
                                          weightsDirectory: encoderOptions.weightsDirectory, log: log)
        var request = PairAlignmentRequest(csvFiles: pairs)
        request.kind = method
        request.featureSet = features
        request.combineConSE = !noConse
        request.conseTop = conseTop
        request.configuration.learningRate = learningRate
        request.configuration.weightDecay = weightDecay
        request.configuration.maxEpochs = maxEpochs
        request.configuration.patience = patience
        request.configuration.batchImages = batchImages
        request.configuration.seed = seed
        request.heldOutFraction = heldOut
        request.refitOnAll = !noRefit

        var bar: ProgressBar?
        var events = PairAlignmentEvents()
        events.skipped = { bar?.clear(); printError("headtune: skipped \($0)") }
        events.log = { bar?.clear(); log($0) }
        events.progress = { phase, done, total in
            if done == 0 { bar = ProgressBar(total: total, unit: phase, force: progress) } else { bar?.advance() }
            if done == total { bar?.finish(); bar = nil }
        }
        events.epoch = { e in
            if e.epoch % 25 == 0 || e.epoch == 1 {
                log(String(format: "epoch %d: loss %.4f%@, temperature %.4f", e.epoch, e.trainLoss,
                           e.validationLoss.map { String(format: ", held-out %.4f", $0) } ?? "", e.temperature))
            }
        }
        let outcome = try PairAlignment.run(request, encoder: encoder, text: textEncoder, alignment: alignment,
                                            cache: try cacheOptions.open(), batchSize: encoderOptions.batchSize,
                                            threads: encoderOptions.threads, events: events)
        try outcome.bridge.write(to: path)
        let s = outcome.summary
        printError(String(format: "headtune: held out %d images with %d captions (fitted on the other %d images)",
                          s.heldOutImages, s.heldOutCaptions, s.images - s.heldOutImages))
        printError("headtune:                         text->image R@1/5/10   image->text R@1/5/10")
        for (name, r) in [("\(s.method)\(s.combinedWithConSE ? " + conse" : "")", s.heldOut), ("conse", s.heldOutConSE)] {
            printError(String(format: "headtune:   %-20@  %.3f %.3f %.3f        %.3f %.3f %.3f", name,
                              r.textToImage[0], r.textToImage[1], r.textToImage[2], r.imageToText[0], r.imageToText[1], r.imageToText[2]))
        }
        printError(String(format: "headtune: wrote %@ (%@, %d images, %d captions%@; %d from cache, %d extracted; %.1f s)", path,
                          outcome.bridge.identifier, s.images, s.captions,
                          s.bestEpoch.map { ", best epoch \($0)" } ?? "", outcome.cacheHits, outcome.extracted, s.seconds))
        print(#"{"bridge": "\#(outcome.bridge.identifier)", "path": \#(JSONValue.string(path).serialized()), "summary": \#(s.json())}"#)
    }
}
