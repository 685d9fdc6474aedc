// The recorder's settings file: every key of the example file is understood, per-camera keys
// lie over the defaults, and a bad value or an unknown key names the line.
import Foundation
import Testing
import XTNet
@testable import XTRecorder

@Suite struct RecorderConfigurationTests {
    static var example: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("Config/recorder.conf.example"), encoding: .utf8)) ?? ""
    }

    @Test func theExampleFileIsUnderstood() throws {
        var settings = RecorderConfiguration()
        try settings.apply(file: Self.example, source: "recorder.conf.example")
        #expect(settings.storage == "/var/lib/xt/recordings" && settings.channels == 100...199)
        #expect(settings.retention.maximumAge == .seconds(30 * 86_400) && settings.retention.minimumFreeBytes == 2 << 30)
        #expect(settings.retention.cameraMaximumAge["garden"] == .seconds(7 * 86_400))
        #expect(settings.motion.masks.map(\.name) == ["timestamp"] && settings.motion.sensitivity == 0.6)
        let front = try #require(settings.cameraMotion["frontdoor"])
        #expect(front.zones.map(\.name) == ["door"] && front.masks.map(\.name) == ["timestamp", "tree"] && front.sensitivity == 0.7)
        #expect(front.cooldown == .seconds(5) && front.minimumDuration == .milliseconds(300))
        #expect(settings.cameraMotion["garden"]?.enabled == false)
    }

    @Test func perCameraKeysLieOverTheDefaultsWhateverTheOrder() throws {
        var settings = RecorderConfiguration()
        try settings.apply(file: "camera.a.cooldown = 9\ncooldown = 2\nsensitivity = 0.9\n", source: "x")
        #expect(settings.cameraMotion["a"]?.cooldown == .seconds(9) && settings.cameraMotion["a"]?.sensitivity == 0.9)
        #expect(settings.motion.cooldown == .seconds(2))
    }

    @Test func badValuesAndUnknownKeysNameTheLine() {
        for (text, expected) in [
            ("sensitivity = 2", "x line 1: '2' is not a valid sensitivity"),
            ("\nzone.door = 0,0 1,1", "x line 2: '0,0 1,1' is not a valid zone.door: expected a polygon"),
            ("camera.a.mask.m = 5,5 1,1 0,1", "is not a valid camera.a.mask.m"),
            ("colour = red", "x line 1: unknown key 'colour'"),
            ("webhook.x = ftp://a", "is not a valid webhook.x"),
            ("min-free = lots", "is not a valid min-free"),
            // Numbers that would overflow further on are refused here, where they enter.
            ("retention-days = inf", "is not a valid retention-days: expected days from 0 to 36525"),
            ("event-retention-days = 1e16", "is not a valid event-retention-days"),
            ("camera.a.retention-days = nan", "is not a valid camera.a.retention-days"),
            ("max-size = 1e30", "is not a valid max-size"),
            ("min-free = 9999999T", "is not a valid min-free"),
            ("min-duration = nan", "is not a valid min-duration"),
            ("user.eve = admin pbkdf2-sha256$5000000000$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "user.eve"),
            ("backup.copies = 0", "is not a valid backup.copies: expected Pis per chunk, 1…16"),
            ("backup.interval = 5", "is not a valid backup.interval"),
            ("backup.interval = nan", "is not a valid backup.interval"),
            ("backup.what = some", "is not a valid backup.what: expected events"),
            ("backup.to = pi1,pi1", "is not a valid backup.to"),
            ("backup.to = pi 1", "is not a valid backup.to"),
            ("backup.via = 999.1.1.1", "is not a valid backup.via"),
            ("backup.connections = 100", "is not a valid backup.connections"),
            ("backup.keep-last = -1", "is not a valid backup.keep-last"),
            ("backup.speed = fast", "unknown key 'backup.speed'"),
        ] {
            var settings = RecorderConfiguration()
            #expect(throws: NodeConfigurationError.self) { try settings.apply(file: text, source: "x") }
            do { try settings.apply(file: text, source: "x") } catch { #expect("\(error)".contains(expected), "\(error)") }
        }
    }

    @Test func theBackupSectionIsOffUntilItNamesThePis() throws {
        var settings = RecorderConfiguration()
        try settings.apply(file: Self.example, source: "recorder.conf.example")
        #expect(settings.backup.to == nil, "the example leaves it off")
        try settings.apply(file: "backup.to = all\nbackup.what = all\nbackup.interval = 60\nbackup.copies = 3\nbackup.via = eth0,10.0.0.2\n", source: "x")
        #expect(settings.backup.to == [] && settings.backup.what == .all && settings.backup.interval == .seconds(60) && settings.backup.copies == 3)
        #expect(settings.backup.via == ["eth0", "10.0.0.2"])
        try settings.apply(file: "backup.to = pi2, pi1\n", source: "x")
        #expect(settings.backup.to == ["pi2", "pi1"])
        try settings.apply(file: "backup.to = none\n", source: "x")
        #expect(settings.backup.to == nil)
    }

    @Test func usersKeepOnlyAPasswordHash() throws {
        let hash = UserAccount.hash(password: "correct horse", rounds: 100_000)
        #expect(hash.hasPrefix("pbkdf2-sha256$100000$") && !hash.contains("correct"))
        #expect(UserAccount.hash(password: "correct horse", rounds: 100_000) != hash)  // salted
        var settings = RecorderConfiguration()
        try settings.apply(file: "user.ann = admin \(hash)\n", source: "x")
        let ann = try #require(settings.users["ann"])
        #expect(ann.role == .admin && ann.verify(password: "correct horse") && !ann.verify(password: "correct horsE"))
        for line in ["user.bob = admin hunter2", "user.bob = root \(hash)", "user.b b = viewer \(hash)"] {
            #expect(throws: NodeConfigurationError.self) { try settings.apply(file: line, source: "x") }
        }
        do { try settings.apply(file: "user.bob = admin hunter2", source: "x") } catch {
            #expect("\(error)".contains("xt recorder passwd bob") && !"\(error)".contains("hunter2"), "\(error)")
        }
    }
}
