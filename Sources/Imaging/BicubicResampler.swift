/// Antialiased bicubic resampling of 8-bit RGB, computing exactly what Pillow 13 computes for
/// `image.resize((width, height), Image.BICUBIC, box=box)` (src/libImaging/Resample.c):
/// - Keys cubic convolution with a = -0.5, support 2;
/// - when downscaling, the kernel is stretched by the scale factor (antialiasing);
/// - pixel centres at +0.5, the box offset enters the centre of every output sample;
/// - weights normalised to sum 1 in Double, then rounded to fixed point with 22 fraction bits;
/// - separable: a horizontal pass into an 8-bit intermediate that only covers the rows the
///   vertical pass reads, then the vertical pass; each pass rounds and clips to 0...255.
/// Matching the rounding of both passes is what makes the output bit-identical to Pillow.
enum BicubicResampler {
    /// Pillow's PRECISION_BITS for 8-bit images: 32 bits minus 8 for the sample, minus 2 for
    /// the overshoot of negative lobes.
    static let precisionBits = 32 - 8 - 2

    /// Resamples the `box` (x0, y0, x1, y1 in source pixels, Pillow's float box) of `image` to
    /// `width` x `height`.
    static func resample(_ image: RGBImage, width: Int, height: Int,
                         box: (Float, Float, Float, Float)) -> RGBImage {
        precondition(width > 0 && height > 0, "resample to \(width)x\(height)")
        precondition(image.width > 0 && image.height > 0, "resample an empty image")
        // Pillow's test compares box[2] with the *output* width; kept for identical behaviour.
        let needHorizontal = width != image.width || box.0 != 0 || box.2 != Float(width)
        let needVertical = height != image.height || box.1 != 0 || box.3 != Float(height)

        let vertical = FilterTable(inputSize: image.height, start: box.1, end: box.3, outputSize: height)
        var source = image
        var verticalOffset = 0
        if needHorizontal {
            let horizontal = FilterTable(inputSize: image.width, start: box.0, end: box.2, outputSize: width)
            // Only the source rows the vertical pass will read.
            let firstRow = vertical.first[0]
            let lastRow = vertical.first[height - 1] + vertical.count[height - 1]
            source = horizontalPass(image, table: horizontal, rows: firstRow..<lastRow)
            verticalOffset = firstRow
        }
        if needVertical {
            return verticalPass(source, table: vertical, rowOffset: verticalOffset)
        }
        return source
    }

    /// Filter taps for one axis: for output sample i, `count[i]` weights starting at input index
    /// `first[i]`, stored at `weights[i * taps ..< i * taps + count[i]]`.
    struct FilterTable {
        let taps: Int
        let first: [Int]
        let count: [Int]
        let weights: [Int32]

        /// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bicubic filter.
        init(inputSize: Int, start: Float, end: Float, outputSize: Int) {
            let support = 2.0  // bicubic
            // Pillow subtracts the float box edges before widening to double.
            let scale = Double(end - start) / Double(outputSize)
            let filterScale = max(scale, 1.0)
            let scaledSupport = support * filterScale
            let taps = Int(scaledSupport.rounded(.up)) * 2 + 1
            let inverse = 1.0 / filterScale
            let unit = Double(1 << BicubicResampler.precisionBits)

            var first = [Int](repeating: 0, count: outputSize)
            var count = [Int](repeating: 0, count: outputSize)
            var weights = [Int32](repeating: 0, count: outputSize * taps)
            var raw = [Double](repeating: 0, count: taps)
            for i in 0..<outputSize {
                let center = Double(start) + (Double(i) + 0.5) * scale
                // Int(_:) truncates toward zero like C's (int) cast.
                let lower = max(Int(center - scaledSupport + 0.5), 0)
                let upper = min(Int(center + scaledSupport + 0.5), inputSize)
                let n = max(upper - lower, 0)
                var total = 0.0
                for k in 0..<n {
                    let w = Self.cubic((Double(k + lower) - center + 0.5) * inverse)
                    raw[k] = w
                    total += w
                }
                for k in 0..<n {
                    let w = total != 0 ? raw[k] / total : raw[k]
                    // Round half away from zero, then truncate, as Pillow does.
                    weights[i * taps + k] = Int32(w < 0 ? -0.5 + w * unit : 0.5 + w * unit)
                }
                first[i] = lower
                count[i] = n
            }
            self.taps = taps
            self.first = first
            self.count = count
            self.weights = weights
        }

