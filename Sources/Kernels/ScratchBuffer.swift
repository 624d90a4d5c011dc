/// A zero-initialized float buffer, 64-byte aligned for the vector kernels, owned by a workspace:
/// allocated once when the workspace is planned and freed with it, so inference allocates nothing.
public final class ScratchBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        self.count = max(count, 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: self.count * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.initializeMemory(as: Float.self, repeating: 0, count: self.count)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}
