import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

/// The .npy/.npz reader against files NumPy wrote (Scripts/make_npy_fixtures.py), and
/// the writer through a round trip.
struct NumPyFormatTests {
    static var fixtures: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/Tests/Fixtures/numpy/"
    }

    func expectArrays(_ arrays: [(name: String, tensor: Tensor)]) throws {
        let byName = Dictionary(uniqueKeysWithValues: arrays.map { ($0.name, $0.tensor) })
        #expect(byName.count == 9)
        let f32 = try #require(byName["f32"])
        #expect(f32.elementType == .float && f32.shape == [2, 3, 4])
        #expect(f32.scalars(as: Float.self) == (0..<24).map { Float($0) * 0.5 })
        #expect(byName["f64"]?.scalars(as: Double.self) == (0..<5).map { Double($0) - 2.5 })
        #expect(byName["f16"]?.shape == [3, 2])
        #expect(byName["f16"]?.doubles() == (0..<6).map(Double.init))
        #expect(byName["i64"]?.integers() == (0..<7).map { $0 * -3 })
        #expect(byName["i32"]?.integers() == [0, 1, 2, 3])
        #expect(byName["u8"]?.integers() == Array(0..<10))
        #expect(byName["b"]?.elementType == .bool && byName["b"]?.integers() == [1, 0, 1])
        #expect(byName["scalar"]?.shape == [] && byName["scalar"]?.scalars(as: Float.self) == [7.25])
        #expect(byName["empty"]?.shape == [0, 3])
    }

    @Test func readsWhatNumPySavezWrites() throws {
        try expectArrays(try NumPyFormat.read(path: Self.fixtures + "stored.npz"))
    }

    @Test func readsWhatNumPySavezCompressedWrites() throws {
        try expectArrays(try NumPyFormat.read(path: Self.fixtures + "deflated.npz"))
    }

    @Test func readsASingleNpyNamedAfterTheFile() throws {
        let arrays = try NumPyFormat.read(path: Self.fixtures + "single.npy")
        #expect(arrays.map(\.name) == ["single"])
        #expect(arrays.first?.tensor.scalars(as: Float.self) == (0..<24).map { Float($0) * 0.5 })
    }

    @Test func refusesFortranOrderWithAFix() throws {
        #expect(throws: NumPyFormatError.unsupportedType("Fortran-ordered arrays (save with np.ascontiguousarray)")) {
            try NumPyFormat.read(path: Self.fixtures + "fortran.npy")
        }
    }

    @Test func writtenArchivesReadBack() throws {
        let a = Tensor(shape: [2, 2], values: [1, -2, 3.5, 4])
        let b = Tensor(.int64, shape: [3], values: [Int64(5), -6, 7])
        let bytes = try NumPyFormat.writeArchive([("a", a), ("b", b)])
        let back = try NumPyFormat.readArchive(bytes)
        #expect(back.map(\.name) == ["a", "b"])
        #expect(back[0].tensor.scalars(as: Float.self) == [1, -2, 3.5, 4])
        #expect(back[1].tensor.integers() == [5, -6, 7])
    }

    @Test func truncatedAndGarbageFilesAreClearErrors() throws {
        let good = try NumPyFormat.writeArray(Tensor(shape: [4, 4], values: Array(repeating: 1, count: 16)))
        for cut in [0, 5, 9, 20, good.count - 1] {
            #expect(throws: NumPyFormatError.self) { try NumPyFormat.readArray(Array(good.prefix(cut))) }
        }
        let archive = try NumPyFormat.writeArchive([("x", Tensor(shape: [3], values: [1, 2, 3]))])
        for cut in [0, 4, 30, archive.count - 10] {
            #expect(throws: NumPyFormatError.self) { try NumPyFormat.readArchive(Array(archive.prefix(cut))) }
        }
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<200 {
            var mutated = archive
            mutated[Int.random(in: 0..<mutated.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            _ = try? NumPyFormat.readArchive(mutated)   // must not crash
        }
    }
}
