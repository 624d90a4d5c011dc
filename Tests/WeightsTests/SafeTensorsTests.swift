import Foundation
import Testing
@testable import Weights

private typealias Fixture = SafeTensorsFixture

@Suite("SafeTensors reading")
struct SafeTensorsReadingTests {
    static let matrix: [Float] = [1, -2, 3.5, 0, 1e-7, 65504]

    @Test("values, shapes, dtypes and metadata round-trip")
    func roundTrip() throws {
        try Fixture.withDirectory { directory in
            let url = try Fixture.write([
                .init(name: "w", dtype: "F32", shape: [2, 3], bytes: Fixture.bytes(Self.matrix)),
                .init(name: "count", dtype: "I64", shape: [], bytes: Fixture.bytes([Int64(-42)])),
                .init(name: "empty", dtype: "F32", shape: [0, 4], bytes: []),
            ], metadata: ["format": "pt", "source": "test"], to: directory.appendingPathComponent("a.safetensors"))

            let file = try SafeTensors(contentsOf: url)
            #expect(file.tensorNames == ["count", "empty", "w"])
            #expect(file.metadata == ["format": "pt", "source": "test"])
            #expect(try file.info("w") == TensorInfo(name: "w", dtype: .f32, shape: [2, 3], byteRange: 0..<24))
            #expect(try file.info("count").elementCount == 1)
            #expect(try file.floats("w") == Self.matrix)
            #expect(try file.tensor("w", shape: [2, 3]) == Self.matrix)
            #expect(try file.int64s("count") == [-42])
            #expect(try file.floats("empty") == [])
            let viaBuffer = try file.withFloatBuffer("w", shape: [2, 3]) { Array($0) }
            #expect(viaBuffer == Self.matrix)
        }
    }

    @Test("the F32 buffer is zero-copy when aligned and a correct copy when not")
    func alignment() throws {
        try Fixture.withDirectory { directory in
            let tensors: [Fixture.Tensor] = [
                .init(name: "a_pad", dtype: "U8", shape: [2], bytes: [7, 9]),  // pushes "b" to data offset 2
                .init(name: "b", dtype: "F32", shape: [6], bytes: Fixture.bytes(Self.matrix)),
            ]
            let aligned = try SafeTensors(contentsOf: Fixture.write(
                [tensors[1]], to: directory.appendingPathComponent("aligned.safetensors")))
            let start = try aligned.withRawBytes("b") { $0.baseAddress }
            let zeroCopy = try aligned.withFloatBuffer("b") { UnsafeRawPointer($0.baseAddress) }
            #expect(zeroCopy == start)

            let misaligned = try SafeTensors(contentsOf: Fixture.write(
                tensors, to: directory.appendingPathComponent("misaligned.safetensors")))
            let rawStart = try misaligned.withRawBytes("b") { Int(bitPattern: $0.baseAddress) }
            #expect(rawStart % 4 == 2)
            #expect(try misaligned.withFloatBuffer("b") { Array($0) } == Self.matrix)
            #expect(try misaligned.int64s("a_pad") == [7, 9])
        }
    }

    @Test("F16, BF16 and F64 are converted to Float")
    func conversions() throws {
        try Fixture.withDirectory { directory in
            let half: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7C00, 0x3555, 0x0400]
            let brain: [UInt16] = [0x3F80, 0xC040, 0x7F80, 0x4049]
            let double: [Double] = [0.1, -1e300, 3]
            let doubleBytes = double.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
            let url = try Fixture.write([
                .init(name: "h", dtype: "F16", shape: [8], bytes: Fixture.bytes(half)),
                .init(name: "bf", dtype: "BF16", shape: [2, 2], bytes: Fixture.bytes(brain)),
                .init(name: "d", dtype: "F64", shape: [3], bytes: doubleBytes),
            ], to: directory.appendingPathComponent("c.safetensors"))
            let file = try SafeTensors(contentsOf: url)
            #expect(try file.floats("h") == [1, -2, 65504, 0x1p-24, -0.0, .infinity, 0.333251953125, 0x1p-14])
            #expect(try file.floats("h")[4].sign == .minus)
            #expect(try file.floats("bf") == [1, -3, .infinity, 3.140625])
            #expect(try file.floats("d") == [Float(0.1), -.infinity, 3])
        }
    }

    #if !(os(macOS) && arch(x86_64))
    @Test("half -> float matches Float16 for all 65,536 bit patterns")
    func halfExhaustive() {
        var mismatches = 0
        for bits in 0...UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let found = SafeTensors.float(half: bits)
            if expected.isNaN ? !found.isNaN : expected.bitPattern != found.bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }
    #endif

    @Test("accessors name the file and key when the tensor is missing, mis-shaped or mis-typed")
    func accessErrors() throws {
        try Fixture.withDirectory { directory in
            let url = try Fixture.write([
                .init(name: "w", dtype: "F32", shape: [2, 3], bytes: Fixture.bytes(Self.matrix)),
                .init(name: "ids", dtype: "I64", shape: [1], bytes: Fixture.bytes([Int64(5)])),
            ], to: directory.appendingPathComponent("m.safetensors"))
            let file = try SafeTensors(contentsOf: url)
            let path = url.path

            #expect(throws: WeightsError.missingTensor(file: path, key: "nope")) { try file.floats("nope") }
            #expect(throws: WeightsError.shapeMismatch(file: path, key: "w", expected: [3, 2], found: [2, 3])) {
                try file.tensor("w", shape: [3, 2])
            }
            #expect(throws: WeightsError.shapeMismatch(file: path, key: "w", expected: [6], found: [2, 3])) {
                try file.withFloatBuffer("w", shape: [6]) { $0.count }
            }
            #expect(throws: WeightsError.dtypeMismatch(file: path, key: "ids", found: .i64, wanted: "Float")) {
                try file.floats("ids")
            }
            #expect(throws: WeightsError.self) { try file.withFloatBuffer("ids") { $0.count } }
            #expect(throws: WeightsError.self) { try file.int64s("w") }

            #expect(WeightsError.shapeMismatch(file: path, key: "w", expected: [3, 2], found: [2, 3]).localizedDescription
                == "\(path): w: expected shape [3, 2], found [2, 3]")
            #expect(WeightsError.missingTensor(file: path, key: "nope").localizedDescription == "\(path): no tensor named nope")
        }
    }
}

