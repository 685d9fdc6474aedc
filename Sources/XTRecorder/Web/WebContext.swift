// The web layer's plumbing: the request contexts (who is logged in), the middleware that reads
// the session cookie, JSON responses, and errors as JSON with a reason a person can act on.
import Foundation
public import Hummingbird
public import HummingbirdWebSocket
import NIOCore
import XTMedia

/// A request context that knows the logged-in user.
public protocol AuthenticatedContext: RequestContext {
    var user: WebUser? { get set }
}

/// The context of the recorder's HTTP requests.
public struct WebRequestContext: AuthenticatedContext {
    public var coreContext: CoreRequestContextStorage
    public var user: WebUser?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

/// The context of the live view's WebSocket upgrades.
public struct LiveSocketContext: AuthenticatedContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public var user: WebUser?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
    }
}

/// An API failure: an HTTP status and a reason, sent as `{"error": reason, "status": code}`.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var reason: String

    public init(_ status: HTTPResponse.Status, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { reason }

    static let loginNeeded = APIError(.unauthorized, "log in first (POST /api/login)")
    static let adminNeeded = APIError(.forbidden, "only an admin may do this")
}

/// Reads the session cookie into the context's user (requests without one go on, userless:
/// the routes decide what needs a login).
struct SessionMiddleware<Context: AuthenticatedContext>: RouterMiddleware {
    let accounts: WebAccounts

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let token = request.cookies[WebAccounts.cookieName]?.value { context.user = accounts.user(token: token) }
        return try await next(request, context)
    }
}

/// Turns every failure into a JSON error with a reason (and logs the unexpected ones).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return JSON.error(error.status, error.reason)
        } catch let error as HTTPError {
            let reason = error.body ?? (error.status == .notFound ? "no such page or API: \(request.uri.path)" : error.status.reasonPhrase)
            return JSON.error(error.status, reason)
        } catch let error as DecodingError {
            return JSON.error(.badRequest, "the request body is not the JSON expected: \(JSON.explain(error))")
        } catch let error as StorageError {
            let status: HTTPResponse.Status = switch error.code {
            case .notFound: .notFound
            case .invalidConfiguration: .badRequest
            default: .internalServerError
            }
            if status == .internalServerError { context.logger.error("web request failed", metadata: ["path": "\(request.uri.path)", "reason": "\(error.reason)"]) }
            return JSON.error(status, error.reason)
        } catch {
            context.logger.error("web request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return JSON.error(.internalServerError, "the recorder failed: \(error)")
        }
    }
}

/// JSON in and out.
enum JSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: HTTPResponse.Status, _ reason: String) -> Response {
        struct Body: Encodable { var error: String; var status: Int }
        return (try? response(Body(error: reason, status: status.code), status: status)) ?? Response(status: status)
    }

    static func explain(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "'\(key.stringValue)' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case .dataCorrupted(let context): context.debugDescription
        @unknown default: "\(error)"
        }
    }
}

extension AuthenticatedContext {
    /// The logged-in user, or a 401.
    func requireUser() throws -> WebUser {
        guard let user else { throw APIError.loginNeeded }
        return user
    }

    /// The logged-in admin, or a 401/403.
    func requireAdmin() throws -> WebUser {
        let user = try requireUser()
        guard user.role == .admin else { throw APIError.adminNeeded }
        return user
    }
}

extension Parameters {
    /// A path parameter as the client meant it: Hummingbird hands path elements over still
    /// percent-encoded (a camera "küche" arrives as "k%C3%BCche").
    /// - Throws: a 400 ``APIError`` when it is missing or not valid percent-encoding.
    func decoded(_ name: String) throws -> String {
        guard let raw = get(name) else { throw APIError(.badRequest, "'\(name)' is missing from the path") }
        guard let text = raw.removingPercentEncoding else { throw APIError(.badRequest, "'\(name)' is not valid percent-encoding: \(raw.prefix(40))") }
        return text
    }
}

extension Request {
    /// A time query parameter: milliseconds since 1970 or ISO 8601, from 1970 to 2199 (checked
    /// here, where it enters, so that no arithmetic on it can overflow).
    func time(_ name: String) throws -> Int64? {
        guard let text = uri.queryParameters.get(name), !text.isEmpty else { return nil }
        if let milliseconds = Int64(text) { return try API.checkedTime(milliseconds, name) }
        if let date = try? Date(text, strategy: .iso8601), let time = CaptureTime(seconds: date.timeIntervalSince1970) { return time.milliseconds }
        throw APIError(.badRequest, "'\(name)' is not \(CaptureTime.validRangeDescription), nor such a date in ISO 8601 (2026-11-21T10:00:00Z)")
    }

    /// A whole-number query parameter within `range`.
    func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = uri.queryParameters.get(name), !text.isEmpty else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw APIError(.badRequest, "'\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}
