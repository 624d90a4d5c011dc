import ArgumentParser
import Foundation
import HeadTune
import Kernels

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the backbone, the weights in use and the BLAS kernels this machine runs.",
        discussion: """
            Examples:
              headtune info
              headtune info --threads 1
            """)

    @OptionGroup var encoderOptions: EncoderOptions

    func run() throws {
        let encoder = try encoderOptions.loadEncoder()
        print("backbone:      \(encoder.identifier)")
        print("input:         \(encoder.inputSize)x\(encoder.inputSize) RGB, \(encoder.preprocessor.policy.rawValue)")
        print("features:      \(encoder.featureCount)")
        print("classes:       \(encoder.classCount) (ImageNet-1k)")
        let chosen = BLAS.chosenCoreType.isEmpty ? "" : " (OPENBLAS_CORETYPE=\(BLAS.chosenCoreType) set by headtune)"
        print("gemm:          \(PointwiseWeights.gemmDescription)")
        print("blas:          OpenBLAS \(BLAS.coreName)\(chosen)")
        print("threads:       \(encoderOptions.threads)")
        print("precision:     \(encoder.precision.rawValue) (int8 kernels: \(Quantization.int8Available ? "AVX-512 VNNI" : "not on this CPU, no AVX-512 VNNI"))")
    }
}
