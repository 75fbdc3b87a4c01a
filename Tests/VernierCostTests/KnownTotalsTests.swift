import Foundation
import Testing
import VernierGraph
@testable import VernierCost

/// Whole-network MAC totals against the published figures (torchvision's model docs
/// list GFLOPS that are multiply-adds: ResNet-18 1.81, ResNet-50 4.09, VGG-11 7.61,
/// ViT-B/16 17.56 at 224x224). The networks are structural replicas written by
/// Scripts/make_reference_models.py (Scripts/test runs it).
struct KnownTotalsTests {
    static let folder: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/Tests/Data/reference"
    }()

    @Test(arguments: [("resnet18", 1.81e9), ("resnet50", 4.09e9), ("vgg11", 7.61e9), ("vit_b_16", 17.56e9)])
    func totalMacsMatchThePublishedFigure(name: String, published: Double) throws {
        let path = Self.folder + "/\(name).onnx"
        try #require(FileManager.default.fileExists(atPath: path), "run Scripts/make_reference_models.py (Scripts/test does)")
        let table = CostModel.table(for: try ModelAnalyzer().analyze(path: path))
        let macs = try #require(table.totals.macs.value)
        // Published figures have three significant digits.
        #expect(abs(macs - published) / published < 0.005, "\(name): \(macs) MACs against \(published)")
        #expect(table.totals.uncostedNodes.isEmpty)
    }
}
