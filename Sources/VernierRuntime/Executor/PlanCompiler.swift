import VernierCost
import VernierGraph

extension ExecutionPlan {
    /// Compiles an inferred graph: kernels for every node, constants folded, the arena
    /// laid out by `MemoryPlanner`. Throws `ExecutionError.unsupportedOps` naming every
    /// op without a kernel (all of them at once, not the first).
    ///
    /// The plan is specialised to the shapes inference saw: values it proved constant
    /// (e.g. `Shape` of a fully known tensor) are folded, so `run` refuses inputs whose
    /// shapes differ from the inferred ones.
    public static func compile(_ inferred: InferredGraph, opsets: [OpsetImport],
                               options: ExecutionOptions = ExecutionOptions()) throws -> ExecutionPlan {
        try checkMemoryLimit(inferred, options: options)
        let graph = options.optimizeGraph ? GraphPasses.optimize(inferred) : inferred
        return try PlanCompiler(inferred: graph, opsets: opsets, options: options, isSubgraph: false).compile()
    }

    /// Refuses, before anything is allocated, a model whose planned activations plus
    /// weights exceed the limit. Sizes count with overflow checks: absurd dims saturate.
    static func checkMemoryLimit(_ inferred: InferredGraph, options: ExecutionOptions) throws {
        var weights = 0
        for t in inferred.graph.initializers {
            let bytes = t.elementType.byteCount(elements: t.elementCount) ?? Int.max
            let (sum, overflow) = weights.addingReportingOverflow(bytes)
            weights = overflow ? Int.max : sum
        }
        // A plan that cannot be made (a size known only at run time) is limited per
        // tensor by maxTensorBytes instead.
        let activations = (try? MemoryPlanner.plan(inferred))?.arenaBytes ?? 0
        let (total, overflow) = activations.addingReportingOverflow(weights)
        if overflow || total > options.maxMemoryBytes {
            throw ExecutionError.memoryLimit(activationBytes: activations, weightBytes: weights, limit: options.maxMemoryBytes)
        }
    }

    /// Compiles a loaded, validated model after inferring its shapes with `inference`.
    public static func compile(_ model: Model, inference: InferenceOptions = InferenceOptions(),
                               options: ExecutionOptions = ExecutionOptions()) throws -> ExecutionPlan {
        let inferred = try ShapeInference(options: inference).infer(model)
        return try compile(inferred, opsets: model.opsets, options: options)
    }
}

/// Which activations the executor keeps in which layout (`PlanCompiler.activationLayouts`).
struct ActivationLayouts {
    /// Channels per block of the blocked values (1 when none are blocked).
    var block: Int
    var blocked = Set<String>()
    var channelsLast = Set<String>()
    /// Blocked values with padding channels, by their stored shape.
    var paddedShapes: [String: [Int]] = [:]

    func layout(_ name: String) -> TensorLayout {
        blocked.contains(name) ? .channelBlocked(block) : channelsLast.contains(name) ? .channelsLast : .plain
    }
}

/// The steps of `ExecutionPlan.compile`, one method each.
struct PlanCompiler {
    let inferred: InferredGraph
    let opsets: [OpsetImport]
    let options: ExecutionOptions
    let isSubgraph: Bool

    /// The planned buffers that hold graph outputs, each with the step output slots
    /// inside it: `ExecutionPlan.run` gives each a buffer of its own, which the caller
    /// receives, instead of copying the outputs out of the arena. Every value in such a
    /// buffer lives while the output does (in-place chains, aliases, Concat inputs
    /// written in place), so nothing else in the arena overlaps it then.
    static func outputRegions(_ plan: MemoryPlan, steps: [ExecutionPlan.Step], names: [String],
                              outputs: [String]) -> [ExecutionPlan.OutputRegion] {
        let held = Set(outputs.compactMap { plan.bufferOf[$0] })
        var regions: [Int: ExecutionPlan.OutputRegion] = [:]
        for (index, step) in steps.enumerated() {
            for (k, id) in step.outputIDs.enumerated() where id >= 0 {
                guard let b = plan.bufferOf[names[id]], held.contains(b), let span = plan.span(of: names[id]) else { continue }
                regions[b, default: ExecutionPlan.OutputRegion(bytes: plan.buffers[b].size, slots: [])].slots.append(
                    .init(step: index, output: k, offset: span.offset - plan.buffers[b].offset, capacity: span.size))
            }
        }
        return regions.keys.sorted().compactMap { regions[$0] }
    }

