// `xt backup run`: scan, cut the changed files into chunks, seal them, ask each Pi which it
// lacks, and send only those, each to the K Pis rendezvous hashing names, over every connection
// of the bond. Files unchanged since the last snapshot (size, mtime, inode) are not read again,
// as long as their chunks are still where they belong. The snapshot record goes last, so a run
// that is killed leaves no snapshot, and the next run moves only what is still missing.
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What `xt backup run` is asked to do.
public struct BackupOptions: Sendable {
    public var paths: [String]
    /// Pis that hold each chunk.
    public var copies: Int
    /// This machine's name in the snapshot.
    public var host: String
    public var tags: [String] = []
    public var chunker: FastCDC = .standard
    /// Most chunk bytes held in memory while they are sent.
    public var memoryLimit = 128 << 20
    /// Files cut and sealed at once (one per core).
    public var workers = 2
    /// Only these files (manifest paths: `NAME/…`, NAME the last part of a path given) and the
    /// folders above them; nil: all below the paths (see ``FileScanner/scan(_:only:)``).
    public var only: Set<String>?

    public init(paths: [String], copies: Int, host: String) {
        self.paths = paths
        self.copies = copies
        self.host = host
    }
}

/// Progress of a run, for the terminal or JSON.
public struct BackupProgress: Sendable, Equatable {
    public var phase: String
    public var filesTotal = 0
    public var filesDone = 0
    /// Bytes of files to consider, and how many have been gone through (read, or found unchanged).
    public var bytesTotal: UInt64 = 0
    public var bytesScanned: UInt64 = 0
    /// Bytes read from changed files.
    public var bytesRead: UInt64 = 0
    /// Chunks and bytes found new for at least one Pi.
    public var chunksNew = 0
    public var bytesNew: UInt64 = 0
    /// Chunk bytes queued for sending (each copy counted).
    public var bytesQueued: UInt64 = 0
    public var transfer = TransferFigures()
    public var seconds: Double = 0
}

/// The outcome of a run.
public struct BackupSummary: Sendable {
    public var snapshot: ChunkID
    public var record: SnapshotRecord
    public var progress: BackupProgress
    public var problems: [ScanProblem]
    /// Pis that did not answer (their chunks went to the next in rank).
    public var unavailable: [String]
}

public final class BackupRun: Sendable {
    public let repository: Repository
    public let options: BackupOptions
    private let sender: ChunkSender
    private let progressState: Mutex<BackupProgress>
    /// Sealed chunks waiting for one has() per Pi (batched across files: many small files cost
    /// one round trip per 64 chunks, not one per file).
    private let batch = Mutex<[(ChunkID, [UInt8], [String])]>([])
    private let batchBytes = Atomic<Int>(0)
    private let started = ContinuousClock.now

    public init(repository: Repository, options: BackupOptions) {
        self.repository = repository
        self.options = options
        sender = ChunkSender(limit: options.memoryLimit)
        progressState = Mutex(BackupProgress(phase: "connecting"))
    }

