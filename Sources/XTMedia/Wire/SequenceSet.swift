// Which sequence numbers of a stream are held: ascending, disjoint ranges. Frames mostly come
// in order, so adding at the end is the fast path; backfill fills holes.

/// A set of sequence numbers kept as ranges.
public struct SequenceSet: Hashable, Sendable {
    public private(set) var ranges: [ClosedRange<UInt64>] = []

    public init() {}

    public init(_ ranges: [ClosedRange<UInt64>]) {
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) { insert(range) }
    }

    /// How many sequences are held.
    public var count: UInt64 { ranges.reduce(0) { $0 + ($1.upperBound - $1.lowerBound + 1) } }

    public func contains(_ value: UInt64) -> Bool {
        var low = 0, high = ranges.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if ranges[middle].contains(value) { return true }
            if value < ranges[middle].lowerBound { high = middle - 1 } else { low = middle + 1 }
        }
        return false
    }

    /// Adds `value`; returns false if it was held already.
    @discardableResult
    public mutating func insert(_ value: UInt64) -> Bool {
        if let last = ranges.last {
            if last.contains(value) { return false }
            if value == last.upperBound &+ 1 && value != 0 {
                ranges[ranges.count - 1] = last.lowerBound...value
                return true
            }
            if value > last.upperBound {
                ranges.append(value...value)
                return true
            }
        } else {
            ranges.append(value...value)
            return true
        }
        if contains(value) { return false }
        insert(value...value)
        return true
    }

    /// Adds a whole range, merging with neighbours.
    public mutating func insert(_ range: ClosedRange<UInt64>) {
        var merged = range
        var kept: [ClosedRange<UInt64>] = []
        kept.reserveCapacity(ranges.count + 1)
        var placed = false
        for existing in ranges {
            if existing.upperBound &+ 1 < merged.lowerBound && existing.upperBound != .max {
                kept.append(existing)
            } else if merged.upperBound &+ 1 < existing.lowerBound && merged.upperBound != .max {
                if !placed {
                    kept.append(merged)
                    placed = true
                }
                kept.append(existing)
            } else {
                merged = min(merged.lowerBound, existing.lowerBound)...max(merged.upperBound, existing.upperBound)
            }
        }
        if !placed { kept.append(merged) }
        ranges = kept
    }

    /// Takes `value` out (a frame the disk refused, to be asked for again).
    public mutating func remove(_ value: UInt64) {
        guard let index = ranges.firstIndex(where: { $0.contains(value) }) else { return }
        let range = ranges[index]
        var pieces: [ClosedRange<UInt64>] = []
        if range.lowerBound < value { pieces.append(range.lowerBound...(value - 1)) }
        if value < range.upperBound { pieces.append((value + 1)...range.upperBound) }
        ranges.replaceSubrange(index...index, with: pieces)
    }

    /// The holes between the first and last sequence held.
    public var gaps: [ClosedRange<UInt64>] {
        zip(ranges, ranges.dropFirst()).map { ($0.upperBound + 1)...($1.lowerBound - 1) }
    }
}
