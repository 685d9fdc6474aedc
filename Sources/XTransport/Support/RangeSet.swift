// A set of UInt64 numbers kept as sorted, disjoint, non-touching half-open ranges. Used for
// received packet numbers, acknowledged stream bytes and bytes awaiting retransmission.
// Inserts and removals near the end (the common case) are O(1) amortized.

struct RangeSet: Equatable, Sequence {
    private(set) var ranges: [Range<UInt64>] = []

    var isEmpty: Bool { ranges.isEmpty }
    var count: Int { ranges.count }
    var first: Range<UInt64>? { ranges.first }
    var last: Range<UInt64>? { ranges.last }

    func makeIterator() -> IndexingIterator<[Range<UInt64>]> { ranges.makeIterator() }

    /// Index of the first range whose upper bound is >= `value`.
    private func lowerIndex(_ value: UInt64) -> Int {
        var low = 0
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    mutating func insert(_ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        // Fast path: append or extend at the end.
        if let last = ranges.last {
            if range.lowerBound > last.upperBound {
                ranges.append(range)
                return
            }
            if range.lowerBound >= last.lowerBound {
                if range.upperBound > last.upperBound { ranges[ranges.count - 1] = last.lowerBound..<range.upperBound }
                return
            }
        } else {
            ranges.append(range)
            return
        }
        var start = lowerIndex(range.lowerBound)
        var lower = range.lowerBound
        var upper = range.upperBound
        var end = start
        while end < ranges.count && ranges[end].lowerBound <= upper {
            lower = Swift.min(lower, ranges[end].lowerBound)
            upper = Swift.max(upper, ranges[end].upperBound)
            end += 1
        }
        if start > ranges.count { start = ranges.count }
        ranges.replaceSubrange(start..<end, with: [lower..<upper])
    }

    mutating func insert(_ value: UInt64) { insert(value..<value + 1) }

    mutating func remove(_ range: Range<UInt64>) {
        guard !range.isEmpty, !ranges.isEmpty else { return }
        var index = lowerIndex(range.lowerBound + 1)
        var replacement: [Range<UInt64>] = []
        let start = index
        while index < ranges.count && ranges[index].lowerBound < range.upperBound {
            let existing = ranges[index]
            if existing.lowerBound < range.lowerBound { replacement.append(existing.lowerBound..<range.lowerBound) }
            if existing.upperBound > range.upperBound { replacement.append(range.upperBound..<existing.upperBound) }
            index += 1
        }
        if start < index { ranges.replaceSubrange(start..<index, with: replacement) }
    }

    /// Drops everything below `value`.
    mutating func removeBelow(_ value: UInt64) {
        guard let first = ranges.first, first.lowerBound < value else { return }
        let index = lowerIndex(value + 1)
        var dropCount = index
        if index < ranges.count, ranges[index].lowerBound < value {
            ranges[index] = value..<ranges[index].upperBound
        }
        dropCount = Swift.min(dropCount, ranges.count)
        ranges.removeFirst(dropCount)
    }

    mutating func removeFirst() -> Range<UInt64>? {
        guard !ranges.isEmpty else { return nil }
        return ranges.removeFirst()
    }

    mutating func removeAll() { ranges.removeAll(keepingCapacity: true) }

    /// Drops the lowest ranges until at most `count` remain.
    mutating func keepLast(_ count: Int) {
        if ranges.count > count { ranges.removeFirst(ranges.count - count) }
    }

    func contains(_ value: UInt64) -> Bool {
        let index = lowerIndex(value + 1)
        return index < ranges.count && ranges[index].contains(value)
    }

    /// Whether every number in `range` is in the set.
    func contains(_ range: Range<UInt64>) -> Bool {
        guard !range.isEmpty else { return true }
        let index = lowerIndex(range.lowerBound + 1)
        return index < ranges.count && ranges[index].lowerBound <= range.lowerBound && ranges[index].upperBound >= range.upperBound
    }

    /// The parts of `range` that are not in the set, in order.
    func gaps(in range: Range<UInt64>) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        var cursor = range.lowerBound
        var index = lowerIndex(range.lowerBound + 1)
        while cursor < range.upperBound {
            if index < ranges.count, ranges[index].lowerBound < range.upperBound {
                let existing = ranges[index]
                if existing.lowerBound > cursor { result.append(cursor..<existing.lowerBound) }
                cursor = Swift.max(cursor, existing.upperBound)
                index += 1
            } else {
                result.append(cursor..<range.upperBound)
                break
            }
        }
        return result
    }

    /// The first part of `range` that is not in the set, if any.
    func firstGap(in range: Range<UInt64>) -> Range<UInt64>? {
        var cursor = range.lowerBound
        var index = lowerIndex(range.lowerBound + 1)
        while cursor < range.upperBound {
            if index < ranges.count, ranges[index].lowerBound <= cursor {
                cursor = Swift.max(cursor, ranges[index].upperBound)
                index += 1
                continue
            }
            let end = index < ranges.count ? Swift.min(ranges[index].lowerBound, range.upperBound) : range.upperBound
            return cursor..<end
        }
        return nil
    }
}
