// The REST API under schemathesis (PyPI), logged in as an admin, against a real recorder with a
// camera recording: a bounded run of scripts/api-fuzz.sh (`make fuzz` runs it longer). It fails
// on any 5xx answer and on a recorder that did not survive the run.
import Foundation
import Testing

@Suite("REST API fuzzing", .serialized,
       .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"),
       .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.root.appendingPathComponent(".build/venv/bin/st").path),
                "schemathesis is not installed: run scripts/install-deps.sh (make test does)"))
struct APIFuzzTests {
    @Test("schemathesis over docs/openapi.yaml: no 5xx, no crash")
    func fuzz() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [CLI.root.appendingPathComponent("scripts/api-fuzz.sh").path, CLI.xt, "45"]
        process.currentDirectoryURL = CLI.root
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text.suffix(4000))")
        #expect(text.contains("no 5xx and no crash"), "\(text.suffix(2000))")
    }
}
