#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole regular file, unmapped when the object goes away (or, for bytes
/// already in memory, a private copy of them, freed instead).
///
/// Pages are loaded lazily by the kernel, so opening a large checkpoint costs nothing until a tensor is
/// read. If another process truncates the file while it is mapped, reads may fault: the asset script
/// replaces files with rename (a new inode), which leaves existing maps intact.
final class MappedFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only and never changes after init.
    let path: String
    let bytes: UnsafeRawBufferPointer
    /// The bytes are a heap copy (`init(copying:path:)`), not a mapping.
    private let isCopy: Bool

    init(path: String) throws {
        self.path = path
        isCopy = false
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WeightsError.cannotOpen(file: path, reason: Self.lastError()) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw WeightsError.cannotOpen(file: path, reason: Self.lastError()) }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw WeightsError.cannotOpen(file: path, reason: "not a regular file")
        }
        let size = Int(status.st_size)
        guard size > 0 else {  // mmap rejects length 0
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {  // MAP_FAILED
            throw WeightsError.cannotOpen(file: path, reason: "mmap failed: \(Self.lastError())")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    /// A copy of `source` standing in for a mapped file named `path` (files received in memory).
    init(copying source: UnsafeRawBufferPointer, path: String) {
        self.path = path
        isCopy = true
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count, alignment: 16)
        copy.copyMemory(from: source)
        bytes = UnsafeRawBufferPointer(copy)
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if isCopy { base.deallocate() } else { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}
