import CVernierSIMD
import Testing
import VernierGraph

/// `vernier_lookup_bytes` (the QLinear lookup kernels' inner loop) against a plain
/// table look-up: every length around its 64-byte steps, every byte value, in place.
struct LookupBytesTests {
    @Test(arguments: [0, 1, 63, 64, 65, 127, 128, 1000, 4099])
    func matchesTheTable(count: Int) {
        var random = SplitMix64(seed: UInt64(count + 1))
        let table = (0..<256).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        // Each byte value at least once when there is room, so both table halves are read.
        let source = (0..<count).map { $0 < 256 && count >= 256 ? UInt8($0) : UInt8(truncatingIfNeeded: random.next()) }
        var target = [UInt8](repeating: 0xEE, count: count + 64)
        source.withUnsafeBufferPointer { s in
            target.withUnsafeMutableBufferPointer { t in
                table.withUnsafeBufferPointer { vernier_lookup_bytes(s.baseAddress, t.baseAddress, count, $0.baseAddress) }
            }
        }
        #expect(Array(target.prefix(count)) == source.map { table[Int($0)] })
        // Nothing written past the end (the masked tail).
        #expect(target.dropFirst(count).allSatisfy { $0 == 0xEE })
        var inPlace = source
        inPlace.withUnsafeMutableBufferPointer { p in
            table.withUnsafeBufferPointer { vernier_lookup_bytes(p.baseAddress, p.baseAddress, count, $0.baseAddress) }
        }
        #expect(inPlace == source.map { table[Int($0)] })
    }
}
