import Foundation
import Imaging
import Weights

/// A trained head as one self-describing safetensors file: the head's tensors and the
/// standardization as F32 tensors, everything else as JSON in the `__metadata__` entry `headtune`.
public struct HeadFile: Sendable {
    /// The backbone a head was trained on; a head only makes sense on the same features.
    public struct BackboneInfo: Codable, Sendable, Equatable {
        /// e.g. "efficientnet-lite0@57934424d8f1".
        public var id: String
        public var weightsSHA256: String
        /// Values per image: `features.featureCount(of:)` of this backbone.
        public var featureCount: Int
        /// The backbone outputs the head reads; absent in heads from before feature sets (= `head`).
        public var features: FeatureSet?
        /// The arithmetic of the network the training features came from ("fp32", "int8"); absent in
        /// heads from before int8 (= fp32). The head runs on either: it records, it does not require.
        public var precision: String?

        public init(id: String, weightsSHA256: String, featureCount: Int, features: FeatureSet = .head, precision: String? = nil) {
            self.id = id
            self.weightsSHA256 = weightsSHA256
            self.featureCount = featureCount
            self.features = features
            self.precision = precision
        }

        public var featureSet: FeatureSet { features ?? .head }
    }

    /// How images become features for this head.
    public struct Preprocessing: Codable, Sendable, Equatable {
        /// Geometry policy (stored as "center-crop", "resize" or "letterbox").
        public var policy: CropPolicy
        public var inputSize: Int
        /// Average the features of the image and its mirror image at prediction time.
        public var testTimeFlip: Bool
        /// Extra training views (e.g. ["flip", "crop"]).
        public var augment: [String]

        public init(policy: CropPolicy, inputSize: Int, testTimeFlip: Bool, augment: [String]) {
            self.policy = policy
            self.inputSize = inputSize
            self.testTimeFlip = testTimeFlip
            self.augment = augment
        }
    }

    public struct DatasetSummary: Codable, Sendable, Equatable {
        public var source: String
        /// Images used per class (train + validation), in label order.
        public var imagesPerClass: [Int]
        public var trainImages: Int
        public var validationImages: Int
        /// Training rows including augmented views.
        public var trainRows: Int
        public var skippedFiles: Int

        public init(source: String, imagesPerClass: [Int], trainImages: Int, validationImages: Int, trainRows: Int, skippedFiles: Int) {
            self.source = source
            self.imagesPerClass = imagesPerClass
            self.trainImages = trainImages
            self.validationImages = validationImages
            self.trainRows = trainRows
            self.skippedFiles = skippedFiles
        }
    }

    public struct Metadata: Codable, Sendable, Equatable {
        public var format = HeadFile.format
        public var formatVersion = HeadFile.formatVersion
        public var labels: [String]
        public var backbone: BackboneInfo
        public var preprocessing: Preprocessing
        public var architecture: HeadArchitecture
        public var training: TrainingConfiguration
        public var bestEpoch: Int
        public var dataset: DatasetSummary
        /// Metrics on the validation split, when there was one.
        public var validation: ClassificationReport?
        /// ISO 8601, UTC.
        public var createdAt: String
        public var headtuneVersion: String
        /// Independent classes (sigmoid per class) instead of exclusive ones (softmax); absent = false.
        /// `headtune train` makes single-label heads only; `classify` honours the flag.
        public var multiLabel: Bool? = nil
        /// The k-NN out-of-distribution detector's settings; its training features are the
        /// `ood.bank` tensor. Absent in heads from before format 2.
        public var outOfDistribution: OutOfDistributionDetector.Settings? = nil
        /// The encoder's last blocks tuned with the head (format 4): their tensors are `tail.<name>`.
        public var tail: TunedTail.Settings? = nil

        public init(labels: [String], backbone: BackboneInfo, preprocessing: Preprocessing, architecture: HeadArchitecture,
                    training: TrainingConfiguration, bestEpoch: Int, dataset: DatasetSummary, validation: ClassificationReport?,
                    createdAt: String, headtuneVersion: String) {
            self.labels = labels
            self.backbone = backbone
            self.preprocessing = preprocessing
            self.architecture = architecture
            self.training = training
            self.bestEpoch = bestEpoch
            self.dataset = dataset
            self.validation = validation
            self.createdAt = createdAt
            self.headtuneVersion = headtuneVersion
        }
    }

