// Scripted motion for the synthetic camera: objects that cross the picture at set times, so
// tests and the demo know exactly when motion happens. Written as text in config files:
//   "10-14:0.1,0.6>0.8,0.6; 40-43:0.7,0.2>0.2,0.3:0.15"
// (from second 10 to 14 an object moves from (0.1,0.6) to (0.8,0.6), in fractions of the
// picture; an optional last field is its size as a fraction of the picture height).
import Foundation

/// One object's scripted movement.
public struct ScriptedMotion: Hashable, Sendable {
    /// Seconds of stream time (from the source's start, modulo the script's period).
    public var start: Double
    public var end: Double
    /// Where its centre starts and ends, as fractions of width and height.
    public var from: (x: Double, y: Double)
    public var to: (x: Double, y: Double)
    /// Its side, as a fraction of the picture height.
    public var size: Double

    public init(start: Double, end: Double, from: (x: Double, y: Double), to: (x: Double, y: Double), size: Double = 0.2) {
        self.start = start
        self.end = end
        self.from = from
        self.to = to
        self.size = size
    }

    public static func == (lhs: ScriptedMotion, rhs: ScriptedMotion) -> Bool {
        lhs.start == rhs.start && lhs.end == rhs.end && lhs.from == rhs.from && lhs.to == rhs.to && lhs.size == rhs.size
    }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(start)
        hasher.combine(end)
        hasher.combine(size)
    }

    /// Where the object's centre is at `time`, or nil when it is not in the picture then.
    public func position(at time: Double) -> (x: Double, y: Double)? {
        guard time >= start, time < end else { return nil }
        let progress = (time - start) / max(end - start, 1e-9)
        return (from.x + (to.x - from.x) * progress, from.y + (to.y - from.y) * progress)
    }
}

/// The whole script: movements, repeated every `period` seconds when a period is given.
public struct MotionScript: Hashable, Sendable {
    public var motions: [ScriptedMotion]
    /// Seconds after which the script starts again; nil plays it once.
    public var period: Double?

    public init(motions: [ScriptedMotion] = [], period: Double? = nil) {
        self.motions = motions
        self.period = period
    }

    /// Parses the config form, "start-end:x,y>x,y[:size]; ...".
    /// - Throws: ``MediaError`` naming the entry that does not parse.
    public init(parsing text: String, period: Double? = nil) throws(MediaError) {
        var motions: [ScriptedMotion] = []
        for entry in text.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let fields = entry.split(separator: ":").map(String.init)
            let times = fields.first?.split(separator: "-").compactMap { Double($0) } ?? []
            let path = fields.count > 1 ? fields[1].split(separator: ">").map { $0.split(separator: ",").compactMap { Double($0) } } : []
            let size = fields.count > 2 ? Double(fields[2]) : 0.2
            guard fields.count <= 3, times.count == 2, times[0] < times[1], times[0] >= 0,
                  path.count == 2, path[0].count == 2, path[1].count == 2, let size, size > 0, size <= 1 else {
                throw .invalidConfiguration("motion entry '\(entry)' does not parse: write start-end:x,y>x,y[:size], for example 10-14:0.1,0.6>0.8,0.6")
            }
            motions.append(ScriptedMotion(start: times[0], end: times[1], from: (path[0][0], path[0][1]),
                                          to: (path[1][0], path[1][1]), size: size))
        }
        if let period, period <= 0 { throw .invalidConfiguration("the motion period must be positive seconds") }
        self.init(motions: motions, period: period)
    }

    /// The objects in the picture at stream time `time` (seconds since the source started).
    public func objects(at time: Double) -> [(x: Double, y: Double, size: Double)] {
        let local = period.map { time.truncatingRemainder(dividingBy: $0) } ?? time
        return motions.compactMap { motion in motion.position(at: local).map { ($0.x, $0.y, motion.size) } }
    }

    /// Whether any object moves at `time`.
    public func isMoving(at time: Double) -> Bool { !objects(at: time).isEmpty }
}
