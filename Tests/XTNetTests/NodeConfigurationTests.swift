// Node settings: file, then environment, then command line; unknown keys and bad values name
// the source, the line and what is expected. The host's node directory pins ids to keys.
import Testing
import XTNet
import XTransport

@Suite("Node configuration")
struct NodeConfigurationTests {
    @Test("A file sets every key; the environment overrides it")
    func layered() throws {
        var configuration = NodeConfiguration()
        try configuration.apply(file: """
            # the garage camera
            id = 1.2
            name = garage   # trailing comment
            host = 10.0.0.1:9100
            port-range = 9100-9110
            channel = 30
            netlatency = 500
            packetburst = 8
            mtu = 1472
            """, source: "Config/node.conf")
        #expect(configuration.id == NodeID(area: 1, local: 2))
        #expect(configuration.name == "garage")
        #expect(configuration.host == "10.0.0.1" && configuration.hostPort == 9100)
        #expect(configuration.portRange == 9100...9110)
        #expect(configuration.channel == 30 && configuration.netLatencyMicroseconds == 500)
        #expect(configuration.packetBurst == 8 && configuration.mtu == 1472)
        try configuration.apply(environment: ["XT_NODE_NAME": "garage-2", "XT_NODE_PORT_RANGE": "9200-9201", "PATH": "/bin"])
        #expect(configuration.name == "garage-2" && configuration.portRange == 9200...9201)
        let session = try configuration.sessionConfiguration()
        #expect(session.maximumDatagramSize == 1472 && session.packetBurst == 8)
    }

    @Test("Unknown keys, bad values and malformed lines are errors that say where and what", arguments: [
        ("colour = red", "Config/node.conf line 1: unknown key 'colour'"),
        ("id = 1", "Config/node.conf line 1: '1' is not a valid id: expected area.local"),
        ("\nmtu = 80", "Config/node.conf line 2: '80' is not a valid mtu: expected 1200…65507 bytes"),
        ("host = nowhere", "'nowhere' is not a valid host: expected host:port"),
        ("just words", "'just words' is not a setting: write key = value"),
        ("port-range = 9010-9000", "'9010-9000' is not a valid port-range"),
    ])
    func errors(_ text: String, _ expected: String) {
        var configuration = NodeConfiguration()
        do {
            try configuration.apply(file: text, source: "Config/node.conf")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(expected), "\(error)")
        }
    }

    @Test("A bad environment variable names itself")
    func badEnvironment() {
        var configuration = NodeConfiguration()
        #expect(throws: NodeConfigurationError.self) { try configuration.apply(environment: ["XT_NODE_CHANNEL": "lots"]) }
    }

    @Test("The host's directory reads names and ids from authorized keys")
    func directory() throws {
        let garage = NodeIdentity().publicKey
        let phone = NodeIdentity().publicKey
        let keys = try AuthorizedKeys(parsing: "\(garage) garage 1.2\n\(phone) phone\n")
        let directory = try NodeDirectory(keys)
        #expect(directory.registered(garage)?.id == NodeID(area: 1, local: 2))
        #expect(directory.registered(garage)?.name == "garage")
        #expect(directory.registered(phone) == nil, "a key without an id pins nothing")
        #expect(throws: NodeConfigurationError.self) { try NodeDirectory(AuthorizedKeys(parsing: "\(garage) garage one.two\n")) }
    }
}
