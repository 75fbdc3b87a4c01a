import Foundation

/// Where device profiles live and how they are read and written: one JSON file per
/// device, `NAME.json`, in one folder. The measured profile of the machine Vernier runs
/// on is `host.json`.
///
/// The folder is `$VERNIER_DEVICE_DIR` when set, else `$XDG_CONFIG_HOME/vernier/devices`,
/// else `~/.config/vernier/devices` (`defaultDirectory`). Tests and tools make a store
/// over any folder with `init(directory:)`.
public struct DeviceProfileStore: Sendable, Equatable {
    /// The folder holding the `NAME.json` files.
    public var directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The store in the default folder of this process's environment.
    public static var standard: DeviceProfileStore { DeviceProfileStore(directory: defaultDirectory()) }

    /// The name of the measured profile of the machine Vernier runs on.
    public static let hostName = "host"

    /// `$VERNIER_DEVICE_DIR`, else `$XDG_CONFIG_HOME/vernier/devices` (only an absolute
    /// XDG path counts, as the XDG spec says), else `$HOME/.config/vernier/devices`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment["VERNIER_DEVICE_DIR"], !dir.isEmpty { return dir }
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
            return (xdg as NSString).appendingPathComponent("vernier/devices")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".config/vernier/devices")
    }

    /// `<directory>/host.json`.
    public var hostProfilePath: String { path(forName: Self.hostName) }

    /// `<directory>/NAME.json`.
    public func path(forName name: String) -> String {
        (directory as NSString).appendingPathComponent(name + ".json")
    }

    /// Whether `nameOrPath` names a file rather than a profile in the folder: it
    /// contains a `/` or ends in `.json`, `.yaml` or `.yml`.
    public static func isPath(_ nameOrPath: String) -> Bool {
        nameOrPath.contains("/") || [".json", ".yaml", ".yml"].contains { nameOrPath.hasSuffix($0) }
    }

    /// The file `nameOrPath` stands for: itself when it is a path, else `NAME.json` in
    /// the folder.
    public func resolve(_ nameOrPath: String) -> String {
        Self.isPath(nameOrPath) ? nameOrPath : path(forName: nameOrPath)
    }

    /// Reads and checks a profile given by name (`host`, `rpi4`: `NAME.json` in the
    /// folder, else the built-in profile of that name) or by path (anything with a `/`
    /// or ending in `.json`, `.yaml` or `.yml`). A stored file overrides a built-in of
    /// the same name: that is where a calibrated built-in is kept.
    public func load(nameOrPath: String) throws -> DeviceProfile {
        guard !nameOrPath.isEmpty else { throw DeviceStoreError.emptyName }
        let path = resolve(nameOrPath)
        if !Self.isPath(nameOrPath), !FileManager.default.fileExists(atPath: path) {
            if let builtin = BuiltinDevices.named(nameOrPath) { return builtin }
            throw DeviceStoreError.notFound(name: nameOrPath, directory: directory)
        }
        return try DeviceProfile.load(path: path)
    }

    /// Where a profile given by name or path was read from: the file, or "built-in".
    public func origin(of nameOrPath: String) -> String {
        let path = resolve(nameOrPath)
        if !Self.isPath(nameOrPath), !FileManager.default.fileExists(atPath: path), BuiltinDevices.named(nameOrPath) != nil {
            return "built-in"
        }
        return path
    }

    /// Writes `profile` to `path` atomically: the JSON goes to a temporary file in the
    /// same folder, which is then renamed over `path`, so a reader never sees half a
    /// file. Creates the folder when missing. Refuses a profile that `load` would refuse.
    public func save(_ profile: DeviceProfile, to path: String) throws {
        let data = try profile.jsonData()
        // Never write a file that reading back would reject (e.g. a zero bandwidth).
        _ = try DeviceProfile.decode(data, path: path)
        let folder = (path as NSString).deletingLastPathComponent
        let folderURL = URL(fileURLWithPath: folder.isEmpty ? "." : folder)
        do {
            try FileManager.default.createDirectory(at: folderURL, withIntermediateDirectories: true)
        } catch {
            throw DeviceStoreError.unwritable(path: path, reason: (error as NSError).localizedDescription)
        }
        let name = (path as NSString).lastPathComponent
        let temp = folderURL.appendingPathComponent(".\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        do {
            try data.write(to: temp)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw DeviceStoreError.unwritable(path: path, reason: (error as NSError).localizedDescription)
        }
        if rename(temp.path, path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temp)
            throw DeviceStoreError.unwritable(path: path, reason: reason)
        }
    }

    /// One file of the folder, for listings.
    public struct Entry: Sendable, Equatable {
        /// The file name without `.json`: what `load(nameOrPath:)` takes.
        public var name: String
        public var path: String
        /// The profile, or nil when the file does not load.
        public var profile: DeviceProfile?
        /// Why the file does not load.
        public var problem: String?
    }

    /// Every `*.json` in the folder (hidden files skipped), sorted by name; empty when
    /// the folder does not exist.
    public func list() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted().map { file in
            let path = (directory as NSString).appendingPathComponent(file)
            let name = String(file.dropLast(".json".count))
            do {
                return Entry(name: name, path: path, profile: try DeviceProfile.load(path: path), problem: nil)
            } catch {
                return Entry(name: name, path: path, profile: nil, problem: "\(error)")
            }
        }
    }

    /// Whether a stored profile describes the host: measured, on the same CPU model and
    /// the same core count. Home folders are shared between machines (NFS, a copied
    /// dotfile folder, a container image), so a host profile from elsewhere must be
    /// measured again rather than trusted.
    public static func isUsable(_ profile: DeviceProfile, forHostCPU cpu: String, cores: Int) -> Bool {
        profile.source == .measured && profile.cpu == cpu && profile.cores == cores
    }

    /// The host's profile: the stored `host.json` when it is usable for `host`, else
    /// the result of `measure`, saved as `host.json` when the folder is writable.
    ///
    /// - Returns: the profile, the file it is stored in (nil when it could not be saved
    ///   and lives only in memory), and whether `measure` ran.
    public func hostProfile(for host: HostInfo, measure: () throws -> DeviceProfile) throws
        -> (profile: DeviceProfile, path: String?, measuredNow: Bool) {
        let path = hostProfilePath
        // A missing, unreadable, corrupt or foreign file: measure again (and replace it).
        if let stored = try? DeviceProfile.load(path: path),
           Self.isUsable(stored, forHostCPU: host.cpu, cores: host.cores) {
            return (stored, path, false)
        }
        let measured = try measure()
        do {
            try save(measured, to: path)
            return (measured, path, true)
        } catch {
            return (measured, nil, true)
        }
    }

    /// `hostProfile(for:measure:)` on the default folder for this machine. The runtime
    /// passes its measurement (`HostProbe.measure`) as `measure`; the cost model does
    /// not depend on the runtime.
    public static func hostProfile(measure: () throws -> DeviceProfile) throws
        -> (profile: DeviceProfile, path: String?, measuredNow: Bool) {
        try standard.hostProfile(for: HostInfo.current(), measure: measure)
    }
}

/// Problems finding or writing a device profile (reading one throws `DeviceProfileError`).
public enum DeviceStoreError: Error, Equatable, CustomStringConvertible {
    case emptyName
    /// No `NAME.json` in the folder.
    case notFound(name: String, directory: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .emptyName:
            return "empty device name; give a profile name such as host, or a path to a .json file"
        case let .notFound(name, directory) where name == DeviceProfileStore.hostName:
            return "no measured profile of this machine in \(directory); measure it with `vernier device --measure`"
        case let .notFound(name, directory):
            let builtins = BuiltinDevices.all.map(\.name).joined(separator: ", ")
            return "no device profile named \(name) in \(directory) and no built-in one (\(builtins)); `vernier device --list` shows them all"
        case let .unwritable(path, reason):
            return "cannot write device profile \(path): \(reason)"
        }
    }
}
