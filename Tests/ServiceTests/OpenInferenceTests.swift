import Foundation
import HTTPTypes
import HeadTune
import Hummingbird
import HummingbirdTesting
import Imaging
import NIOCore
import Testing
@testable import Service

/// The Open Inference Protocol routes (`/v2`): their answers compared with `/v1/classify` and
/// `/v1/embed/image` on the same images, Triton's binary tensor data both ways, and the errors.
@Suite(.serialized) struct OpenInferenceTests {
    static let jpegs = ["rocket.jpg", "hubble_deep_field.jpg"]

    @Test func healthServerAndModelMetadata() async throws {
        try await Fixture.withServer(try Fixture.configuration()) { client, _ in
            let live = try await client.execute(uri: "/v2/health/live", method: .get)
            #expect(live.status == .ok)
            #expect(live.object["live"] as? Bool == true)
            let ready = try await client.execute(uri: "/v2/health/ready", method: .get)
            #expect(ready.object["ready"] as? Bool == true)

            let server = try await client.execute(uri: "/v2", method: .get)
            #expect(server.object["name"] as? String == "headtune")
            #expect(server.object["version"] as? String == HeadTuneVersion.current)
            #expect(server.object["extensions"] as? [String] == ["binary_tensor_data", "classification"])

            let imagenet = try await client.execute(uri: "/v2/models/imagenet", method: .get)
            #expect(imagenet.status == .ok)
            #expect(imagenet.object["versions"] as? [String] == ["1"])
            let inputs = imagenet.object["inputs"] as? [[String: Any]] ?? []
            #expect(inputs.map { $0["name"] as? String } == ["image", "pixels"])
            #expect(inputs.map { $0["datatype"] as? String } == ["BYTES", "FP32"])
            #expect(inputs.last?["shape"] as? [Int] == [-1, 3, 224, 224])
            let outputs = imagenet.object["outputs"] as? [[String: Any]] ?? []
            #expect(outputs.map { $0["name"] as? String } == ["probabilities", "features"])
            #expect(outputs.map { $0["shape"] as? [Int] } == [[-1, 1000], [-1, 1280]])

            // A head with an out-of-distribution detector also has its score and verdict.
            let pets = try await client.execute(uri: "/v2/models/pets/versions/1", method: .get)
            let petOutputs = (pets.object["outputs"] as? [[String: Any]] ?? []).map { "\($0["name"]!) \($0["datatype"]!) \($0["shape"]!)" }
            #expect(petOutputs == ["probabilities FP32 [-1, 2]", "features FP32 [-1, 1280]", "ood_score FP32 [-1]", "unknown BOOL [-1]"])

            let modelReady = try await client.execute(uri: "/v2/models/pets/ready", method: .get)
            #expect(modelReady.status == .ok)
            #expect(modelReady.object["ready"] as? Bool == true)
            let versionReady = try await client.execute(uri: "/v2/models/imagenet/versions/1/ready", method: .get)
            #expect(versionReady.status == .ok)
        }
    }

    @Test func imageBytesGiveWhatV1ClassifyAndEmbedGive() async throws {
        let jpegs = try Self.jpegs.map(Fixture.sampleBytes)
        try await Fixture.withServer(try Fixture.configuration()) { client, _ in
            for head in ["imagenet", "pets"] {
                let expected = try await v1Scores(client, head: head, images: jpegs)
                let embeddings = try await v1Embeddings(client, images: jpegs)
                // JSON (base64 elements) and binary tensor data, in and out, give the same numbers.
                for binary in [false, true] {
                    let request = InferenceRequestBody(inputs: [.bytes("image", jpegs, binary: binary)], binaryOutputs: binary)
                    let response = try await request.send(client, model: head)
                    #expect(response.status == .ok)
                    #expect(response.model == head)
                    let probabilities = try response.floats("probabilities")
                    #expect(response.shape("probabilities") == [2, expected[0].probabilities.count])
                    for (i, want) in expected.enumerated() {
                        let got = Array(probabilities[(i * want.probabilities.count)..<((i + 1) * want.probabilities.count)])
                        #expect(maxDifference(got, want.probabilities) < 1e-5, "\(head) image \(i) binary \(binary)")
                    }
                    let features = try response.floats("features")
                    #expect(response.shape("features") == [2, 1280])
                    #expect(maxDifference(features, embeddings.flatMap { $0 }) < 1e-5)
                    if head == "pets" {
                        let scores = try response.floats("ood_score")
                        #expect(maxDifference(scores, expected.map { $0.oodScore ?? .nan }) < 1e-4)
                        #expect(try response.bools("unknown") == expected.map { $0.unknown ?? false })
                    } else {
                        #expect(response.output("ood_score") == nil)
                    }
                }
            }
        }
    }

