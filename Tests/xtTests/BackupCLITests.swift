// `xt backup` as a user runs it: three `xt backup serve` Pis on loopback; kill -9 of the client
// mid-run, then run again: only what is missing moves; kill -9 of a Pi mid-run, restarted: the
// run finishes by itself, nothing stored is corrupt, and the restore is byte-identical. Bad
// input gets one clear line.
import Foundation
import Testing

enum BackupFixture {
    /// Keys, a backup key, a targets file and three Pis' settings in `dir`.
    static func prepare(_ dir: URL, pis: Int = 3) throws -> [Int] {
        _ = try CLI.run(["keygen", "--out", "client.key"], in: dir)
        _ = try CLI.run(["backup", "init", "--backup-key", "backup.key"], in: dir)
        try FileManager.default.copyItem(at: dir.appendingPathComponent("client.key.pub"), to: dir.appendingPathComponent("authorized_keys"))
        let base = Int.random(in: 20_000...30_000)
        var lines: [String] = []
        for index in 1...pis {
            _ = try CLI.run(["keygen", "--out", "pi\(index).key"], in: dir)
            let key = try String(contentsOf: dir.appendingPathComponent("pi\(index).key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            lines.append("pi\(index) \(key) 127.0.0.1:\(base + index)")
        }
        try (lines.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("targets"), atomically: true, encoding: .utf8)
        return (1...pis).map { base + $0 }
    }

    static func serve(_ dir: URL, _ index: Int, port: Int) throws -> Process {
        try CLI.background(["backup", "serve", "--store", "store\(index)", "--listen", "127.0.0.1:\(port)", "--key", "pi\(index).key",
                            "--authorized-keys", "authorized_keys", "--quota", "10G"], in: dir, log: "pi\(index).log")
    }

    static let client = ["--key", "client.key", "--backup-key", "backup.key", "--targets", "targets"]

    /// Bytes of chunks in the stores (temporary files not counted).
    static func stored(_ dir: URL, pis: Int = 3) -> (bytes: UInt64, chunks: Int) {
        var bytes: UInt64 = 0
        var chunks = 0
        for index in 1...pis {
            let root = dir.appendingPathComponent("store\(index)").path
            for path in FileManager.default.enumerator(atPath: root)?.compactMap({ $0 as? String }) ?? [] where path.contains("/chunks/") {
                let attributes = try? FileManager.default.attributesOfItem(atPath: root + "/" + path)
                guard (attributes?[.type] as? FileAttributeType) == .typeRegular else { continue }
                bytes += (attributes?[.size] as? NSNumber)?.uint64Value ?? 0
                chunks += 1
            }
        }
        return (bytes, chunks)
    }

    /// Random files: `count` files of `size` bytes (from /dev/urandom).
    static func tree(_ dir: URL, count: Int, size: Int) throws {
        let folder = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        defer { try? random.close() }
        for n in 0..<count {
            try (random.readData(ofLength: size)).write(to: folder.appendingPathComponent("file\(n).bin"))
        }
    }

    static func summary(_ output: String) -> [String: Any]? {
        for line in output.split(separator: "\n").reversed() {
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["snapshot"] != nil { return object }
        }
        return nil
    }

    static func same(_ a: URL, _ b: URL) throws -> Bool {
        let files = FileManager.default.enumerator(atPath: a.path)?.compactMap { $0 as? String } ?? []
        for file in files {
            var isFolder: ObjCBool = false
            FileManager.default.fileExists(atPath: a.appendingPathComponent(file).path, isDirectory: &isFolder)
            if isFolder.boolValue { continue }
            guard FileManager.default.contentsEqual(atPath: a.appendingPathComponent(file).path, andPath: b.appendingPathComponent(file).path) else { return false }
        }
        return !files.isEmpty
    }

    static func waitUntil(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }
}

@Suite("xt backup", .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct BackupCLITests {
    @Test("kill -9 of the client mid-run, then run again: only what is missing moves, and the restore is byte-identical")
    func clientKilledMidRun() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ports = try BackupFixture.prepare(dir)
        let pis = try ports.enumerated().map { try BackupFixture.serve(dir, $0.offset + 1, port: $0.element) }
        defer { for pi in pis { pi.terminate(); pi.waitUntilExit() } }
        try BackupFixture.tree(dir, count: 8, size: 12 << 20)  // 96 MiB: about 90 chunks, 180 copies
        Thread.sleep(forTimeInterval: 0.3)
        let client = try CLI.background(["backup", "run", "data", "--copies", "2", "--json"] + BackupFixture.client, in: dir, log: "first.log")
        #expect(BackupFixture.waitUntil(timeout: 60) { BackupFixture.stored(dir).chunks >= 40 })
        kill(client.processIdentifier, SIGKILL)
        client.waitUntilExit()
        let before = BackupFixture.stored(dir)
        #expect(before.chunks >= 40 && before.chunks < 170, "\(before)")

        let second = try CLI.run(["backup", "run", "data", "--copies", "2", "--json"] + BackupFixture.client, in: dir, timeout: 120)
        #expect(second.status == 0, "\(second.stderr)")
        let after = BackupFixture.stored(dir)
        let summary = try #require(BackupFixture.summary(second.stdout), "\(second.stdout)")
        let sent = try #require((summary["bytes_sent"] as? NSNumber)?.uint64Value)
        let duplicate = try #require((summary["bytes_duplicate"] as? NSNumber)?.uint64Value)
        // What moved is what was missing, and copies landing twice (the endgame) stay few.
        #expect(sent - duplicate == after.bytes - before.bytes, "sent \(sent) (\(duplicate) twice), new \(after.bytes - before.bytes)")
        #expect(duplicate <= sent / 10, "sent \(sent), \(duplicate) of it twice")
        #expect(after.bytes > 2 * (96 << 20))  // every chunk on 2 Pis

        let restore = try CLI.run(["backup", "restore", "latest", "--to", "restored"] + BackupFixture.client, in: dir, timeout: 120)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try BackupFixture.same(dir.appendingPathComponent("data"), dir.appendingPathComponent("restored/data")))
    }

    @Test("kill -9 of a Pi mid-run, restarted: the run finishes, no stored chunk is corrupt, the restore is byte-identical")
    func piKilledMidRun() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ports = try BackupFixture.prepare(dir)
        var pis = try ports.enumerated().map { try BackupFixture.serve(dir, $0.offset + 1, port: $0.element) }
        defer { for pi in pis { pi.terminate(); pi.waitUntilExit() } }
        try BackupFixture.tree(dir, count: 8, size: 12 << 20)
        Thread.sleep(forTimeInterval: 0.3)
        let client = try CLI.background(["backup", "run", "data", "--copies", "2", "--json"] + BackupFixture.client, in: dir, log: "run.log")
        #expect(BackupFixture.waitUntil(timeout: 60) { BackupFixture.stored(dir).chunks >= 30 })
        kill(pis[1].processIdentifier, SIGKILL)
        pis[1].waitUntilExit()
        Thread.sleep(forTimeInterval: 1)
        pis[1] = try BackupFixture.serve(dir, 2, port: ports[1])
        #expect(BackupFixture.waitUntil(timeout: 120) { !client.isRunning })
        client.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("run.log"), encoding: .utf8)) ?? ""
        #expect(client.terminationStatus == 0, "\(log.suffix(2000))")
        #expect(BackupFixture.summary(log) != nil)

        let check = try CLI.run(["backup", "check", "--read-data", "--json"] + BackupFixture.client, in: dir, timeout: 120)
        #expect(check.status == 0, "\(check.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any])
        #expect(report["damaged"] as? Int == 0, "\(report)")
        #expect(report["missing"] as? Int == 0, "\(report)")
        let restore = try CLI.run(["backup", "restore", "latest", "--to", "restored"] + BackupFixture.client, in: dir, timeout: 120)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try BackupFixture.same(dir.appendingPathComponent("data"), dir.appendingPathComponent("restored/data")))
        let list = try CLI.run(["backup", "list"] + BackupFixture.client, in: dir)
        #expect(list.stdout.split(separator: "\n").count == 1, "\(list.stdout)")
    }

    @Test("The recorder backs itself up to the Pis in its config, and /metrics says when; a Pi the targets file lacks stops its start")
    func recorderBacksItselfUp() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ports = try BackupFixture.prepare(dir, pis: 2)
        let pis = try (1...2).map { try BackupFixture.serve(dir, $0, port: ports[$0 - 1]) }
        defer { for pi in pis { pi.terminate(); pi.waitUntilExit() } }
        let http = Int.random(in: 33_000...40_000)
        let node = Int.random(in: 20_000...30_000) + 5_000
        let settings = "storage = recordings\nhttp = 127.0.0.1:\(http)\nmin-free = 0\nbackup.to = all\nbackup.targets = targets\nbackup.key = backup.key\n"
            + "backup.node-key = client.key\nbackup.what = all\nbackup.interval = 10\n"
        try settings.write(to: dir.appendingPathComponent("recorder.conf"), atomically: true, encoding: .utf8)
        _ = try CLI.run(["keygen", "--out", "recorder.key"], in: dir)
        let recorder = try CLI.background(["recorder", "--config", "recorder.conf", "--bind", "127.0.0.1", "--ports", "\(node)", "--key", "recorder.key",
                                           "--open"], in: dir, log: "recorder.log")
        defer { recorder.terminate(); recorder.waitUntilExit() }
        // Its first run goes at once (the index copy, with no recording yet): /metrics says when.
        var scrape = ""
        let done = BackupFixture.waitUntil(timeout: 30) {
            scrape = (try? CLI.tool("curl", ["-s", "http://127.0.0.1:\(http)/metrics"]).stdout) ?? ""
            return scrape.contains("xt_backup_last_success_timestamp_seconds")
        }
        let log = (try? String(contentsOf: dir.appendingPathComponent("recorder.log"), encoding: .utf8)) ?? ""
        #expect(done, "no backup in 30 s: \(log.suffix(1500))")
        #expect(scrape.contains("xt_backup_behind_files 0") && scrape.contains("xt_backup_runs_total{result=\"ok\"}"), "\(scrape)")
        #expect(log.contains("backing up every recording to pi1, pi2 every"), "\(log.suffix(1500))")
        #expect(BackupFixture.stored(dir, pis: 2).chunks > 0, "the Pis hold its chunks")
        // A Pi the targets file does not list stops the start with its reason.
        try (settings + "backup.to = pi9\n").write(to: dir.appendingPathComponent("bad.conf"), atomically: true, encoding: .utf8)
        let bad = try CLI.run(["recorder", "--config", "bad.conf", "--bind", "127.0.0.1", "--ports", "\(node + 1)", "--key", "recorder.key", "--open",
                               "--http", "none", "--seconds", "5"], in: dir, timeout: 30)
        #expect(bad.status != 0 && bad.stderr.contains("pi9 is not in targets"), "\(bad.stderr)")
    }

    @Test("bad input gets one clear line and a non-zero exit")
    func badInput() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try BackupFixture.prepare(dir)
        let cases: [([String], String)] = [
            (["backup", "run", "data", "--copies", "0"] + BackupFixture.client, "--copies 0 is out of range"),
            (["backup", "run", "data", "--copies", "4"] + BackupFixture.client, "--copies 4 needs 1 to 3 Pis"),
            (["backup", "run", "data", "--to", "pi9"] + BackupFixture.client, "pi9 is not in targets"),
            (["backup", "run", "data", "--key", "client.key", "--backup-key", "missing.key", "--targets", "targets"], "cannot read the backup key missing.key"),
            (["backup", "run", "data", "--key", "client.key", "--backup-key", "backup.key", "--targets", "nowhere"], "cannot read the backup targets nowhere"),
            (["backup", "run", "data", "--via", "10.0.0"] + BackupFixture.client, "not an IPv4 address"),
            (["backup", "init", "--backup-key", "backup.key"], "already exists"),
            (["backup", "serve", "--quota", "lots", "--key", "pi1.key", "--authorized-keys", "authorized_keys", "--store", "s"], "--quota 'lots' is not a size"),
            (["backup", "forget"] + BackupFixture.client, "give a policy"),
        ]
        for (arguments, message) in cases {
            let result = try CLI.run(arguments, in: dir, timeout: 20)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(result.errorLines.count == 1, "\(arguments): \(result.stderr)")
        }
        // No Pi running: the run says which did not answer and why.
        try Data("x".utf8).write(to: dir.appendingPathComponent("file"))
        let unreachable = try CLI.run(["backup", "run", "file", "--copies", "1"] + BackupFixture.client, in: dir, timeout: 30)
        #expect(unreachable.status != 0)
        #expect(unreachable.stderr.contains("0 of 3 Pis answered"), "\(unreachable.stderr)")
    }
}
