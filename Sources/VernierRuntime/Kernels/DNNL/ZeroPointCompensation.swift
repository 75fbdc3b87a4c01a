import CDNNL

/// Constant int8 matmul weights reordered into oneDNN's layout with the source zero
/// point's compensation, faster than oneDNN 2.6 does it.
///
/// With a u8 source and a zero point, oneDNN's int8 matmul wants its weights in a
/// blocked layout (`BA16a64b4a` with AMX) followed by one Int32 per (padded) column,
/// `-sum_k w[k][n]`, then zeros to the size its descriptor gives (memory extra flag 8, compensation mask over the columns). Its only
/// reorder that writes that sum is the reference one: 2.2 ms for a 768x768 matrix,
/// 370 ms of BERT-base int8's planning and 400 ms of ViT-B/16 int8's. Here the jit
/// reorder writes the blocked weights (the same descriptor without the flag) and the
/// sums are added here. The result is byte for byte what oneDNN's own reorder writes
/// (`ZeroPointCompensationTests`).
enum ZeroPointCompensation {
    /// Fills `owned` (whose descriptor is oneDNN's choice for the weights) from `user`,
    /// the `[K, N]` s8 weights at `weights` with element strides `strides` (rows,
    /// columns). Returns false, having written nothing, when the descriptor is not the
    /// one case handled (2-D after unit batch dims, s8, blocked, only the zero-point
    /// flag, compensation over the last dim): the caller then uses oneDNN's reorder.
    static func reorder(from user: DNNLMemory, weights: UnsafeRawPointer, rows: Int, columns: Int,
                        strides: (row: Int, column: Int), into owned: DNNLMemory, engine: DNNLEngine) throws -> Bool {
        var full = owned.desc
        let rank = Int(full.ndims)
        let flag = UInt64(dnnl_memory_extra_flag_compensation_conv_asymmetric_src.rawValue)
        guard rank >= 2, full.data_type == dnnl_s8, full.format_kind == dnnl_blocked,
              full.extra.flags == flag, full.extra.asymm_compensation_mask == Int32(1 << (rank - 1)),
              let buffer = owned.buffer else { return false }
        let dims = withUnsafeBytes(of: full.dims) { Array($0.bindMemory(to: Int64.self).prefix(rank)) }
        let padded = withUnsafeBytes(of: full.padded_dims) { Array($0.bindMemory(to: Int64.self).prefix(rank)) }
        guard dims.dropLast(2).allSatisfy({ $0 == 1 }), Int(dims[rank - 2]) == rows, Int(dims[rank - 1]) == columns
        else { return false }
        var plain = full
        plain.extra = dnnl_memory_extra_desc_t()
        let dataBytes = dnnl_memory_desc_get_size(&plain)
        let paddedColumns = Int(padded[rank - 1])
        // oneDNN sizes the extra part above the sums it writes; the rest stays zero.
        let extraBytes = dnnl_memory_desc_get_size(&full) - dataBytes
        guard extraBytes >= paddedColumns * MemoryLayout<Int32>.stride else { return false }

        let view = try DNNLMemory(unbound: plain, engine: engine)
        try view.bind(buffer.baseAddress)
        try makeReorder(from: user, to: view, engine: engine).execute(on: engine)
        try engine.wait()

        (buffer.baseAddress + dataBytes).initializeMemory(as: UInt8.self, repeating: 0, count: extraBytes)
        let sums = (buffer.baseAddress + dataBytes).bindMemory(to: Int32.self, capacity: paddedColumns)
        let w = weights.assumingMemoryBound(to: Int8.self)
        for k in 0..<rows {
            let row = w + k * strides.row
            for n in 0..<columns { sums[n] &-= Int32(row[n * strides.column]) }
        }
        return true
    }
}
