// Wire format: every frame and header round-trips; truncated and garbage input is rejected
// with a typed error, never a crash.
import PropertyBased
import Testing
@testable import XTransport

/// Builds an arbitrary but valid frame from a seed.
func randomFrame(_ generator: inout SplitMix64) -> Frame {
    func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) } }
    let channel = UInt16(truncatingIfNeeded: generator.next())
    let offset = generator.next() % (1 << 40)
    switch generator.next() % 10 {
    case 0: return .ping
    case 1:
        var ranges: [ClosedRange<UInt64>] = []
        var upper = generator.next() % (1 << 32) + 100_000
        for _ in 0..<Int(generator.next() % 8 + 1) {
            let length = generator.next() % 50
            ranges.append((upper - length)...upper)
            guard upper > length + 10 else { break }
            upper = upper - length - 2 - generator.next() % 5
        }
        return .ack(AckFrame(ranges: ranges, delayMicroseconds: generator.next() % 100_000))
    case 2:
        let modes: [DeliveryMode] = [.stream, .messages, .live]
        let mode = modes[Int(generator.next() % 3)]
        return .stream(mode: mode, channel: channel, offset: offset, data: bytes(Int(generator.next() % 300)), whole: mode == .live && generator.next() % 2 == 0)
    case 3: return .skip(channel: channel, start: offset, end: offset + generator.next() % 10_000 + 1, firstSequence: generator.next() % 5000, messageCount: generator.next() % 100)
    case 4:
        let route = RoutingHeader(routeCode: RouteCode.allCases[Int(generator.next() % 4)],
                                  to: NodeID(area: UInt16(truncatingIfNeeded: generator.next()), local: 7), channel: channel,
                                  from: NodeID(area: 1, local: UInt16(truncatingIfNeeded: generator.next())),
                                  netCode: UInt8(truncatingIfNeeded: generator.next()), controlCode: 3)
        return .datagram(channel: channel, route: route, data: bytes(Int(generator.next() % 200)))
    case 5: return .window(channel: channel, maximumOffset: offset)
    case 6: return .close(code: generator.next() % 1000, reason: "done")
    case 7: return .reset(code: generator.next() % 1000, reason: "protocol violation")
    case 8: return .pathChallenge(generator.next())
    default: return .pathResponse(generator.next())
    }
}

@Suite("Wire format")
struct WireTests {
    @Test("Varints round-trip at every length boundary")
    func varintBoundaries() throws {
        for value: UInt64 in [0, 63, 64, 16_383, 16_384, (1 << 30) - 1, 1 << 30, VarInt.max] {
            var writer = ByteWriter()
            writer.writeVarInt(value)
            #expect(writer.count == VarInt.encodedLength(value))
            let decoded = try writer.bytes.withUnsafeBytesTyped { (raw) throws(WireError) -> UInt64 in
                var reader = ByteReader(raw)
                return try reader.readVarInt()
            }
            #expect(decoded == value)
        }
    }

    @Test("Varints round-trip (property)")
    func varintProperty() async {
        await propertyCheck(count: 500, input: Gen.uint64(in: 0...VarInt.max)) { value in
            var writer = ByteWriter()
            writer.writeVarInt(value)
            let decoded = try? writer.bytes.withUnsafeBytesTyped { (raw) throws(WireError) -> UInt64 in
                var reader = ByteReader(raw)
                return try reader.readVarInt()
            }
            #expect(decoded == value)
        }
    }

    @Test("Frame sequences round-trip (property)")
    func framesRoundTrip() async {
        await propertyCheck(count: 300, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var generator = SplitMix64(seed: seed)
            let frames = (0..<Int(generator.next() % 6 + 1)).map { _ in randomFrame(&generator) }
            let encoded = Frame.encode(frames)
            #expect(encoded.count == frames.reduce(0) { $0 + $1.encodedSize })
            let decoded = try? Frame.decodeAll(encoded)
            #expect(decoded == frames)
        }
    }

    @Test("Every truncation of a valid payload is rejected with a typed error or decodes a prefix")
    func truncation() async {
        await propertyCheck(count: 100, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var generator = SplitMix64(seed: seed)
            let frames = (0..<3).map { _ in randomFrame(&generator) }
            let encoded = Frame.encode(frames)
            for cut in 0..<encoded.count {
                do {
                    let decoded = try Frame.decodeAll(Array(encoded[..<cut]))
                    // A cut at a frame boundary decodes the frames before it.
                    #expect(decoded.count < frames.count)
                    #expect(Array(frames.prefix(decoded.count)) == decoded)
                } catch let error as WireError {
                    #expect(!error.description.isEmpty)
                } catch {
                    Issue.record("untyped error \(error)")
                }
            }
        }
    }

    @Test("Garbage payloads never crash the frame decoder (property)")
    func garbage() async {
        await propertyCheck(count: 2000, input: Gen.uint8(in: 0...255).array(of: 0...64)) { bytes in
            _ = try? Frame.decodeAll(bytes)
        }
    }

