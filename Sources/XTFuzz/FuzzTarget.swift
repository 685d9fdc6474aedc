// libFuzzer entry point (built by `make fuzz` with -sanitize=fuzzer): every input is fed to a
// listening endpoint as a datagram (packet decoder, handshake, cookie path) and to the frame
// decoder, and to a multicast receiver twice: as it came (header checks, forgeries), and with
// its first 16 bytes taken as a header and the rest sealed under the group key, so arbitrary
// sequences, fragments and heartbeats reach the reordering. Any crash, trap or leak is a finding.
import XTransport

private let identity = NodeIdentity()
nonisolated(unsafe) private var endpoint: Endpoint = {
    var configuration = EndpointConfiguration(identity: identity, admission: .open, cookieThreshold: 1_000_000, seed: 1)
    configuration.wallClockOrigin = 1
    return try! Endpoint(configuration: configuration, now: .zero)
}()
nonisolated(unsafe) private var clock: UInt64 = 1_000_000_000
nonisolated(unsafe) private var scratch = [UInt8](repeating: 0, count: 65_536)
private let groupKey = MulticastKey()
nonisolated(unsafe) private var multicast = try! MulticastReceiver(
    MulticastStreamDescriptor(channel: 7, stream: 42, key: groupKey.bytes, firstSequence: 1, group: nil))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    clock += 1_000_000
    let now = Timestamp(nanoseconds: clock)
    endpoint.handle(datagram: bytes, from: .ipv4(10, 0, 0, 9, port: 9), now: now)
    endpoint.handleTimeout(now: now)
    while scratch.withUnsafeMutableBytes({ endpoint.pollTransmit(now: now, into: $0) }) != nil {}
    while endpoint.pollEvent() != nil {}
    _ = try? Frame.decodeAll(Array(bytes))

    let datagram = Array(bytes)
    _ = multicast.receive(datagram, via: .group, now: now)
    if datagram.count >= 16 {
        let sequence = datagram[5..<13].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } % (1 << 40)
        let header = MulticastHeader(kind: datagram[0] & 1 == 0 ? .data : .heartbeat, stream: 42, sequence: sequence, channel: 7,
                                     flags: MulticastHeader.Flags(rawValue: datagram[15] & 3))
        _ = multicast.receive(groupKey.seal(header, body: datagram[16...]), via: .relay, now: now)
    }
    _ = multicast.takeMessages(now: now)
    _ = multicast.takeNack(now: now)
    return 0
}

// SwiftPM links an executable's entry point as `XTFuzz_main` and points `main` at it, so
// libFuzzer's own main is never pulled in: start libFuzzer's driver from here instead.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("XTFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzz(data, size)
    }
}