    func compile() throws -> ExecutionPlan {
        let graph = inferred.graph
        var ids: [String: Int] = [:]
        var names: [String] = []
        func id(_ name: String) -> Int {
            if let existing = ids[name] { return existing }
            ids[name] = names.count
            names.append(name)
            return names.count - 1
        }

        // Constants: initializers (made into tensors when a node first reads them, and
        // dropped once every reader has packed them, so a model whose weights must be
        // copied never holds all the copies and all the packed forms at once), then
        // values inference proved constant.
        var constantValues: [Int: Tensor] = [:]
        var initializerData: [Int: TensorData] = [:]
        var constantBytes = 0
        for initializer in graph.initializers {
            guard initializer.elementType.bitWidth != nil, let bytes = initializer.elementType.byteCount(elements: initializer.elementCount) else {
                throw ExecutionError.kernel(node: initializer.name, opType: "initializer",
                                            message: "initializer of type \(initializer.elementType) cannot be loaded")
            }
            initializerData[id(initializer.name)] = initializer
            constantBytes += bytes
        }
        func isConstant(_ id: Int) -> Bool { constantValues[id] != nil || initializerData[id] != nil }
        let staging = StagingMemory()
        defer { staging.close() }
        func constant(_ id: Int) throws -> Tensor? {
            if let tensor = constantValues[id] { return tensor }
            guard let data = initializerData.removeValue(forKey: id) else { return nil }
            guard let tensor = Tensor(data, staging: staging) else {
                throw ExecutionError.kernel(node: data.name, opType: "initializer",
                                            message: "initializer of type \(data.elementType) cannot be loaded")
            }
            constantValues[id] = tensor
            return tensor
        }
        // Readers left per value, and whether one of them needs it at run time.
        var pendingReaders: [String: Int] = [:]
        for node in graph.nodes {
            for name in node.inputs where !name.isEmpty { pendingReaders[name, default: 0] += 1 }
        }
        var readAtRunTime = Set<String>(graph.outputs.map(\.name))
        for node in graph.nodes {
            for (_, sub) in node.subgraphs { readAtRunTime.formUnion(GraphValidator.outerReads(of: sub)) }
        }
        /// Counts `node`'s reads of its inputs; a constant whose readers are all done and
        /// none of which reads it at run time (folded nodes read at plan time, packing
        /// kernels never again) is dropped.
        func noteReads(of node: Node, atRunTime: (Int) -> Bool) {
            for (k, name) in node.inputs.enumerated() where !name.isEmpty {
                if atRunTime(k) { readAtRunTime.insert(name) }
                pendingReaders[name, default: 1] -= 1
                if pendingReaders[name] == 0, !readAtRunTime.contains(name), let id = ids[name] {
                    constantValues[id] = nil
                }
            }
        }
        let outer = isSubgraph ? GraphValidator.outerReads(of: graph) : []
        let outerReads = outer.sorted().map { (name: $0, id: id($0)) }
        let inputs = graph.runtimeInputs.map { info in
            (name: info.name, id: id(info.name), type: isSubgraph ? nil : (inferred.type(of: info.name) ?? info.type?.tensorType))
        }

        let layouts = activationLayouts(block: options.blockedLayouts && !isSubgraph ? preferredChannelBlock : nil)
        let blocked = layouts.blocked, channelsLast = layouts.channelsLast, paddedShapes = layouts.paddedShapes
        func layout(_ name: String) -> TensorLayout { layouts.layout(name) }

        var steps: [ExecutionPlan.Step] = []
        var missing: [String: [String]] = [:]
        var folded = 0
        for node in graph.nodes {
            // A node with subgraphs also reads, implicitly, the enclosing values its
            // subgraphs use; they follow its declared inputs.
            let implicitInputs = Set(node.subgraphs.flatMap { GraphValidator.outerReads(of: $0.graph) }).sorted()
            let inputIDs = (node.inputs + implicitInputs).map { $0.isEmpty ? -1 : id($0) }
            let outputIDs = node.outputs.map { $0.isEmpty ? -1 : id($0) }
            // Values inference already proved constant need no kernel at all.
            if !isSubgraph, PlanTimeConstants.isFoldable(node),
               let tensors = provenConstants(node) {
                for (k, tensor) in tensors.enumerated() where outputIDs[k] >= 0 { constantValues[outputIDs[k]] = tensor }
                noteReads(of: node) { _ in false }
                folded += 1
                continue
            }
            guard let factory = kernelFactory(node, blocked: blocked, padded: Set(paddedShapes.keys)) else {
                missing[node.qualifiedOpType, default: []].append(node.displayName)
                continue
            }
            let constantInputs = try inputIDs.map { $0 < 0 ? nil : try constant($0) }
            var context = KernelContext(
                node: node, opset: opset(of: node),
                inputTypes: inferred.inputTypes(of: node), outputTypes: inferred.outputTypes(of: node),
                constantInputs: constantInputs, implicitInputs: implicitInputs,
                compileSubgraph: { subgraph in try self.compileSubgraph(subgraph, of: node) })
            context.maxLoopIterations = options.maxLoopIterations
            context.inputLayouts = node.inputs.map(layout)
            context.outputLayouts = node.outputs.map(layout)
            let kernel: Kernel
            do {
                kernel = try factory(context)
            } catch let error as ExecutionError {
                throw error
            } catch {
                throw ExecutionError.kernel(node: node.displayName, opType: node.qualifiedOpType, message: "\(error)")
            }
            let slots = OutputSlots(count: node.outputs.count, maxBytes: options.maxTensorBytes)
            for (k, output) in node.outputs.enumerated() {
                slots.requested[k] = !output.isEmpty
                slots.layouts[k] = layout(output)
            }

            let foldable = options.foldConstants && PlanTimeConstants.isFoldable(node)
                && inputIDs.allSatisfy { $0 < 0 || isConstant($0) }
            if foldable {
                do {
                    try kernel.run(constantInputs, slots)
                } catch {
                    throw ExecutionError.kernel(node: node.displayName, opType: node.qualifiedOpType,
                                                message: "while folding constants: \(error)")
                }
                for (k, id) in outputIDs.enumerated() where id >= 0 {
                    guard let result = slots.results[k] else {
                        throw ExecutionError.outputNotProduced(node: node.displayName, opType: node.qualifiedOpType, output: names[id])
                    }
                    constantValues[id] = result
                }
                noteReads(of: node) { _ in false }
                folded += 1
                continue
            }
            steps.append(ExecutionPlan.Step(name: node.displayName, opType: node.qualifiedOpType,
                                            sourceNodes: node.originalNodes, kernel: kernel,
                                            inputIDs: inputIDs, outputIDs: outputIDs, slots: slots, releases: []))
            let packed = Set(kernel.packedInputs)
            noteReads(of: node) { !packed.contains($0) }
        }
        // Initializers no node read (e.g. a graph output that is a weight).
        for id in Array(initializerData.keys) { _ = try constant(id) }
        if !missing.isEmpty { throw ExecutionError.unsupportedOps(missing) }

        let outputs = graph.outputs.map { (name: $0.name, id: id($0.name)) }
        steps = withReleases(steps, keep: Set(outputs.map(\.id)).union(outerReads.map(\.id)), constants: constantValues)

        // The arena: the memory planner's layout, when every size is known.
        var memoryPlan: MemoryPlan?
        var arena: TensorBuffer?
        var inputSlots: [Int: OutputSlots.Slot] = [:]
        var outputRegions: [ExecutionPlan.OutputRegion] = []
        if options.useArena && !isSubgraph, let plan = arenaPlan(layouts) {
            let buffer = TensorBuffer(byteCount: plan.arenaBytes)
            func slot(_ name: String) -> OutputSlots.Slot? {
                guard let span = plan.span(of: name) else { return nil }
                return OutputSlots.Slot(buffer: buffer, offset: span.offset, capacity: span.size)
            }
            for step in steps {
                for (k, id) in step.outputIDs.enumerated() where id >= 0 {
                    if let s = slot(names[id]) { step.slots.slots[k] = s }
                }
            }
            for input in inputs { inputSlots[input.id] = slot(input.name) }
            outputRegions = Self.outputRegions(plan, steps: steps, names: names, outputs: outputs.map(\.name))
            memoryPlan = plan
            arena = buffer
        }
        let foldedBytes = constantValues.values.reduce(0) { $0 + $1.byteCount }
        constantBytes = max(constantBytes, foldedBytes)
        let plan = ExecutionPlan(
            steps: steps, memoryPlan: memoryPlan, arena: arena, constantBytes: constantBytes, foldedNodeCount: folded,
            valueNames: names, constants: constantValues.map { (id: $0.key, tensor: $0.value) },
            inputs: inputs, outputs: outputs, outerReads: outerReads, inputSlots: inputSlots, outputRegions: outputRegions)
        plan.channelBlockedValues = blocked
        plan.channelsLastValues = channelsLast
        plan.copyFreeSteps = Self.copyFreeSteps(graph, plan: memoryPlan, layouts: layouts)
        return plan
    }

