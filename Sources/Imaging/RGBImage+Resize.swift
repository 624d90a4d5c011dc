extension RGBImage {
    /// Resizes the `box` region (x0, y0, x1, y1 in source pixels; default: the whole image) to
    /// `width` x `height` with antialiased bicubic, bit-identical to Pillow's
    /// `resize((width, height), Image.BICUBIC, box=box)`.
    public func resized(width: Int, height: Int, box: (x0: Float, y0: Float, x1: Float, y1: Float)? = nil) -> RGBImage {
        let region = box ?? (0, 0, Float(self.width), Float(self.height))
        return BicubicResampler.resample(self, width: width, height: height,
                                         box: (region.x0, region.y0, region.x1, region.y1))
    }
}