@Suite("SafeTensors header validation")
struct SafeTensorsValidationTests {
    /// Writes `header` + `data` and returns the error opening it throws (nil when it opens).
    private func openError(header: String, data: [UInt8] = Array(repeating: 0, count: 8),
                           declaredLength: UInt64? = nil, headerBytes: [UInt8]? = nil) throws -> (WeightsError?, String) {
        try Fixture.withDirectory { directory in
            let url = try Fixture.writeRaw(header: header, headerBytes: headerBytes, data: data,
                                           to: directory.appendingPathComponent("bad.safetensors"),
                                           declaredLength: declaredLength)
            do {
                _ = try SafeTensors(contentsOf: url)
                return (nil, url.path)
            } catch let error as WeightsError {
                return (error, url.path)
            }
        }
    }

    private func entry(_ name: String = "x", dtype: String = "F32", shape: String = "[2]", offsets: String = "[0,8]") -> String {
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":\(offsets)}"
    }

    @Test("a valid minimal header opens")
    func validBaseline() throws {
        let (error, _) = try openError(header: "{\(entry())}")
        #expect(error == nil)
    }

    @Test("files shorter than the length field are truncated")
    func tooShort() throws {
        try Fixture.withDirectory { directory in
            let url = directory.appendingPathComponent("short.safetensors")
            try Data([1, 2, 3, 4, 5]).write(to: url)
            #expect(throws: WeightsError.truncated(file: url.path, size: 5)) { try SafeTensors(contentsOf: url) }
            let empty = directory.appendingPathComponent("empty.safetensors")
            try Data().write(to: empty)
            #expect(throws: WeightsError.truncated(file: empty.path, size: 0)) { try SafeTensors(contentsOf: empty) }
        }
    }

    @Test("a header length past the end of the file is rejected")
    func headerPastEOF() throws {
        let (error, path) = try openError(header: "{}", data: [], declaredLength: 1000)
        #expect(error == .headerPastEOF(file: path, length: 1000, fileSize: 16))
    }

    @Test("an absurd header length is rejected before anything is read")
    func headerTooLarge() throws {
        let (error, path) = try openError(header: "{}", data: [], declaredLength: 1 << 40)
        #expect(error == .headerTooLarge(file: path, length: 1 << 40, limit: SafeTensors.maxHeaderLength))
    }

    @Test("malformed JSON, non-objects, duplicates and invalid UTF-8 are rejected", arguments: [
        "{\"x\": ", "[1,2]", "{\"x\":1,}", "{\"x\":{\"dtype\":\"F32\"} trailing", "{'x':1}", "",
    ])
    func badJSON(header: String) throws {
        let (error, path) = try openError(header: header)
        guard case let .headerNotJSON(file, _)? = error else {
            Issue.record("expected headerNotJSON for \(header), got \(String(describing: error))")
            return
        }
        #expect(file == path)
    }

    @Test("duplicate tensor names are rejected, not silently merged")
    func duplicateKeys() throws {
        let (error, _) = try openError(header: "{\(entry()),\(entry(offsets: "[0,8]"))}")
        guard case let .headerNotJSON(_, detail)? = error else {
            Issue.record("expected headerNotJSON, got \(String(describing: error))")
            return
        }
        #expect(detail.contains("duplicate key \"x\""))
    }

    @Test("a header that is not UTF-8 is rejected")
    func notUTF8() throws {
        let (error, path) = try openError(header: "", headerBytes: Array("{\"x".utf8) + [0xFF, 0xFE] + Array("\":1}".utf8))
        #expect(error == .headerNotUTF8(file: path))
    }

    @Test("unknown dtypes are named")
    func unknownDType() throws {
        let (error, path) = try openError(header: "{\(entry(dtype: "F8_E4M3"))}")
        #expect(error == .unknownDType(file: path, key: "x", dtype: "F8_E4M3"))
        #expect(error?.localizedDescription.contains("unknown dtype \"F8_E4M3\"") == true)
    }