    /// Where activations live: channel-blocked in blocks of `block` channels (nil: none
    /// are) or channels-last between int8 convolutions, and the padded shapes blocked
    /// values are stored in.
    func activationLayouts(block: Int?) -> ActivationLayouts {
        let graph = inferred.graph
        var layouts = ActivationLayouts(block: block ?? 1)
        guard let block else { return layouts }
        let constants = Set(graph.initializers.map(\.name)).union(inferred.facts.filter { $0.value.constant != nil }.map(\.key))
        let planner = LayoutPlanner(graph: graph, facts: inferred.facts, constants: constants, block: block)
        layouts.blocked = planner.blockedValues()
        layouts.channelsLast = planner.channelsLastValues().subtracting(layouts.blocked)
        // Blocked values with padding channels, by the shape they are stored in (for the
        // kernels that must see the padding and for the arena).
        for name in layouts.blocked {
            if let shape = inferred.type(of: name)?.shape?.compactMap(\.constantValue), layouts.layout(name).pads(shape) {
                layouts.paddedShapes[name] = layouts.layout(name).storageShape(shape)
            }
        }
        return layouts
    }

    /// The arena's layout for activations kept as `layouts` says, with Concat inputs
    /// written in place where the layouts allow; nil when a size is unknown.
    func arenaPlan(_ layouts: ActivationLayouts) -> MemoryPlan? {
        var producers: [String: Node] = [:]
        for node in inferred.graph.nodes { for o in node.outputs where !o.isEmpty { producers[o] = node } }
        return try? MemoryPlanner.plan(inferred, storageShapes: layouts.paddedShapes, contiguousConcat: {
            isContiguousConcat($0, layout: layouts.layout, producers: producers)
        })
    }

