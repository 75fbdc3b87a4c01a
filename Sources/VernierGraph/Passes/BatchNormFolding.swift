extension GraphPasses {
    /// Folds an inference BatchNormalization into the Conv or ConvTranspose before it:
    /// with `s = scale / sqrt(var + epsilon)` per output channel, the weights of output
    /// channel `c` become `W * s[c]` and its bias `(b - mean) * s + B`. Needs the conv's
    /// weights (and bias) and the four BN tensors to be fp32 initializers, and the conv's
    /// output to have no other reader. (A DBNet-style head's ConvTranspose, BN and Relu
    /// at 320x320 otherwise take two more passes over 9.8 MB.)
    public static func foldBatchNormalization(_ inferred: InferredGraph) -> InferredGraph {
        var graph = inferred.graph
        let uses = ValueUses(graph)
        var initializers = graph.initializerIndex
        var removed = Set<Int>()
        var newInitializers: [TensorData] = []
        for (ci, conv) in graph.nodes.enumerated() where conv.isDefaultDomain && ["Conv", "ConvTranspose"].contains(conv.opType) {
            guard let output = conv.outputs.first, let bi = uses.soleReader(of: output), !removed.contains(bi) else { continue }
            let bn = graph.nodes[bi]
            guard bn.isDefaultDomain, bn.opType == "BatchNormalization", bn.input(0) == output,
                  bn.outputs.dropFirst().allSatisfy(\.isEmpty), (try? bn.int("training_mode", default: 0)) ?? 0 == 0,
                  let weightName = conv.input(1), let weights = initializers[weightName], weights.elementType == .float,
                  let w = weights.doubleValues(), let layout = OutputChannelLayout(conv, weights: weights.dims) else { continue }
            let channels = layout.channels
            // scale, B, mean, var: fp32 initializers of one value per output channel.
            let params = (1...4).map { bn.input($0).flatMap { initializers[$0] } }
            let values = params.map { p in p.flatMap { $0.elementType == .float ? $0.doubleValues() : nil } }
            guard values.allSatisfy({ $0?.count == channels }), let scale = values[0], let shift = values[1],
                  let mean = values[2], let variance = values[3] else { continue }
            let epsilon = Double((try? bn.float("epsilon", default: 1e-5)) ?? 1e-5)
            var bias = [Double](repeating: 0, count: channels)
            if let biasName = conv.input(2) {
                guard let b = initializers[biasName], b.elementType == .float, let values = b.doubleValues(),
                      values.count == channels else { continue }
                bias = values
            }
            let s = (0..<channels).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
            let folded = w.indices.map { Float(w[$0] * s[layout.channel(ofWeight: $0)]) }
            let foldedBias = (0..<channels).map { Float((bias[$0] - mean[$0]) * s[$0] + shift[$0]) }
            let weightOut = uniqueName("\(conv.displayName).weight_bn_folded", taken: initializers)
            let biasOut = uniqueName("\(conv.displayName).bias_bn_folded", taken: initializers)
            let wData = TensorData(floats: folded, name: weightOut, dims: weights.dims)
            let bData = TensorData(floats: foldedBias, name: biasOut, dims: [channels])
            // The folded copy replaces the original, whose mapped pages were just read.
            weights.releaseResidentPages()
            initializers[weightOut] = wData
            initializers[biasOut] = bData
            newInitializers += [wData, bData]
            var fused = conv
            fused.inputs = [conv.inputs[0], weightOut, biasOut]
            fused.outputs = [bn.outputs[0]]
            fused.sourceNodes = conv.absorbing([bn])
            graph.nodes[ci] = fused
            removed.insert(bi)
        }
        guard !removed.isEmpty else { return inferred }
        graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        graph.initializers += newInitializers
        // Initializers no node reads any more (the unfolded weights) are dropped.
        var read = Set(graph.nodes.flatMap(\.inputs)).union(graph.outputs.map(\.name))
        for node in graph.nodes { for (_, sub) in node.subgraphs { read.formUnion(GraphValidator.outerReads(of: sub)) } }
        graph.initializers = graph.initializers.filter { read.contains($0.name) }
        var result = inferred
        result.graph = graph
        for data in newInitializers { result.facts[data.name] = ValueFacts(type: data.type) }
        return result
    }

    /// Which output channel each weight of a Conv (`[OC, IC/group, k...]`) or
    /// ConvTranspose (`[IC, OC/group, k...]`) belongs to.
    struct OutputChannelLayout {
        let channels: Int
        let transposed: Bool
        /// Elements of one kernel window (product of the spatial dims).
        let window: Int
        /// ConvTranspose: output channels per group, input channels per group.
        let groupOutputs: Int, groupInputs: Int

        init?(_ conv: Node, weights dims: [Int]) {
            guard dims.count >= 3, dims.allSatisfy({ $0 > 0 }) else { return nil }
            transposed = conv.opType == "ConvTranspose"
            window = dims.dropFirst(2).reduce(1, *)
            guard transposed else {
                (channels, groupOutputs, groupInputs) = (dims[0], dims[0], dims[1])
                return
            }
            guard let group = try? conv.int("group", default: 1), group > 0, dims[0] % group == 0 else { return nil }
            (channels, groupOutputs, groupInputs) = (dims[1] * group, dims[1], dims[0] / group)
        }

        func channel(ofWeight index: Int) -> Int {
            guard transposed else { return index / (groupInputs * window) }
            let inputChannel = index / (groupOutputs * window)
            return inputChannel / groupInputs * groupOutputs + index / window % groupOutputs
        }
    }

    static func uniqueName(_ base: String, taken: [String: TensorData]) -> String {
        var name = base
        var n = 1
        while taken[name] != nil { n += 1; name = "\(base)_\(n)" }
        return name
    }
}

extension TensorData {
    /// An fp32 tensor from values (little-endian bytes).
    public init(floats: [Float], name: String, dims: [Int]) {
        var bytes = [UInt8]()
        bytes.reserveCapacity(floats.count * 4)
        for f in floats {
            let bits = f.bitPattern.littleEndian
            bytes += [UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF), UInt8(bits >> 24)]
        }
        self.init(name: name, elementType: .float, dims: dims, storage: .bytes(bytes))
    }
}