    @Test("negative, fractional and overflowing shapes are rejected", arguments: [
        "[-1]", "[1.5]", "[\"2\"]", "[true]", "3", "[4611686018427387904, 4]", "[99999999999999999999]",
    ])
    func badShape(shape: String) throws {
        let (error, path) = try openError(header: "{\(entry(shape: shape))}")
        guard case let .invalidShape(file, key, _)? = error else {
            Issue.record("expected invalidShape for \(shape), got \(String(describing: error))")
            return
        }
        #expect(file == path && key == "x")
    }

    @Test("offsets must be two ordered non-negative integers", arguments: ["[8,0]", "[-4,4]", "[0]", "[0,8,9]", "[0,8.0]", "null"])
    func invalidOffsets(offsets: String) throws {
        let (error, _) = try openError(header: "{\(entry(offsets: offsets))}")
        guard case .invalidOffsets(_, "x", _)? = error else {
            Issue.record("expected invalidOffsets for \(offsets), got \(String(describing: error))")
            return
        }
    }

    @Test("offsets past the data section are out of range")
    func offsetsOutOfRange() throws {
        let (error, path) = try openError(header: "{\(entry(offsets: "[4,12]"))}")
        #expect(error == .offsetsOutOfRange(file: path, key: "x", begin: 4, end: 12, dataSize: 8))
    }

    @Test("byte length must equal elements x dtype size")
    func byteLengthMismatch() throws {
        let (error, path) = try openError(header: "{\(entry(shape: "[1]"))}")
        #expect(error == .byteLengthMismatch(file: path, key: "x", expected: 4, found: 8))
    }

    @Test("overlapping tensors are rejected")
    func overlap() throws {
        let header = "{\(entry("a", shape: "[2]", offsets: "[0,8]")),\(entry("b", shape: "[1]", offsets: "[4,8]"))}"
        let (error, path) = try openError(header: header)
        #expect(error == .overlappingTensors(file: path, first: "a", second: "b"))
    }

    @Test("metadata must be a string map; entries must have only known fields")
    func metadataAndFields() throws {
        let (metadataError, path) = try openError(header: "{\"__metadata__\":{\"n\":1},\(entry())}")
        #expect(metadataError == .invalidMetadata(file: path, reason: "value of n is not a string"))
        let (fieldError, fieldPath) = try openError(header: "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}")
        #expect(fieldError == .invalidEntry(file: fieldPath, key: "x", reason: "unexpected field \"extra\""))
        let (missingError, missingPath) = try openError(header: "{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}")
        #expect(missingError == .invalidEntry(file: missingPath, key: "x", reason: "dtype missing or not a string"))
    }

    @Test("a file cut short inside its data is detected")
    func truncatedData() throws {
        try Fixture.withDirectory { directory in
            let url = try Fixture.write([
                .init(name: "a", dtype: "F32", shape: [2], bytes: Fixture.bytes([1, 2] as [Float])),
                .init(name: "b", dtype: "F32", shape: [3], bytes: Fixture.bytes([3, 4, 5] as [Float])),
            ], to: directory.appendingPathComponent("t.safetensors"))
            let whole = try Data(contentsOf: url)
            try whole.prefix(whole.count - 4).write(to: url)
            #expect(throws: WeightsError.offsetsOutOfRange(file: url.path, key: "b", begin: 8, end: 20, dataSize: 16)) {
                try SafeTensors(contentsOf: url)
            }
        }
    }

    @Test("a missing file is reported with its path")
    func missingFile() throws {
        let path = "/nonexistent/headtune/x.safetensors"
        #expect(throws: WeightsError.cannotOpen(file: path, reason: "No such file or directory")) {
            try SafeTensors(contentsOf: URL(fileURLWithPath: path))
        }
    }
}

@Suite("StrictJSON")
struct StrictJSONTests {
    private func parse(_ text: String) throws -> StrictJSON {
        try Array(text.utf8).withUnsafeBytes { try StrictJSON.parse($0) }
    }

    @Test("parses escapes, surrogate pairs, nesting and keeps number literals")
    func parses() throws {
        let value = try parse(#"  {"a\"b": ["\u00e9\ud83d\ude00\n", -0, 12, 1.5e3, true, false, null], "c": {}}  "#)
        #expect(value == .object([
            (key: "a\"b", value: .array([.string("é😀\n"), .number("-0"), .number("12"), .number("1.5e3"),
                                          .bool(true), .bool(false), .null])),
            (key: "c", value: .object([])),
        ]))
        #expect(StrictJSON.number("12").integer == 12)
        #expect(StrictJSON.number("1.0").integer == nil)
    }

    @Test("rejects what JSON forbids", arguments: [
        "01", "1.", "-", "\"\\x\"", "\"\\ud800\"", "\"a\u{01}\"", "[1 2]", "{\"a\" 1}", "tru", "\"open",
        String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
    ])
    func rejects(text: String) {
        #expect(throws: StrictJSON.ParseError.self) { try parse(text) }
    }
}
