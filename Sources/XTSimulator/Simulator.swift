// A deterministic network simulator for sans-IO endpoints. A virtual clock jumps from event
// to event; a seeded generator decides every impairment, so one seed always gives the same
// run. Millions of packets simulate in seconds because nothing waits in real time.
public import XTransport

/// Simulates endpoints exchanging datagrams over impaired links on a virtual clock.
public final class NetworkSimulator {
    /// A simulated host: an endpoint at an address, and the application code reacting to it.
    public final class Node {
        public let endpoint: Endpoint
        public internal(set) var address: NetworkAddress
        /// Called for every event the endpoint reports; may call back into the endpoint.
        public var onEvent: (EndpointEvent, Endpoint, Timestamp) -> Void = { _, _, _ in }
        /// Set to false to make the node fall silent (a dead host: it neither sends nor receives).
        public var isUp = true

        init(endpoint: Endpoint, address: NetworkAddress) {
            self.endpoint = endpoint
            self.address = address
        }
    }

    private struct Delivery {
        var time: Timestamp
        var sequence: UInt64
        var from: NetworkAddress
        var to: NetworkAddress
        var bytes: [UInt8]
    }

    public private(set) var now: Timestamp
    private var random: SplitMix64
    private var nodes: [Node] = []
    private var nodeByAddress: [NetworkAddress: Int] = [:]
    private var links: [Pair: LinkModel] = [:]
    private var defaultConditions: LinkConditions
    private var queue: [Delivery] = []
    private var sequence: UInt64 = 0
    private var buffer: [UInt8]
    /// A digest of every delivery (time, endpoints, size): equal digests mean equal runs.
    public private(set) var traceDigest: UInt64 = 0xcbf2_9ce4_8422_2325
    public private(set) var eventsProcessed = 0

    private struct Pair: Hashable {
        var from: NetworkAddress
        var to: NetworkAddress
    }

    /// Creates a simulator.
    /// - Parameters:
    ///   - seed: decides every random impairment.
    ///   - conditions: the links' impairments unless set per pair.
    public init(seed: UInt64, conditions: LinkConditions = .clean(), start: Timestamp = Timestamp(nanoseconds: 1_000_000_000)) {
        random = SplitMix64(seed: seed)
        defaultConditions = conditions
        now = start
        buffer = [UInt8](repeating: 0, count: 65_536)
    }

    /// Adds an endpoint at `address`.
    @discardableResult
    public func add(_ endpoint: Endpoint, at address: NetworkAddress) -> Node {
        let node = Node(endpoint: endpoint, address: address)
        nodeByAddress[address] = nodes.count
        nodes.append(node)
        return node
    }

    /// Moves a node to a new address (a NAT rebinding or a change of network). Datagrams
    /// still in flight to the old address are lost.
    public func rebind(_ node: Node, to address: NetworkAddress) {
        guard let index = nodeByAddress.removeValue(forKey: node.address) else { return }
        node.address = address
        nodeByAddress[address] = index
    }

    /// Sets the impairments of the direction `from` → `to`.
    public func setConditions(_ conditions: LinkConditions, from: NetworkAddress, to: NetworkAddress) {
        var model = links[Pair(from: from, to: to)] ?? LinkModel(conditions: conditions)
        model.conditions = conditions
        links[Pair(from: from, to: to)] = model
    }

    /// Sets the impairments of both directions between two addresses.
    public func setConditions(_ conditions: LinkConditions, between a: NetworkAddress, and b: NetworkAddress) {
        setConditions(conditions, from: a, to: b)
        setConditions(conditions, from: b, to: a)
    }

    /// Counters of the direction `from` → `to`.
    public func counters(from: NetworkAddress, to: NetworkAddress) -> LinkCounters {
        links[Pair(from: from, to: to)]?.counters ?? LinkCounters()
    }

    /// Lets endpoints send and handle events now (call after writing from outside `onEvent`).
    public func flush() {
        var progress = true
        while progress {
            progress = false
            for node in nodes where node.isUp {
                if flush(node) { progress = true }
            }
        }
    }

