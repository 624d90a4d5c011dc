import Foundation
import HTTPTypes
import HeadTune
import Hummingbird
import NIOCore

/// The wire format of the Open Inference Protocol (KServe v2) over HTTP/REST: a JSON document, or a
/// JSON header followed by raw tensor data (Triton's binary tensor data extension, which the stock
/// clients use by default: `Inference-Header-Content-Length` gives the JSON's length, and each tensor
/// sent as binary says how many bytes it takes with the `binary_data_size` parameter).
enum InferenceTensors {
    static let headerLengthField = HTTPField.Name("Inference-Header-Content-Length")!
}

/// The tensor datatypes headtune reads or writes, by their protocol names.
enum TensorDatatype: String, Sendable {
    case fp32 = "FP32"
    case bytes = "BYTES"
    case bool = "BOOL"
}

/// One input tensor of an inference request, its values still as sent (decoded once the handler
/// knows which datatype the input must have).
struct InferenceInputTensor {
    enum Source {
        /// The `data` member: a flat or nested JSON array.
        case json(Any)
        /// The tensor's share of the binary data after the JSON header.
        case binary(ArraySlice<UInt8>)
    }

    var name: String
    var datatype: String
    var shape: [Int]
    var source: Source

    var elementCount: Int { shape.reduce(1, *) }

    /// FP32 values in row-major order (binary data: little-endian, 4 bytes each).
    func floats() throws(ServiceError) -> [Float] {
        switch source {
        case .binary(let bytes):
            guard bytes.count == elementCount * 4 else {
                throw .badRequest("input '\(name)' has \(bytes.count) bytes of binary data; its shape \(shape) of FP32 takes \(elementCount * 4)")
            }
            return bytes.withUnsafeBytes { raw in
                (0..<elementCount).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
        case .json(let data):
            let elements = try flatElements(data)
            var values: [Float] = []
            values.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                guard let number = element as? NSNumber else {
                    throw .badRequest("input '\(name)' element \(index) is not a number")
                }
                values.append(number.floatValue)
            }
            return values
        }
    }

    /// BYTES elements: in binary data, each a 4-byte little-endian length and that many bytes; in
    /// JSON, each a string holding base64 text (a JSON string cannot carry arbitrary bytes, and
    /// base64 is how KServe's and MLServer's clients send them).
    func byteStrings() throws(ServiceError) -> [[UInt8]] {
        switch source {
        case .binary(let bytes):
            var elements: [[UInt8]] = []
            var position = bytes.startIndex
            while position < bytes.endIndex {
                guard bytes.endIndex - position >= 4 else {
                    throw .badRequest("input '\(name)' element \(elements.count): binary data ends inside its 4-byte length")
                }
                let length = bytes[position..<(position + 4)].reversed().reduce(0) { $0 << 8 | Int($1) }
                position += 4
                guard bytes.endIndex - position >= length else {
                    throw .badRequest("input '\(name)' element \(elements.count) declares \(length) bytes; \(bytes.endIndex - position) remain")
                }
                elements.append(Array(bytes[position..<(position + length)]))
                position += length
            }
            guard elements.count == elementCount else {
                throw .badRequest("input '\(name)' has \(elements.count) elements in its binary data; its shape \(shape) holds \(elementCount)")
            }
            return elements
        case .json(let data):
            return try flatElements(data).enumerated().map { (index, element) throws(ServiceError) -> [UInt8] in
                guard let text = element as? String, let decoded = Data(base64Encoded: text) else {
                    throw .badRequest("input '\(name)' element \(index) is not a base64 string (in JSON, BYTES elements carry "
                                      + "each encoded image as base64 text; or send them as binary data)")
                }
                return [UInt8](decoded)
            }
        }
    }

    /// The JSON `data` flattened (nested arrays are row-major), with as many elements as the shape holds.
    private func flatElements(_ data: Any) throws(ServiceError) -> [Any] {
        var elements: [Any] = []
        func flatten(_ value: Any) {
            if let array = value as? [Any] { array.forEach(flatten) } else { elements.append(value) }
        }
        flatten(data)
        guard elements.count == elementCount else {
            throw .badRequest("input '\(name)' has \(elements.count) values in its data; its shape \(shape) holds \(elementCount)")
        }
        return elements
    }
}

/// An output the request asks for, with Triton's per-output parameters.
struct RequestedOutput {
    var name: String
    /// Send the values as binary data after the JSON header.
    var binary: Bool
    /// Triton's classification extension: the top `classification` classes as BYTES
    /// "score:index:label" instead of the scores.
    var classification: Int?
}

/// An inference request: `{"id", "parameters", "inputs": [...], "outputs": [...]}` plus binary data.
struct InferenceRequestDocument {
    var id: String?
    var inputs: [InferenceInputTensor]
    /// nil: every output of the model.
    var outputs: [RequestedOutput]?
    /// The request-level `binary_data_output` parameter: outputs without their own `binary_data` are binary.
    var binaryOutputByDefault: Bool

