import Foundation
import GRDB
import Weights

/// What a cached feature vector is keyed by: the image's bytes, the network that saw it and how
/// the image was turned into the network input.
public struct FeatureKey: Hashable, Sendable {
    /// SHA-256 of the file's bytes: renaming or moving a file keeps its entry, editing it does not.
    public var contentSHA256: String
    /// Backbone id and weights sha256, e.g. "efficientnet-lite0@2a3f...".
    public var backbone: String
    /// Preprocessing and augmentation view, e.g. "resize" or "resize+mirror".
    public var view: String
    /// Which backbone outputs the vector holds.
    public var featureSet: FeatureSet

    public init(contentSHA256: String, backbone: String, view: String, featureSet: FeatureSet = .head) {
        self.contentSHA256 = contentSHA256
        self.backbone = backbone
        self.view = view
        self.featureSet = featureSet
    }

    /// The `backbone` column: the backbone alone for `head` (so entries written before feature sets
    /// existed stay valid), suffixed by the set otherwise. Part of the key rather than a new column, so
    /// the schema stays at version 1 and older headtune builds sharing the file neither drop it nor
    /// ever match another set's rows.
    var storedBackbone: String {
        featureSet == .head ? backbone : "\(backbone)#\(featureSet.rawValue)"
    }
}

/// An on-disk SQLite store (through GRDB) of backbone features, so a second `train` on the same
/// images extracts nothing. Every vector carries its dimension and an FNV-1a checksum: a damaged
/// entry is detected, deleted and recomputed, never used. Entries of another backbone never match
/// because the backbone (with its weights hash) is part of the key; nor do entries of another
/// feature set (`FeatureKey.featureSet`).
public final class FeatureCache: Sendable {
    public let path: String
    private let queue: DatabaseQueue
    /// Set when the file at `path` was not a readable database and was moved aside.
    public let recoveredFrom: String?

    static let schemaVersion = "1"

    /// Opens (creating if needed) the cache at `path`. A file that is not a usable SQLite database
    /// is renamed to `<path>.corrupt` and a fresh cache is started.
    public init(path: String) throws {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        do {
            queue = try Self.open(path)
            recoveredFrom = nil
        } catch let error as DatabaseError where [.SQLITE_NOTADB, .SQLITE_CORRUPT].contains(error.resultCode) {
            let aside = path + ".corrupt"
            try? FileManager.default.removeItem(atPath: aside)
            guard (try? FileManager.default.moveItem(atPath: path, toPath: aside)) != nil else {
                throw TrainingError.cacheFailed(path: path, reason: "not a SQLite database and cannot be moved aside")
            }
            do { queue = try Self.open(path) } catch {
                throw TrainingError.cacheFailed(path: path, reason: "\(error)")
            }
            recoveredFrom = aside
        } catch {
            throw TrainingError.cacheFailed(path: path, reason: "\(error)")
        }
    }

