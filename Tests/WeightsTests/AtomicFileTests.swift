import Foundation
import Testing
@testable import Weights

@Suite struct AtomicFileTests {
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "headtune-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func replacesWholeAndLeavesNoTemporaryFile() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/out.bin"
        try AtomicFile.write(Data("first".utf8), to: path)
        try AtomicFile.write(Data("second".utf8), to: path)
        #expect(FileManager.default.contents(atPath: path) == Data("second".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.bin"])
    }

    @Test func aDiscardedWriteKeepsThePreviousFile() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/out.txt"
        try AtomicFile.write(Data("kept".utf8), to: path)
        let writer = try AtomicFile.Writer(path: path)
        try writer.handle.write(contentsOf: Data("half of a new".utf8))
        writer.discard()
        #expect(FileManager.default.contents(atPath: path) == Data("kept".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.txt"])
    }

    @Test func aKeptPartialFileIsAppendedToOnResume() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/records.jsonl", partial = path + ".partial"
        let first = try AtomicFile.Writer(path: path, temporaryPath: partial)
        try first.handle.write(contentsOf: Data("a\n".utf8))
        first.keepPartial()
        #expect(!FileManager.default.fileExists(atPath: path))
        let second = try AtomicFile.Writer(path: path, temporaryPath: partial, truncate: false)
        try second.handle.write(contentsOf: Data("b\n".utf8))
        try second.commit()
        #expect(FileManager.default.contents(atPath: path) == Data("a\nb\n".utf8))
        #expect(!FileManager.default.fileExists(atPath: partial))
    }

    @Test func aMissingDirectoryIsNamedBeforeAnyWork() throws {
        #expect(throws: AtomicFile.Failure(path: "/no/such/dir/x.head", reason: "no such directory /no/such/dir")) {
            try AtomicFile.checkWritable("/no/such/dir/x.head")
        }
        // A relative path is named as given; a bare file name is in ".", which exists.
        #expect(throws: AtomicFile.Failure(path: "nodir/x.head", reason: "no such directory nodir")) {
            try AtomicFile.checkWritable("nodir/x.head")
        }
        try AtomicFile.checkWritable("x-\(UUID().uuidString).head")
        #expect(throws: AtomicFile.Failure.self) { try AtomicFile.write(Data(), to: "/no/such/dir/x.head") }
        try AtomicFile.checkWritable(NSTemporaryDirectory() + "x.head")
    }
}
