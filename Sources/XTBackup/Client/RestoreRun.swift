// `xt backup restore`: read a snapshot's chunks from whichever Pis hold them, over every
// connection of the bond, and write each where it belongs in its file as it arrives (pwrite at
// its offsets: no chunk waits for the one before it, Multiplexity's rule). Each chunk is
// checked against its name and opened with the key before a byte of it is written.
import DequeModule
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Progress of a restore.
public struct RestoreProgress: Sendable, Equatable {
    public var phase = "connecting"
    public var chunksTotal = 0
    public var chunksDone = 0
    public var bytesTotal: UInt64 = 0
    public var bytesWritten: UInt64 = 0
    /// Copies that were damaged or missing on a Pi (read from another instead).
    public var badCopies = 0
    public var bytesByTarget: [String: UInt64] = [:]
    public var bytesByLink: [String: UInt64] = [:]
    public var seconds: Double = 0
}

public final class RestoreRun: Sendable {
    public let repository: Repository
    /// Connections per Pi reading at once: chunks each connection has asked for and not received.
    let window: Int
    private let state = Mutex(State())
    private let started = ContinuousClock.now

    struct Placement {
        var path: String
        var offset: UInt64
    }

    struct State {
        var progress = RestoreProgress()
        /// Chunks waiting, by the Pi they will be read from (the best reachable holder not yet tried).
        var queues: [String: Deque<ChunkID>] = [:]
        var places: [ChunkID: [Placement]] = [:]
        var lengths: [ChunkID: Int] = [:]
        /// Pis already tried for a chunk.
        var tried: [ChunkID: Set<String>] = [:]
        var out: [Int: Set<ChunkID>] = [:]
        var inFlight: Set<ChunkID> = []
        var done: Set<ChunkID> = []
        var connections: [Int: BackupConnection] = [:]
        var failure: BackupError?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    public init(repository: Repository, window: Int = 2) {
        self.repository = repository
        self.window = window
    }

    public var progress: RestoreProgress {
        var progress = state.withLock { $0.progress }
        let elapsed = ContinuousClock.now - started
        progress.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return progress
    }

