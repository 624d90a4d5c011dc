/// A frozen sentence encoder as the rest of headtune sees it: token ids in, one embedding per text
/// out (pooling, projection and normalization are the model's business). Its tokenizer comes with it
/// from the registry.
public protocol TextEncoderModel: Sendable {
    /// Embedding width.
    var dimension: Int { get }
    /// Longest token sequence the network accepts.
    var maxPositions: Int { get }
    /// Buffers for up to `tokens` token rows (batch x padded length) and the threads to split work on.
    func makeSession(tokens: Int, threads: Int) -> any TextEncoderSession
}

/// Runs a `TextEncoderModel` on padded batches, reusing its workspace. One thread at a time.
public protocol TextEncoderSession: AnyObject {
    /// Token rows this session can take at once.
    var tokenCapacity: Int { get }
    /// - inputIDs, attentionMask: [batch, sequence] (mask 1 = real token, 0 = padding)
    /// - embeddings: receives [batch, dimension], L2-normalized
    func encode(inputIDs: UnsafePointer<Int32>, attentionMask: UnsafePointer<UInt8>, batch: Int, sequence: Int,
                embeddings: UnsafeMutablePointer<Float>)
}
