// An MQTT client for the recorder's Home Assistant and Frigate-style topics. libmosquitto
// (Eclipse Mosquitto, Debian libmosquitto-dev) speaks the protocol; this type owns its handle and
// runs its network loop on a thread of its own, so a broker that is down, slow or refusing the
// login never holds up the caller: publish() only queues. It reconnects with backoff (1 s
// doubling to 30 s) and keeps why it is not connected. QoS 1 messages wait in libmosquitto's
// queue while the broker is away and are sent again after the reconnect (at most `queueLimit`
// of them; beyond it new ones are counted as dropped). libmosquitto's own loop thread is not
// used: it ends for good on some errors (TLS, name lookup), and ours must not.
import CMosquitto
import Foundation
public import Logging
import Synchronization

/// One MQTT message: a topic and its payload bytes.
public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    /// 0 (at most once) or 1 (at least once: queued until the broker acknowledges it).
    public var qos: Int
    /// Whether the broker keeps it for subscribers that come later.
    public var retain: Bool

    public init(topic: String, payload: [UInt8], qos: Int = 0, retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }

    public init(topic: String, text: String, qos: Int = 0, retain: Bool = false) {
        self.init(topic: topic, payload: Array(text.utf8), qos: qos, retain: retain)
    }

    /// The payload as UTF-8 text.
    public var text: String { String(decoding: payload, as: UTF8.self) }
}

/// Where and how to connect.
public struct MQTTSettings: Sendable, Equatable {
    /// The broker's host name or address, and its port (1883; 8883 is usual with TLS).
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    /// TLS to the broker, checked against `caFile` (PEM) or, without one, the system's CAs.
    public var tls = false
    public var caFile: String?
    /// The client id the broker knows this client by (unique per broker).
    public var clientID: String
    /// Seconds between keepalive pings (5…3600); the broker publishes the will after 1.5× this
    /// without a word (at once when the TCP connection drops).
    public var keepaliveSeconds = 30
    /// What the broker publishes if this client vanishes (kill -9, a cut link).
    public var will: MQTTMessage?
    /// Most QoS 1 messages waiting for the broker's acknowledgement.
    public var queueLimit = 10_000

    public init(host: String, port: Int = 1883, clientID: String) {
        self.host = host
        self.port = port
        self.clientID = clientID
    }
}

/// Why the client could not be made.
public enum MQTTError: Error, CustomStringConvertible, Equatable {
    case invalidSettings(String)

    public var description: String {
        switch self {
        case .invalidSettings(let text): return "MQTT settings: \(text)"
        }
    }
}

/// The client's state and counts, for logs, metrics and the web UI.
public struct MQTTClientStatus: Sendable, Equatable {
    public var connected = false
    /// Why the last attempt or connection failed (nil once connected).
    public var lastError: String?
    /// Successful connections so far.
    public var connects = 0
    /// Messages handed to the library, and those dropped (QoS 0 while disconnected, the QoS 1
    /// queue full, a payload too large).
    public var published = 0
    public var dropped = 0
    /// QoS 1 messages not yet acknowledged by the broker.
    public var unacknowledged = 0

    public init() {}
}

/// A connection to an MQTT broker that keeps itself up.
public final class MQTTClient: Sendable {
    public let settings: MQTTSettings
    /// Messages on the topics subscribed to.
    public let messages: AsyncStream<MQTTMessage>
    /// true at each connection (subscriptions are renewed by then), false at each loss.
    public let connectionChanges: AsyncStream<Bool>
    private let core: Core
    private let logger: Logger

