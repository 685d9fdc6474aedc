// Which Pis hold a chunk: rendezvous (highest-random-weight) hashing, Thaler and Ravishankar,
// "Using Name-Based Mappings to Increase Hit Rates", IEEE/ACM ToN 1998. Each Pi scores each
// chunk; the K highest hold it. Adding or losing a Pi moves only the chunks that Pi scores
// highest for, and any client computes the same places from the names alone.

/// Places chunks on K of a set of named targets.
public struct Placement: Sendable {
    /// Target names, and a 64-bit hash of each.
    private let targets: [(name: String, hash: UInt64)]

    /// - Parameter targets: the Pis' names (distinct).
    public init(targets: [String]) {
        self.targets = targets.map { name in
            // FNV-1a over the name, then mixed per chunk below.
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
            return (name, hash)
        }
    }

    /// Every target, most preferred first, for `chunk`.
    public func ranking(_ chunk: ChunkID) -> [String] {
        let key = chunk.bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return targets.map { target -> (String, UInt64) in
            // SplitMix64's finaliser over the chunk and the target: uniform, so each target is
            // first for an equal share of chunks.
            var z = key ^ target.hash
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return (target.name, z)
        }
        .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        .map(\.0)
    }

    /// The `copies` targets that should hold `chunk`, skipping those in `unavailable` (the next
    /// in rank stands in, so a chunk still gets `copies` distinct holders while a Pi is down).
    public func holders(_ chunk: ChunkID, copies: Int, unavailable: Set<String> = []) -> [String] {
        Array(ranking(chunk).filter { !unavailable.contains($0) }.prefix(copies))
    }
}