    /// Parses a request body.
    /// - headerLength: the `Inference-Header-Content-Length` header (nil: the whole body is JSON)
    static func parse(_ body: [UInt8], headerLength: String?) throws(ServiceError) -> InferenceRequestDocument {
        var jsonLength = body.count
        if let headerLength {
            guard let length = Int(headerLength), (0...body.count).contains(length) else {
                throw .badRequest("Inference-Header-Content-Length \(headerLength) is not a length within the \(body.count)-byte body")
            }
            jsonLength = length
        }
        guard let root = try? JSONSerialization.jsonObject(with: Data(body[0..<jsonLength])) as? [String: Any] else {
            throw .badRequest(headerLength == nil
                ? "the body is not a JSON object (with binary tensor data, give the JSON's length in Inference-Header-Content-Length)"
                : "the first \(jsonLength) bytes (Inference-Header-Content-Length) are not a JSON object")
        }
        guard let inputObjects = root["inputs"] as? [[String: Any]], !inputObjects.isEmpty else {
            throw .badRequest("the request has no 'inputs' array of tensors")
        }
        var position = jsonLength
        var inputs: [InferenceInputTensor] = []
        for (index, object) in inputObjects.enumerated() {
            guard let name = object["name"] as? String else { throw .badRequest("input \(index) has no 'name'") }
            guard let datatype = object["datatype"] as? String else { throw .badRequest("input '\(name)' has no 'datatype'") }
            guard let shape = (object["shape"] as? [Any])?.compactMap({ $0 as? Int }), shape.count == (object["shape"] as? [Any])?.count,
                  shape.allSatisfy({ $0 >= 0 }) else {
                throw .badRequest("input '\(name)' has no 'shape' of non-negative integers")
            }
            let source: InferenceInputTensor.Source
            if let size = (object["parameters"] as? [String: Any])?["binary_data_size"] {
                guard let size = size as? Int, size >= 0 else { throw .badRequest("input '\(name)': binary_data_size must be a non-negative integer") }
                guard body.count - position >= size else {
                    throw .badRequest("input '\(name)' declares binary_data_size \(size); \(body.count - position) bytes of binary data remain")
                }
                source = .binary(body[position..<(position + size)])
                position += size
            } else if let data = object["data"] {
                source = .json(data)
            } else {
                throw .badRequest("input '\(name)' has neither 'data' nor a binary_data_size parameter")
            }
            inputs.append(InferenceInputTensor(name: name, datatype: datatype, shape: shape, source: source))
        }
        guard position == body.count else {
            throw .badRequest("\(body.count - position) bytes after the JSON header are not claimed by any input's binary_data_size")
        }
        let parameters = root["parameters"] as? [String: Any] ?? [:]
        let binaryByDefault = parameters["binary_data_output"] as? Bool ?? false
        var outputs: [RequestedOutput]?
        if let outputObjects = root["outputs"] as? [[String: Any]] {
            outputs = try outputObjects.enumerated().map { (index, object) throws(ServiceError) -> RequestedOutput in
                guard let name = object["name"] as? String else { throw .badRequest("output \(index) has no 'name'") }
                let parameters = object["parameters"] as? [String: Any] ?? [:]
                var classification: Int?
                if let value = parameters["classification"] {
                    guard let count = value as? Int, count >= 0 else {
                        throw .badRequest("output '\(name)': classification must be a non-negative integer (the number of classes)")
                    }
                    // Triton's clients send 0 for "no classification".
                    classification = count > 0 ? count : nil
                }
                return RequestedOutput(name: name, binary: parameters["binary_data"] as? Bool ?? binaryByDefault,
                                       classification: classification)
            }
        } else if root["outputs"] != nil {
            throw .badRequest("'outputs' must be an array of {\"name\": ...} objects")
        }
        return InferenceRequestDocument(id: root["id"] as? String, inputs: inputs, outputs: outputs, binaryOutputByDefault: binaryByDefault)
    }
}

/// One output tensor of an inference response.
struct InferenceOutputTensor {
    enum Values {
        case fp32([Float])
        case bytes([String])
        case bool([Bool])
    }

    var name: String
    var shape: [Int]
    var values: Values
    var binary: Bool

    var datatype: TensorDatatype {
        switch values {
        case .fp32: .fp32
        case .bytes: .bytes
        case .bool: .bool
        }
    }

    /// The values as binary tensor data (little-endian; BYTES elements length-prefixed; BOOL one byte each).
    var binaryData: [UInt8] {
        switch values {
        case .fp32(let floats): floats.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
        case .bool(let flags): flags.map { $0 ? 1 : 0 }
        case .bytes(let strings):
            strings.flatMap { string in withUnsafeBytes(of: UInt32(string.utf8.count).littleEndian, Array.init) + Array(string.utf8) }
        }
    }

    var jsonData: JSONValue {
        switch values {
        case .fp32(let floats): .array(floats.map { .float($0) })
        case .bool(let flags): .array(flags.map { .bool($0) })
        case .bytes(let strings): .array(strings.map { .string($0) })
        }
    }
}

/// An inference response: JSON alone, or (when an output is binary) the JSON header followed by
/// the binary outputs in order, with `Inference-Header-Content-Length`.
struct InferenceResponseDocument {
    var model: String
    var version: String
    var id: String?
    var outputs: [InferenceOutputTensor]

    /// The body, and the JSON header's length when binary outputs follow it.
    func encoded() -> (body: [UInt8], headerLength: Int?) {
        var binary: [UInt8] = []
        let described: [JSONValue] = outputs.map { output in
            var members: [(String, JSONValue)] = [("name", .string(output.name)), ("datatype", .string(output.datatype.rawValue)),
                                                  ("shape", .array(output.shape.map { .integer($0) }))]
            if output.binary {
                let data = output.binaryData
                binary += data
                members.append(("parameters", .object([("binary_data_size", .integer(data.count))])))
            } else {
                members.append(("data", output.jsonData))
            }
            return .object(members)
        }
        var document: [(String, JSONValue)] = [("model_name", .string(model)), ("model_version", .string(version))]
        if let id { document.append(("id", .string(id))) }
        document.append(("outputs", .array(described)))
        let header = Array(JSONValue.object(document).serialized().utf8)
        return outputs.contains(where: \.binary) ? (header + binary, header.count) : (header + Array("\n".utf8), nil)
    }

    var response: Response {
        let (body, headerLength) = encoded()
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let headerLength {
            headers = [.contentType: "application/octet-stream", InferenceTensors.headerLengthField: String(headerLength)]
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
