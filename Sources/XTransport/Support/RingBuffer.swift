// A growable FIFO with O(1) push at the back and pop at the front, and random access by
// position from the front. Backs the sent-packet queue, send chunks and event queues.

struct RingBuffer<Element> {
    private var storage: [Element?]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int = 0) {
        storage = Array(repeating: nil, count: max(capacity, 0))
    }

    var isEmpty: Bool { count == 0 }
    var first: Element? { count == 0 ? nil : storage[head] }
    var last: Element? { count == 0 ? nil : storage[(head + count - 1) % storage.count] }

    mutating func append(_ element: Element) {
        if count == storage.count { grow() }
        storage[(head + count) % storage.count] = element
        count += 1
    }

    @discardableResult
    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head]
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
        if count == 0 { head = 0 }
        return element
    }

    subscript(position: Int) -> Element {
        get { storage[(head + position) % storage.count]! }
        _modify {
            let index = (head + position) % storage.count
            var element = storage[index].take()!
            defer { storage[index] = element }
            yield &element
        }
    }

    mutating func removeAll() {
        storage = []
        head = 0
        count = 0
    }

    private mutating func grow() {
        let newCapacity = max(16, storage.count * 2)
        var newStorage = [Element?](repeating: nil, count: newCapacity)
        for i in 0..<count { newStorage[i] = storage[(head + i) % storage.count] }
        storage = newStorage
        head = 0
    }
}
extension RingBuffer: Sendable where Element: Sendable {}
