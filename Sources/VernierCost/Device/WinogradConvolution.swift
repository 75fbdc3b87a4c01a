/// Which convolutions the executor asks oneDNN to run as Winograd (F(2x2, 3x3),
/// `jit_fp32_wino_2x3`, or F(4x4, 3x3), `jit_wino_4x3`, as oneDNN picks): one rule for
/// the executor, which asks for the kernel, and for prediction, which must weigh those
/// convolutions at their own rate (2.25x or 4x fewer multiplies than their direct FLOP
/// count says) when no implementation tells it which (`KernelSample.winogradTile`).
public enum WinogradConvolution {
    /// Output positions from which a 3x3 convolution takes it (see `ConvPlan` for why).
    public static let minimumPositions = 28 * 28
    /// Output channels come in whole blocks of this many. The OCR detector's 96 -> 24
    /// channel 3x3 convolutions (1 thread) ran no faster on Winograd at 160x160 (8.3-8.6
    /// against 8.3-8.9 ms direct) and slower at 80x80 and 40x40 (2.7-2.9 against
    /// 2.2-2.4 ms, 0.65 against 0.55 ms).
    /// Input channels too: Winograd pads them to a block while the direct kernel reads
    /// a first layer's 1 or 3 channels as they are. U-Net's 3 -> 32 convolution at
    /// 256x256 took 3.65 ms on Winograd, as long as its 32 -> 32 one.
    public static let channelBlock = 16

    /// fp32, dense (one group), 3x3, stride 1, no dilation, on a map of at least
    /// `minimumPositions` outputs, with whole `channelBlock`s of input and output channels.
    public static func applies(kernel: [Int], strides: [Int], dilations: [Int], group: Int, outputPositions: Int,
                               inputChannels: Int, outputChannels: Int, integer: Bool) -> Bool {
        !integer && group == 1 && kernel == [3, 3] && strides.allSatisfy { $0 == 1 } && dilations.allSatisfy { $0 == 1 }
            && outputPositions >= minimumPositions && inputChannels % channelBlock == 0 && outputChannels % channelBlock == 0
    }
}
