// A camera's motion policy applied to the detector's grids: zones and masks (polygons in
// fractions of the picture), sensitivity (how much of a cell must change), minimum area (how
// much of a zone), minimum duration (how long before it counts) and cooldown (how long
// without motion ends an event). Grids come from the camera's agent or from the recorder's
// own decoding; out come event starts and ends per zone.
public import XTMedia

/// A point in fractions of the picture: (0, 0) top left, (1, 1) bottom right.
public struct PicturePoint: Hashable, Sendable, Codable {
    public var x: Double
    public var y: Double

    public init(_ x: Double, _ y: Double) {
        self.x = x
        self.y = y
    }
}

/// A named area of the picture.
public struct MotionZone: Hashable, Sendable, Codable {
    public var name: String
    public var polygon: [PicturePoint]

    public init(name: String, polygon: [PicturePoint]) {
        self.name = name
        self.polygon = polygon
    }

    /// The whole picture.
    public static let everywhere = MotionZone(name: "all", polygon: [PicturePoint(0, 0), PicturePoint(1, 0), PicturePoint(1, 1), PicturePoint(0, 1)])

    /// Whether `point` lies inside (even–odd rule).
    public func contains(_ point: PicturePoint) -> Bool {
        var inside = false
        var previous = polygon.last ?? point
        for current in polygon {
            if (current.y > point.y) != (previous.y > point.y),
               point.x < (previous.x - current.x) * (point.y - current.y) / (previous.y - current.y) + current.x {
                inside.toggle()
            }
            previous = current
        }
        return inside
    }

    /// Parses "x,y x,y x,y ..." (at least three points, each in 0…1).
    public static func polygon(parsing text: String) -> [PicturePoint]? {
        let points = text.split(separator: " ").map { $0.split(separator: ",").compactMap { Double($0) } }
        guard points.count >= 3, points.allSatisfy({ $0.count == 2 && (0...1).contains($0[0]) && (0...1).contains($0[1]) }) else { return nil }
        return points.map { PicturePoint($0[0], $0[1]) }
    }
}

/// One camera's motion settings.
public struct MotionSettings: Hashable, Sendable {
    /// Where motion counts (empty: the whole picture).
    public var zones: [MotionZone] = []
    /// Where it never counts (a tree in the wind, a road, the clock overlay).
    public var masks: [MotionZone] = []
    /// 0…1: higher notices smaller changes within a cell.
    public var sensitivity = 0.6
    /// Share of a zone's cells that must change: 0.003 is two of the grid's 576 cells, so a
    /// small distant object (0.3% of the picture, a person far down the drive) counts.
    public var minimumArea = 0.003
    /// Motion must last this long to start an event.
    public var minimumDuration: Duration = .milliseconds(300)
    /// An event ends after this long without motion (motion within it continues the event).
    public var cooldown: Duration = .seconds(5)
    /// Recording kept with an event before its start and after its end.
    public var preRoll: Duration = .seconds(5)
    public var postRoll: Duration = .seconds(5)
    /// Detection on or off for this camera.
    public var enabled = true

    public init() {}

    /// The share of a cell that must change for the cell to count (0…255).
    var cellThreshold: UInt8 { UInt8(clamping: Int((1 - min(max(sensitivity, 0), 1)) * 200 + 10)) }
}

/// A motion event: a zone where motion lasted from `start` to `end` (capture times, ns).
public struct MotionEvent: Hashable, Sendable, Codable {
    public var camera: String
    public var zone: String
    public var start: Int64
    /// nil while it goes on.
    public var end: Int64?
    /// When the zone's changed share peaked, and that share (0…1).
    public var peakTime: Int64
    public var peakScore: Double

    public init(camera: String, zone: String, start: Int64, end: Int64? = nil, peakTime: Int64, peakScore: Double) {
        self.camera = camera
        self.zone = zone
        self.start = start
        self.end = end
        self.peakTime = peakTime
        self.peakScore = peakScore
    }
}

/// Applies a camera's settings to its grids, in capture order.
public final class MotionEvaluator {
    public let camera: String
    public let settings: MotionSettings

    private struct ZoneState {
        var zone: MotionZone
        /// The grid cells that count (in the zone, outside every mask).
        var cells: [Int]
        var runStart: Int64?
        var lastActive: Int64 = .min
        var event: MotionEvent?
    }

    private var zones: [ZoneState]

    public init(camera: String, settings: MotionSettings) {
        self.camera = camera
        self.settings = settings
        let zones = settings.zones.isEmpty ? [MotionZone.everywhere] : settings.zones
        self.zones = zones.map { zone in
            var cells: [Int] = []
            for row in 0..<MotionGrid.rows {
                for column in 0..<MotionGrid.columns {
                    let centre = PicturePoint((Double(column) + 0.5) / Double(MotionGrid.columns), (Double(row) + 0.5) / Double(MotionGrid.rows))
                    if zone.contains(centre), !settings.masks.contains(where: { $0.contains(centre) }) {
                        cells.append(row * MotionGrid.columns + column)
                    }
                }
            }
            return ZoneState(zone: zone, cells: cells)
        }
    }

    /// The share of each zone's cells that changed in `grid`.
    public func scores(_ grid: MotionGrid) -> [String: Double] {
        let threshold = settings.cellThreshold
        var result: [String: Double] = [:]
        for state in zones where !state.cells.isEmpty {
            let changed = state.cells.count { grid.cells[$0] >= threshold }
            result[state.zone.name] = Double(changed) / Double(state.cells.count)
        }
        return result
    }

    /// What a grid started and ended.
    public enum Change: Hashable, Sendable {
        case started(MotionEvent)
        case ended(MotionEvent)
    }

    /// Takes the next grid.
    public func take(_ grid: MotionGrid) -> [Change] {
        guard settings.enabled else { return [] }
        let time = grid.captureTime.nanoseconds
        let scores = scores(grid)
        var changes: [Change] = []
        for index in zones.indices {
            var state = zones[index]
            let score = scores[state.zone.name] ?? 0
            if score >= settings.minimumArea {
                if state.runStart == nil { state.runStart = time }
                state.lastActive = time
                if var event = state.event {
                    if score > event.peakScore {
                        event.peakScore = score
                        event.peakTime = time
                    }
                    state.event = event
                } else if time - state.runStart! >= settings.minimumDuration.nanoseconds {
                    let event = MotionEvent(camera: camera, zone: state.zone.name, start: state.runStart!, peakTime: time, peakScore: score)
                    state.event = event
                    changes.append(.started(event))
                }
            } else {
                state.runStart = nil
                if var event = state.event, time - state.lastActive >= settings.cooldown.nanoseconds {
                    event.end = state.lastActive
                    state.event = nil
                    changes.append(.ended(event))
                }
            }
            zones[index] = state
        }
        return changes
    }

    /// Ends what goes on (the camera went away, or the recorder stops).
    public func finish() -> [Change] {
        var changes: [Change] = []
        for index in zones.indices {
            if var event = zones[index].event {
                event.end = zones[index].lastActive
                zones[index].event = nil
                changes.append(.ended(event))
            }
            zones[index].runStart = nil
        }
        return changes
    }
}
