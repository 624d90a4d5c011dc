@testable import Training

/// Gaussian blobs: `classes` well-separated centres in `dimension` dims, `perClass[c]` points each.
func gaussianBlobs(perClass: [Int], dimension: Int, separation: Float, seed: UInt64) -> (FeatureMatrix, [Int]) {
    var generator = SeededGenerator(seed: seed)
    let centres = perClass.indices.map { _ in (0..<dimension).map { _ in separation * generator.gaussian() } }
    var matrix = FeatureMatrix(columns: dimension)
    var labels: [Int] = []
    for (c, count) in perClass.enumerated() {
        for _ in 0..<count {
            matrix.append(row: centres[c].map { $0 + generator.gaussian() })
            labels.append(c)
        }
    }
    return (matrix, labels)
}

import Foundation
import Weights

/// A valid safetensors file that is not a head.
enum SafeTensorsWriterProxy {
    static func plainSafetensors() -> Data {
        SafeTensorsWriter.serialize([.init(name: "w", shape: [2], values: [1, 2])], metadata: [:])
    }
}
