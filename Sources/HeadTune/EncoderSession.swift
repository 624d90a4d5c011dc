import Kernels
import Models
import Training

/// What an image encoder computed for one image (or the mean over an image's views).
public struct EncodedImage: Sendable {
    /// [width] per output that was asked for.
    public var outputs: [ImageOutput: [Float]]

    public init(outputs: [ImageOutput: [Float]]) { self.outputs = outputs }

    public subscript(_ output: ImageOutput) -> [Float]? { outputs[output] }

    /// The pooled features (empty when they were not computed).
    public var features: [Float] { outputs[.features] ?? [] }
    public var logits: [Float]? { outputs[.logits] }

    /// The feature vector a head on `featureSet` reads: the set's outputs, concatenated in order.
    public func features(_ featureSet: FeatureSet, of encoder: ImageEncoder) -> [Float] {
        encoder.outputs(for: featureSet).flatMap { output -> [Float] in
            guard let values = outputs[output] else { preconditionFailure("\(featureSet.rawValue) features need the \(output.rawValue) output") }
            return values
        }
    }
}

/// Elementwise mean of equal-length vectors: summed in order, then divided by their count.
public func meanOfVectors(_ vectors: [[Float]]) -> [Float] {
    guard var sum = vectors.first else { return [] }
    guard vectors.count > 1 else { return sum }
    for vector in vectors.dropFirst() {
        precondition(vector.count == sum.count, "vector lengths differ: \(vector.count) vs \(sum.count)")
        for i in sum.indices { sum[i] += vector[i] }
    }
    let count = Float(vectors.count)
    for i in sum.indices { sum[i] /= count }
    return sum
}

/// Runs an `ImageEncoder` on batches of prepared inputs, owning the network's workspaces and the
/// output buffers. The one batch engine: `BatchRunner` (files) and the service's batching worker
/// (requests) both run images through a session. Not for concurrent use: one per thread.
public final class EncoderSession {
    public let encoder: ImageEncoder
    private let session: any ImageEncoderSession
    /// Per output, room for [rows, width], grown when a larger batch comes.
    private var buffers: [ImageOutput: ScratchBuffer] = [:]

    init(encoder: ImageEncoder, session: any ImageEncoderSession) {
        self.encoder = encoder
        self.session = session
    }

    /// - input: [count · views, size, size, 3], every view of the first image, then of the second, ...
    /// - outputs: what to compute (each must be one the encoder has)
    /// - views: consecutive inputs per image, averaged into one result
    /// - returns: one result per image
    public func encode(_ input: UnsafePointer<Float>, count: Int, views: Int = 1, outputs: [ImageOutput]) -> [EncodedImage] {
        let rows = count * max(1, views)
        guard rows > 0 else { return [] }
        let wanted = run(input, rows: rows, outputs: outputs)
        let views = max(1, views)
        return (0..<count).map { image in
            var result: [ImageOutput: [Float]] = [:]
            for output in wanted {
                let width = encoder.width(of: output)!, values = buffers[output]!.pointer
                result[output] = meanOfVectors((0..<views).map { v in
                    Array(UnsafeBufferPointer(start: values + (image * views + v) * width, count: width))
                })
            }
            return EncodedImage(outputs: result)
        }
    }

    /// Runs the network on `rows` inputs into the session's own buffers, nothing else (what
    /// `headtune bench backbone` times). Returns the outputs computed, sorted.
    @discardableResult
    public func run(_ input: UnsafePointer<Float>, rows: Int, outputs: [ImageOutput]) -> [ImageOutput] {
        let wanted = Array(Set(outputs)).sorted()
        for output in wanted {
            guard let width = encoder.width(of: output) else {
                preconditionFailure("\(encoder.identifier) has no \(output.rawValue) output")
            }
            if (buffers[output]?.count ?? 0) < rows * width { buffers[output] = ScratchBuffer(count: rows * width) }
        }
        session.encode(input, count: rows, outputs: buffers.filter { wanted.contains($0.key) }.mapValues(\.pointer))
        return wanted
    }
}
