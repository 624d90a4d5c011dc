// libFuzzer target: the earlier output `classify --resume` reads back (JSON lines, or RFC 4180 CSV
// grouped into records). The first byte chooses the format (even: JSON lines, odd: CSV), the rest is
// the file. Built by scripts/build-fuzzer with ResumeLog.swift and what it uses of Sources/HeadTune.
import Foundation
@testable import HeadTune

/// Every line is either kept or counted as dropped, the kept text is whole lines of the input, and
/// reading the kept text again keeps all of it and drops nothing: resuming twice resumes the same.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzResumeLog(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let name = "fuzz/out.csv"
    let csv = data[0] % 2 == 1
    let earlier = Data(bytes: data + 1, count: size - 1)
    var log = ResumeLog()
    let kept: Data
    do { kept = csv ? try log.keepCSVRows(earlier, source: name) : log.keepJSONLines(earlier) } catch {
        requireNamed(error, name)
        return 0
    }
    require(log.records == log.finished.values.reduce(0, +), "\(log.records) records, finished \(log.finished)")
    require(kept.count <= earlier.count && (kept.isEmpty || kept.last == UInt8(ascii: "\n")), "kept text is not whole lines")
    var again = ResumeLog()
    let keptAgain: Data
    do { keptAgain = csv ? try again.keepCSVRows(kept, source: name) : again.keepJSONLines(kept) } catch {
        fatalError("the kept records do not read back: \(error)")
    }
    require(keptAgain == kept && again.dropped == 0 && again.finished == log.finished && again.hasHeader == log.hasHeader,
            "reading the kept records again changed them (dropped \(again.dropped))")
    return 0
}
