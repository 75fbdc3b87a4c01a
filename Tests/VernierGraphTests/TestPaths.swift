import Foundation

/// Locations of the repository's test inputs.
enum TestPaths {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func model(_ name: String) -> String { root + "/Models/" + name }
    static var nodeTests: String { root + "/Tests/Data/node" }

    /// The good models in Models/ (top level).
    static var goodModels: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/Models")) ?? []
        return names.filter { $0.hasSuffix(".onnx") }.sorted().map(model)
    }
}
