import VernierGraph

/// A stored tensor (initializer or Constant) whose indices along one axis belong to a
/// channel group: channel `k` owns indices `offset + k*span ..< offset + (k+1)*span`.
/// `span` > 1 after a Flatten, where one channel becomes H*W features of a Gemm.
public struct CoupledSlice: Hashable, Sendable {
    /// The name the node reads (an initializer, a Constant's or an Identity's output).
    public var tensor: String
    /// The node (index in the graph) and input slot that read it: a tensor shared by
    /// several nodes gets a private copy for each use whose channels differ.
    public var node: Int
    public var input: Int
    public var axis: Int
    public var offset: Int
    public var span: Int
    /// Whether the slice's magnitude counts in the channel's importance (weights do;
    /// biases and BatchNormalization statistics do not).
    public var scoresImportance: Bool

    public init(tensor: String, node: Int, input: Int, axis: Int, offset: Int = 0, span: Int = 1, scoresImportance: Bool) {
        self.tensor = tensor
        self.node = node
        self.input = input
        self.axis = axis
        self.offset = offset
        self.span = span
        self.scoresImportance = scoresImportance
    }
}

/// A set of channels that must be removed together (DepGraph's "group"): the output
/// channels of one or more producers (Conv, Gemm, MatMul), every op they flow through
/// unchanged, and the input channels of their consumers.
public struct ChannelGroup: Sendable {
    /// The first producer's node name; `--group NAME=RATIO` refers to it.
    public var name: String
    public var channels: Int
    /// Nodes whose output channels this group is (more than one after a residual Add).
    public var producers: [String]
    /// Every node the channels pass through or are consumed by, in graph order.
    public var nodes: [String]
    /// The stored tensors sliced when channels are removed.
    public var slices: [CoupledSlice]
    /// Why the group cannot be pruned; empty when it can.
    public var blockers: [String]

    public var isPrunable: Bool { blockers.isEmpty && channels > 1 }

    /// Elements one channel of the group covers in every tensor it slices: 1 for plain
    /// channels, the head width (64 in BERT-base) when the channels are attention heads.
    public var channelWidth: Int { max(1, slices.reduce(0) { greatestCommonDivisor($0, $1.span) }) }

    /// The channel multiple that keeps `roundTo` elements' alignment: `--round-to 8` on
    /// heads 64 wide is any whole number of heads (rounding 12 heads to multiples of 8
    /// left nothing to cut but all of them).
    public func channelMultiple(roundTo: Int) -> Int {
        max(1, roundTo) / greatestCommonDivisor(max(1, roundTo), channelWidth)
    }
}

func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int {
    var (x, y) = (abs(a), abs(b))
    while y != 0 { (x, y) = (y, x % y) }
    return x
}

/// Which channel groups lie along one axis of a value, in order. A Concat's output has
/// one segment per input; a Flatten's output repeats each channel H*W times.
struct ChannelLayout: Sendable {
    struct Segment: Sendable, Equatable {
        var group: Int
        var count: Int
        var span: Int
    }

    var axis: Int
    var segments: [Segment]

    var length: Int { segments.reduce(0) { $0 + $1.count * $1.span } }

    func movedTo(axis newAxis: Int) -> ChannelLayout { ChannelLayout(axis: newAxis, segments: segments) }

    func repeated(by factor: Int) -> ChannelLayout {
        ChannelLayout(axis: axis, segments: segments.map { Segment(group: $0.group, count: $0.count, span: $0.span * factor) })
    }

    /// Same counts and repeats segment by segment (the groups may differ).
    func hasSameStructure(as other: ChannelLayout) -> Bool {
        segments.count == other.segments.count
            && zip(segments, other.segments).allSatisfy { $0.count == $1.count && $0.span == $1.span }
    }
}

/// A stored integer tensor (a Reshape's target shape) whose element at `position`
/// spells a channel axis' length, rewritten to the new length after pruning.
struct ShapeConstantRewrite: Sendable {
    var tensor: String
    var node: Int
    var input: Int
    var position: Int
    var layout: ChannelLayout
}

/// A depthwise Conv whose `group` attribute equals its channel count.
struct GroupAttributeRewrite: Sendable {
    var node: Int
    var layout: ChannelLayout
}

/// The result of the channel dependency analysis of one model.
public struct ChannelDependencies: Sendable {
    /// Every group with a producer, in graph order of their first producer.
    public var groups: [ChannelGroup] { allGroups.filter { !$0.producers.isEmpty } }

    /// All groups, including the fixed ones that stand for channels nothing produces
    /// (a graph input concatenated with a conv output); layouts index into this.
    var allGroups: [ChannelGroup]
    /// The channel layout of every value whose channels belong to groups.
    var layouts: [String: ChannelLayout]
    var shapeRewrites: [ShapeConstantRewrite]
    var groupAttributeRewrites: [GroupAttributeRewrite]

    /// The group named `name`.
    public func group(named name: String) -> ChannelGroup? { groups.first { $0.name == name } }
}
