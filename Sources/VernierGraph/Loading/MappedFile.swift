#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Weights are read from it in place, so a
/// model's weights are never held twice. A class because the mapping is a shared
/// resource whose lifetime is that of the last tensor that reads from it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    /// nil for an empty file (mmap refuses zero lengths).
    private let base: UnsafeRawPointer?
    /// Kept open for `copyBytes`; -1 for an empty file.
    private let descriptor: Int32

    /// Maps `path`. Throws `LoadError.fileNotFound` / `.unreadable`.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT { throw LoadError.fileNotFound(path: path) }
            throw LoadError.unreadable(path: path, reason: String(cString: strerror(code)))
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw LoadError.unreadable(path: path, reason: reason)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw LoadError.unreadable(path: path, reason: "not a regular file")
        }
        size = Int(info.st_size)
        if size == 0 {
            close(fd)
            base = nil
            descriptor = -1
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw LoadError.unreadable(path: path, reason: reason)
        }
        base = UnsafeRawPointer(p)
        descriptor = fd
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
        if descriptor >= 0 { close(descriptor) }
    }

    /// Copies `[offset, offset + length)` into `destination` with `pread`, without
    /// touching the map: the kernel copies from its page cache, where reading through
    /// the map would first fault each page into this process and later unmap it.
    /// False when the range is outside the file or the read falls short.
    public func copyBytes(offset: Int, length: Int, into destination: UnsafeMutableRawPointer) -> Bool {
        guard descriptor >= 0, length >= 0, offset >= 0, offset <= size - length else { return false }
        var done = 0
        while done < length {
            let n = pread(descriptor, destination + done, length - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    /// The whole file's bytes, valid while `self` lives.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : size)
    }

    /// Drops the resident pages wholly inside `[offset, offset + length)`: the next read
    /// faults them in again from the file. Used once weights have been copied into a
    /// kernel's own layout, so the process does not hold them twice.
    public func releasePages(offset: Int, length: Int) {
        guard let base, length > 0, offset >= 0, offset + length <= size else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + offset + page - 1) / page * page
        let end = (Int(bitPattern: base) + offset + length) / page * page
        guard end > start, let pointer = UnsafeMutableRawPointer(bitPattern: start) else { return }
        madvise(pointer, end - start, MADV_DONTNEED)
    }

    /// A sub-range; the caller has checked `offset + length <= size`.
    public func slice(offset: Int, length: Int) -> UnsafeRawBufferPointer {
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: length)
    }
}