    @Test("A STREAM frame's whole-message flag is for live channels only; unknown flag bits are refused")
    func streamFlags() throws {
        // type 0x03, flags, channel 4, offset 0, length 1, one byte of data.
        #expect(try Frame.decodeAll([0x03, 0x02 | 0x04, 4, 0, 1, 9]) == [.stream(mode: .live, channel: 4, offset: 0, data: [9], whole: true)])
        #expect(throws: WireError.valueOutOfRange("stream flags")) { try Frame.decodeAll([0x03, 0x01 | 0x04, 4, 0, 1, 9]) }
        #expect(throws: WireError.valueOutOfRange("stream flags")) { try Frame.decodeAll([0x03, 0x02 | 0x40, 4, 0, 1, 9]) }
    }

    @Test("Data packet headers round-trip; short or foreign packets are refused")
    func packetHeader() throws {
        let header = PacketHeader(keyPhase: 1, connectionID: 0xdead_beef, packetNumber: 1 << 40 | 5)
        let bytes = header.encoded + [UInt8](repeating: 0, count: 16)
        let decoded = try bytes.withUnsafeBytesTyped { (raw) throws(WireError) in try PacketHeader.decodeData(raw) }
        #expect(decoded == header)
        #expect(throws: WireError.truncated("sealed payload")) {
            try Array(bytes.prefix(20)).withUnsafeBytesTyped { (raw) throws(WireError) in try PacketHeader.decodeData(raw) }
        }
        var wrongVersion = bytes
        wrongVersion[0] = 0x24
        #expect(throws: WireError.unsupportedVersion(2)) {
            try wrongVersion.withUnsafeBytesTyped { (raw) throws(WireError) in try PacketHeader.decodeData(raw) }
        }
        #expect(throws: WireError.truncated("packet type")) {
            try [UInt8]().withUnsafeBytesTyped { (raw) throws(WireError) in try PacketHeader.peekType(raw) }
        }
    }

    @Test("The routing header keeps xTransporter's fields and routecodes")
    func routingHeader() throws {
        #expect(RouteCode.unicast.rawValue == 1)
        #expect(RouteCode.multicast.rawValue == 2)
        #expect(RouteCode.channel.rawValue == 3)
        #expect(RouteCode.port.rawValue == 10)
        let route = RoutingHeader(routeCode: .port, to: NodeID(area: 3, local: 9), channel: 42, from: NodeID(area: 1, local: 2), netCode: 5, controlCode: 6)
        let bytes = route.encoded
        #expect(bytes.count == RoutingHeader.encodedSize)
        let decoded = try bytes.withUnsafeBytesTyped { (raw) throws(WireError) -> RoutingHeader in
            var reader = ByteReader(raw)
            return try RoutingHeader.decode(from: &reader, channel: 42)
        }
        #expect(decoded == route)
        var bad = bytes
        bad[0] = 4
        #expect(throws: WireError.valueOutOfRange("routecode")) {
            try bad.withUnsafeBytesTyped { (raw) throws(WireError) -> RoutingHeader in
                var reader = ByteReader(raw)
                return try RoutingHeader.decode(from: &reader, channel: 0)
            }
        }
    }

    @Test("Handshake packets of the wrong size are refused")
    func handshakeLengths() {
        for size in [0, 1, 50, InitiationPacket.minimumSize - 1] {
            let bytes = [UInt8](repeating: 0x11, count: size)
            #expect(throws: WireError.self) { try bytes.withUnsafeBytesTyped { (raw) throws(WireError) in try InitiationPacket.decode(raw) } }
            #expect(throws: WireError.self) { try bytes.withUnsafeBytesTyped { (raw) throws(WireError) in try ResponsePacket.decode(raw) } }
            #expect(throws: WireError.self) { try bytes.withUnsafeBytesTyped { (raw) throws(WireError) in try CookieReplyPacket.decode(raw) } }
        }
    }

    @Test("Windows and packet numbers go far beyond 2^24 packets")
    func largeWindows() throws {
        // Packet numbers are 64-bit on the wire; ACK ranges of more than 2^24 packets encode.
        let ack = AckFrame(ranges: [(1 << 30)...((1 << 30) + (1 << 25))], delayMicroseconds: 0)
        let decoded = try Frame.decodeAll(Frame.encode([.ack(ack)]))
        #expect(decoded == [.ack(ack)])
        var queue = SentPacketQueue()
        let start = UInt64(1) << 33
        for number in start..<(start + 100) {
            queue.append(SentPacket(packetNumber: number, timeSent: .zero, size: 1000, ackEliciting: true, isMTUProbe: false,
                                    delivered: 0, lostBefore: 0, deliveredTime: .zero, firstSentTime: .zero, appLimited: false))
        }
        var acked = 0
        queue.acknowledge(AckFrame(ranges: [start...(start + 99)], delayMicroseconds: 0)) { _ in acked += 1 }
        #expect(acked == 100)
        #expect(queue.bytesInFlight == 0)
    }
}