    /// Progress so far.
    public var progress: BackupProgress {
        var progress = progressState.withLock { $0 }
        progress.transfer = sender.figures
        progress.seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds)
        return progress
    }

    /// Runs the backup.
    /// - Throws: ``BackupError`` if fewer than `copies` Pis answer, a Pi's store is full, or a path is unusable.
    public func run() async throws(BackupError) -> BackupSummary {
        guard options.copies >= 1, options.copies <= repository.bond.targets.count else {
            throw .badInput("--copies \(options.copies) needs 1 to \(repository.bond.targets.count) Pis (the number given with --to)")
        }
        let reached = try await repository.connect(needed: options.copies)
        let unavailable = Set(repository.bond.targets.map(\.name)).subtracting(reached)
        let bond = repository.bond
        let sender = self.sender
        // New connections join the sender as they open; the bond keeps redialling.
        let feeding = Task { for await connection in bond.opened { sender.attach(connection) } }
        let watching = Task {
            while !Task.isCancelled {
                await sender.watch()
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        defer {
            feeding.cancel()
            watching.cancel()
        }
        let startTime = Int64(Date().timeIntervalSince1970 * 1e9)
        update { $0.phase = "scanning" }
        let (scanned, problems) = try FileScanner.scan(options.paths, only: options.only)
        let parent = await parentEntries()
        update { progress in
            progress.phase = "backing up"
            progress.filesTotal = scanned.filter { $0.entry.kind == .file }.count
            progress.bytesTotal = scanned.reduce(0) { $0 + $1.entry.size }
        }
        var entries: [ManifestEntry] = []
        var problemsFound = problems
        // Unchanged files first: their chunks are checked in one batch per Pi.
        var reuse: [Int: [ChunkRef]] = [:]
        for (index, item) in scanned.enumerated() where item.entry.kind == .file {
            if let old = parent[item.entry.path], old.kind == .file, old.size == item.entry.size, old.mtime == item.entry.mtime,
               old.inode == item.entry.inode {
                reuse[index] = old.chunks
            }
        }
        let stillThere = try await presentEverywhere(Set(reuse.values.flatMap { $0.map(\.id) }), unavailable: unavailable)
        // Files are cut, sealed and hashed two at a time (one per core: on a Pi or a NUC the
        // seal's three passes, HMAC, ChaCha20-Poly1305 and SHA-256, are what a run waits for);
        // the manifest keeps the scan's order.
        var results = [ManifestEntry?](repeating: nil, count: scanned.count)
        let workers = max(1, min(options.workers, 8))
        do {
            try await withThrowingTaskGroup(of: (Int, ManifestEntry?, ScanProblem?).self) { group in
                var running = 0
                func collect(_ done: (Int, ManifestEntry?, ScanProblem?)) {
                    results[done.0] = done.1
                    if let problem = done.2 { problemsFound.append(problem) }
                }
                for (index, item) in scanned.enumerated() {
                    if let fatal = sender.fatalError { throw fatal }
                    var entry = item.entry
                    guard entry.kind == .file else {
                        results[index] = entry
                        continue
                    }
                    if let chunks = reuse[index], chunks.allSatisfy({ stillThere.contains($0.id) }) {
                        entry.chunks = chunks
                        update { $0.bytesScanned += entry.size; $0.filesDone += 1 }
                        results[index] = entry
                        continue
                    }
                    if running >= workers, let done = try await group.next() {
                        running -= 1
                        collect(done)
                    }
                    running += 1
                    let scannedEntry = entry
                    group.addTask { [self] in
                        var entry = scannedEntry
                        do {
                            entry.chunks = try await send(file: item.absolutePath, expected: entry.size, unavailable: unavailable)
                            entry.size = entry.chunks.reduce(0) { $0 + UInt64($1.length) }
                            update { $0.filesDone += 1 }
                            return (index, entry, nil)
                        } catch let error as BackupError {
                            return (index, nil, ScanProblem(path: item.absolutePath, reason: error.description))
                        } catch {
                            return (index, nil, ScanProblem(path: item.absolutePath, reason: "\(error)"))
                        }
                    }
                }
                while let done = try await group.next() { collect(done) }
            }
        } catch let error as BackupError {
            throw error
        } catch {
            throw .io("the backup stopped: \(error)")
        }
        if let fatal = sender.fatalError { throw fatal }
        entries = results.compactMap { $0 }
        await flush()
        // The manifest, cut and sealed like a file, goes to every Pi that answered.
        update { $0.phase = "manifest" }
        let manifestBytes = Manifest(entries: entries).encoded()
        var manifestRefs: [ChunkRef] = []
        var start = 0
        for length in options.chunker.lengths(of: manifestBytes) {
            defer { start += length }
            let (id, sealed) = repository.key.seal(Array(manifestBytes[start..<(start + length)]), kind: .tree)
            manifestRefs.append(ChunkRef(id: id, length: length))
            await sendMissing(id, sealed, to: Array(reached).sorted())
        }
        update { $0.phase = "finishing" }
        try await sender.finish()
        let record = SnapshotRecord(time: startTime, host: options.host, paths: options.paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                                    manifest: manifestRefs, files: entries.filter { $0.kind == .file }.count,
                                    bytes: entries.reduce(0) { $0 + $1.size }, tags: options.tags, copies: options.copies)
        let plaintext = (try? JSONEncoder().encode(record)).map { Array($0) } ?? []
        let (snapshotID, sealedRecord) = repository.key.seal(plaintext, kind: .snapshot)
        var stored = 0
        for (target, connection) in repository.connectionPerTarget() {
            do {
                try await connection.putSnapshot(sealedRecord)
                stored += 1
            } catch {
                repository.logger.warning("backup: \(target) did not take the snapshot record: \(error)")
            }
        }
        guard stored > 0 else { throw .unreachable("no Pi took the snapshot record: run the backup again (only what is missing moves)") }
        update { $0.phase = "done" }
        return BackupSummary(snapshot: snapshotID, record: record, progress: progress, problems: problemsFound, unavailable: unavailable.sorted())
    }

    private func update(_ body: (inout BackupProgress) -> Void) { progressState.withLock { body(&$0) } }

    /// The entries of the newest snapshot of the same paths from this host, by path.
    private func parentEntries() async -> [String: ManifestEntry] {
        let paths = options.paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        guard let all = try? await repository.snapshots().snapshots,
              let parent = all.last(where: { $0.record.host == options.host && $0.record.paths == paths }),
              let manifest = try? await repository.manifest(of: parent) else { return [:] }
        return Dictionary(manifest.entries.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Which of `ids` every Pi that should hold them does hold.
    private func presentEverywhere(_ ids: Set<ChunkID>, unavailable: Set<String>) async throws(BackupError) -> Set<ChunkID> {
        guard !ids.isEmpty else { return [] }
        var byTarget: [String: [ChunkID]] = [:]
        for id in ids {
            for target in repository.placement.holders(id, copies: options.copies, unavailable: unavailable) { byTarget[target, default: []].append(id) }
        }
        var missing: Set<ChunkID> = []
        let connections = repository.connectionPerTarget()
        for (target, list) in byTarget {
            guard let connection = connections[target], let flags = try? await connection.has(list) else {
                missing.formUnion(list)
                continue
            }
            for (id, present) in zip(list, flags) where !present { missing.insert(id) }
        }
        return ids.subtracting(missing)
    }

    /// Cuts a file into chunks, seals each, and queues it for the Pis that lack it.
    /// - Returns: the file's chunks.
    private func send(file path: String, expected: UInt64, unavailable: Set<String>) async throws -> [ChunkRef] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw BackupError.io("cannot open \(path): it vanished or its permissions changed")
        }
        defer { try? handle.close() }
        var reader = ChunkReader(chunker: options.chunker, fileDescriptor: handle.fileDescriptor, name: path)
        var refs: [ChunkRef] = []
        while let plain = try reader.next() {
            let (id, sealed) = repository.key.seal(plain, kind: .data)
            refs.append(ChunkRef(id: id, length: plain.count))
            update { $0.bytesRead += UInt64(plain.count); $0.bytesScanned += UInt64(plain.count) }
            let holders = repository.placement.holders(id, copies: options.copies, unavailable: unavailable)
            let count = batch.withLock { $0.append((id, sealed, holders)); return $0.count }
            let bytes = batchBytes.wrappingAdd(sealed.count, ordering: .relaxed).newValue
            if count >= 64 || bytes >= 16 << 20 { await flush() }
        }
        return refs
    }

    /// Asks each Pi which of the batched chunks it lacks, and queues those for it.
    private func flush() async {
        let taken = batch.withLock { list -> [(ChunkID, [UInt8], [String])] in
            defer { list = [] }
            return list
        }
        batchBytes.store(0, ordering: .relaxed)
        guard !taken.isEmpty else { return }
        var byTarget: [String: [ChunkID]] = [:]
        for (id, _, holders) in taken { for target in holders { byTarget[target, default: []].append(id) } }
        var lacking: [String: Set<ChunkID>] = [:]
        let connections = repository.connectionPerTarget()
        for (target, ids) in byTarget {
            // A Pi that cannot answer now is sent everything: it keeps what it already has.
            let flags = try? await connections[target]?.has(ids)
            for (index, id) in ids.enumerated() where !((flags ?? nil)?[index] ?? false) { lacking[target, default: []].insert(id) }
        }
        for (id, sealed, holders) in taken {
            let targets = holders.filter { lacking[$0]?.contains(id) ?? false }
            guard !targets.isEmpty else { continue }
            update { $0.chunksNew += 1; $0.bytesNew += UInt64(sealed.count); $0.bytesQueued += UInt64(sealed.count * targets.count) }
            await sender.add(id, bytes: sealed, targets: targets)
        }
    }

    /// Queues a chunk for the given Pis (those that lack it).
    private func sendMissing(_ id: ChunkID, _ sealed: [UInt8], to targets: [String]) async {
        batch.withLock { $0.append((id, sealed, targets)) }
        await flush()
    }
}
