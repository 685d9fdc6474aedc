// The window of recent sequence numbers that drops a second copy of a call's audio packet.
import Testing
import XTCall

@Suite("Sequence window")
struct SequenceWindowTests {
    /// Inserts each number in turn: whether each was new.
    private func insert(_ numbers: [UInt32], into window: inout SequenceWindow) -> [Bool] {
        numbers.map { window.insert($0) }
    }

    @Test("Each number is new once; repeats, in or out of order, are not; numbers past the window are not taken")
    func repeats() {
        var window = SequenceWindow()
        #expect(!window.contains(5))
        #expect(insert([5, 5], into: &window) == [true, false] && window.contains(5))
        #expect(insert([7, 6, 6, 5], into: &window) == [true, true, false, false])
        #expect(!window.contains(4))
        #expect(insert([4], into: &window) == [true])
        // A jump ahead forgets what it passed; older than the window is not taken.
        let size = UInt32(SequenceWindow.size)
        #expect(insert([7 + size], into: &window) == [true])
        #expect(!window.contains(7))
        #expect(insert([7, 8 + size], into: &window) == [false, true], "7 is too old to tell")
        #expect(window.contains(7 + size))
    }

    @Test("Numbers wrap around 2³²")
    func wraps() {
        var window = SequenceWindow()
        #expect(insert([UInt32.max - 1, 1, UInt32.max], into: &window) == [true, true, true])
        #expect(insert([UInt32.max - 1, 1, 0], into: &window) == [false, false, true])
        #expect(window.contains(0) && window.contains(UInt32.max))
    }
}
