// A host and its nodes on loopback for the suites that need a running network: the suite
// holds the host's identity, these start the host and nodes that trust it.
import XTNet
import XTransport
import XTransportNIO

protocol LoopbackNetwork {
    var hostIdentity: NodeIdentity { get }
}

extension LoopbackNetwork {
    func startHost(port: UInt16, holdTime: Duration = .seconds(8), multicast: MulticastOptions? = nil) async throws -> NetHost {
        let configuration = EndpointConfiguration(identity: hostIdentity, admission: .open, session: SessionConfiguration())
        return try await NetHost.start(host: "127.0.0.1", ports: port...port, configuration: configuration, holdTime: holdTime,
                                       multicast: multicast)
    }

    /// A started node `name` with id 1.`local`, connected to the host on `port`.
    func node(_ name: String, _ local: UInt16, port: UInt16, inboxCapacity: Int = 1024) async throws -> NetNode {
        let node = NetNode(configuration: nodeConfiguration(name, local, port: port), identity: NodeIdentity(),
                           hostKey: hostIdentity.publicKey, inboxCapacity: inboxCapacity)
        try await node.start()
        return node
    }

    func nodeConfiguration(_ name: String, _ local: UInt16, port: UInt16) -> NodeConfiguration {
        var configuration = NodeConfiguration()
        configuration.id = NodeID(area: 1, local: local)
        configuration.name = name
        configuration.host = "127.0.0.1"
        configuration.hostPort = port
        configuration.portRange = port...port
        return configuration
    }
}
