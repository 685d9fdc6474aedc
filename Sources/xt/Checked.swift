// Numbers from the command line, checked where they enter: a value out of range is one clear
// error line naming the option and what it allows — never a trap in arithmetic further on
// (`--seconds nan`, `--from 2300-01-01`, `--nodes 70000`).
import Foundation
import XTMedia

enum Checked {
    /// Seconds as a `Duration`: finite, within `range` (default: up to ten years).
    /// - Throws: ``CLIError`` naming `option` and the range.
    static func seconds(_ value: Double, _ option: String, in range: ClosedRange<Double> = 0...315_360_000) throws -> Duration {
        guard value.isFinite, range.contains(value) else {
            throw CLIError("\(option) \(value) is out of range: give seconds from \(Self.number(range.lowerBound)) to \(Self.number(range.upperBound))")
        }
        return .nanoseconds(Int64((value * 1e9).rounded()))
    }

    /// Milliseconds as a `Duration`: finite, within `range`.
    /// - Throws: ``CLIError`` naming `option` and the range.
    static func milliseconds(_ value: Double, _ option: String, in range: ClosedRange<Double>) throws -> Duration {
        guard value.isFinite, range.contains(value) else {
            throw CLIError("\(option) \(value) is out of range: give milliseconds from \(Self.number(range.lowerBound)) to \(Self.number(range.upperBound))")
        }
        return .nanoseconds(Int64((value * 1e6).rounded()))
    }

    /// A whole number within `range`.
    /// - Throws: ``CLIError`` naming `option` and the range.
    @discardableResult
    static func integer(_ value: Int, _ option: String, in range: ClosedRange<Int>) throws -> Int {
        guard range.contains(value) else { throw CLIError("\(option) \(value) is out of range: give a whole number from \(range.lowerBound) to \(range.upperBound)") }
        return value
    }

    /// A time: ISO 8601 (2026-11-21T10:00:00Z) or seconds since 1970, from 1970 to 2199.
    /// - Throws: ``CLIError`` naming `option` and what it takes.
    static func time(_ text: String, _ option: String) throws -> CaptureTime {
        if let seconds = Double(text), let time = CaptureTime(seconds: seconds) { return time }
        if let date = try? Date(text, strategy: .iso8601), let time = CaptureTime(seconds: date.timeIntervalSince1970) { return time }
        throw CLIError("\(option) '\(text)' is not a time from 1970 to 2199: use ISO 8601 (2026-11-21T10:00:00Z) or seconds since 1970")
    }

    /// A size: bytes, or a number with K, M, G or T (powers of 1024), at least 1 MiB and at most 1 PiB.
    /// - Throws: ``CLIError`` naming `option` and what it takes.
    static func bytes(_ text: String, _ option: String) throws -> UInt64 {
        let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
        if digits.hasSuffix("B") && digits.count > 1 && units[digits[digits.index(before: digits.index(before: digits.endIndex))]] != nil { digits.removeLast() }
        var scale = 1.0
        if let last = digits.last, let unit = units[last] {
            scale = unit
            digits.removeLast()
        }
        guard let value = Double(digits), value.isFinite, value > 0, value * scale >= 1_048_576, value * scale <= 1_125_899_906_842_624 else {
            throw CLIError("\(option) '\(text)' is not a size from 1M to 1024T: write it like 500G or 2T")
        }
        return UInt64(value * scale)
    }

    private static func number(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
}