    @discardableResult
    private func flush(_ node: Node) -> Bool {
        var did = false
        while true {
            var sentAny = false
            while let transmit = buffer.withUnsafeMutableBytes({ node.endpoint.pollTransmit(now: now, into: $0) }) {
                route(Array(buffer[0..<transmit.size]), from: node.address, to: transmit.destination)
                sentAny = true
            }
            var handledAny = false
            while let event = node.endpoint.pollEvent() {
                node.onEvent(event, node.endpoint, now)
                handledAny = true
            }
            if !sentAny && !handledAny { return did }
            did = true
        }
    }

    private func route(_ bytes: [UInt8], from: NetworkAddress, to: NetworkAddress) {
        let key = Pair(from: from, to: to)
        var link = links[key] ?? LinkModel(conditions: defaultConditions)
        defer { links[key] = link }
        guard case .delivered(let arrival, let corruptBit, let duplicate) = link.admit(size: bytes.count, now: now, random: &random) else { return }
        var payload = bytes
        if let bit = corruptBit { payload[bit / 8] ^= UInt8(1 << (bit % 8)) }
        enqueue(Delivery(time: arrival, sequence: 0, from: from, to: to, bytes: payload))
        if let duplicate { enqueue(Delivery(time: duplicate, sequence: 0, from: from, to: to, bytes: payload)) }
    }

    // MARK: - Event queue (min-heap on time, then insertion order)

    private func enqueue(_ delivery: Delivery) {
        var delivery = delivery
        sequence += 1
        delivery.sequence = sequence
        queue.append(delivery)
        var child = queue.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard earlier(queue[child], queue[parent]) else { break }
            queue.swapAt(child, parent)
            child = parent
        }
    }

    private func earlier(_ a: Delivery, _ b: Delivery) -> Bool {
        a.time < b.time || (a.time == b.time && a.sequence < b.sequence)
    }

    private func dequeue() -> Delivery {
        queue.swapAt(0, queue.count - 1)
        let result = queue.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var best = parent
            if left < queue.count && earlier(queue[left], queue[best]) { best = left }
            if right < queue.count && earlier(queue[right], queue[best]) { best = right }
            if best == parent { break }
            queue.swapAt(parent, best)
            parent = best
        }
        return result
    }

    // MARK: - Running

    /// Runs until `done` returns true, virtual time passes `limit`, or nothing is left to do.
    /// - Returns: whether `done` became true.
    @discardableResult
    public func run(for limit: Duration, until done: () -> Bool = { false }) -> Bool {
        let deadline = now.adding(limit)
        flush()
        var lastTime = now
        var iterationsAtTime = 0
        while !done() {
            // A deadline that never clears would spin here forever; fail loudly instead.
            if now == lastTime {
                iterationsAtTime += 1
                precondition(iterationsAtTime < 1_000_000, "simulator stuck at \(now): a timer is due but nothing progresses")
            } else {
                lastTime = now
                iterationsAtTime = 0
            }
            var next: Timestamp? = queue.first?.time
            for node in nodes where node.isUp {
                if let timeout = node.endpoint.nextTimeout(), next.map({ timeout < $0 }) ?? true { next = timeout }
            }
            guard let next, next <= deadline else {
                now = max(now, deadline)
                return done()
            }
            if next > now { now = next }
            while let first = queue.first, first.time <= now {
                let delivery = dequeue()
                eventsProcessed += 1
                guard let index = nodeByAddress[delivery.to], nodes[index].isUp else { continue }
                mix(delivery)
                delivery.bytes.withUnsafeBytes { nodes[index].endpoint.handle(datagram: $0, from: delivery.from, now: now) }
                flush(nodes[index])
            }
            for node in nodes where node.isUp {
                if let timeout = node.endpoint.nextTimeout(), timeout <= now {
                    node.endpoint.handleTimeout(now: now)
                    eventsProcessed += 1
                }
            }
            flush()
        }
        return true
    }

    private func mix(_ delivery: Delivery) {
        for value in [delivery.time.nanoseconds, UInt64(delivery.bytes.count), UInt64(nodeByAddress[delivery.from] ?? 99)] {
            traceDigest = (traceDigest ^ value) &* 0x100_0000_01b3
        }
    }
}
