// Every tunable of a session, with the defaults a LAN of Raspberry Pis wants. The seed's
// knobs keep their names: `netLatency`, `packetBurst`, and `maximumDatagramSize` (setmtu).

/// Settings for the sessions of an endpoint.
public struct SessionConfiguration: Sendable, Hashable {
    /// Largest UDP payload to send (xTransporter's `setmtu`). Path-MTU probing searches up to
    /// it, so a 1500-byte Ethernet path settles at 1472, a jumbo-frame LAN at 8972, and
    /// loopback (same-host recorder and agent) at the full 65,000.
    public var maximumDatagramSize: Int = 65_000
    /// Size every path is assumed to carry; probing starts here.
    public var minimumDatagramSize: Int = 1200
    /// Whether to probe for a larger path MTU after the handshake.
    public var pathMTUProbing = true
    /// How long a quiet session waits before sending a keepalive.
    public var keepaliveInterval: Duration = .seconds(1)
    /// How long without hearing from the peer before it is declared dead.
    public var deadPeerTimeout: Duration = .seconds(15)
    /// How long `connect` keeps retrying the handshake.
    public var handshakeTimeout: Duration = .seconds(10)
    /// RTT assumed before the first measurement.
    public var initialRTT: Duration = .milliseconds(100)
    /// Longest a receiver delays an ACK.
    public var maximumAckDelay: Duration = .milliseconds(5)
    /// Ack-eliciting packets received before an ACK goes out at once.
    public var ackFrequency = 4
    /// Bytes written and not yet acknowledged, over all channels, before writers must wait.
    public var sendBufferLimit = 16 << 20
    /// Receive window granted per channel (flow control).
    public var channelWindow = 16 << 20
    /// Largest message accepted on a messages or live channel.
    public var maximumMessageSize = 16 << 20
    /// Most channels a peer may open in one session.
    public var maximumChannels = 256
    /// Packet ciphers this side accepts, most preferred first; nil chooses by hardware
    /// (AES-256-GCM first where the CPU has AES instructions, else ChaCha20-Poly1305).
    public var packetCiphers: [PacketCipher]? = nil
    /// Congestion control for the session.
    public var congestionControl = CongestionControlAlgorithm.rate
    /// Packets that may leave back to back before pacing spaces them (xTransporter `packetburst`).
    public var packetBurst = 32
    /// Pacing timer granularity: the shortest wait between bursts (xTransporter `netlatency`).
    public var netLatency: Duration = .microseconds(200)
    /// Rotate the send key after this many packets...
    public var keyUpdatePackets: UInt64 = 1 << 23  // within AES-GCM's per-key limit (RFC 9001 §6.6)
    /// ...or after this long, whichever comes first.
    public var keyUpdateInterval: Duration = .seconds(120)
    /// How long a graceful close waits for the peer's acknowledgement.
    public var closeTimeout: Duration = .seconds(3)
    /// Most unreliable datagrams queued for sending; the oldest is dropped beyond it.
    public var datagramQueueLimit = 256

    public init() {}

    /// The defaults.
    public static let `default` = SessionConfiguration()

    /// Checks the values are usable.
    /// - Throws: ``TransportError`` with code `invalidConfiguration` naming the bad value.
    public func validate() throws(TransportError) {
        guard (1200...65_507).contains(maximumDatagramSize) else {
            throw .invalidConfiguration("MTU \(maximumDatagramSize) is out of range: use 1200…65507 bytes")
        }
        guard (1200...maximumDatagramSize).contains(minimumDatagramSize) else {
            throw .invalidConfiguration("minimum datagram size \(minimumDatagramSize) must be 1200…MTU")
        }
        guard (1...65_536).contains(packetBurst) else { throw .invalidConfiguration("packetburst \(packetBurst) is out of range: use 1…65536 packets") }
        guard netLatency >= .zero, netLatency <= .seconds(1) else { throw .invalidConfiguration("netlatency must be 0…1 s") }
        guard deadPeerTimeout > keepaliveInterval else {
            throw .invalidConfiguration("the dead-peer timeout must be longer than the keepalive interval")
        }
        guard deadPeerTimeout <= .seconds(86_400) else { throw .invalidConfiguration("the dead-peer timeout must be at most a day (86400 s)") }
        guard handshakeTimeout > .zero, handshakeTimeout <= .seconds(86_400) else {
            throw .invalidConfiguration("the connect (handshake) timeout must be more than 0 and at most a day (86400 s)")
        }
        if let packetCiphers, packetCiphers.isEmpty {
            throw .invalidConfiguration("give at least one packet cipher, or leave the choice to the hardware")
        }
        guard sendBufferLimit >= 65_536, channelWindow >= 65_536 else {
            throw .invalidConfiguration("send buffer and channel window must be at least 64 KiB")
        }
    }
}
