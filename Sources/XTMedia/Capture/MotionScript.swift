// Scripted motion for the synthetic camera: objects that cross the picture at set times, so
// tests and the demo know exactly when motion happens, and the things that are not motion
// (a lighting change, sensor noise). Written as text in config files:
//   "10-14:0.1,0.6>0.8,0.6; 40-43:0.7,0.2>0.2,0.3:0.15; light 60-70:1.4; noise:20"
// (from second 10 to 14 an object moves from (0.1,0.6) to (0.8,0.6), in fractions of the
// picture; an optional last field is its size as a fraction of the picture height; from 60 s
// to 70 s the scene's brightness ramps to 1.4 times and stays there until another ramp; every
// pixel gets up to ±20 of independent noise in every picture).
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

/// A change of the scene's brightness: from `start` to `end` seconds it ramps to `gain`.
public struct LightRamp: Hashable, Sendable {
    public var start: Double
    public var end: Double
    public var gain: Double

    public init(start: Double, end: Double, gain: Double) {
        self.start = start
        self.end = end
        self.gain = gain
    }
}

/// The whole script: movements, repeated every `period` seconds when a period is given.
public struct MotionScript: Hashable, Sendable {
    public var motions: [ScriptedMotion]
    /// Seconds after which the script starts again; nil plays it once.
    public var period: Double?
    /// Brightness changes, in time order.
    public var lights: [LightRamp]
    /// Up to this much independent noise on every pixel of every picture (0: none).
    public var noise: Int

    public init(motions: [ScriptedMotion] = [], period: Double? = nil, lights: [LightRamp] = [], noise: Int = 0) {
        self.motions = motions
        self.period = period
        self.lights = lights.sorted { $0.start < $1.start }
        self.noise = noise
    }

    /// Whether the picture is lit or noisy (then every picture is drawn whole).
    public var altersScene: Bool { !lights.isEmpty || noise > 0 }

    /// The scene's brightness at `time` (1: as drawn).
    public func gain(at time: Double) -> Double {
        let local = period.map { time.truncatingRemainder(dividingBy: $0) } ?? time
        var gain = 1.0
        for ramp in lights {
            if local >= ramp.end { gain = ramp.gain; continue }
            if local > ramp.start { gain += (ramp.gain - gain) * (local - ramp.start) / (ramp.end - ramp.start) }
            break
        }
        return gain
    }

    /// Parses the config form, "start-end:x,y>x,y[:size]; ...".
    /// - Throws: ``MediaError`` naming the entry that does not parse.
    public init(parsing text: String, period: Double? = nil) throws(MediaError) {
        var motions: [ScriptedMotion] = []
        var lights: [LightRamp] = []
        var noise = 0
        for entry in text.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            if entry.hasPrefix("light") {
                let fields = entry.dropFirst(5).trimmingCharacters(in: .whitespaces).split(separator: ":")
                let times = fields.first?.split(separator: "-").compactMap { Double($0) } ?? []
                guard fields.count == 2, times.count == 2, Self.isTime(times[0]), Self.isTime(times[1]), times[0] < times[1],
                      let gain = Double(fields[1]), gain > 0, gain <= 4 else {
                    throw .invalidConfiguration("light entry '\(entry)' does not parse: write light start-end:gain, for example light 60-70:1.4")
                }
                lights.append(LightRamp(start: times[0], end: times[1], gain: gain))
                continue
            }
            if entry.hasPrefix("noise") {
                guard let amount = Int(entry.dropFirst(5).trimmingCharacters(in: CharacterSet(charactersIn: ": "))), (0...128).contains(amount) else {
                    throw .invalidConfiguration("noise entry '\(entry)' does not parse: write noise:N with N from 0 to 128")
                }
                noise = amount
                continue
            }
            let fields = entry.split(separator: ":").map(String.init)
            let times = fields.first?.split(separator: "-").compactMap { Double($0) } ?? []
            let path = fields.count > 1 ? fields[1].split(separator: ">").map { $0.split(separator: ",").compactMap { Double($0) } } : []
            let size = fields.count > 2 ? Double(fields[2]) : 0.2
            // Times within a day's period of seconds; positions as shares of the picture, allowed a
            // picture's width off either edge (an object walking in or out).
            guard fields.count <= 3, times.count == 2, Self.isTime(times[0]), Self.isTime(times[1]), times[0] < times[1],
                  path.count == 2, path[0].count == 2, path[1].count == 2, (path[0] + path[1]).allSatisfy({ (-1...2).contains($0) }),
                  let size, size > 0, size <= 1 else {
                throw .invalidConfiguration("motion entry '\(entry)' does not parse: write start-end:x,y>x,y[:size] (seconds from 0 to 86400, positions from -1 to 2, size above 0 up to 1), for example 10-14:0.1,0.6>0.8,0.6")
            }
            motions.append(ScriptedMotion(start: times[0], end: times[1], from: (path[0][0], path[0][1]),
                                          to: (path[1][0], path[1][1]), size: size))
        }
        if let period, !(period > 0 && period <= 86_400) { throw .invalidConfiguration("the motion period must be seconds above 0 up to 86400") }
        self.init(motions: motions, period: period, lights: lights, noise: noise)
    }

    /// A script's time: finite seconds from 0 to a day.
    static func isTime(_ seconds: Double) -> Bool { (0...86_400).contains(seconds) }

    /// The objects in the picture at stream time `time` (seconds since the source started).
    public func objects(at time: Double) -> [(x: Double, y: Double, size: Double)] {
        let local = period.map { time.truncatingRemainder(dividingBy: $0) } ?? time
        return motions.compactMap { motion in motion.position(at: local).map { ($0.x, $0.y, motion.size) } }
    }

    /// Whether any object moves at `time`.
    public func isMoving(at time: Double) -> Bool { !objects(at: time).isEmpty }
}