        /// Keys cubic convolution kernel, a = -0.5, written in Pillow's operation order.
        @inline(__always)
        static func cubic(_ value: Double) -> Double {
            let a = -0.5
            let x = value < 0 ? -value : value
            if x < 1.0 { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1 }
            if x < 2.0 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0.0
        }
    }

    /// Rounds a fixed-point sum (which started at one half) to 0...255.
    @inline(__always)
    static func clip(_ sum: Int32) -> UInt8 {
        let v = sum >> Int32(precisionBits)
        return v < 0 ? 0 : (v > 255 ? 255 : UInt8(truncatingIfNeeded: v))
    }

    /// Horizontal pass over source rows `rows`: output is table-width x rows.count.
    static func horizontalPass(_ image: RGBImage, table: FilterTable, rows: Range<Int>) -> RGBImage {
        let outWidth = table.first.count
        let inStride = image.width * 3
        let outStride = outWidth * 3
        let half = Int32(1 << (precisionBits - 1))
        let pixels = [UInt8](unsafeUninitializedCapacity: outStride * rows.count) { out, initialized in
            image.pixels.withUnsafeBufferPointer { input in
                table.weights.withUnsafeBufferPointer { weights in
                    table.first.withUnsafeBufferPointer { first in
                        table.count.withUnsafeBufferPointer { count in
                            let src = input.baseAddress!, dst = out.baseAddress!, kk = weights.baseAddress!
                            for (row, y) in rows.enumerated() {
                                let inRow = src + y * inStride
                                var outPixel = dst + row * outStride
                                for x in 0..<outWidth {
                                    let k = kk + x * table.taps
                                    var p = inRow + first[x] * 3
                                    var r = half, g = half, b = half
                                    for t in 0..<count[x] {
                                        let w = k[t]
                                        r &+= Int32(p[0]) &* w
                                        g &+= Int32(p[1]) &* w
                                        b &+= Int32(p[2]) &* w
                                        p += 3
                                    }
                                    outPixel[0] = clip(r)
                                    outPixel[1] = clip(g)
                                    outPixel[2] = clip(b)
                                    outPixel += 3
                                }
                            }
                        }
                    }
                }
            }
            initialized = outStride * rows.count
        }
        return RGBImage(width: outWidth, height: rows.count, pixels: pixels)
    }

    /// Vertical pass: output row i sums rows `table.first[i] - rowOffset ...` of `image`.
    static func verticalPass(_ image: RGBImage, table: FilterTable, rowOffset: Int) -> RGBImage {
        let outHeight = table.first.count
        let stride = image.width * 3
        let half = Int32(1 << (precisionBits - 1))
        // One accumulator row, reused: row-at-a-time sums keep the inner loop contiguous (and
        // vectorisable); integer addition makes the order irrelevant to the result.
        var sums = [Int32](repeating: 0, count: stride)
        let pixels = [UInt8](unsafeUninitializedCapacity: stride * outHeight) { out, initialized in
            image.pixels.withUnsafeBufferPointer { input in
                table.weights.withUnsafeBufferPointer { weights in
                    sums.withUnsafeMutableBufferPointer { acc in
                        let src = input.baseAddress!, dst = out.baseAddress!, sum = acc.baseAddress!
                        for y in 0..<outHeight {
                            let k = weights.baseAddress! + y * table.taps
                            let top = table.first[y] - rowOffset
                            for j in 0..<stride { sum[j] = half }
                            for t in 0..<table.count[y] {
                                let w = k[t]
                                let row = src + (top + t) * stride
                                for j in 0..<stride { sum[j] &+= Int32(row[j]) &* w }
                            }
                            let outRow = dst + y * stride
                            for j in 0..<stride { outRow[j] = clip(sum[j]) }
                        }
                    }
                }
            }
            initialized = stride * outHeight
        }
        return RGBImage(width: image.width, height: outHeight, pixels: pixels)
    }
}
