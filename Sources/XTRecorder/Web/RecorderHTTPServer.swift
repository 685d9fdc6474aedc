// The recorder's HTTP server (Hummingbird): the web UI's pages (static files from web/), the
// REST API and live WebSocket (``RecorderWeb``), and the Prometheus metrics on /metrics and a
// health check on /health, which need no login (they hold no recordings; keep the server on
// loopback or behind a firewall if the counters are private).
import Foundation
public import Hummingbird
import HummingbirdWebSocket
public import Logging
import NIOCore

/// Builds the recorder's HTTP application.
public enum RecorderHTTPServer {
    /// The application type ``application(web:metrics:webRoot:host:port:logger:running:)`` builds.
    public typealias App = Application<RouterResponder<WebRequestContext>>

    /// The router of the pages, API and metrics (the part HummingbirdTesting drives).
    public static func router(web: RecorderWeb?, metrics: RecorderMetrics?, webRoot: String?, logger: Logger) -> Router<WebRequestContext> {
        let router = Router(context: WebRequestContext.self)
        router.middlewares.add(JSONErrorMiddleware())
        if let web {
            router.middlewares.add(SessionMiddleware(accounts: web.accounts))
            router.middlewares.add(ClipFiles(directory: web.clips.directory, logger: logger))
        }
        if let webRoot {
            router.middlewares.add(FileMiddleware(webRoot, cacheControl: .init([(MediaType(type: .any), [.noCache])]), searchForIndexHtml: true,
                                                  logger: logger))
        }
        if let metrics {
            router.get("/metrics") { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                         body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render())))
            }
        }
        router.get("/health") { _, _ in "ok\n" }
        web?.addRoutes(to: router)
        return router
    }

    /// An application serving the web UI (when `web` is given) and `metrics`, listening on
    /// `host`:`port`; `running` is called once it listens.
    public static func application(web: RecorderWeb?, metrics: RecorderMetrics?, webRoot: String?, host: String, port: Int, logger: Logger,
                                   running: @escaping @Sendable () async -> Void = {}) -> App {
        let sockets = Router(context: LiveSocketContext.self)
        if let web {
            sockets.middlewares.add(SessionMiddleware(accounts: web.accounts))
            web.addLiveRoute(to: sockets)
            web.addCallRoute(to: sockets)
        }
        return Application(router: router(web: web, metrics: metrics, webRoot: webRoot, logger: logger),
                           server: .http1WebSocketUpgrade(webSocketRouter: sockets, configuration: .init(ws: .init(maxFrameSize: 1 << 20))),
                           configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "xt-recorder"),
                           onServerRunning: { _ in await running() }, logger: logger)
    }

    /// Where the web UI's files are: `XT_WEB_ROOT`, else a `web/` folder beside the executable
    /// or up to four folders above it (a build in a checkout), else `/usr/share/xt/web`.
    public static func defaultWebRoot() -> String? {
        if let root = ProcessInfo.processInfo.environment["XT_WEB_ROOT"], !root.isEmpty { return root }
        var directory = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = directory.appendingPathComponent("web")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("index.html").path) { return candidate.path }
            directory = directory.deletingLastPathComponent()
        }
        return FileManager.default.fileExists(atPath: "/usr/share/xt/web/index.html") ? "/usr/share/xt/web" : nil
    }
}

/// Serves the clips under `/api/clips/` (with range requests) to logged-in users.
struct ClipFiles: RouterMiddleware {
    typealias Context = WebRequestContext
    let files: FileMiddleware<WebRequestContext, LocalFileSystem>

    init(directory: String, logger: Logger) {
        files = FileMiddleware(directory, urlBasePath: "/api/clips", cacheControl: .init([(MediaType(type: .any), [.private])]), logger: logger)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/api/clips/") else { return try await next(request, context) }
        _ = try context.requireUser()
        do {
            return try await files.handle(request, context: context) { _, _ in throw HTTPError(.notFound) }
        } catch let error as HTTPError where error.status == .notFound {
            throw APIError(.notFound, "no such clip (clips are kept 30 minutes): ask for it again")
        }
    }
}
