import XTransport
import Glibc
setvbuf(stdout, nil, _IOLBF, 0)
import XTSimulator

let a = NetworkAddress.ipv4(10,0,0,1, port: 1), b = NetworkAddress.ipv4(10,0,0,2, port: 2)
var conditions = LinkConditions.clean(delay: .milliseconds(10))
conditions.bandwidth = 200e6
conditions.queueLimit = .milliseconds(30)
conditions.reorderRate = Double(CommandLine.arguments.dropFirst(3).first ?? "0")!
conditions.reorderDelay = .milliseconds(15)
conditions.jitter = .milliseconds(2)
conditions.lossRate = Double(CommandLine.arguments.dropFirst(2).first ?? "0")!
let sim = NetworkSimulator(seed: 1, conditions: conditions)
let ci = NodeIdentity(), si = NodeIdentity()
let c = sim.add(try Endpoint(configuration: EndpointConfiguration(identity: ci, admission: .open, seed: 1), now: sim.now), at: a)
let s = sim.add(try Endpoint(configuration: EndpointConfiguration(identity: si, admission: .authorized(AuthorizedKeys([ci.publicKey: "c"])), seed: 2), now: sim.now), at: b)
let total = Int(CommandLine.arguments.dropFirst().first ?? "1000000")!
var written = 0, received = 0
var cid: SessionID?
func pump(_ e: Endpoint, _ now: Timestamp) {
  guard let id = cid else { return }
  while written < total {
    let n = min(65536, total - written)
    guard (try? e.write([UInt8](repeating: 1, count: n), channel: 1, session: id, now: now)) == .accepted else { return }
    written += n
  }
}
c.onEvent = { ev, e, now in
  switch ev {
  case .connected(let id, _, _): print("connected \(now)"); cid = id; try! e.configureChannel(1, .stream, session: id, now: now); pump(e, now)
  case .session(_, .writable): pump(e, now)
  default: print("client event \(ev)")
  }
}
s.onEvent = { ev, e, now in
  switch ev {
  case .session(_, .streamData(_, let bytes)): received += bytes.count
  default: print("server event \(ev)")
  }
}
_ = c.endpoint.connect(to: b, peerKey: si.publicKey, now: sim.now)
var lastPrint = 0
let ok = sim.run(for: .seconds(30)) {
  if sim.eventsProcessed - lastPrint > 2000 { lastPrint = sim.eventsProcessed; print(sim.now, "recv", received, "written", written, c.endpoint.sessionIDs.first.flatMap { c.endpoint.stats(for: $0) }.map { "\($0.congestionState) cwnd \($0.congestionWindow) inflight \($0.bytesInFlight) rate \($0.pacingRate) lost \($0.packetsLost) sent \($0.packetsSent) rtt \($0.smoothedRTT) mtu \($0.datagramSize)" } ?? "") }
  return received >= total }
print("done", ok, sim.now, received, sim.eventsProcessed)
if let id = c.endpoint.sessionIDs.first { print(c.endpoint.stats(for: id)!) }
print("client", c.endpoint.stats)
print("server", s.endpoint.stats)
print(sim.counters(from: a, to: b), sim.counters(from: b, to: a))
