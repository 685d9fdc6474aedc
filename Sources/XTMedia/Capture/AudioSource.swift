// What every microphone-like input gives the agent: blocks of 16-bit samples stamped with the
// capture time of their first sample.

/// A microphone, a tone generator or a file. Reads block until the next block is captured.
public protocol AudioSource: CaptureSource {
    var sampleRate: Int { get }
    var channels: Int { get }
    /// The next block of samples, blocking until it is captured.
    /// - Throws: ``MediaError`` (`.deviceLost` when the device went away, `.endOfStream` at
    ///   the end of a file).
    func next() throws(MediaError) -> AudioFrame
}
