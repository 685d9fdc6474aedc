// The bounded queue behind a node's inbox: order kept, producers wait while it is full and
// go on when the reader makes room, and finishing ends the reader and frees waiting producers.
import Testing
import XTNet

@Suite("Bounded queue")
struct BoundedQueueTests {
    @Test("Producers wait at the capacity; everything arrives once, in order")
    func backpressure() async {
        let queue = BoundedQueue<Int>(capacity: 4)
        let producer = Task {
            for value in 0..<100 { await queue.push(value) }
            queue.finish()
        }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(queue.count == 4, "the producer waits once the queue is full")
        var received: [Int] = []
        for await value in queue { received.append(value) }
        await producer.value
        #expect(received == Array(0..<100))
    }

    @Test("Finishing ends a waiting reader and releases waiting producers")
    func finish() async {
        let queue = BoundedQueue<Int>(capacity: 1)
        await queue.push(1)
        let blocked = Task { await queue.push(2) }  // full: waits
        try? await Task.sleep(for: .milliseconds(20))
        queue.finish()
        await blocked.value
        var iterator = queue.makeAsyncIterator()
        #expect(await iterator.next() == 1, "what was buffered is still read")
        #expect(await iterator.next() == nil)
    }
}