    /// Restores `name` (an id prefix or "latest") into `directory`.
    /// - Returns: the snapshot restored.
    /// - Throws: ``BackupError`` if it cannot be found, a chunk is on no reachable Pi, or the folder cannot be written.
    public func run(snapshot name: String, to directory: String) async throws(BackupError) -> Snapshot {
        _ = try await repository.connect(needed: 1)
        let snapshot = try await repository.snapshot(named: name)
        let manifest = try await repository.manifest(of: snapshot)
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        do { try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true) } catch {
            throw .io("cannot create \(root): \(error.localizedDescription)")
        }
        // Folders first, then every file at its full size (written into as chunks arrive).
        for entry in manifest.entries where entry.kind == .directory {
            try? FileManager.default.createDirectory(atPath: root + "/" + entry.path, withIntermediateDirectories: true)
        }
        var places: [ChunkID: [Placement]] = [:]
        var lengths: [ChunkID: Int] = [:]
        var total: UInt64 = 0
        for entry in manifest.entries where entry.kind == .file {
            let path = root + "/" + entry.path
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw .io("cannot write \(path): \(String(cString: strerror(errno)))") }
            let sized = ftruncate(fd, off_t(entry.size)) == 0
            close(fd)
            guard sized else { throw .io("cannot size \(path) (\(entry.size) bytes): is the disk full?") }
            var offset: UInt64 = 0
            for ref in entry.chunks {
                places[ref.id, default: []].append(Placement(path: path, offset: offset))
                lengths[ref.id] = ref.length
                offset += UInt64(ref.length)
            }
            total += entry.size
        }
        let chunks = places.keys.sorted()
        state.withLock { state in
            state.places = places
            state.lengths = lengths
            state.queues[""] = Deque(chunks)  // placed on Pis at the first dispatch
            state.progress.phase = "restoring"
            state.progress.chunksTotal = chunks.count
            state.progress.bytesTotal = total
        }
        let bond = repository.bond
        // Every open connection first, so chunks are placed knowing every Pi that answered.
        for connection in bond.connections { state.withLock { $0.connections[connection.number] = connection } }
        dispatch()
        let feeding = Task { for await connection in bond.opened { self.attach(connection) } }
        defer { feeding.cancel() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let finished = state.withLock { state -> Bool in
                if state.done.count == state.places.count || state.failure != nil { return true }
                state.waiters.append(continuation)
                return false
            }
            if finished { continuation.resume() }
        }
        if let failure = state.withLock({ $0.failure }) { throw failure }
        // Links, then modes and times (a folder's time last, after its contents are written).
        for entry in manifest.entries {
            let path = root + "/" + entry.path
            switch entry.kind {
            case .symlink:
                unlink(path)
                if symlink(entry.target ?? "", path) != 0 { throw .io("cannot create the link \(path): \(String(cString: strerror(errno)))") }
            case .file, .directory:
                chmod(path, mode_t(entry.mode))
            }
        }
        for entry in manifest.entries.reversed() where entry.kind != .symlink {
            var times = [timespec(tv_sec: Int(entry.mtime / 1_000_000_000), tv_nsec: Int(entry.mtime % 1_000_000_000)),
                         timespec(tv_sec: Int(entry.mtime / 1_000_000_000), tv_nsec: Int(entry.mtime % 1_000_000_000))]
            utimensat(AT_FDCWD, root + "/" + entry.path, &times, 0)
        }
        state.withLock { $0.progress.phase = "done" }
        return snapshot
    }

    /// Gives every connection with room the next chunk its Pi should hold.
    private func dispatch() {
        let requests = state.withLock { state -> [(BackupConnection, ChunkID)] in
            guard state.failure == nil else { return [] }
            let open = state.connections.values.filter { !$0.isClosed }
            guard !open.isEmpty else { return [] }
            let reachable = Set(open.map(\.target)).union(repository.bond.connections.map(\.target))
            // Chunks queued for a Pi with no open connection (or not placed yet) move to the
            // best reachable holder not tried yet.
            for target in Array(state.queues.keys) where !reachable.contains(target) {
                let waiting = state.queues.removeValue(forKey: target) ?? []
                for chunk in waiting {
                    let tried = state.tried[chunk] ?? []
                    guard let best = repository.placement.ranking(chunk).first(where: { reachable.contains($0) && !tried.contains($0) }) else {
                        state.failure = .missing("chunk \(chunk.short) is on none of the Pis that answered (or every copy is damaged): bring the others online, or run `xt backup check`")
                        let waiters = state.waiters
                        state.waiters = []
                        for waiter in waiters { waiter.resume() }
                        return []
                    }
                    state.queues[best, default: []].append(chunk)
                }
            }
            var requests: [(BackupConnection, ChunkID)] = []
            for connection in open.sorted(by: { $0.number < $1.number }) {
                while state.out[connection.number, default: []].count < window, let chunk = state.queues[connection.target]?.popFirst() {
                    state.out[connection.number, default: []].insert(chunk)
                    state.inFlight.insert(chunk)
                    requests.append((connection, chunk))
                }
            }
            return requests
        }
        for (connection, chunk) in requests {
            Task { await self.fetch(chunk, on: connection) }
        }
    }

    private func attach(_ connection: BackupConnection) {
        let added = state.withLock { $0.connections.updateValue(connection, forKey: connection.number) == nil }
        if added { dispatch() }
    }

    private func fetch(_ chunk: ChunkID, on connection: BackupConnection) async {
        let sealed: [UInt8]?
        do {
            sealed = try await connection.get(chunk)
        } catch {
            // The connection ended: its chunks go back (the Pi is not marked as tried).
            state.withLock { state in
                state.connections[connection.number] = nil
                for lost in state.out.removeValue(forKey: connection.number) ?? [] {
                    state.inFlight.remove(lost)
                    if !state.done.contains(lost) { state.queues[connection.target, default: []].prepend(lost) }
                }
            }
            dispatch()
            return
        }
        var plaintext: [UInt8]?
        if let sealed {
            do { plaintext = try repository.key.open(sealed, id: chunk, kind: .data) } catch {
                repository.logger.warning("backup: \(connection.target)'s copy of \(chunk.short): \(error)")
            }
        } else {
            repository.logger.warning("backup: \(connection.target) does not hold \(chunk.short)")
        }
        var written = true
        if let plaintext {
            let places = state.withLock { $0.places[chunk] ?? [] }
            for place in places {
                let fd = open(place.path, O_WRONLY | O_CLOEXEC)
                let ok = fd >= 0 && plaintext.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(place.offset)) } == plaintext.count
                if fd >= 0 { close(fd) }
                if !ok { written = false }
            }
        }
        let wake = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.out[connection.number]?.remove(chunk)
            state.inFlight.remove(chunk)
            if let plaintext, written {
                state.done.insert(chunk)
                state.progress.chunksDone += 1
                let bytes = UInt64(plaintext.count * (state.places[chunk]?.count ?? 1))
                state.progress.bytesWritten += bytes
                state.progress.bytesByTarget[connection.target, default: 0] += UInt64(sealed?.count ?? 0)
                state.progress.bytesByLink[connection.link, default: 0] += UInt64(sealed?.count ?? 0)
            } else if !written {
                state.failure = .io("cannot write to the restore folder: is the disk full?")
            } else {
                // Missing or damaged on this Pi: try the next holder.
                state.progress.badCopies += 1
                state.tried[chunk, default: []].insert(connection.target)
                state.queues["", default: []].prepend(chunk)  // re-placed at the next dispatch
            }
            guard state.done.count == state.places.count || state.failure != nil else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in wake { waiter.resume() }
        dispatch()
    }
}
