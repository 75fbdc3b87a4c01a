import Foundation

/// Blocks of memory handed back and forth while a plan is compiled, for the aligned
/// copies of weights that kernels pack into layouts of their own and then drop.
///
/// Why: memory fresh from the system costs more than the copy into it. Every first
/// touch of a page faults, and the kernel zeroes the page (in this VM, also the
/// host's first touch behind it): on ResNet-50 at 1 thread, perf put 30% of
/// `vernier run`'s time in `clear_page_erms`, a third of it for these copies. A block
/// whose copy has been packed serves the next weight instead of going back to the
/// system. Once the plan is made, `close()` frees the blocks left.
final class StagingMemory: @unchecked Sendable {
    /// Below this a copy uses ordinary allocations (malloc reuses small blocks itself).
    static let minimumBytes = 256 << 10
    /// Free blocks kept at most, oldest let go first: each kept byte stays resident, and
    /// blocks no later copy fits in would otherwise pile up until the plan is made
    /// (ResNet-18's peak RSS rose from 102 to 120 MB keeping them all).
    static let keptBytesLimit = 16 << 20

    private var blocks: [(pointer: UnsafeMutableRawPointer, capacity: Int)] = []
    private var isOpen = true
    /// Buffers may be released on any thread (a kernel's worker, or the caller's).
    private let lock = NSLock()

    init() {}

    /// A free block of at least `byteCount` bytes and at most twice that (a kernel that
    /// keeps its copy should not hold a much larger block), smallest first; nil when
    /// none fits.
    func take(byteCount: Int) -> (pointer: UnsafeMutableRawPointer, capacity: Int)? {
        lock.lock(); defer { lock.unlock() }
        var best: Int?
        for (k, block) in blocks.enumerated() where block.capacity >= byteCount && block.capacity / 2 <= byteCount {
            if best.map({ block.capacity < blocks[$0].capacity }) ?? true { best = k }
        }
        return best.map { blocks.remove(at: $0) }
    }

    /// Keeps a released block for the next copy; false once closed or when the block
    /// alone is over `keptBytesLimit` (the caller then deallocates it).
    func giveBack(_ pointer: UnsafeMutableRawPointer, capacity: Int) -> Bool {
        lock.lock()
        guard isOpen, capacity <= Self.keptBytesLimit else { lock.unlock(); return false }
        blocks.append((pointer, capacity))
        var kept = blocks.reduce(0) { $0 + $1.capacity }
        var released: [UnsafeMutableRawPointer] = []
        while kept > Self.keptBytesLimit {
            let oldest = blocks.removeFirst()
            kept -= oldest.capacity
            released.append(oldest.pointer)
        }
        lock.unlock()
        for p in released { p.deallocate() }
        return true
    }

    /// Frees the free blocks; blocks still in use are freed by their buffers.
    func close() {
        lock.lock()
        let released = blocks
        blocks = []
        isOpen = false
        lock.unlock()
        for block in released { block.pointer.deallocate() }
    }

    /// Bytes held in free blocks (for tests).
    var freeBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return blocks.reduce(0) { $0 + $1.capacity }
    }

    deinit { close() }
}
