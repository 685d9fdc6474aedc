// The recorder's index: what is recorded where (segments), what is missing (gaps), which
// streams each camera sent and which of their frames are safe on disk. It sits behind this
// protocol so that a shared PostgreSQL index (several recorders) is a new type, not a rewrite;
// `SQLiteIndex` is the one-host implementation. Times are capture times in nanoseconds since
// the Unix epoch (the agents' wall clocks).

/// One camera the recorder has heard of.
public struct CameraRecord: Sendable, Equatable, Codable {
    public var name: String
    /// Capture time of its first and latest frame.
    public var firstSeen: Int64
    public var lastSeen: Int64
    /// Its current streams, as people read them ("H.264 1280x720@30", "Opus 48000 Hz 1 ch").
    public var video: String?
    public var audio: String?

    public init(name: String, firstSeen: Int64, lastSeen: Int64, video: String? = nil, audio: String? = nil) {
        self.name = name
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.video = video
        self.audio = audio
    }
}

/// One stream (a camera's video or audio from one start of its agent) and the frames of it
/// that are on disk, so that after a restart agents are asked only for the rest.
public struct StreamRecord: Sendable, Equatable {
    public var stream: UInt64
    public var camera: String
    /// "video" or "audio".
    public var kind: String
    /// The stream's header as a media message (codec configuration included).
    public var header: [UInt8]
    /// Sequences on disk.
    public var received: [ClosedRange<UInt64>]

    public init(stream: UInt64, camera: String, kind: String, header: [UInt8], received: [ClosedRange<UInt64>]) {
        self.stream = stream
        self.camera = camera
        self.kind = kind
        self.header = header
        self.received = received
    }
}

/// One segment file: a stretch of one camera's recording.
public struct SegmentRecord: Sendable, Equatable, Codable {
    /// Relative to the storage root: `<camera>/<date>/<hour>/<time>-<id>.mp4`.
    public var path: String
    public var camera: String
    /// Capture time of its first frame, and of the end of its last.
    public var start: Int64
    public var end: Int64
    public var bytes: Int64
    public var videoFrames: Int
    public var audioFrames: Int
    /// Still being written (a recorder that stopped uncleanly leaves it so; start-up repairs it).
    public var isOpen: Bool

    public init(path: String, camera: String, start: Int64, end: Int64, bytes: Int64, videoFrames: Int, audioFrames: Int,
                isOpen: Bool) {
        self.path = path
        self.camera = camera
        self.start = start
        self.end = end
        self.bytes = bytes
        self.videoFrames = videoFrames
        self.audioFrames = audioFrames
        self.isOpen = isOpen
    }

    /// Seconds of recording it holds.
    public var seconds: Double { Double(end - start) / 1e9 }
}

/// A stretch of a camera's timeline with no recording between two segments.
public struct GapRecord: Sendable, Equatable, Codable {
    public var camera: String
    public var start: Int64
    public var end: Int64

    public init(camera: String, start: Int64, end: Int64) {
        self.camera = camera
        self.start = start
        self.end = end
    }
}

/// A file that must be renamed into place once the index says so: segments rewritten with
/// backfilled frames are written aside, the index switches to them in one transaction, and
/// the rename follows (redone at start-up when a crash came between).
public struct FileMove: Sendable, Equatable {
    public var from: String
    public var to: String

    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }
}

/// A motion event as the index keeps it.
public struct EventRecord: Sendable, Equatable, Codable {
    /// Given by the index when first saved.
    public var id: Int64?
    public var camera: String
    public var zone: String
    /// Capture times (ns): the motion, and the stretch of recording kept with it (pre- and post-roll).
    public var start: Int64
    public var end: Int64?
    public var clipStart: Int64
    public var clipEnd: Int64?
    public var peakTime: Int64
    public var peakScore: Double
    /// The JPEG snapshot, relative to the storage root (nil until written).
    public var snapshot: String?

    public init(id: Int64? = nil, camera: String, zone: String, start: Int64, end: Int64? = nil, clipStart: Int64, clipEnd: Int64? = nil,
                peakTime: Int64, peakScore: Double, snapshot: String? = nil) {
        self.id = id
        self.camera = camera
        self.zone = zone
        self.start = start
        self.end = end
        self.clipStart = clipStart
        self.clipEnd = clipEnd
        self.peakTime = peakTime
        self.peakScore = peakScore
        self.snapshot = snapshot
    }
}

/// A node of the network as the recorder last saw it.
public struct NodeRecord: Sendable, Equatable, Codable {
    public var name: String
    /// area.local
    public var id: String
    /// Its public key (base64).
    public var key: String
    public var firstSeen: Int64
    public var lastSeen: Int64
    public var channels: [UInt16]
    /// The link when last seen.
    public var rttMilliseconds: Double
    public var lossPercent: Double
    public var retransmittedBytes: Int64

    public init(name: String, id: String, key: String, firstSeen: Int64, lastSeen: Int64, channels: [UInt16], rttMilliseconds: Double,
                lossPercent: Double, retransmittedBytes: Int64) {
        self.name = name
        self.id = id
        self.key = key
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.channels = channels
        self.rttMilliseconds = rttMilliseconds
        self.lossPercent = lossPercent
        self.retransmittedBytes = retransmittedBytes
    }
}