    /// The nodes (by display name) whose kernel copies nothing: a Concat whose every
    /// input the plan places inside its output (their producers write them there), and
    /// a Reshape-like op on a plain value, which returns a view of its input
    /// (ShuffleNet's 24 Reshapes, each 0.0005 ms, had been predicted at 0.009 ms).
    static func copyFreeSteps(_ graph: Graph, plan: MemoryPlan?, layouts: ActivationLayouts) -> Set<String> {
        var names = Set<String>()
        for node in graph.nodes where node.isDefaultDomain && node.originalNodes.count <= 1
            && MemoryPlanner.aliasOps.contains(node.opType) {
            if let input = node.inputs.first, let output = node.outputs.first,
               layouts.layout(input) == .plain, layouts.layout(output) == .plain {
                names.insert(node.displayName)
            }
        }
        guard let plan else { return names }
        for node in graph.nodes where node.isDefaultDomain && node.opType == "Concat" {
            guard let output = node.outputs.first, let span = plan.span(of: output) else { continue }
            let inside = node.inputs.allSatisfy { input in
                guard !input.isEmpty, let part = plan.span(of: input) else { return false }
                return part.offset >= span.offset && part.offset + part.size <= span.offset + span.size
            }
            if inside && !node.inputs.isEmpty { names.insert(node.displayName) }
        }
        return names
    }

