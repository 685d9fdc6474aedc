// The recorder's HTTP server (Hummingbird): for now the Prometheus metrics on /metrics; the
// web UI and REST API join it next.
import Foundation
public import Hummingbird
public import Logging

/// Builds the recorder's HTTP application.
public enum RecorderHTTPServer {
    /// An application serving `metrics` on `/metrics`, listening on `host`:`port`;
    /// `running` is called once it listens.
    public static func application(metrics: RecorderMetrics, host: String, port: Int, logger: Logger,
                                   running: @escaping @Sendable () async -> Void = {})
        -> Application<RouterResponder<BasicRequestContext>> {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("/health") { _, _ in "ok\n" }
        return Application(router: router, configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
                           onServerRunning: { _ in await running() }, logger: logger)
    }
}
