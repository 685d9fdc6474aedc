// A binary min-heap of (deadline, key) with lazy deletion: rescheduling pushes a new entry and
// the stale one is skipped when it surfaces. One heap serves every session of an endpoint.

struct TimerHeap {
    private var entries: [(deadline: Timestamp, key: UInt32)] = []

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }
    var top: (deadline: Timestamp, key: UInt32)? { entries.first }

    mutating func push(_ deadline: Timestamp, _ key: UInt32) {
        entries.append((deadline, key))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> (deadline: Timestamp, key: UInt32)? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let result = entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < entries.count && entries[left].deadline < entries[smallest].deadline { smallest = left }
            if right < entries.count && entries[right].deadline < entries[smallest].deadline { smallest = right }
            if smallest == parent { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return result
    }
}
