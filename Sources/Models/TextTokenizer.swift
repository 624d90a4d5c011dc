/// Text -> token ids for a text encoder: the model's special tokens added and the result truncated to
/// `maxLength` as the model's reference tokenizer does it.
public protocol TextTokenizer: Sendable {
    /// Most tokens `encode` returns (special tokens included).
    var maxLength: Int { get }
    /// The id that pads a batch of shorter sequences (masked out, so its value only has to be valid).
    var paddingID: Int32 { get }
    func encode(_ text: String) -> [Int32]
}
