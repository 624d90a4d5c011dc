import ArgumentParser
import Foundation
import HeadTune
import Kernels

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the backbone, the weights in use and the BLAS kernels this machine runs.")

    @OptionGroup var backbone: BackboneOptions

    func run() throws {
        let model = try backbone.loadBackbone()
        print("backbone:      \(model.identifier)")
        print("input:         \(model.inputSize)x\(model.inputSize) RGB, \(model.preprocessor.policy.rawValue)")
        print("features:      \(model.featureCount)")
        print("classes:       \(model.classCount) (ImageNet-1k)")
        let chosen = BLAS.chosenCoreType.isEmpty ? "" : " (OPENBLAS_CORETYPE=\(BLAS.chosenCoreType) set by headtune)"
        print("blas:          OpenBLAS \(BLAS.coreName)\(chosen)")
        print("threads:       \(backbone.threads)")
    }
}