    /// Whether a Concat stores each input as one contiguous block of its output, in
    /// order, so inputs can be written in place there (`MemoryPlanner.plan`): one
    /// layout throughout, and nothing outside the axis to interleave, i.e. plain with
    /// only dims of 1 before the axis, or channel-blocked along the channels of one
    /// image with every input a whole number of blocks. An input that a Reshape-like op
    /// makes of another value must share that value's layout too: only then is it a
    /// view of it, and the value can be written in its place (`MemoryPlanner`).
    func isContiguousConcat(_ node: Node, layout: (String) -> TensorLayout, producers: [String: Node]) -> Bool {
        guard let output = node.outputs.first, let shape = inferred.type(of: output)?.concreteDims,
              let attribute = try? node.int("axis"), !shape.isEmpty else { return false }
        let axis = attribute < 0 ? attribute + shape.count : attribute
        func sameLayout(_ input: String) -> Bool {
            guard !input.isEmpty, layout(input) == layout(output) else { return false }
            guard let source = producers[input], source.isDefaultDomain, MemoryPlanner.aliasOps.contains(source.opType),
                  let origin = source.inputs.first else { return true }
            return layout(origin) == layout(output)
        }
        guard axis >= 0, axis < shape.count, node.inputs.allSatisfy(sameLayout) else { return false }
        switch layout(output) {
        case .plain:
            return shape[..<axis].allSatisfy { $0 == 1 }
        case .channelBlocked(let block):
            return shape.count == 4 && axis == 1 && shape[0] == 1 && node.inputs.allSatisfy { input in
                (inferred.type(of: input)?.concreteDims).map { $0.count == 4 && $0[1] % block == 0 } ?? false
            }
        case .channelsLast:
            return false
        }
    }

    /// The kernel for a node: a blocked-layout kernel when its input is channel-blocked
    /// and the op needs one (pooling, per-channel broadcast, concat), else the registry's.
    func kernelFactory(_ node: Node, blocked: Set<String>, padded: Set<String>) -> KernelFactory? {
        if node.isDefaultDomain {
            let inputsBlocked = node.inputs.filter { blocked.contains($0) }
            let sameShapes = Set(node.inputs.compactMap { inferred.type(of: $0)?.shape }).count <= 1
            let isBinary = LayoutPlanner.binaryOps.contains(node.opType)
            if !inputsBlocked.isEmpty, !(isBinary && sameShapes), let special = BlockedKernels.factory(for: node) {
                return special
            }
        }
        guard let factory = KernelRegistry.factory(for: node) else { return nil }
        // Layout-blind element-wise kernels run over a padded blocked tensor's storage.
        guard (node.inputs + node.outputs).contains(where: padded.contains), node.opType != "Conv" else { return factory }
        return { context in
            PaddedChannelsKernel(wrapping: try factory(context),
                                 outputShapes: context.outputTypes.map { $0?.shape?.compactMap(\.constantValue) })
        }
    }