/// An alarm still to be delivered to one target ("node:NAME" or "webhook:URL").
public struct PendingDelivery: Sendable, Equatable {
    public var alarm: Alarm
    public var target: String
    public var attempts: Int
    /// Not before this (monotonic-free: wall clock, ns).
    public var nextAttempt: Int64
}

/// Disk use of the recordings, per camera.
public struct StorageUse: Sendable, Equatable {
    public var camera: String
    public var segments: Int
    public var bytes: Int64
    public var oldest: Int64?
}

/// The recorder's index.
public protocol RecorderIndex: Sendable {
    /// Adds or updates a camera.
    func saveCamera(_ camera: CameraRecord) async throws(StorageError)
    /// Every camera, by name.
    func cameras() async throws(StorageError) -> [CameraRecord]

    /// Adds or updates streams (their received sequences grow as fragments reach the disk).
    func saveStreams(_ streams: [StreamRecord]) async throws(StorageError)
    /// Every stream.
    func streams() async throws(StorageError) -> [StreamRecord]

    /// Adds or updates a segment (by path) and the camera's gaps around it.
    func saveSegment(_ segment: SegmentRecord) async throws(StorageError)
    /// What changed in a tick, in one transaction: cameras seen, segments grown or closed,
    /// streams' sequences on disk.
    func save(cameras: [CameraRecord], segments: [SegmentRecord], streams: [StreamRecord]) async throws(StorageError)
    /// In one transaction: removes `old` segments, adds `new` ones, records the file moves
    /// still to do, and refreshes the gaps.
    func replaceSegments(_ old: [String], with new: [SegmentRecord], moves: [FileMove]) async throws(StorageError)
    /// Removes segments (their files are gone or going).
    func deleteSegments(_ paths: [String]) async throws(StorageError)
    /// A camera's segments (all cameras' when nil) overlapping a time range, oldest first.
    func segments(camera: String?, from: Int64?, to: Int64?) async throws(StorageError) -> [SegmentRecord]
    /// Segments still marked open.
    func openSegments() async throws(StorageError) -> [SegmentRecord]
    /// The oldest segments of every camera (or one), oldest first.
    func oldestSegments(camera: String?, limit: Int) async throws(StorageError) -> [SegmentRecord]
    /// Segments and bytes per camera.
    func storageUse() async throws(StorageError) -> [StorageUse]

    /// A camera's gaps overlapping a time range, oldest first.
    func gaps(camera: String, from: Int64?, to: Int64?) async throws(StorageError) -> [GapRecord]

    /// File moves recorded by ``replaceSegments(_:with:moves:)`` and not yet confirmed done.
    func pendingMoves() async throws(StorageError) -> [FileMove]
    /// Confirms moves done.
    func completeMoves(_ moves: [FileMove]) async throws(StorageError)

    /// Forgets every segment, gap, stream and move (before a rebuild from the files).
    func clearRecordings() async throws(StorageError)

    /// Adds an event (returning it with its id) or updates one that has an id.
    func saveEvent(_ event: EventRecord) async throws(StorageError) -> EventRecord
    /// A camera's (or every camera's) events overlapping a time range, oldest first.
    func events(camera: String?, from: Int64?, to: Int64?) async throws(StorageError) -> [EventRecord]
    /// One event by its id.
    func event(id: Int64) async throws(StorageError) -> EventRecord?
    /// Events still open (a recorder that stopped uncleanly leaves them so).
    func openEvents() async throws(StorageError) -> [EventRecord]
    /// Removes events whose clips ended before `time` (their recording is gone).
    func deleteEvents(endingBefore time: Int64, camera: String?) async throws(StorageError) -> [EventRecord]

    /// Adds or updates nodes (by name; the first-seen time is kept).
    func saveNodes(_ nodes: [NodeRecord]) async throws(StorageError)
    /// Every node seen, by name.
    func nodes() async throws(StorageError) -> [NodeRecord]

    /// Adds or replaces a node's alarm subscription.
    func saveSubscription(_ subscription: AlarmSubscription) async throws(StorageError)
    /// Removes a node's subscription and what was still to be delivered to it.
    func removeSubscription(node: String) async throws(StorageError)
    /// Every subscription.
    func subscriptions() async throws(StorageError) -> [AlarmSubscription]
    /// The alarm outbox: records an alarm (giving it its id) and one pending delivery per
    /// target, in one transaction.
    func enqueue(_ alarm: Alarm, targets: [String]) async throws(StorageError) -> Alarm
    /// Deliveries not yet acknowledged (for one target, or all), oldest first.
    func pendingDeliveries(target: String?, limit: Int) async throws(StorageError) -> [PendingDelivery]
    /// Marks alarms delivered to a target; returns how many were pending.
    func markDelivered(_ ids: [Int64], target: String) async throws(StorageError) -> Int
    /// Records a delivery attempt and when to try next.
    func noteAttempt(_ id: Int64, target: String, next: Int64) async throws(StorageError)
    /// Deliveries pending and done.
    func deliveryCounts() async throws(StorageError) -> (pending: Int, delivered: Int)
}
