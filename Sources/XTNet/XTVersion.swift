// The version of this build of XTransport (the `xt` binary, its packages, what Home Assistant
// shows as a device's software version).

/// The product's version (semantic versioning).
public enum XTVersion {
    public static let current = "0.9.0"
}