    public static let format = "headtune-head"
    /// 2 adds the optional out-of-distribution detector (`ood.bank`); 3 adds feature sets other than
    /// `head` (`backbone.features`); 4 adds a tuned tail of the encoder (`tail`); 5 adds the detector's
    /// class-aware scores and their calibration (`outOfDistribution.components`, `ood.bank_labels`,
    /// `ood.class_means`, `ood.basis`, `ood.variances`); 6 adds the relative Mahalanobis score
    /// (`outOfDistribution.relativeMahalanobis`, the `ood.relative.*` tensors). The highest version
    /// this build reads: older
    /// builds refuse a head with a tail instead of running it on features of the untuned encoder, and a
    /// head whose threshold belongs to another score than their k-NN distance.
    public static let formatVersion = 6

    /// The last blocks of the encoder as trained with this head (`headtune train --unfreeze K`).
    public struct TunedTail: Sendable, Equatable {
        public struct Settings: Codable, Sendable, Equatable {
            /// Final blocks trained (the head convolution counts as one).
            public var unfreeze: Int
            /// Adapters of this rank on the 1x1 convolutions instead of their full weights.
            public var loraRank: Int?
            /// Tensor names (without the `tail.` prefix) in the tail's order.
            public var tensors: [String]
            /// sha256 over the tensors' bytes: the tuned encoder's cache identity.
            public var sha256: String

            public init(unfreeze: Int, loraRank: Int?, tensors: [String], sha256: String) {
                self.unfreeze = unfreeze
                self.loraRank = loraRank
                self.tensors = tensors
                self.sha256 = sha256
            }
        }

        public struct Tensor: Sendable, Equatable {
            public var name: String
            public var shape: [Int]
            public var values: [Float]

            public init(name: String, shape: [Int], values: [Float]) {
                self.name = name
                self.shape = shape
                self.values = values
            }
        }

        public var settings: Settings
        public var tensors: [Tensor]

        /// Settings (with the sha256) derived from the tensors.
        public init(unfreeze: Int, loraRank: Int?, tensors: [Tensor]) {
            var bytes: [UInt8] = []
            for t in tensors {
                bytes += Array(t.name.utf8) + [0]
                t.values.withUnsafeBytes { bytes += $0 }
            }
            self.init(settings: Settings(unfreeze: unfreeze, loraRank: loraRank, tensors: tensors.map(\.name),
                                         sha256: bytes.withUnsafeBytes { SHA256.hex($0) }),
                      tensors: tensors)
        }

        public init(settings: Settings, tensors: [Tensor]) {
            self.settings = settings
            self.tensors = tensors
        }
    }
    static let metadataKey = "headtune"

    public var metadata: Metadata
    public var head: ClassificationHead
    public var standardization: Standardization
    public var outOfDistribution: OutOfDistributionDetector?
    public var tail: TunedTail?

    public init(metadata: Metadata, head: ClassificationHead, standardization: Standardization,
                outOfDistribution: OutOfDistributionDetector? = nil, tail: TunedTail? = nil) {
        self.metadata = metadata
        self.head = head
        self.standardization = standardization
        self.outOfDistribution = outOfDistribution
        self.tail = tail
        self.metadata.outOfDistribution = outOfDistribution?.settings
        self.metadata.tail = tail?.settings
        // The lowest version that describes the head: a `head` head stays readable by builds that know
        // only format 2, while one on other features is refused there rather than fed 1280 values, and
        // one with a tuned tail by builds that would run it on the untuned encoder.
        let featureVersion = metadata.backbone.featureSet == .head ? min(metadata.formatVersion, 2) : 3
        let detectorVersion = outOfDistribution?.settings.relativeMahalanobis != nil ? 6 : outOfDistribution?.settings.components != nil ? 5 : 0
        self.metadata.formatVersion = max(detectorVersion, tail != nil ? 4 : featureVersion)
    }

