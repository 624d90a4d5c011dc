import Foundation
import Testing
@testable import HeadTune

/// Earlier outputs that once resumed wrongly, found by the resume-log fuzzer (Fuzz/ResumeLogFuzzer.swift).
@Suite struct ResumeLogRegressionTests {
    func temporaryOutput() throws -> String {
        let directory = NSTemporaryDirectory() + "headtune-resume-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory + "/out.csv"
    }

    /// A record must start at rank 1. A lone rank-2 row counted as a finished record; once the error
    /// record before it was dropped it joined the previous record of its path, so resuming the kept
    /// file again found one record fewer than the first resume had (the fuzzer's idempotence check).
    @Test func aRecordNotStartingAtRankOneIsTriedAgainAndResumingTwiceAgrees() throws {
        let output = try temporaryOutput()
        let csv = """
            path,rank,index,label,score,error
            a.jpg,1,3,x,0.9,
            bad.jpg,,,,,bad.jpg: not a JPEG or PNG
            a.jpg,2,4,y,0.1,

            """
        try Data(csv.utf8).write(to: URL(fileURLWithPath: output + ".partial"))
        let first = try ResumeLog.prepare(outputPath: output, format: .csv)
        #expect(first.finished == ["a.jpg": 1] && first.records == 1 && first.dropped == 2)
        let second = try ResumeLog.prepare(outputPath: output, format: .csv)
        #expect(second.finished == first.finished && second.dropped == 0)
        #expect(try String(contentsOfFile: output + ".partial", encoding: .utf8)
                == "path,rank,index,label,score,error\na.jpg,1,3,x,0.9,\n")
    }
}
