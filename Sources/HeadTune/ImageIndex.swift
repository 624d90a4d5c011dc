import Foundation
import GRDB
import Weights

/// A searchable store of image embeddings (SQLite through GRDB): per path, the file's SHA-256, the
/// backbone and text-space ids, the raw backbone outputs (1280-d features, 1000 ImageNet logits) and
/// the image's unit vector in the text space for the method it was indexed with. Re-indexing skips a
/// file whose content hash and model ids are unchanged.
public final class ImageIndex: Sendable {
    public let path: String
    private let queue: DatabaseQueue

    /// What an entry was computed with; an entry is current only if all of it matches.
    public struct Models: Sendable, Equatable {
        public var backbone: String
        public var textEncoder: String
        public var alignment: String
        public var method: ImageTextMethod

        public init(backbone: String, textEncoder: String, alignment: String, method: ImageTextMethod) {
            self.backbone = backbone
            self.textEncoder = textEncoder
            self.alignment = alignment
            self.method = method
        }
    }

    public struct Entry: Sendable {
        public var path: String
        public var embedding: [Float]
    }

    public init(path: String) throws {
        self.path = path
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(30)
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS images (
                        path TEXT PRIMARY KEY, content_sha256 TEXT NOT NULL, backbone TEXT NOT NULL,
                        text_encoder TEXT NOT NULL, alignment TEXT NOT NULL, method TEXT NOT NULL,
                        features BLOB NOT NULL, logits BLOB NOT NULL, embedding BLOB NOT NULL,
                        indexed_at REAL NOT NULL)
                    """)
            }
        } catch {
            throw HeadTuneError.indexFailed(path: path, reason: "\(error)")
        }
    }

    /// SHA-256 of a file's bytes.
    public static func contentHash(of file: String) throws -> String {
        try SHA256.hex(fileAt: file)
    }

    /// True when `file` is stored with this content hash and these models.
    public func isCurrent(path file: String, contentSHA256: String, models: Models) throws -> Bool {
        do {
            return try queue.read { db in
                try Row.fetchOne(db, sql: """
                    SELECT 1 FROM images WHERE path = ? AND content_sha256 = ? AND backbone = ? AND text_encoder = ?
                    AND alignment = ? AND method = ?
                    """, arguments: [file, contentSHA256, models.backbone, models.textEncoder, models.alignment,
                                     models.method.rawValue]) != nil
            }
        } catch {
            throw HeadTuneError.indexFailed(path: path, reason: "\(error)")
        }
    }

    public func upsert(path file: String, contentSHA256: String, models: Models, features: [Float], logits: [Float],
                       embedding: [Float]) throws {
        do {
            try queue.write { db in
                try db.execute(sql: """
                    INSERT OR REPLACE INTO images (path, content_sha256, backbone, text_encoder, alignment, method,
                        features, logits, embedding, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [file, contentSHA256, models.backbone, models.textEncoder, models.alignment,
                                     models.method.rawValue, Self.blob(features), Self.blob(logits),
                                     Self.blob(embedding), Date().timeIntervalSince1970])
            }
        } catch {
            throw HeadTuneError.indexFailed(path: path, reason: "\(error)")
        }
    }

    /// Every entry indexed with `models` (entries of other models are not comparable and are skipped).
    public func entries(models: Models) throws -> (entries: [Entry], skipped: Int) {
        do {
            return try queue.read { db in
                var entries: [Entry] = []
                var skipped = 0
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT path, backbone, text_encoder, alignment, method, embedding FROM images ORDER BY path
                    """)
                while let row = try rows.next() {
                    let current = (row["backbone"] as String) == models.backbone
                        && (row["text_encoder"] as String) == models.textEncoder
                        && (row["alignment"] as String) == models.alignment
                        && (row["method"] as String) == models.method.rawValue
                    guard current else { skipped += 1; continue }
                    entries.append(Entry(path: row["path"], embedding: Self.floats(row["embedding"])))
                }
                return (entries, skipped)
            }
        } catch {
            throw HeadTuneError.indexFailed(path: path, reason: "\(error)")
        }
    }

    public var count: Int {
        (try? queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM images") ?? 0 }) ?? 0
    }

    static func blob(_ values: [Float]) -> Data { values.withUnsafeBytes { Data($0) } }

    static func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { raw in (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }
}

extension ImageIndex {
    /// What `update` did.
    public struct UpdateSummary: Sendable, Equatable {
        public var indexed = 0
        /// Files whose content and models were already indexed.
        public var unchanged = 0
        public var failed = 0
    }

    /// Indexes `paths` in `space`: files already stored with the same content hash and models are
    /// skipped, the rest run through the encoder (in batches, decoding overlapped) and are upserted.
    /// - failed: a file that could not be hashed or decoded, with the reason (the run goes on)
    /// - progress: (done, total) over the files that need the network
    public func update(paths: [String], encoder: ImageEncoder, space: TextSpace, batchSize: Int = 16,
                       threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                       failed: (String, Error) -> Void = { _, _ in },
                       progress: (Int, Int) -> Void = { _, _ in }) throws -> UpdateSummary {
        let models = space.indexModels(imageEncoder: encoder)
        var summary = UpdateSummary()
        var hashes: [String: String] = [:]
        var pending: [String] = []
        for path in paths {
            do {
                let hash = try Self.contentHash(of: path)
                if try isCurrent(path: path, contentSHA256: hash, models: models) {
                    summary.unchanged += 1
                    continue
                }
                hashes[path] = hash
                pending.append(path)
            } catch {
                summary.failed += 1
                failed(path, error)
            }
        }
        guard !pending.isEmpty else { return summary }
        // The raw features and logits are stored beside the vector, so a later bridge can re-embed.
        let outputs = Array(Set(space.requiredOutputs + [.features, .logits])).filter { encoder.width(of: $0) != nil }
        let runner = BatchRunner(encoder: encoder, batchSize: batchSize, threads: threads, outputs: outputs)
        var done = 0
        progress(0, pending.count)
        try runner.run(paths: pending) { index, result in
            let path = pending[index]
            defer {
                done += 1
                progress(done, pending.count)
            }
            do {
                let image = try result.get()
                try upsert(path: path, contentSHA256: hashes[path]!, models: models, features: image.features,
                           logits: image.logits ?? [], embedding: try space.imageVector(image))
                summary.indexed += 1
            } catch let error as HeadTuneError {
                if case .indexFailed = error { throw error }
                summary.failed += 1
                failed(path, error)
            } catch {
                summary.failed += 1
                failed(path, error)
            }
        }
        return summary
    }
}
