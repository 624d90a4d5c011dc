import Testing
@testable import Imaging

/// The one bytes -> tensor path (`Preprocessor.prepare`, under a decode budget, which sizes its
/// reservation from the header estimate) takes the new formats like PNG: a lossless WebP, a TIFF and
/// a PNG of the same pixels give the same network input, plain and mirrored.
@Suite("WebP, TIFF and HEIC through the preprocessing pipeline")
struct FormatPipelineTests {
    @Test("the same pixels as WebP, TIFF and PNG give the same network input",
          arguments: ["webp_lossless.webp", "tiff_rgb8_lzw.tif", "tiff_tiled_lzw.tif", "heic_rgb.heic"])
    func sameTensorAsPNG(file: String) throws {
        let bytes = try TestFiles.bytes(TestFiles.fixture(file))
        let png = PNGEncoder.encode(try ImageDecoder.decode(bytes: bytes, name: file))
        let preprocessor = Preprocessor(.tensorFlowEval())
        let views = [ImageView(policy: .centerCrop), ImageView(policy: .centerCrop, mirrored: true)]
        let floats = preprocessor.size * preprocessor.size * 3 * views.count
        let budget = MemoryBudget(capacity: 64 << 20)
        var fromFile = [Float](repeating: .nan, count: floats), fromPNG = [Float](repeating: .nan, count: floats)
        try fromFile.withUnsafeMutableBufferPointer { out in
            try preprocessor.prepare(.bytes(bytes, name: file), views: views, maxPixels: 1 << 20, budget: budget, into: out.baseAddress!)
        }
        try fromPNG.withUnsafeMutableBufferPointer { out in
            try preprocessor.prepare(.bytes(png, name: "same.png"), views: views, maxPixels: 1 << 20, budget: budget, into: out.baseAddress!)
        }
        #expect(fromFile == fromPNG)
        #expect(!fromFile.contains { $0.isNaN })
        #expect(budget.inUse == 0 && budget.peakInUse > 0)
        // The budget's reservation came from the format's own estimate.
        let cost = try preprocessor.decodeCost(.bytes(bytes, name: file), views: views, maxPixels: 1 << 20)
        let decoded = try ImageDecoder.decode(bytes: bytes, name: file)
        #expect(cost.bytes > 0 && cost.sourcePixels == decoded.width * decoded.height)
    }
}
