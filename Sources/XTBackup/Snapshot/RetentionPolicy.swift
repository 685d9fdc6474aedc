// Which snapshots to keep, the way restic's `forget` decides: the newest N, then the newest of
// each of the last N days (weeks, months) that have a snapshot. A snapshot any rule keeps stays.
public import Foundation

/// A retention policy (restic's `--keep-last`, `--keep-daily`, `--keep-weekly`, `--keep-monthly`).
public struct RetentionPolicy: Sendable, Equatable {
    public var last: Int
    public var daily: Int
    public var weekly: Int
    public var monthly: Int

    public init(last: Int = 0, daily: Int = 0, weekly: Int = 0, monthly: Int = 0) {
        self.last = last
        self.daily = daily
        self.weekly = weekly
        self.monthly = monthly
    }

    /// Whether the policy keeps anything at all (an empty policy forgets nothing).
    public var isEmpty: Bool { last == 0 && daily == 0 && weekly == 0 && monthly == 0 }

    /// - Throws: ``BackupError/badInput(_:)`` for a negative count.
    public func validate() throws(BackupError) {
        guard last >= 0, daily >= 0, weekly >= 0, monthly >= 0 else {
            throw .badInput("keep counts must be 0 or more")
        }
    }

    /// Splits snapshots into those kept and those to forget.
    /// - Parameters:
    ///   - snapshots: (id, time in nanoseconds since 1970), any order.
    ///   - calendar: the calendar days and weeks are counted in (UTC by default).
    /// - Returns: the ids to keep and to forget; with an empty policy everything is kept.
    public func apply<ID: Hashable>(_ snapshots: [(id: ID, time: Int64)], calendar: Calendar = Self.utc) -> (keep: Set<ID>, forget: Set<ID>) {
        let all = Set(snapshots.map(\.id))
        guard !isEmpty else { return (all, []) }
        let newestFirst = snapshots.sorted { $0.time > $1.time }
        var keep = Set(newestFirst.prefix(last).map(\.id))
        func bucket(_ count: Int, _ key: (Date) -> [Int]) {
            guard count > 0 else { return }
            var seen: Set<[Int]> = []
            for snapshot in newestFirst {
                let k = key(Date(timeIntervalSince1970: Double(snapshot.time) / 1e9))
                guard !seen.contains(k) else { continue }
                seen.insert(k)
                keep.insert(snapshot.id)
                if seen.count == count { break }
            }
        }
        bucket(daily) { let c = calendar.dateComponents([.year, .month, .day], from: $0); return [c.year!, c.month!, c.day!] }
        bucket(weekly) { let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: $0); return [c.yearForWeekOfYear!, c.weekOfYear!] }
        bucket(monthly) { let c = calendar.dateComponents([.year, .month], from: $0); return [c.year!, c.month!] }
        return (keep, all.subtracting(keep))
    }

    /// The Gregorian calendar in UTC, ISO weeks (Monday first).
    public static let utc: Calendar = {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}