    /// The file contents.
    public func serialized() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(metadata), as: UTF8.self)
        var tensors = head.architecture.tensors.map { t in
            SafeTensorsWriter.Tensor(name: "head.\(t.name)", shape: t.shape, values: Array(head.parameters[t.offset..<(t.offset + t.count)]))
        }
        tensors.append(.init(name: "standardization.mean", shape: [standardization.mean.count], values: standardization.mean))
        tensors.append(.init(name: "standardization.inverse_std", shape: [standardization.inverseStd.count],
                             values: standardization.inverseStd))
        if let bank = outOfDistribution?.bank {
            tensors.append(.init(name: "ood.bank", shape: [bank.rows, bank.columns], values: bank.values))
        }
        if let model = outOfDistribution?.classModel {
            // Labels are small integers: exact as F32, the one dtype these files use.
            tensors.append(.init(name: "ood.bank_labels", shape: [model.bankLabels.count], values: model.bankLabels.map(Float.init)))
            tensors += GaussianTensors.mahalanobis.tensors(of: model)
        }
        if let relative = outOfDistribution?.relativeModel {
            tensors += GaussianTensors.relativeClasses.tensors(of: relative.classes)
            tensors += GaussianTensors.relativeBackground.tensors(of: relative.background)
        }
        for t in tail?.tensors ?? [] { tensors.append(.init(name: "tail.\(t.name)", shape: t.shape, values: t.values)) }
        return SafeTensorsWriter.serialize(tensors, metadata: [Self.metadataKey: json])
    }

    /// Writes atomically: a temporary file in the same directory, flushed, then renamed over `path`,
    /// so a crash leaves either the old head or the new one, never half of one.
    public func write(to path: String) throws {
        let data = try serialized()
        do { try AtomicFile.write(data, to: path) } catch {
            throw TrainingError.invalidHeadFile(path: path, reason: error.reason)
        }
    }

    /// Reads and checks a head file: format, tensor shapes against the architecture, label count.
    public static func read(path: String) throws -> HeadFile {
        if let kind = KnownFileKind.sniff(path: path) { throw TrainingError.notAHeadFile(path: path, kind: kind.description) }
        let file: SafeTensors
        do { file = try SafeTensors(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TrainingError.invalidHeadFile(path: path, reason: (error as? LocalizedError)?.errorDescription ?? "\(error)")
        }
        return try read(file, path: path)
    }

    /// Reads and checks a head file already opened as safetensors (from disk or from memory).
    public static func read(_ file: SafeTensors, path: String) throws -> HeadFile {
        guard let json = file.metadata[metadataKey] else {
            throw TrainingError.invalidHeadFile(path: path, reason: "a safetensors file without headtune metadata (not written by `headtune train`)")
        }
        let metadata: Metadata
        do { metadata = try JSONDecoder().decode(Metadata.self, from: Data(json.utf8)) } catch {
            throw TrainingError.invalidHeadFile(path: path, reason: "unreadable metadata: \(error)")
        }
        guard metadata.format == format, metadata.formatVersion <= formatVersion else {
            throw TrainingError.invalidHeadFile(path: path, reason: "format \(metadata.format) v\(metadata.formatVersion); this headtune reads \(format) up to v\(formatVersion)")
        }
        let architecture = metadata.architecture
        guard metadata.labels.count == architecture.classes, architecture.inputs == metadata.backbone.featureCount else {
            throw TrainingError.invalidHeadFile(path: path, reason: "\(metadata.labels.count) labels and \(metadata.backbone.featureCount) "
                                                + "features for a head with \(architecture.classes) outputs and \(architecture.inputs) inputs")
        }
        do {
            let expected = Set(architecture.tensorShapes.map { "head.\($0.name)" } + ["standardization.mean", "standardization.inverse_std"]
                               + (metadata.outOfDistribution == nil ? [] : ["ood.bank"])
                               + classModelTensors(metadata.outOfDistribution)
                               + relativeModelTensors(metadata.outOfDistribution)
                               + (metadata.tail?.tensors.map { "tail.\($0)" } ?? []))
            let unexpected = Set(file.tensorNames).subtracting(expected)
            guard unexpected.isEmpty else {
                throw TrainingError.invalidHeadFile(path: path, reason: "unexpected tensors \(unexpected.sorted().joined(separator: ", "))")
            }
            // The architecture's sizes are the metadata's word: only once the file holds tensors of those
            // shapes (bounded by its size) are they multiplied and allocated.
            for (name, shape) in architecture.tensorShapes {
                let found = try file.shape(of: "head.\(name)")
                guard found == shape else { throw WeightsError.shapeMismatch(file: path, key: "head.\(name)", expected: shape, found: found) }
            }
            var parameters = [Float](repeating: 0, count: architecture.parameterCount)
            for t in architecture.tensors {
                let values = try file.tensor("head.\(t.name)", shape: t.shape)
                parameters.replaceSubrange(t.offset..<(t.offset + t.count), with: values)
            }
            let mean = try file.tensor("standardization.mean", shape: [architecture.inputs])
            let inverseStd = try file.tensor("standardization.inverse_std", shape: [architecture.inputs])
            let detector = try metadata.outOfDistribution.map { settings in
                guard settings.components == nil || OutOfDistributionScore(rawValue: settings.method) != nil, settings.k >= 1 else {
                    throw TrainingError.invalidHeadFile(path: path, reason: "out-of-distribution method \(settings.method) with k = \(settings.k)")
                }
                if let relative = settings.relativeMahalanobis {
                    guard settings.components != nil, relative.firstColumn >= 0, relative.firstColumn < architecture.inputs,
                          relative.rank >= 0, relative.shrinkage >= 0, relative.shrinkage <= 1, let fitted = relative.fitted,
                          (0...relative.rank).contains(fitted.classRank), (0...relative.rank).contains(fitted.backgroundRank) else {
                        throw TrainingError.invalidHeadFile(path: path, reason: "relative Mahalanobis settings first column \(relative.firstColumn), "
                                                            + "rank \(relative.rank), shrinkage \(relative.shrinkage), fitted "
                                                            + "\(relative.fitted.map { "ranks \($0.classRank), \($0.backgroundRank)" } ?? "missing") "
                                                            + "for \(architecture.inputs) features")
                    }
                }
                let shape = [settings.bankImages, architecture.inputs]
                let bank = FeatureMatrix(rows: settings.bankImages, columns: architecture.inputs,
                                         values: try file.tensor("ood.bank", shape: shape))
                let classModel = try readClassModel(file, path: path, settings: settings, architecture: architecture)
                return OutOfDistributionDetector(settings: settings, bank: bank, classModel: classModel,
                                                 relativeModel: try readRelativeModel(file, settings: settings, architecture: architecture,
                                                                                      bankLabels: classModel?.bankLabels ?? []))
            }
            let tail = try metadata.tail.map { settings in
                TunedTail(settings: settings, tensors: try settings.tensors.map { name in
                    let shape = try file.shape(of: "tail.\(name)")
                    return TunedTail.Tensor(name: name, shape: shape, values: try file.tensor("tail.\(name)", shape: shape))
                })
            }
            return HeadFile(metadata: metadata, head: ClassificationHead(architecture: architecture, parameters: parameters),
                            standardization: Standardization(mean: mean, inverseStd: inverseStd), outOfDistribution: detector,
                            tail: tail)
        } catch let error as TrainingError {
            throw error
        } catch {
            throw TrainingError.invalidHeadFile(path: path, reason: (error as? LocalizedError)?.errorDescription ?? "\(error)")
        }
    }

    /// The class-aware detector's tensors (format 5), beside `ood.bank`.
    static func classModelTensors(_ settings: OutOfDistributionDetector.Settings?) -> [String] {
        guard let settings, settings.components != nil else { return [] }
        return ["ood.bank_labels"] + GaussianTensors.mahalanobis.names(rank: settings.mahalanobisRank ?? 0)
    }

    /// The relative Mahalanobis score's tensors (format 6): means, and the basis and variances of each
    /// Gaussian that keeps leading directions.
    static func relativeModelTensors(_ settings: OutOfDistributionDetector.Settings?) -> [String] {
        guard let fitted = settings?.relativeMahalanobis?.fitted else { return [] }
        return GaussianTensors.relativeClasses.names(rank: fitted.classRank) + GaussianTensors.relativeBackground.names(rank: fitted.backgroundRank)
    }

    static func readRelativeModel(_ file: SafeTensors, settings: OutOfDistributionDetector.Settings, architecture: HeadArchitecture,
                                  bankLabels: [Int]) throws -> OutOfDistributionDetector.RelativeMahalanobisModel? {
        guard let relative = settings.relativeMahalanobis, let fitted = relative.fitted else { return nil }
        let d = architecture.inputs - relative.firstColumn
        return .init(classes: try GaussianTensors.relativeClasses.read(file, classes: architecture.classes, columns: d, rank: fitted.classRank,
                                                                      labels: bankLabels),
                     classResidualVariance: fitted.classResidualVariance,
                     background: try GaussianTensors.relativeBackground.read(file, classes: 1, columns: d, rank: fitted.backgroundRank,
                                                                            labels: [Int](repeating: 0, count: bankLabels.count)),
                     backgroundResidualVariance: fitted.backgroundResidualVariance)
    }

    static func readClassModel(_ file: SafeTensors, path: String, settings: OutOfDistributionDetector.Settings,
                               architecture: HeadArchitecture) throws -> OutOfDistributionDetector.ClassModel? {
        guard settings.components != nil else { return nil }
        let d = architecture.inputs, classes = architecture.classes, rank = settings.mahalanobisRank ?? 0
        let labels = try file.tensor("ood.bank_labels", shape: [settings.bankImages])
        if let bad = labels.first(where: { !($0 >= 0 && $0 < Float(classes) && $0 == $0.rounded()) }) {
            throw TrainingError.invalidHeadFile(path: path, reason: "ood.bank_labels holds \(bad), not a class index 0..<\(classes)")
        }
        return try GaussianTensors.mahalanobis.read(file, classes: classes, columns: d, rank: rank, labels: labels.map { Int($0) })
    }

    /// Where one `ClassModel`'s means, and the basis and variances of its leading directions (absent
    /// at rank 0), are kept: the Mahalanobis score's (format 5), and the relative score's two (format 6).
    struct GaussianTensors {
        let means: String, basis: String, variances: String

        static let mahalanobis = GaussianTensors(means: "ood.class_means", basis: "ood.basis", variances: "ood.variances")
        static let relativeClasses = relative("class")
        static let relativeBackground = relative("background")

        static func relative(_ part: String) -> GaussianTensors {
            GaussianTensors(means: "ood.relative.\(part)_means", basis: "ood.relative.\(part)_basis", variances: "ood.relative.\(part)_variances")
        }

        func names(rank: Int) -> [String] { [means] + (rank > 0 ? [basis, variances] : []) }

        func tensors(of model: OutOfDistributionDetector.ClassModel) -> [SafeTensorsWriter.Tensor] {
            [.init(name: means, shape: [model.means.rows, model.means.columns], values: model.means.values)]
                + (model.basis.rows > 0 ? [.init(name: basis, shape: [model.basis.rows, model.basis.columns], values: model.basis.values),
                                           .init(name: variances, shape: [model.variances.count], values: model.variances)] : [])
        }

        func read(_ file: SafeTensors, classes: Int, columns d: Int, rank: Int, labels: [Int]) throws -> OutOfDistributionDetector.ClassModel {
            OutOfDistributionDetector.ClassModel(
                bankLabels: labels,
                means: FeatureMatrix(rows: classes, columns: d, values: try file.tensor(means, shape: [classes, d])),
                basis: FeatureMatrix(rows: rank, columns: d, values: rank > 0 ? try file.tensor(basis, shape: [rank, d]) : []),
                variances: rank > 0 ? try file.tensor(variances, shape: [rank]) : [])
        }
    }

    /// Refuses to run this head on another backbone's features.
    public func requireBackbone(id: String, weightsSHA256: String, path: String) throws {
        guard metadata.backbone.weightsSHA256 == weightsSHA256, metadata.backbone.id == id else {
            throw TrainingError.backboneMismatch(path: path, head: "\(metadata.backbone.id) (weights \(metadata.backbone.weightsSHA256.prefix(12)))",
                                                 running: "\(id) (weights \(weightsSHA256.prefix(12)))")
        }
    }
}