    @Test func classificationGivesTheTopLabelsAsBytes() async throws {
        let jpegs = try Self.jpegs.map(Fixture.sampleBytes)
        try await Fixture.withServer(try Fixture.configuration()) { client, _ in
            let expected = try await v1Scores(client, head: "imagenet", images: jpegs)
            for binary in [false, true] {
                var request = InferenceRequestBody(inputs: [.bytes("image", jpegs, binary: true)])
                request.outputs = [#"{"name": "probabilities", "parameters": {"classification": 3, "binary_data": \#(binary)}}"#]
                let response = try await request.send(client, model: "imagenet")
                #expect(response.status == .ok)
                #expect(response.shape("probabilities") == [2, 3])
                #expect(response.output("features") == nil)
                let entries = try response.strings("probabilities")
                let labels = try ImageNetLabels.load()
                let want = expected.flatMap { score in
                    score.probabilities.withUnsafeBufferPointer { largestEntries($0, k: 3) }.map { (index: $0.index, score: $0.score) }
                }
                #expect(entries.count == 6)
                for (entry, (index, score)) in zip(entries, want) {
                    let fields = entry.split(separator: ":", maxSplits: 2).map(String.init)
                    #expect(fields.count == 3)
                    #expect(abs((Float(fields[0]) ?? -1) - score) < 1e-5)
                    #expect(Int(fields[1]) == index)
                    #expect(fields[2] == labels.label(index))
                }
                #expect(entries.first?.hasSuffix(":missile") == true)
            }
        }
    }

    @Test func preprocessedPixelsGiveWhatV1ClassifyGives() async throws {
        let encoder = try Fixture.backbone.get()
        let jpegs = try Self.jpegs.map(Fixture.sampleBytes)
        // The network inputs the server itself makes, as [N, 3, 224, 224].
        let size = encoder.inputSize, plane = size * size
        var pixels = [Float](repeating: 0, count: jpegs.count * 3 * plane)
        for (i, jpeg) in jpegs.enumerated() {
            var hwc = [Float](repeating: 0, count: encoder.inputFloats)
            try hwc.withUnsafeMutableBufferPointer {
                try encoder.prepare(.bytes(jpeg, name: "\(i)"), views: [encoder.plainView], into: $0.baseAddress!)
            }
            for p in 0..<plane { for c in 0..<3 { pixels[(i * 3 + c) * plane + p] = hwc[p * 3 + c] } }
        }
        let tensor = pixels
        try await Fixture.withServer(try Fixture.configuration()) { client, _ in
            for head in ["imagenet", "pets"] {
                let expected = try await v1Scores(client, head: head, images: jpegs)
                for binary in [false, true] {
                    var request = InferenceRequestBody(inputs: [.fp32("pixels", shape: [2, 3, size, size], tensor, binary: binary)],
                                                       binaryOutputs: binary)
                    request.outputs = [#"{"name": "probabilities"}"#]
                    let response = try await request.send(client, model: head)
                    #expect(response.status == .ok)
                    let probabilities = try response.floats("probabilities")
                    let want = expected.flatMap(\.probabilities)
                    // The plain view is the same tensor; the pets head's test-time flip mirrors the tensor
                    // where the decoder path mirrors the image before resizing (a resampling difference).
                    #expect(maxDifference(probabilities, want) < (head == "imagenet" ? 1e-5 : 2e-2), "\(head) binary \(binary)")
                }
            }
        }
    }

    @Test func binaryRequestsAreSplitByTheirDeclaredSizes() throws {
        let header = #"{"id": "r1", "inputs": [{"name": "a", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 11}}, "#
            + #"{"name": "b", "datatype": "FP32", "shape": [1, 2], "parameters": {"binary_data_size": 8}}, "#
            + #"{"name": "c", "datatype": "FP32", "shape": [3], "data": [[1], [2.5], [-3]]}], "#
            + #""outputs": [{"name": "x", "parameters": {"binary_data": true, "classification": 2}}, {"name": "y"}], "#
            + #""parameters": {"binary_data_output": false}}"#
        let bytesTensor: [UInt8] = [3, 0, 0, 0] + Array("abc".utf8) + [0, 0, 0, 0]
        let floatTensor = [Float(1.5), -2].flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
        let body = Array(header.utf8) + bytesTensor + floatTensor
        let document = try InferenceRequestDocument.parse(body, headerLength: String(header.utf8.count))
        #expect(document.id == "r1")
        #expect(document.inputs.map(\.name) == ["a", "b", "c"])
        #expect(try document.inputs[0].byteStrings() == [Array("abc".utf8), []])
        #expect(try document.inputs[1].floats() == [1.5, -2])
        #expect(try document.inputs[2].floats() == [1, 2.5, -3])
        #expect(document.outputs?.map(\.name) == ["x", "y"])
        #expect(document.outputs?.map(\.binary) == [true, false])
        #expect(document.outputs?.map(\.classification) == [2, nil])

        // Sizes that do not add up to the body, and tensors whose data do not fill their shape.
        #expect(throws: ServiceError.badRequest("1 bytes after the JSON header are not claimed by any input's binary_data_size")) {
            try InferenceRequestDocument.parse(body + [0], headerLength: String(header.utf8.count))
        }
        #expect(throws: ServiceError.badRequest("input 'b' declares binary_data_size 8; 7 bytes of binary data remain")) {
            try InferenceRequestDocument.parse(Array(body.dropLast()), headerLength: String(header.utf8.count))
        }
        #expect(throws: ServiceError.badRequest("the first 10 bytes (Inference-Header-Content-Length) are not a JSON object")) {
            try InferenceRequestDocument.parse(body, headerLength: "10")
        }
        let shortHeader = #"{"inputs": [{"name": "b", "datatype": "FP32", "shape": [2, 2], "parameters": {"binary_data_size": 8}}]}"#
        let short = try InferenceRequestDocument.parse(Array(shortHeader.utf8) + floatTensor, headerLength: String(shortHeader.utf8.count))
        #expect(throws: ServiceError.badRequest("input 'b' has 8 bytes of binary data; its shape [2, 2] of FP32 takes 16")) { try short.inputs[0].floats() }
        let truncated = InferenceInputTensor(name: "a", datatype: "BYTES", shape: [1], source: .binary([9, 0, 0, 0, 1, 2][...]))
        #expect(throws: ServiceError.badRequest("input 'a' element 0 declares 9 bytes; 2 remain")) { try truncated.byteStrings() }
    }

    @Test func binaryResponsesCarryTheHeaderLengthAndLittleEndianData() {
        let document = InferenceResponseDocument(model: "m", version: "1", id: nil, outputs: [
            InferenceOutputTensor(name: "p", shape: [1, 2], values: .fp32([0.25, -1]), binary: true),
            InferenceOutputTensor(name: "l", shape: [1, 1], values: .bytes(["0.5:3:cat"]), binary: true),
            InferenceOutputTensor(name: "u", shape: [1], values: .bool([true]), binary: false),
        ])
        let (bytes, headerLength) = document.encoded()
        let length = headerLength ?? -1
        #expect(document.response.headers[.contentType] == "application/octet-stream")
        #expect(document.response.headers[InferenceTensors.headerLengthField] == String(length))
        let header = String(decoding: bytes.prefix(length), as: UTF8.self)
        #expect(header == #"{"model_name": "m", "model_version": "1", "outputs": [{"name": "p", "datatype": "FP32", "shape": [1, 2], "parameters": {"binary_data_size": 8}}, "#
                + #"{"name": "l", "datatype": "BYTES", "shape": [1, 1], "parameters": {"binary_data_size": 13}}, {"name": "u", "datatype": "BOOL", "shape": [1], "data": [true]}]}"#)
        #expect(Array(bytes.dropFirst(length)) == [0, 0, 0x80, 0x3E, 0, 0, 0x80, 0xBF, 9, 0, 0, 0] + Array("0.5:3:cat".utf8))
    }

    @Test func badRequestsAreAnsweredInTheProtocolsErrorDocument() async throws {
        let limits = RequestLimits(maxImagesPerRequest: 2)
        let jpeg = try Fixture.sampleBytes("rocket.jpg")
        try await Fixture.withServer(try Fixture.configuration(limits: limits)) { client, _ in
            func expectError(_ request: InferenceRequestBody, model: String = "imagenet", _ status: HTTPResponse.Status, _ message: String,
                             sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let response = try await request.send(client, model: model)
                #expect(response.status == status, sourceLocation: sourceLocation)
                #expect(response.response.headers[.contentType] == "application/json; charset=utf-8", sourceLocation: sourceLocation)
                #expect(response.response.object["error"] as? String == message, sourceLocation: sourceLocation)
            }
            // Wrong datatype and wrong shape.
            try await expectError(InferenceRequestBody(inputs: [.fp32("image", shape: [1], [0], binary: false)]), .badRequest,
                                  "input 'image' has datatype FP32; it must be BYTES")
            try await expectError(InferenceRequestBody(inputs: [.fp32("pixels", shape: [1, 3, 8, 8], [Float](repeating: 0, count: 192), binary: true)]),
                                  .badRequest, "input 'pixels' has shape [1, 3, 8, 8]; it must be [N, 3, 224, 224] with N >= 1")
            try await expectError(InferenceRequestBody(inputs: [.bytes("image", [jpeg], binary: true, shape: [1, 2])]), .badRequest,
                                  "input 'image' has shape [1, 2]; it must be [N] or [N, 1] with N >= 1")
            try await expectError(InferenceRequestBody(inputs: [.bytes("image", [jpeg, jpeg], binary: true, shape: [1])]), .badRequest,
                                  "input 'image' has 2 elements in its binary data; its shape [1] holds 1")
            try await expectError(InferenceRequestBody(inputs: [.bytes("pixels", [jpeg], binary: true)]), .badRequest,
                                  "input 'pixels' has datatype BYTES; it must be FP32")
            try await expectError(InferenceRequestBody(inputs: [.bytes("photo", [jpeg], binary: true)]), .badRequest,
                                  "model 'imagenet' has no input 'photo'; inputs: image, pixels")
            try await expectError(InferenceRequestBody(inputs: [.bytes("image", [jpeg], binary: true), .bytes("image", [jpeg], binary: true)]),
                                  .badRequest, "send one input: 'image' (BYTES, encoded JPEG, PNG, WebP, TIFF or HEIF images) or 'pixels' (FP32 [N, 3, H, W], preprocessed); got 2")
            var unknownOutput = InferenceRequestBody(inputs: [.bytes("image", [jpeg], binary: true)])
            unknownOutput.outputs = [#"{"name": "ood_score"}"#]
            try await expectError(unknownOutput, .badRequest, "model 'imagenet' has no output 'ood_score'; outputs: probabilities, features")
            // Bad image bytes: the decoder's message names the element.
            try await expectError(InferenceRequestBody(inputs: [.bytes("image", [jpeg, Array("<html>".utf8)], binary: true)]), .unprocessableContent,
                                  "image[1]: not a JPEG, PNG, WebP, TIFF or HEIF image (starts with 3C 68 74 6D)")
            try await expectError(InferenceRequestBody(inputs: [.json("image", "BYTES", shape: [1], #"["not base64!"]"#)]), .badRequest,
                                  "input 'image' element 0 is not a base64 string (in JSON, BYTES elements carry each encoded image as base64 text; or send them as binary data)")
            // Limits apply as on /v1.
            try await expectError(InferenceRequestBody(inputs: [.bytes("image", [jpeg, jpeg, jpeg], binary: true)]), .contentTooLarge,
                                  "3 images in one request; the limit is 2")
            // Unknown model and version: 404.
            try await expectError(InferenceRequestBody(inputs: [.bytes("image", [jpeg], binary: true)]), model: "nope", .notFound,
                                  "no head named 'nope'; loaded: imagenet, pets")
            try await expectError(InferenceRequestBody(inputs: [.bytes("image", [jpeg], binary: true)]), model: "pets/versions/2", .notFound,
                                  "model 'pets' has no version '2'; versions: 1")
            let metadata = try await client.execute(uri: "/v2/models/nope", method: .get)
            #expect(metadata.status == .notFound)
            #expect(metadata.object["error"] as? String == "no head named 'nope'; loaded: imagenet, pets")
            let route = try await client.execute(uri: "/v2/repository/index", method: .post)
            #expect(route.status == .notFound)
            #expect(route.object["error"] as? String == "no route for POST /v2/repository/index")
            // A route asked with a method it does not answer: 405 with Allow.
            let method = try await client.execute(uri: "/v2/health/live", method: .post)
            #expect(method.status == .methodNotAllowed)
            #expect(method.headers[.allow] == "GET")
            #expect(method.object["error"] as? String == "/v2/health/live does not answer POST; it answers GET")
            let infer = try await client.execute(uri: "/v2/models/pets/versions/1/infer", method: .get)
            #expect(infer.status == .methodNotAllowed)
            #expect(infer.headers[.allow] == "POST")
            // The headtune routes keep their own document.
            let v1 = try await client.execute(uri: "/v1/nope", method: .get)
            #expect(v1.errorCode == "not_found")
            // Errors are counted under the route template, as /v1's are.
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.text.contains(#"headtune_http_requests_total{route="/v2/models/{model}/infer",method="POST",status="400"} 9"#))
        }
    }

    /// The spec kept in the repository and the router describe the same operations.
    @Test func theOpenAPIDocumentDescribesEveryRouteAndNoOther() async throws {
        let bytes = try #require(OpenAPIDocument.bytes)
        let spec = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(spec["openapi"] as? String == "3.1.0")
        let paths = try #require(spec["paths"] as? [String: [String: Any]])
        let methods: Set = ["get", "put", "post", "delete", "patch", "head", "options"]
        let documented = Set(paths.flatMap { path, item in item.keys.filter(methods.contains).map { "\($0.uppercased()) \(path)" } })
        let host = ModelHost(specification: .init(), batching: .init(), metrics: ServiceMetrics(), logger: Fixture.logger)
        let routed = Set(buildRouter(host: host, metrics: ServiceMetrics(), limits: .init()).routes.map { "\($0.method) \($0.path)" })
        #expect(routed.subtracting(documented).sorted() == [], "routes missing from Resources/openapi.json")
        #expect(documented.subtracting(routed).sorted() == [], "spec paths without a route")
        #expect(routed.contains("POST /v2/models/{model}/versions/{version}/infer"))

        try await Fixture.withServer(try Fixture.configuration()) { client, _ in
            let served = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(served.status == .ok)
            #expect(Array(buffer: served.body) == bytes)
        }
    }
}

// MARK: - Helpers

/// What `/v1/classify` says about each image (all classes).
private func v1Scores(_ client: any TestClientProtocol, head: String, images: [[UInt8]]) async throws -> [HeadScore] {
    var form = Multipart()
    for (i, image) in images.enumerated() { form.parts.append(("image", "\(i).jpg", "image/jpeg", image)) }
    let response = try await client.execute(uri: "/v1/classify?head=\(head)&top_k=100000", method: .post,
                                            headers: [.contentType: form.contentType], body: form.body)
    #expect(response.status == .ok)
    return response.results.map { record in
        let predictions = record["predictions"] as? [[String: Any]] ?? []
        var probabilities = [Float](repeating: .nan, count: predictions.count)
        for prediction in predictions {
            probabilities[prediction["index"] as? Int ?? 0] = Float(prediction["score"] as? Double ?? .nan)
        }
        return HeadScore(probabilities: probabilities, oodScore: (record["ood_score"] as? Double).map(Float.init),
                         unknown: record["unknown"] as? Bool)
    }
}

/// What `/v1/embed/image` gives for each image.
private func v1Embeddings(_ client: any TestClientProtocol, images: [[UInt8]]) async throws -> [[Float]] {
    var form = Multipart()
    for (i, image) in images.enumerated() { form.parts.append(("image", "\(i).jpg", "image/jpeg", image)) }
    let response = try await client.execute(uri: "/v1/embed/image", method: .post, headers: [.contentType: form.contentType], body: form.body)
    return response.results.map { ($0["embedding"] as? [Double] ?? []).map(Float.init) }
}

private func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count, !a.isEmpty else { return .infinity }
    return zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
}

/// An inference request as the stock clients write it: JSON, or JSON and binary tensor data.
struct InferenceRequestBody {
    struct Input {
        var json: String
        var binary: [UInt8]?

        static func bytes(_ name: String, _ elements: [[UInt8]], binary: Bool, shape: [Int]? = nil) -> Input {
            let shape = shape ?? [elements.count]
            if binary {
                let data = elements.flatMap { element in withUnsafeBytes(of: UInt32(element.count).littleEndian, Array.init) + element }
                return Input(json: #"{"name": "\#(name)", "datatype": "BYTES", "shape": \#(shape), "parameters": {"binary_data_size": \#(data.count)}}"#, binary: data)
            }
            let strings = elements.map { "\"\(Data($0).base64EncodedString())\"" }.joined(separator: ", ")
            return json(name, "BYTES", shape: shape, "[\(strings)]")
        }

        static func fp32(_ name: String, shape: [Int], _ values: [Float], binary: Bool) -> Input {
            if binary {
                let data = values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
                return Input(json: #"{"name": "\#(name)", "datatype": "FP32", "shape": \#(shape), "parameters": {"binary_data_size": \#(data.count)}}"#, binary: data)
            }
            return json(name, "FP32", shape: shape, "[" + values.map { "\($0)" }.joined(separator: ", ") + "]")
        }

        static func json(_ name: String, _ datatype: String, shape: [Int], _ data: String) -> Input {
            Input(json: #"{"name": "\#(name)", "datatype": "\#(datatype)", "shape": \#(shape), "data": \#(data)}"#)
        }
    }

    var inputs: [Input]
    var binaryOutputs = false
    /// JSON objects of the `outputs` array; nil: every output.
    var outputs: [String]?

    func send(_ client: any TestClientProtocol, model: String) async throws -> InferenceAnswer {
        var header = #"{"id": "test", "parameters": {"binary_data_output": \#(binaryOutputs)}, "inputs": ["#
            + inputs.map(\.json).joined(separator: ", ") + "]"
        if let outputs { header += #", "outputs": ["# + outputs.joined(separator: ", ") + "]" }
        header += "}"
        let binary = inputs.flatMap { $0.binary ?? [] }
        var headers: HTTPFields = [.contentType: binary.isEmpty ? "application/json" : "application/octet-stream"]
        if !binary.isEmpty { headers[InferenceTensors.headerLengthField] = String(header.utf8.count) }
        let response = try await client.execute(uri: "/v2/models/\(model)/infer", method: .post, headers: headers,
                                                body: ByteBuffer(bytes: Array(header.utf8) + binary))
        return InferenceAnswer(response: response)
    }
}

/// An inference response, read as a client reads it (binary outputs after the JSON header).
struct InferenceAnswer {
    let response: TestResponse
    let header: [String: Any]
    let binary: [UInt8]

    init(response: TestResponse) {
        self.response = response
        let bytes = Array(buffer: response.body)
        let length = response.headers[InferenceTensors.headerLengthField].flatMap(Int.init) ?? bytes.count
        header = (try? JSONSerialization.jsonObject(with: Data(bytes.prefix(length)))) as? [String: Any] ?? [:]
        binary = Array(bytes.dropFirst(length))
    }

    var status: HTTPResponse.Status { response.status }
    var model: String? { header["model_name"] as? String }

    func output(_ name: String) -> [String: Any]? {
        (header["outputs"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    func shape(_ name: String) -> [Int]? { output(name)?["shape"] as? [Int] }

    /// The output's binary data: after the binary data of the outputs before it.
    private func binaryData(_ name: String) -> [UInt8]? {
        var offset = 0
        for output in header["outputs"] as? [[String: Any]] ?? [] {
            let size = (output["parameters"] as? [String: Any])?["binary_data_size"] as? Int
            if output["name"] as? String == name { return size.map { Array(binary[offset..<(offset + $0)]) } }
            offset += size ?? 0
        }
        return nil
    }

    func floats(_ name: String) throws -> [Float] {
        if let data = binaryData(name) {
            return stride(from: 0, to: data.count, by: 4).map { i in
                Float(bitPattern: UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24)
            }
        }
        return try #require(output(name)?["data"] as? [Any]).map { Float(($0 as? Double) ?? .nan) }
    }

    func bools(_ name: String) throws -> [Bool] {
        if let data = binaryData(name) { return data.map { $0 != 0 } }
        return try #require(output(name)?["data"] as? [Bool])
    }

    func strings(_ name: String) throws -> [String] {
        if var data = binaryData(name)?[...] {
            var strings: [String] = []
            while data.count >= 4 {
                let length = Int(data[data.startIndex]) | Int(data[data.startIndex + 1]) << 8
                    | Int(data[data.startIndex + 2]) << 16 | Int(data[data.startIndex + 3]) << 24
                data = data.dropFirst(4)
                strings.append(String(decoding: data.prefix(length), as: UTF8.self))
                data = data.dropFirst(length)
            }
            return strings
        }
        return try #require(output(name)?["data"] as? [String])
    }
}
