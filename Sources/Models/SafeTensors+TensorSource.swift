import Weights

extension SafeTensors: TensorSource {
    public var sourceName: String { path }
}