    /// The default-domain opset (or the node's domain's), for version-dependent forms.
    func opset(of node: Node) -> Int {
        let domain = node.isDefaultDomain ? "" : node.domain
        return opsets.first { ($0.domain == "ai.onnx" ? "" : $0.domain) == domain }?.version ?? 1
    }

    /// The node's outputs as tensors when inference proved every one of them constant
    /// with a concrete value.
    func provenConstants(_ node: Node) -> [Tensor]? {
        var tensors: [Tensor] = []
        for output in node.outputs {
            if output.isEmpty { tensors.append(Tensor(shape: [0])); continue }
            guard let facts = inferred.facts[output], let constant = facts.constant,
                  let type = facts.type, let dims = type.shape else { return nil }
            let shape = dims.compactMap(\.constantValue)
            guard shape.count == dims.count, let tensor = Self.tensor(constant, type.elementType, shape) else { return nil }
            tensors.append(tensor)
        }
        return tensors
    }

    /// A constant value from inference as a tensor of `type`, if every element is known.
    static func tensor(_ value: ConstantValue, _ type: ElementType, _ shape: [Int]) -> Tensor? {
        guard value.count == shape.reduce(1, *) else { return nil }
        switch value {
        case .ints:
            guard let ints = value.knownInts else { return nil }
            switch type {
            case .int64: return Tensor(.int64, shape: shape, values: ints.map { Int64($0) })
            case .int32: return Tensor(.int32, shape: shape, values: ints.map { Int32(truncatingIfNeeded: $0) })
            case .bool: return Tensor(.bool, shape: shape, values: ints.map { UInt8($0 != 0 ? 1 : 0) })
            default: return nil
            }
        case .floats(let doubles):
            // Only types whose values a Double holds exactly.
            switch type {
            case .float: return Tensor(.float, shape: shape, values: doubles.map { Float($0) })
            case .double: return Tensor(.double, shape: shape, values: doubles)
            default: return nil
            }
        }
    }

    /// Each step learns which values it reads last, so plans without an arena free them.
    func withReleases(_ steps: [ExecutionPlan.Step], keep: Set<Int>, constants: [Int: Tensor]) -> [ExecutionPlan.Step] {
        var lastUse: [Int: Int] = [:]
        for (index, step) in steps.enumerated() {
            for id in step.inputIDs where id >= 0 { lastUse[id] = index }
        }
        var releases = [[Int]](repeating: [], count: steps.count)
        for (id, step) in lastUse where !keep.contains(id) && constants[id] == nil { releases[step].append(id) }
        return steps.enumerated().map { index, step in
            ExecutionPlan.Step(name: step.name, opType: step.opType, sourceNodes: step.sourceNodes, kernel: step.kernel,
                               inputIDs: step.inputIDs, outputIDs: step.outputIDs, slots: step.slots,
                               releases: releases[index].sorted())
        }
    }

    /// A subgraph as a plan of its own: no arena (its shapes may change between
    /// iterations), values of enclosing graphs read by name at run time.
    func compileSubgraph(_ subgraph: Graph, of node: Node) throws -> ExecutionPlan {
        let candidates = inferred.subgraphs[node.displayName]?.values.flatMap { $0 } ?? []
        let match = candidates.first { $0.graph.name == subgraph.name && $0.graph.nodes.count == subgraph.nodes.count }
        let sub = match ?? InferredGraph(graph: subgraph, facts: [:])
        var subOptions = options
        subOptions.useArena = false
        return try PlanCompiler(inferred: sub, opsets: opsets, options: subOptions, isSubgraph: true).compile()
    }
}
