// A single-consumer async queue with a capacity: `push` waits while it is full. A node's
// inbox is one, so an application that stops reading stops the node reading its session, and
// the transport's flow control carries the backpressure back to the host.
import Synchronization

/// An `AsyncSequence` with at most `capacity` elements waiting.
public final class BoundedQueue<Element: Sendable>: AsyncSequence, Sendable {
    private struct State {
        var buffer: [Element] = []
        var head = 0
        var consumer: CheckedContinuation<Element?, Never>?
        /// Producers waiting for room: resumed with false to try again, true when finished.
        var producers: [CheckedContinuation<Bool, Never>] = []
        var finished = false
        var count: Int { buffer.count - head }
    }

    private enum Outcome { case stored, handedOver(CheckedContinuation<Element?, Never>), waiting }

    private let state = Mutex(State())
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0, "a queue needs room for one element")
        self.capacity = capacity
    }

    /// Elements waiting to be read.
    public var count: Int { state.withLock { $0.count } }

    /// Adds `element`, waiting while the queue is full. Dropped if the queue is finished.
    public func push(_ element: Element) async {
        while true {
            // true: the element is in (or the queue is finished); false: room opened, try again.
            let done: Bool = await withCheckedContinuation { (wait: CheckedContinuation<Bool, Never>) in
                let outcome: Outcome = state.withLock { state in
                    if state.finished { return .stored }
                    if let consumer = state.consumer {
                        state.consumer = nil
                        return .handedOver(consumer)
                    }
                    if state.count < capacity {
                        state.buffer.append(element)
                        return .stored
                    }
                    state.producers.append(wait)
                    return .waiting
                }
                switch outcome {
                case .stored: wait.resume(returning: true)
                case .handedOver(let consumer):
                    consumer.resume(returning: element)
                    wait.resume(returning: true)
                case .waiting: break
                }
            }
            if done { return }
        }
    }

    /// No more elements: the reader ends after what is buffered; waiting producers return.
    public func finish() {
        let (consumer, producers) = state.withLock { state -> (CheckedContinuation<Element?, Never>?, [CheckedContinuation<Bool, Never>]) in
            state.finished = true
            let waiting = state.producers
            state.producers = []
            let consumer = state.count == 0 ? state.consumer : nil
            if consumer != nil { state.consumer = nil }
            return (consumer, waiting)
        }
        consumer?.resume(returning: nil)
        for producer in producers { producer.resume(returning: true) }
    }

    /// Takes up to `limit` waiting elements without waiting (none when the queue is empty), so
    /// a consumer can handle a burst in one go.
    public func drain(upTo limit: Int) -> [Element] {
        let (elements, producers): ([Element], [CheckedContinuation<Bool, Never>]) = state.withLock { state in
            let count = Swift.min(limit, state.count)
            guard count > 0 else { return ([], []) }
            let elements = Array(state.buffer[state.head..<(state.head + count)])
            state.head += count
            if state.head > 64 && state.head * 2 > state.buffer.count {
                state.buffer.removeFirst(state.head)
                state.head = 0
            }
            let woken = Array(state.producers.prefix(count))
            state.producers.removeFirst(woken.count)
            return (elements, woken)
        }
        for producer in producers { producer.resume(returning: false) }
        return elements
    }

    fileprivate func next() async -> Element? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
            let (element, producer, end): (Element?, CheckedContinuation<Bool, Never>?, Bool) = state.withLock { state in
                if state.count > 0 {
                    let element = state.buffer[state.head]
                    state.head += 1
                    if state.head > 64 && state.head * 2 > state.buffer.count {
                        state.buffer.removeFirst(state.head)
                        state.head = 0
                    }
                    let producer = state.producers.isEmpty ? nil : state.producers.removeFirst()
                    return (element, producer, false)
                }
                if state.finished { return (nil, nil, true) }
                state.consumer = continuation
                return (nil, nil, false)
            }
            if let element {
                continuation.resume(returning: element)
            } else if end {
                continuation.resume(returning: nil)
            }
            producer?.resume(returning: false)
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: BoundedQueue
        public mutating func next() async -> Element? { await queue.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: self) }
}