    /// Makes the client; ``start()`` connects.
    /// - Throws: ``MQTTError/invalidSettings(_:)`` for an empty host, a port outside 1…65535, a
    ///   keepalive outside 5…3600 s, a CA file that cannot be read, or a will with QoS above 1.
    public init(settings: MQTTSettings, logger: Logger) throws(MQTTError) {
        guard !settings.host.isEmpty else { throw .invalidSettings("the broker's host is empty: give mqtt.host") }
        guard (1...65_535).contains(settings.port) else { throw .invalidSettings("port \(settings.port) is out of range: use 1…65535") }
        guard (5...3600).contains(settings.keepaliveSeconds) else {
            throw .invalidSettings("keepalive \(settings.keepaliveSeconds) s is out of range: use 5…3600")
        }
        guard !settings.clientID.isEmpty, settings.clientID.utf8.count <= 65_535 else { throw .invalidSettings("the client id is empty") }
        if let caFile = settings.caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw .invalidSettings("the CA file \(caFile) cannot be read")
        }
        if let will = settings.will, !(0...1).contains(will.qos) { throw .invalidSettings("the will's QoS must be 0 or 1") }
        self.settings = settings
        self.logger = logger
        let (messages, messageContinuation) = AsyncStream.makeStream(of: MQTTMessage.self, bufferingPolicy: .bufferingNewest(1024))
        let (changes, changeContinuation) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(64))
        self.messages = messages
        connectionChanges = changes
        core = try Core(settings: settings, logger: logger, messages: messageContinuation, changes: changeContinuation)
    }

    deinit { core.stop() }

    /// Starts connecting (in the background, at once).
    public func start() { core.start() }

    public var status: MQTTClientStatus { core.state.withLock { $0.status } }

    /// Queues a message. Never waits.
    /// - Returns: false if it was dropped (see ``MQTTClientStatus/dropped``).
    @discardableResult
    public func publish(_ message: MQTTMessage) -> Bool { core.publish(message) }

    /// Subscribes to a topic filter, now and after every reconnect.
    public func subscribe(_ filter: String, qos: Int = 0) { core.subscribe(filter, qos: qos) }

    /// Publishes `final` (e.g. "offline" on the availability topic), waits up to `timeout` for
    /// the broker to take QoS 1 ones, disconnects cleanly (so the will is not sent) and ends the
    /// loop.
    public func stop(final: [MQTTMessage] = [], timeout: Duration = .seconds(2)) async {
        for message in final { core.publish(message) }
        let deadline = ContinuousClock.now + timeout
        while core.state.withLock({ $0.status.connected && $0.status.unacknowledged > 0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        core.stop()
    }
}

/// The libmosquitto handle and what its callbacks share with the caller. The handle is used
/// from the loop thread and from publish()/subscribe() on any thread: libmosquitto is thread
/// safe for that (mosquitto.h, "Threads"); everything else is behind `state`.
private let success = Int32(MOSQ_ERR_SUCCESS.rawValue)
private let noConnection = Int32(MOSQ_ERR_NO_CONN.rawValue)
private let systemError = Int32(MOSQ_ERR_ERRNO.rawValue)

private final class Core: @unchecked Sendable {
    struct State {
        var status = MQTTClientStatus()
        var pending: Set<Int32> = []
        /// Acknowledgements that came before publish() had noted their message id.
        var early: Set<Int32> = []
        var subscriptions: [String: Int] = [:]
        var refusal: String?
        var started = false
        var stopping = false
        var finished = false
    }

    let handle: OpaquePointer
    let settings: MQTTSettings
    let logger: Logger
    let state = Mutex(State())
    let messages: AsyncStream<MQTTMessage>.Continuation
    let changes: AsyncStream<Bool>.Continuation
    private let done = DispatchSemaphore(value: 0)

    static let library: Int32 = mosquitto_lib_init()

    init(settings: MQTTSettings, logger: Logger, messages: AsyncStream<MQTTMessage>.Continuation,
         changes: AsyncStream<Bool>.Continuation) throws(MQTTError) {
        _ = Self.library
        guard let handle = mosquitto_new(settings.clientID, true, nil) else {
            throw .invalidSettings("libmosquitto could not make a client (out of memory?)")
        }
        self.handle = handle
        self.settings = settings
        self.logger = logger
        self.messages = messages
        self.changes = changes
        do {
            try configure()
        } catch {
            mosquitto_destroy(handle)
            throw error
        }
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_callback_set(handle) { _, object, code in Core.from(object)?.connected(code) }
        mosquitto_disconnect_callback_set(handle) { _, object, code in Core.from(object)?.disconnected(code) }
        mosquitto_publish_callback_set(handle) { _, object, id in Core.from(object)?.acknowledged(id) }
        mosquitto_message_callback_set(handle) { _, object, message in
            guard let core = Core.from(object), let message = message?.pointee, let topic = message.topic else { return }
            let payload = message.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(message.payloadlen))) } ?? []
            core.messages.yield(MQTTMessage(topic: String(cString: topic), payload: payload, qos: Int(message.qos), retain: message.retain))
        }
    }

    private func configure() throws(MQTTError) {
        _ = mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311)
        _ = mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1)
        if settings.username != nil || settings.password != nil {
            let code = mosquitto_username_pw_set(handle, settings.username ?? "", settings.password)
            guard code == success else { throw .invalidSettings("user name or password: \(Self.describe(code))") }
        }
        if settings.tls {
            let code: Int32
            if let caFile = settings.caFile {
                code = mosquitto_tls_set(handle, caFile, nil, nil, nil, nil)
            } else {
                code = mosquitto_int_option(handle, MOSQ_OPT_TLS_USE_OS_CERTS, 1)
            }
            guard code == success else { throw .invalidSettings("TLS: \(Self.describe(code))") }
        }
        if let will = settings.will {
            let code = will.payload.withUnsafeBytes { bytes in
                mosquitto_will_set(handle, will.topic, Int32(bytes.count), bytes.baseAddress, Int32(will.qos), will.retain)
            }
            guard code == success else { throw .invalidSettings("the will on \(will.topic): \(Self.describe(code))") }
        }
    }

    deinit { mosquitto_destroy(handle) }

    static func from(_ object: UnsafeMutableRawPointer?) -> Core? {
        object.map { Unmanaged<Core>.fromOpaque($0).takeUnretainedValue() }
    }

    static func describe(_ code: Int32) -> String {
        if code == systemError { return String(cString: strerror(errno)) }
        return String(cString: mosquitto_strerror(code))
    }

    // MARK: the loop thread

    func start() {
        let first = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started && !state.stopping
        }
        guard first else { return }
        // The thread holds the core until it ends, so callbacks never see a freed one.
        let thread = Thread { [self] in run() }
        thread.name = "mqtt \(settings.host)"
        thread.start()
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    private func run() {
        defer { done.signal() }
        var delay = 1.0
        var attempts = 0
        while !stopping {
            state.withLock { $0.refusal = nil }
            // Non-blocking: stop() is never held up by a TCP connect to a host that is gone.
            let code = attempts == 0
                ? mosquitto_connect_async(handle, settings.host, Int32(settings.port), Int32(settings.keepaliveSeconds))
                : mosquitto_reconnect_async(handle)
            attempts += 1
            var reason: String?
            if code != success {
                reason = "cannot reach the MQTT broker at \(settings.host):\(settings.port) (\(Self.describe(code)))"
            } else {
                let began = ContinuousClock.now
                var loop = success
                var answered = false
                while !stopping, loop == success {
                    loop = mosquitto_loop(handle, 100, 1)
                    answered = answered || state.withLock { $0.status.connected || $0.refusal != nil }
                    if !answered, ContinuousClock.now - began > .seconds(10) { break }
                }
                if stopping { break }
                let refusal = state.withLock { $0.refusal }
                if !answered && loop == success {
                    reason = "the MQTT broker at \(settings.host):\(settings.port) did not answer within 10 s"
                } else {
                    reason = refusal ?? "lost the MQTT broker at \(settings.host):\(settings.port) (\(Self.describe(loop)))"
                }
                if answered && refusal == nil { delay = 1 }
                _ = mosquitto_disconnect(handle)
            }
            if let reason {
                let changed = state.withLock { state -> Bool in
                    defer { state.status.lastError = reason }
                    return state.status.lastError != reason
                }
                if changed { logger.warning("\(reason); trying again in \(Int(delay)) s") }
            }
            // Back off, waking every 100 ms to notice stop().
            let until = Date().addingTimeInterval(delay)
            while !stopping, Date() < until { usleep(100_000) }
            delay = min(delay * 2, 30)
        }
        _ = mosquitto_disconnect(handle)
        // Let the DISCONNECT go out.
        for _ in 0..<3 where mosquitto_loop(handle, 10, 1) == success {}
        state.withLock { $0.status.connected = false }
    }

    func stop() {
        let wait = state.withLock { state -> Bool in
            guard !state.finished else { return false }
            state.finished = true
            state.stopping = true
            return state.started
        }
        if wait { done.wait() }
        messages.finish()
        changes.finish()
    }

    // MARK: callbacks (on the loop thread)

    private func connected(_ code: Int32) {
        guard code == 0 else {
            let text = String(cString: mosquitto_connack_string(code))
            state.withLock { $0.refusal = "the MQTT broker at \(settings.host):\(settings.port) refused the connection: \(text)" }
            return
        }
        let (subscriptions, hadError) = state.withLock { state -> ([String: Int], Bool) in
            state.status.connected = true
            state.status.connects += 1
            defer { state.status.lastError = nil }
            return (state.subscriptions, state.status.lastError != nil)
        }
        for (filter, qos) in subscriptions { _ = mosquitto_subscribe(handle, nil, filter, Int32(qos)) }
        logger.info("MQTT: connected to \(settings.host):\(settings.port)\(hadError ? " again" : "")")
        changes.yield(true)
    }

    private func disconnected(_ code: Int32) {
        let was = state.withLock { state -> Bool in
            defer { state.status.connected = false }
            return state.status.connected
        }
        if was { changes.yield(false) }
    }

    private func acknowledged(_ id: Int32) {
        state.withLock { state in
            if state.pending.remove(id) == nil { state.early.insert(id) }
            state.status.unacknowledged = state.pending.count
        }
    }

    // MARK: calls from any thread

    func publish(_ message: MQTTMessage) -> Bool {
        let qos = min(max(message.qos, 0), 1)
        let full = state.withLock { state -> Bool in
            guard qos == 0 || state.pending.count < settings.queueLimit else {
                state.status.dropped += 1
                return true
            }
            return false
        }
        guard !full, message.payload.count <= 256 << 20 else {
            if !full { state.withLock { $0.status.dropped += 1 } }
            return false
        }
        var id: Int32 = 0
        let code = message.payload.withUnsafeBytes { bytes in
            mosquitto_publish(handle, &id, message.topic, Int32(bytes.count), bytes.baseAddress, Int32(qos), message.retain)
        }
        // A QoS 1 message is queued even while the broker is away (MOSQ_ERR_NO_CONN) and goes
        // out after the reconnect; publishing it again would send it twice.
        let queued = code == success || (qos == 1 && code == noConnection)
        state.withLock { state in
            guard queued else {
                state.status.dropped += 1
                return
            }
            state.status.published += 1
            if qos == 1 {
                if state.early.remove(id) == nil { state.pending.insert(id) }
                state.status.unacknowledged = state.pending.count
            }
        }
        if !queued, code != noConnection {
            logger.debug("MQTT: \(message.topic) not published: \(Self.describe(code))")
        }
        return queued
    }

    func subscribe(_ filter: String, qos: Int) {
        let connected = state.withLock { state -> Bool in
            state.subscriptions[filter] = min(max(qos, 0), 1)
            return state.status.connected
        }
        if connected { _ = mosquitto_subscribe(handle, nil, filter, Int32(min(max(qos, 0), 1))) }
    }
}
