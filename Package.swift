// swift-tools-version: 6.1
// XTransport: a media and security-camera system on its own encrypted, congestion-controlled
// transport over UDP. Layers (imports point down only): XTransport (sans-IO core) ←
// XTransportNIO (UDP endpoint, async API) ← applications ← `xt`.
import Foundation
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "XTransport",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "XTransport", targets: ["XTransport"]),
        .library(name: "XTransportNIO", targets: ["XTransportNIO"]),
        .library(name: "XTSimulator", targets: ["XTSimulator"]),
        .library(name: "XTNet", targets: ["XTNet"]),
        .library(name: "XTMedia", targets: ["XTMedia"]),
        .library(name: "XTAgent", targets: ["XTAgent"]),
        .library(name: "XTCall", targets: ["XTCall"]),
        .library(name: "XTBackup", targets: ["XTBackup"]),
        .library(name: "XTRecorder", targets: ["XTRecorder"]),
        .library(name: "XTMQTT", targets: ["XTMQTT"]),
        // libv4l2 plugin for tests: an emulated camera (see Sources/CV4L2Emulator).
        .library(name: "xtv4l2emulator", type: .dynamic, targets: ["CV4L2Emulator"]),
        // ALSA plugin for tests: a capture PCM that runs at real time (see Sources/CALSAClock).
        .library(name: "xtalsaclock", type: .dynamic, targets: ["CALSAClock"]),
        .executable(name: "xt", targets: ["xt"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        // Transport core: wire format, Noise IK handshake, sans-IO session and endpoint state
        // machines, loss recovery, congestion control. No sockets, clocks or tasks.
        .target(
            name: "XTransport",
            dependencies: ["CXTAEAD", .product(name: "Crypto", package: "swift-crypto")],
            // The session is a class mutated on every packet: runtime exclusivity checks cost
            // ~10% of the hot path. Static checks still apply; debug builds keep the runtime ones.
            swiftSettings: strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        // In-place ChaCha20-Poly1305 over the BoringSSL that swift-crypto links (see its header).
        .target(name: "CXTAEAD", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // Deterministic, seeded network simulator that drives sans-IO endpoints on a virtual clock.
        .target(name: "XTSimulator", dependencies: ["XTransport"], swiftSettings: strict),
        // Node network (xTransporter, UltraSockets): host and node roles, routing by unicast,
        // name, channel, port and multicast, subscriptions.
        .target(
            name: "XTNet",
            dependencies: ["XTransport", "XTransportNIO", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // Production driver: one SwiftNIO DatagramChannel carrying many sessions, async API.
        .target(
            name: "XTransportNIO",
            dependencies: [
                "XTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // C media libraries, each behind a shim header for what Swift cannot import (macros,
        // variadic functions): FFmpeg, libopus, libv4l2, ALSA.
        // FFmpeg's headers, and forwarding functions that load its libraries on first use
        // (Sources/CFFmpeg/lazy.c): xt starts without them. Headers: libav*-dev, libsw*-dev.
        .target(name: "CFFmpeg", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "COpus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "CV4L2", providers: [.apt(["libv4l-dev"])]),
        .systemLibrary(name: "CALSA", providers: [.apt(["libasound2-dev"])]),
        // Media: frames, capture sources (V4L2, ALSA, files, synthetic), H.264 and Opus coding,
        // the media wire format, containers. Knows nothing of the network.
        .target(name: "XTMedia", dependencies: ["CFFmpeg", "COpus", "CV4L2", "CALSA"], swiftSettings: strict),
        // An emulated V4L2 camera loaded by libv4l2 as a plugin, so tests run the real V4L2 path.
        .target(name: "CV4L2Emulator"),
        // A real-time capture PCM for ALSA's file plugin to read a speech file through.
        .target(name: "CALSAClock", cSettings: [.define("PIC")], linkerSettings: [.linkedLibrary("asound")]),
        // The camera agent: capture pipelines, live publishing, the ring buffer and backfill.
        .target(
            name: "XTAgent",
            dependencies: ["XTMedia", "XTNet", "XTransport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // Calls: signalling (sans-IO), the audio path (echo cancellation, Opus with FEC, an
        // adaptive jitter buffer), the video path, the call driver on the node network.
        .target(
            name: "XTBackup",
            dependencies: [
                "XTransport", "XTransportNIO", "CXTAEAD",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .systemLibrary(name: "CSpeexDSP", providers: [.apt(["libspeexdsp-dev"])]),
        .target(name: "XTCall", dependencies: ["XTMedia", "XTNet", "XTransport", "CSpeexDSP", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        // MQTT for Home Assistant and Frigate-style topics: libmosquitto, owned by a Swift type.
        .systemLibrary(name: "CMosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .target(name: "XTMQTT", dependencies: ["CMosquitto", .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
        // The recorder: the host role plus ingest of live and backfilled media into segments,
        // the index, motion, alarms, and the web UI's server (REST API, live view, metrics).
        .target(
            name: "XTRecorder",
            dependencies: [
                "XTMedia", "XTNet", "XTransport", "XTBackup", "XTMQTT",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // Allocator tuning for the `xt` process (glibc's mallopt, which Swift's Glibc lacks).
        .target(name: "CXTSystem"),
        .executableTarget(
            name: "xt",
            dependencies: [
                "XTransport", "XTransportNIO", "XTNet", "XTMedia", "XTAgent", "XTCall", "XTBackup", "XTRecorder", "XTMQTT", "XTSimulator", "CXTSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "XTransportTests",
            dependencies: [
                "XTransport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "XTNetTests", dependencies: ["XTNet", "XTransport", "XTransportNIO"], swiftSettings: strict),
        .testTarget(name: "XTMediaTests", dependencies: ["XTMedia"], swiftSettings: strict),
        .testTarget(
            name: "XTRecorderTests",
            dependencies: [
                "XTRecorder", "XTMedia", "XTNet", "XTransport", "XTBackup", "XTransportNIO", "XTMQTT", "XTTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "XTAgentTests", dependencies: ["XTAgent", "XTMedia", "XTNet", "XTransport"], swiftSettings: strict),
        .testTarget(
            name: "XTBackupTests",
            dependencies: ["XTBackup", "XTransport", "XTransportNIO", .product(name: "Crypto", package: "swift-crypto"), .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict
        ),
        // Helpers tests share: a real mosquitto broker and subscriber.
        .target(name: "XTTestSupport", path: "Tests/XTTestSupport", swiftSettings: strict),
        .testTarget(name: "XTMQTTTests", dependencies: ["XTMQTT", "XTTestSupport", .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
        .testTarget(name: "XTCallTests", dependencies: ["XTCall", "XTMedia", "XTransport"], swiftSettings: strict),
        .testTarget(name: "XTSimulatorTests", dependencies: ["XTransport", "XTSimulator"], swiftSettings: strict),
        // Runs the built `xt` binary the way a user does: exit codes and error lines.
        .testTarget(name: "xtTests", dependencies: ["xt", "XTMedia", "XTTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "XTransportNIOTests",
            dependencies: ["XTransport", "XTransportNIO", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
    ]
)

// libFuzzer target for `make fuzz` only (XT_FUZZ=1): it is linked with -sanitize=fuzzer, which
// supplies main, so an ordinary build must not see it.
if ProcessInfo.processInfo.environment["XT_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "XTFuzz", dependencies: ["XTransport"], swiftSettings: strict))
}