    private static func open(_ path: String) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.write { db in
            // Reading the schema touches the file header: a non-database fails here, not later.
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            let version = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema'")
            if version != schemaVersion {
                try db.execute(sql: "DROP TABLE IF EXISTS features")
                try db.execute(sql: "DROP TABLE IF EXISTS file_hashes")
            }
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS features (
                    content_sha256 TEXT NOT NULL, backbone TEXT NOT NULL, view TEXT NOT NULL,
                    dimension INTEGER NOT NULL, checksum INTEGER NOT NULL, vector BLOB NOT NULL,
                    PRIMARY KEY (content_sha256, backbone, view)) WITHOUT ROWID
                """)
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS file_hashes (
                    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                    content_sha256 TEXT NOT NULL)
                """)
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", arguments: [schemaVersion])
        }
        return queue
    }

    /// Cached vectors for `keys` (nil where missing or damaged), plus how many damaged entries were
    /// found (they are deleted, so they get recomputed and stored again).
    public func lookup(_ keys: [FeatureKey], dimension: Int) throws -> (vectors: [[Float]?], damaged: Int) {
        do {
            return try queue.write { db in
                let select = try db.cachedStatement(sql: """
                    SELECT dimension, checksum, vector FROM features WHERE content_sha256 = ? AND backbone = ? AND view = ?
                    """)
                let delete = try db.cachedStatement(sql: "DELETE FROM features WHERE content_sha256 = ? AND backbone = ? AND view = ?")
                var damaged = 0
                let vectors = try keys.map { key -> [Float]? in
                    let arguments: StatementArguments = [key.contentSHA256, key.storedBackbone, key.view]
                    guard let row = try Row.fetchOne(select, arguments: arguments) else { return nil }
                    let storedDimension: Int = row["dimension"], checksum: Int64 = row["checksum"]
                    let blob: Data = row["vector"] ?? Data()
                    let vector = Self.decode(blob, dimension: dimension)
                    if storedDimension != dimension || vector == nil || Int64(bitPattern: FNV1a.hash(Array(blob))) != checksum {
                        damaged += 1
                        try delete.execute(arguments: arguments)
                        return nil
                    }
                    return vector
                }
                return (vectors, damaged)
            }
        } catch {
            throw TrainingError.cacheFailed(path: path, reason: "\(error)")
        }
    }

    /// Stores vectors (replacing entries with the same key).
    public func store(_ entries: [(key: FeatureKey, vector: [Float])]) throws {
        guard !entries.isEmpty else { return }
        do {
            try queue.write { db in
                let insert = try db.cachedStatement(sql: """
                    INSERT OR REPLACE INTO features (content_sha256, backbone, view, dimension, checksum, vector)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """)
                for (key, vector) in entries {
                    let blob = vector.withUnsafeBytes { Data($0) }
                    try insert.execute(arguments: [key.contentSHA256, key.storedBackbone, key.view, vector.count,
                                                   Int64(bitPattern: FNV1a.hash(Array(blob))), blob])
                }
            }
        } catch {
            throw TrainingError.cacheFailed(path: path, reason: "\(error)")
        }
    }

    /// Number of stored vectors (all backbones and views).
    public func count() throws -> Int {
        try queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM features") ?? 0 }
    }

    /// SHA-256 of each file's bytes (nil for a file that cannot be read). A file whose size and
    /// modification time match the last time it was hashed is not read again.
    public func contentHashes(paths: [String]) throws -> [String?] {
        let absolute = paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let stats: [(size: Int64, mtime: Int64)?] = absolute.map { path in
            var status = stat()
            guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
            return (Int64(status.st_size), Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec))
        }
        do {
            var known = try queue.read { db in
                let select = try db.cachedStatement(sql: "SELECT size, mtime_ns, content_sha256 FROM file_hashes WHERE path = ?")
                return try zip(absolute, stats).map { path, stat -> String? in
                    guard let stat, let row = try Row.fetchOne(select, arguments: [path]),
                          row["size"] == stat.size, row["mtime_ns"] == stat.mtime else { return nil }
                    return row["content_sha256"]
                }
            }
            var fresh: [(String, Int64, Int64, String)] = []
            for i in 0..<absolute.count where known[i] == nil {
                guard let stat = stats[i], stat.size > 0, let hash = try? SHA256.hex(fileAt: absolute[i]) else { continue }
                known[i] = hash
                fresh.append((absolute[i], stat.size, stat.mtime, hash))
            }
            if !fresh.isEmpty {
                try queue.write { db in
                    let insert = try db.cachedStatement(sql: """
                        INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, content_sha256) VALUES (?, ?, ?, ?)
                        """)
                    for (path, size, mtime, hash) in fresh { try insert.execute(arguments: [path, size, mtime, hash]) }
                }
            }
            return known
        } catch {
            throw TrainingError.cacheFailed(path: path, reason: "\(error)")
        }
    }

    private static func decode(_ blob: Data, dimension: Int) -> [Float]? {
        guard blob.count == dimension * MemoryLayout<Float>.size else { return nil }
        let vector = [Float](unsafeUninitializedCapacity: dimension) { buffer, initialized in
            _ = blob.copyBytes(to: buffer)
            initialized = dimension
        }
        return vector.allSatisfy(\.isFinite) ? vector : nil
    }

    /// `$XDG_CACHE_HOME/headtune/features.sqlite`, else `~/.cache/headtune/features.sqlite`.
    public static var defaultPath: String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return ((base as NSString).appendingPathComponent("headtune") as NSString).appendingPathComponent("features.sqlite")
    }
}
