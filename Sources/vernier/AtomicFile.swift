import Foundation

/// Writes files so that an interrupted run never leaves a truncated one: the data goes
/// to a temporary file in the same folder, which is then renamed over the target.
enum AtomicFile {
    static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent()
        let temp = folder.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        do {
            try data.write(to: temp)
            if rename(temp.path, url.path) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: temp)
                throw CommandError("cannot write \(path): \(reason)")
            }
        } catch let error as CommandError {
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw CommandError("cannot write \(path): \(error.localizedDescription)")
        }
    }
}
