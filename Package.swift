// swift-tools-version:6.0
import PackageDescription

// Module layout and the one-direction dependency order are described in README.md
// ("Architecture"): ONNXProto/CONNX -> VernierGraph -> VernierCost -> VernierRuntime
// -> VernierPlanner; VernierReport renders the value types; `vernier` is the CLI.
let package = Package(
    name: "Vernier",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vernier", targets: ["vernier"]),
        .library(name: "VernierGraph", targets: ["VernierGraph"]),
        .library(name: "VernierCost", targets: ["VernierCost"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .target(
            name: "ONNXProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(
            name: "CONNX",
            cxxSettings: [
                .define("ONNX_NAMESPACE", to: "onnx"),
                .define("ONNX_ML", to: "1"),
            ],
            linkerSettings: [
                .linkedLibrary("onnx"),
                .linkedLibrary("onnx_proto"),
                .linkedLibrary("protobuf"),
            ]
        ),
        .target(
            name: "VernierGraph",
            dependencies: ["ONNXProto", "CONNX"]
        ),
        .target(
            name: "VernierCost",
            dependencies: ["VernierGraph", .product(name: "Yams", package: "Yams")]
        ),
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "CVernierSIMD"),
        .target(
            name: "VernierRuntime",
            dependencies: ["VernierGraph", "VernierCost", "CDNNL", "CZlib", "CVernierSIMD"]
        ),
        .target(
            name: "VernierPlanner",
            dependencies: ["VernierGraph", "VernierCost", "VernierRuntime", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "VernierReport",
            dependencies: ["VernierGraph", "VernierCost", "VernierPlanner"]
        ),
        .executableTarget(
            name: "vernier",
            dependencies: [
                "VernierGraph", "VernierCost", "VernierRuntime", "VernierPlanner", "VernierReport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Fuzz target (Scripts/fuzz.sh): a replay tool normally, libFuzzer with -DFUZZING.
        .executableTarget(
            name: "vernier-fuzz",
            dependencies: ["VernierGraph", "VernierCost"],
            path: "Sources/VernierFuzz"
        ),
        // Helpers shared by the test targets (in-memory graph building).
        .target(
            name: "VernierTestSupport",
            dependencies: ["VernierGraph"],
            path: "Tests/Support"
        ),
        .testTarget(
            name: "VernierGraphTests",
            dependencies: ["VernierGraph", "ONNXProto", "VernierTestSupport"]
        ),
        .testTarget(
            name: "VernierCostTests",
            dependencies: ["VernierGraph", "VernierCost", "VernierReport", "VernierTestSupport"]
        ),
        .testTarget(
            name: "VernierRuntimeTests",
            dependencies: ["VernierGraph", "VernierRuntime", "VernierTestSupport", "ONNXProto"]
        ),
        .testTarget(
            name: "VernierPlannerTests",
            dependencies: ["VernierGraph", "VernierCost", "VernierPlanner", "VernierRuntime", "VernierTestSupport"]
        ),
        .testTarget(
            name: "VernierCLITests",
            dependencies: ["VernierGraph", "VernierTestSupport", "ONNXProto"]
        ),
    ],
    swiftLanguageModes: [.v5],
    cxxLanguageStandard: .cxx17
)
